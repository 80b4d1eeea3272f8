"""`tether drift`: the table of tests per signal on a seeded database (time windows and request
windows), the chart files, the latest version chosen, and bad options refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.cli.drift import version_key
from tether.store.engine import open_database
from tether.store.signals import SignalRow, add_signal_rows

NOW = datetime.now(UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _signal(
    request: tuple[str, datetime, str], name: str, value: float | None, label: str | None
) -> SignalRow:
    request_id, at, version = request
    return SignalRow(request_id=request_id, at=at, prompt="triage", version=version,
                     model="fake", key_id=None, name=name, value=value, label=label)  # fmt: skip


def _rows(version: str, start: datetime, n: int, step: timedelta, positive: float,
          length: float, seed: int) -> list[SignalRow]:  # fmt: skip
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        request = (f"{version}-{seed}-{i}", start + step * i, version)
        label = "positive" if rng.random() < positive else "<b>negative</b>"
        rows.append(_signal(request, "enum:sentiment", None, label))
        rows.append(_signal(request, "length_chars", float(rng.normal(length, 20)), None))
        rows.append(_signal(request, "evasive", 0.0, None))
    return rows


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'drift.db'}"
    path = tmp_path / "tether.toml"
    path.write_text(f'database_url = "{url}"\n')
    engine = open_database(url)
    try:
        # 1.2.0: a week of 80/20 answers, then a day of 40/60 and longer answers
        add_signal_rows(engine, _rows("1.2.0", NOW - timedelta(days=7, hours=23), 400,
                                  timedelta(minutes=24), 0.8, 300.0, 1))  # fmt: skip
        add_signal_rows(engine, _rows("1.2.0", NOW - timedelta(hours=20), 200, timedelta(minutes=5),
                                  0.4, 340.0, 2))  # fmt: skip
        # 1.10.0 (the latest): nothing changed
        add_signal_rows(engine, _rows("1.10.0", NOW - timedelta(days=6), 300, timedelta(minutes=20),
                                  0.8, 300.0, 3))  # fmt: skip
        add_signal_rows(engine, _rows("1.10.0", NOW - timedelta(hours=20), 150,
                                      timedelta(minutes=7), 0.8, 300.0, 4))  # fmt: skip
    finally:
        engine.dispose()
    return path


def run(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["drift", *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


def rows_of(output: str) -> dict[tuple[str, str], list[str]]:
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 7 and cells[0] != "signal":
            found[(cells[0], cells[1])] = cells[2:]
    return found


def test_a_shifted_version_drifts(config: Path, tmp_path: Path) -> None:
    out = run("triage", "--version", "1.2.0", "--out", str(tmp_path / "chart"), "-c", str(config))
    rows = rows_of(out)
    assert rows[("enum:sentiment", "psi")][-1] == "yes"
    assert rows[("enum:sentiment", "chi2_p")][-1] == "yes"
    assert rows[("length_chars", "ks_p")][-1] == "yes"
    assert rows[("evasive", "mean_delta")][-1] == "no"
    assert rows[("enum:sentiment", "chi2_p")][2:4] == ["400", "200"]  # baseline n, recent n
    assert "drifted: enum:sentiment, length_chars" in out
    assert (tmp_path / "chart.png").read_bytes().startswith(PNG_MAGIC)
    page = (tmp_path / "chart.html").read_text()
    assert "<b>" not in page
    assert "enum:sentiment" in page


def test_the_latest_version_by_default_and_no_drift(config: Path) -> None:
    out = run("triage", "-c", str(config))
    assert "drift of triage 1.10.0" in out
    assert "no drift" in out
    assert all(cells[-1] == "no" for cells in rows_of(out).values())


def test_windows_in_requests(config: Path) -> None:
    out = run("triage", "--version", "1.2.0", "--baseline", "300", "--recent", "200",
              "-c", str(config))  # fmt: skip
    rows = rows_of(out)
    assert rows[("enum:sentiment", "chi2_p")][2:4] == ["300", "200"]
    assert rows[("enum:sentiment", "chi2_p")][-1] == "yes"


def test_few_samples_are_not_tested(config: Path) -> None:
    out = run("triage", "--version", "1.2.0", "--baseline", "10", "--recent", "10",
              "-c", str(config))  # fmt: skip
    assert all(cells[0] == "-" for cells in rows_of(out).values())
    assert "no drift" in out


def test_bad_input_is_refused(config: Path) -> None:
    assert "--baseline and --recent" in run("triage", "--baseline", "5", "-c", str(config),
                                            code=2)  # fmt: skip
    out = run("nothing-here", "-c", str(config), code=1)
    assert "no signals stored for prompt 'nothing-here'" in out


def test_versions_sort_in_release_order() -> None:
    assert sorted(["1.10.0", "1.9.0", "1.2.0"], key=version_key) == ["1.2.0", "1.9.0", "1.10.0"]
