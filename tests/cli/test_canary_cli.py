"""`tether canary run` and `tether calibration`, as a user runs them: the table of canaries and
the exit code, the ECE with its bins and the reliability diagram."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.observe.test_calibration_error import calibrated, over_confident, serve
from tests.observe.test_canaries import SPEC, Model
from tether import Client, FakeProvider, Settings
from tether.cli import app
from tether.cli import canary as canary_cli
from tether.observe.config import ObserveSettings
from tether.prompts.loader import parse_spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def model() -> Model:
    return Model()


@pytest.fixture
def with_prompt(settings: Settings, model: Model, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI's client answers through the fake model; the prompt is registered."""
    settings = settings.model_copy(update={"observe": ObserveSettings(evasive_embedder="none")})
    with Client(settings, providers={"fake": FakeProvider(respond=model)}) as pusher:
        loaded = parse_spec(SPEC, source_name="triage.yaml")
        pusher.registry.push(loaded.spec, source=loaded.source, author="test", message="")

    def open_client(config: Path | None) -> Client:
        client = Client(settings, providers={"fake": FakeProvider(respond=model)})
        client.entry = "cli"
        return client

    monkeypatch.setattr(canary_cli, "open_client", open_client)
    return settings


def test_canaries_that_pass(with_prompt: Settings) -> None:
    out = invoke("canary", "run", "triage")
    assert "triage@1.0.0" in out
    assert "double charge" in out
    assert "late parcel" in out
    assert "2 passed, 0 failed" in out


def test_a_failed_canary_says_why_and_exits_1(with_prompt: Settings, model: Model) -> None:
    model.broken = True
    out = invoke("canary", "run", "triage", code=1)
    assert "NO" in out
    assert "equals category" in out
    assert "billing" in out
    assert "0 passed, 2 failed" in out


def test_nothing_to_run(with_prompt: Settings) -> None:
    result = CliRunner().invoke(app, ["canary", "run"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "no canaries to run" in result.output
    unknown = CliRunner().invoke(app, ["canary", "run", "nope"], env={"COLUMNS": "200"})
    assert unknown.exit_code == 1
    assert "no prompt 'nope'" in unknown.output


def _config(tmp_path: Path, settings: Settings, extra: str = "") -> Path:
    path = tmp_path / "tether.toml"
    path.write_text(f'database_url = "{settings.database}"\n{extra}')
    return path


def test_calibration_of_an_over_confident_prompt(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"observe": ObserveSettings(evasive_embedder="none")})
    serve(settings, over_confident)
    config = _config(tmp_path, settings, "[observe.alerts.calibration]\nmax_ece = 0.15\n")
    png = tmp_path / "charts" / "reliability.png"
    out = invoke("calibration", "triage", "--version", "1.0.0", "--out", str(png),
                 "-c", str(config))  # fmt: skip
    assert "ECE 0.4500 (above max_ece 0.15)" in out
    assert "sample 100 answers (100 with feedback, 0 canary runs" in out
    assert "[0.90, 1.00]" in out
    assert "-0.450" in out
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_calibration_of_a_calibrated_prompt(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"observe": ObserveSettings(evasive_embedder="none")})
    serve(settings, calibrated)
    out = invoke("calibration", "triage", "--since", "1d", "-c", str(_config(tmp_path, settings)))
    assert "ECE 0.0000" in out
    assert "max_ece" not in out  # no [observe.alerts.calibration] section


def test_calibration_without_data_or_with_a_bad_window(settings: Settings, tmp_path: Path) -> None:
    config = str(_config(tmp_path, settings))
    assert "no answers of triage" in invoke("calibration", "triage", "-c", config, code=1)
    assert "not a duration" in invoke("calibration", "triage", "--since", "soon", "-c", config,
                                      code=2)  # fmt: skip
