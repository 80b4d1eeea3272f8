"""`tether cache`: stats from the backend and the request log, invalidation by selector (and a
refusal without one), calibration from graded pairs, fitting a scorer."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from tether import Client, FakeProvider, Settings
from tether.cache.backends.local import LocalBackend
from tether.cache.backends.registry import LOCAL_FILE
from tether.cache.entry import Answer, Entry
from tether.cache.semantic.calibration import calibrate
from tether.cache.semantic.scorer import Scorer
from tether.cli import app
from tether.store.cache_grades import DatabaseGradeStore

ROOT = Path(__file__).resolve().parents[2]
STSB_DEV = ROOT / "tests" / "data" / "paraphrase" / "stsb-en-dev.csv"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tether.toml"
    path.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        'default_model = "fake"\n'
        "[models.fake]\n"
        'provider = "fake"\n'
        "[cache]\n"
        'mode = "exact"\n'
        "[cache.semantic]\n"
        "min_grades = 10\n"
    )
    return path


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.csv"
    lines = STSB_DEV.read_text("utf-8").splitlines()[:120]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["cache", *args, "-c", str(config)], env={"COLUMNS": "200"})


def ok(config: Path, *args: str) -> str:
    result = run(config, *args)
    assert result.exit_code == 0, result.output
    output: str = result.output
    return output


def stats(config: Path, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(ok(config, "stats", "--json", *args))
    return found


def populate(config: Path) -> None:
    fake = FakeProvider(respond=lambda call: f"echo: {call.messages[-1].content}")
    with Client(Settings.load(config), providers={"fake": fake}) as client:
        for text in ("one", "two", "one"):
            client.generate(text)
    assert len(fake.calls) == 2


def _entry(
    key: str,
    *,
    prompt: str | None = None,
    tags: tuple[str, ...] = (),
    scope: str = "local",
    age_s: float = 0.0,
) -> Entry:
    now = time.time() - age_s
    answer = Answer(("cached",), None, "fake", "fake-model", "fake")
    return Entry(
        key=key,
        namespace="ns",
        scope=scope,
        prompt=prompt,
        version="1.0.0",
        model="fake",
        text=None,
        answer=answer,
        created_at=now,
        expires_at=time.time() + 3600,
        cost_usd=0.01,
        latency_s=1.0,
        tags=tags,
    )


def file_entries(config: Path, entries: list[Entry]) -> None:
    backend = LocalBackend(config.parent / "data" / LOCAL_FILE)

    async def put() -> None:
        for entry in entries:
            await backend.put(entry)
        await backend.close()

    asyncio.run(put())


def test_stats_on_an_empty_cache(config: Path) -> None:
    output = ok(config, "stats")
    assert "cache entries" in output
    assert "local backend" in output
    assert "semantic caching is off" in output
    found = stats(config)
    assert found["backend"]["entries"] == 0
    assert found["summary"]["total"]["lookups"] == 0
    assert found["summary"]["total"]["hit_rate"] is None
    assert found["calibration"] == []


def test_stats_on_a_populated_cache(config: Path) -> None:
    populate(config)
    found = stats(config)
    assert found["backend"]["entries"] == 2
    assert found["backend"]["by_prompt"] == {"": 2}
    total = found["summary"]["total"]
    assert (total["lookups"], total["exact_hits"], total["misses"]) == (3, 1, 2)
    assert total["hit_rate"] == pytest.approx(1 / 3)
    assert total["saved_usd"] >= 0
    output = ok(config, "stats")
    rows = {line.split("│")[1].strip(): line for line in output.splitlines() if "│" in line}
    assert "33.3%" in rows["total"]
    assert stats(config, "--prompt", "faq")["backend"]["entries"] == 0
    assert stats(config, "--since", "2020-01-01")["summary"]["total"]["lookups"] == 3


def test_stats_show_the_calibration_of_semantic_prompts(config: Path) -> None:
    config.write_text(config.read_text().replace('mode = "exact"', 'mode = "semantic"'))
    found = stats(config)
    (calls,) = found["calibration"]
    assert calls["prompt"] is None
    assert calls["origin"] == "bundled"
    assert calls["delta"] == 0.02
    assert calls["threshold"] is not None
    assert "semantic calibration" in ok(config, "stats")


def test_a_bad_since_names_the_option(config: Path) -> None:
    result = run(config, "stats", "--since", "last week")
    assert result.exit_code == 2
    assert "--since" in result.output


def test_invalidate_refuses_without_a_selector(config: Path) -> None:
    populate(config)
    refused = run(config, "invalidate")
    assert refused.exit_code == 1
    assert "say which entries to drop" in refused.output
    assert "--all" in refused.output
    both = run(config, "invalidate", "--all", "--prompt", "faq")
    assert both.exit_code == 1
    assert "--all drops every entry" in both.output
    bad_age = run(config, "invalidate", "--older-than", "2x")
    assert bad_age.exit_code == 1
    assert "--older-than" in bad_age.output
    assert "Traceback" not in refused.output + both.output + bad_age.output
    assert stats(config)["backend"]["entries"] == 2


def test_invalidate_by_prompt_tag_key_age_and_all(config: Path) -> None:
    file_entries(
        config,
        [
            _entry("a", prompt="faq", tags=("faq",)),
            _entry("b", prompt="faq"),
            _entry("c", prompt="other", tags=("faq",)),
            _entry("d", scope="key:key_abc"),
            _entry("e", age_s=3 * 3600),
            _entry("f"),
        ],
    )
    assert stats(config)["backend"]["by_prompt"] == {"faq": 2, "other": 1, "": 3}
    assert "dropped 2 entries (prompt=faq)" in ok(config, "invalidate", "--prompt", "faq")
    assert "dropped 1 entry (tag=faq)" in ok(config, "invalidate", "--tag", "faq")
    assert "dropped 0 entries" in ok(config, "invalidate", "--tag", "faq")
    assert "dropped 1 entry" in ok(config, "invalidate", "--key", "key_abc")
    assert "dropped 1 entry" in ok(config, "invalidate", "--older-than", "2h")
    assert "dropped 1 entry (everything)" in ok(config, "invalidate", "--all")
    assert stats(config)["backend"]["entries"] == 0


def test_calibrate_stores_graded_pairs_and_shows_the_thresholds(config: Path, pairs: Path) -> None:
    output = ok(config, "calibrate", "faq", "--pairs", str(pairs), "--delta", "0.2")
    assert "stored" in output
    assert "own grades" in output
    engine = create_engine(f"sqlite:///{config.parent / 'data' / 'tether.db'}")
    try:
        grades = DatabaseGradeStore(engine).recent("faq", 1000)
    finally:
        engine.dispose()
    assert len(grades) > 40
    assert {g.source for g in grades} == {"pairs"}
    assert all(0 <= g.score <= 1 for g in grades)
    assert f"stored {len(grades):,} graded pairs for faq" in output
    expected = calibrate([g.score for g in grades], [g.right for g in grades], 0.2, "faq")
    assert expected.threshold is not None
    assert f"{expected.threshold:.4f}" in output

    # Without pairs: the stored grades for faq; the bundled calibration for others.
    again = ok(config, "calibrate", "faq", "--delta", "0.2")
    assert f"{expected.threshold:.4f}" in again
    assert "stored" not in again
    fresh = ok(config, "calibrate", "other")
    assert "bundled" in fresh
    assert "0 graded samples" in fresh


def test_calibrate_refuses_bad_pairs(config: Path, tmp_path: Path) -> None:
    missing = run(config, "calibrate", "--pairs", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1
    assert "cannot read the graded pairs" in missing.output
    short = tmp_path / "short.csv"
    short.write_text("only,two\n")
    bad = run(config, "calibrate", "--pairs", str(short))
    assert bad.exit_code == 1
    assert "expected `text,text,grade`" in bad.output
    assert run(config, "calibrate", "--delta", "0.7").exit_code == 2


def test_fit_scorer_writes_a_scorer_that_reads_back(
    config: Path, pairs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "scorer.json"
    output = ok(config, "fit-scorer", str(pairs), "--out", str(out))
    assert "fitted on" in output
    data = json.loads(out.read_text("utf-8"))
    scorer = Scorer.from_json(data["scorer"])
    assert scorer.embedder == "all-MiniLM-L6-v2-onnx-int8-fused"
    assert scorer.source.startswith("pairs.csv")
    assert len(data["calibration"]["scores"]) == len(data["calibration"]["same"]) > 40
    assert 0 <= scorer.score("How do I reset it?", "How can I reset it?", 0.9) <= 1

    few = tmp_path / "few.csv"
    few.write_text("\n".join(pairs.read_text("utf-8").splitlines()[:10]) + "\n")
    refused = run(config, "fit-scorer", str(few), "--out", str(tmp_path / "few.json"))
    assert refused.exit_code == 1
    assert "at least 40" in refused.output


def test_the_cli_calls_hit_the_cache_and_take_the_same_cache_use(tmp_path: Path) -> None:
    from tests.pipeline.upstreams import Reply, RuleUpstream

    upstream = RuleUpstream({"answers": lambda body: Reply(content="General Kenobi.")})
    config = tmp_path / "cached.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        'default_model = "answers"\n'
        "[models.answers]\n"
        'provider = "openai"\n'
        f'base_url = "{upstream.base_url}"\n'
        "max_retries = 0\n"
        "[cache]\n"
        'mode = "exact"\n'
    )

    def generate(*args: str) -> str:
        result = CliRunner().invoke(app, ["generate", "hello there", "--meta", *args,
                                          "-c", str(config)])  # fmt: skip
        assert result.exit_code == 0, result.output
        return str(result.output)

    try:
        assert "cache/" not in generate()  # called, then filed
        assert "cache/" in generate()  # served from the cache
        assert "cache/" not in generate("--cache", "refresh")  # a fresh answer, filed again
        assert "cache/" not in generate("--cache", "off")
        assert "cache/" in generate()
        assert upstream.calls("answers") == 3
    finally:
        upstream.close()
