"""`tether costs` with the response cache in use: hit rate, money and time saved per group and
in total, in the table, the sentence below it and the HTML page; without lookups, no columns."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from tests.cli.test_costs import NOW, _logged, rows_of, run
from tether.store.engine import open_database
from tether.store.tables import requests


def _cached(
    request_id: str, kind: str, saved: tuple[float, float] | None, **fields: object
) -> dict[str, object]:
    detail = {"kind": kind}
    return _logged(
        request_id, NOW - timedelta(hours=1), 0.0 if saved else 0.25, cache=kind,
        cache_saved_usd=saved[0] if saved else None, cache_saved_s=saved[1] if saved else None,
        cache_detail=json.dumps(detail), **fields,
    )  # fmt: skip


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    path = tmp_path / "tether.toml"
    path.write_text(f'database_url = "{url}"\n')
    engine = open_database(url)
    rows = [
        _cached("h1", "exact", (0.25, 30.0)),
        _cached("h2", "semantic", (0.5, 60.0), prompt="<b>x</b>"),
        _cached("m1", "miss", None),
        _cached("m3", "miss", None),
        _cached("m2", "miss", None, prompt="<b>x</b>"),
        _cached("b1", "bypass", None),  # not a lookup
        _logged(
            "n1",
            NOW - timedelta(hours=2),
            1.0,
            cache=None,
            cache_saved_usd=None,
            cache_saved_s=None,
            cache_detail=None,
        ),  # the cache was not consulted
    ]
    try:
        with engine.begin() as conn:
            conn.execute(insert(requests), rows)
    finally:
        engine.dispose()
    return path


def test_savings_per_group_and_in_total(config: Path) -> None:
    output = run("-c", str(config), "--by", "prompt")
    rows = rows_of(output)
    assert rows["triage"][-3:] == ["33.3%", "$0.25", "30.0 s"]
    assert rows["<b>x</b>"][-3:] == ["50.0%", "$0.5", "1.0 min"]
    assert rows["total"][-3:] == ["40.0%", "$0.75", "1.5 min"]
    assert "cache: 2 of 5 lookups answered (40.0%), saved $0.75 and 1.5 min" in output


def test_the_html_page_has_the_savings(config: Path, tmp_path: Path) -> None:
    run("-c", str(config), "--by", "prompt", "--chart", str(tmp_path / "spend"))
    html = (tmp_path / "spend.html").read_text("utf-8")
    assert '<th class="n">cache hit rate</th>' in html
    assert '<td class="n">40.0%</td><td class="n">$0.75</td><td class="n">1.5 min</td>' in html
    assert "cache: 2 of 5 lookups answered (40.0%), saved $0.75 and 1.5 min" in html
    assert "<b>x</b>" not in html


def test_no_lookups_no_cache_columns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plain.db'}"
    config = tmp_path / "tether.toml"
    config.write_text(f'database_url = "{url}"\n')
    engine = open_database(url)
    with engine.begin() as conn:
        conn.execute(insert(requests), [_logged("n1", NOW - timedelta(hours=1), 1.0)])
    engine.dispose()
    output = run("-c", str(config))
    assert len(rows_of(output)["total"]) == 7
    assert "cache: no lookups in this range" in output
