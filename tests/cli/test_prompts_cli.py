"""`tether prompts ...` and `tether test`, as a user runs them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tether.cli import app

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "prompts" / "feedback-sentiment"


@pytest.fixture
def cli(tmp_path: Path) -> CliRunner:
    return CliRunner(
        env={"TETHER_DATA_DIR": str(tmp_path / "data"), "TETHER_ACTOR": "ci", "COLUMNS": "200"}
    )


def _variant(tmp_path: Path, version: str, edit: object) -> Path:
    data = yaml.safe_load((EXAMPLE / "1.0.0.yaml").read_text())
    data["version"] = version
    edit(data)  # type: ignore[operator]
    path = tmp_path / f"variant-{version}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _drop_confidence(data: dict) -> None:  # type: ignore[type-arg]
    schema = data["output"]["schema"]
    del schema["properties"]["confidence"]
    schema["required"] = ["sentiment"]
    for example in data["examples"]:
        example["output"].pop("confidence")
    for case in data["tests"]:
        case["assert"] = [a for a in case["assert"] if a.get("field") != "confidence"]


def test_push_list_show(cli: CliRunner) -> None:
    pushed = cli.invoke(app, ["prompts", "push", str(EXAMPLE), "-m", "import"])
    assert pushed.exit_code == 0, pushed.output
    assert pushed.stdout.count("created") == 2
    assert "new optional field" in pushed.stdout
    again = cli.invoke(app, ["prompts", "push", str(EXAMPLE)])
    assert again.stdout.count("unchanged") == 2
    listed = cli.invoke(app, ["prompts", "list"])
    assert "feedback-sentiment" in listed.stdout
    assert "1.1.0" in listed.stdout
    shown = cli.invoke(app, ["prompts", "show", "feedback-sentiment", "1.0.0"])
    assert "version: 1.0.0" in shown.stdout
    assert "by ci" in shown.stdout


def test_breaking_change_needs_a_major_bump(cli: CliRunner, tmp_path: Path) -> None:
    cli.invoke(app, ["prompts", "push", str(EXAMPLE / "1.0.0.yaml")])
    minor = _variant(tmp_path, "1.2.0", _drop_confidence)
    refused = cli.invoke(app, ["prompts", "push", str(minor)])
    assert refused.exit_code == 1
    assert "needs a major version bump" in refused.stderr
    assert "does not require 'confidence'" in refused.stderr
    major = _variant(tmp_path, "2.0.0", _drop_confidence)
    accepted = cli.invoke(app, ["prompts", "push", str(major)])
    assert accepted.exit_code == 0, accepted.output
    diff = cli.invoke(app, ["prompts", "diff", "feedback-sentiment", "1.0.0", "2.0.0"])
    assert diff.exit_code == 0, diff.output
    assert "major" in diff.stdout
    assert "field 'confidence' removed" in diff.stdout
    assert "-version: 1.0.0" in diff.stdout
    assert "+version: 2.0.0" in diff.stdout


def test_diff_against_a_working_copy(cli: CliRunner) -> None:
    cli.invoke(app, ["prompts", "push", str(EXAMPLE / "1.0.0.yaml")])
    result = cli.invoke(
        app, ["prompts", "diff", "feedback-sentiment", "1.0.0", str(EXAMPLE / "1.1.0.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert "new optional field" in result.stdout
    assert "templates changed" in result.stdout


def test_label_rollback_history(cli: CliRunner) -> None:
    cli.invoke(app, ["prompts", "push", str(EXAMPLE)])
    name = "feedback-sentiment"
    assert (
        cli.invoke(app, ["prompts", "label", name, "1.0.0", "production", "-r", "go"]).exit_code
        == 0
    )
    assert (
        cli.invoke(app, ["prompts", "label", name, "1.1.0", "production", "-r", "v2"]).exit_code
        == 0
    )
    rolled = cli.invoke(app, ["prompts", "rollback", name, "production", "-r", "regression"])
    assert rolled.exit_code == 0, rolled.output
    assert "1.1.0 → 1.0.0" in rolled.stdout
    history = cli.invoke(app, ["prompts", "history", name])
    assert "regression" in history.stdout
    assert "rollback" in history.stdout
    missing = cli.invoke(app, ["prompts", "label", name, "9.0.0", "production"])
    assert missing.exit_code == 1
    assert "no prompt" in missing.stderr


def test_invalid_spec_file_names_file_and_line(cli: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nversion: 1.0.0\nmessages:\n  - role: wizard\n    content: hi\n")
    result = cli.invoke(app, ["prompts", "push", str(broken)])
    assert result.exit_code == 1
    assert f"{broken}:4" in result.stderr
    assert "messages.0.role" in result.stderr


@pytest.mark.local_model
def test_tokens_report_uses_the_model_tokenizer(cli: CliRunner) -> None:
    result = cli.invoke(app, ["prompts", "tokens", str(EXAMPLE / "1.1.0.yaml")])
    assert result.exit_code == 0, result.output
    for part in ("system 1", "example 1", "example 5", "instructions", "variable comment"):
        assert part in result.stdout
    # local-small is priced at its notional catalog price (CPU electricity): small, not zero
    cost = re.search(r"cost per 1,000 calls: \$([0-9.]+)", result.stdout)
    assert cost
    assert 0 < float(cost.group(1)) < 0.01
    assert "estimated" not in result.stdout


@pytest.mark.local_model
def test_prompt_tests_pass_on_the_local_model_and_fail_when_broken(
    cli: CliRunner, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    ok = cli.invoke(
        app,
        ["test", "feedback-sentiment", "--dir", str(ROOT / "prompts"),
         "--junit", str(reports / "ok.xml"), "--json", str(reports / "ok.json")],
    )  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "0 failed" in ok.stdout
    assert "<testsuite " in (reports / "ok.xml").read_text()

    folder = tmp_path / "broken"
    shutil.copytree(EXAMPLE, folder)
    spec = yaml.safe_load((folder / "1.1.0.yaml").read_text())
    spec["tests"][0]["assert"].append({"type": "equals", "field": "sentiment", "value": "negative"})
    (folder / "1.1.0.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    failed = cli.invoke(
        app,
        ["test", str(folder / "1.1.0.yaml"), "--junit", str(reports / "bad.xml"),
         "--json", str(reports / "bad.json")],
    )  # fmt: skip
    assert failed.exit_code == 1
    assert "1 failed" in failed.stdout
    assert "<failure" in (reports / "bad.xml").read_text()
    assert '"passed": false' in (reports / "bad.json").read_text()
