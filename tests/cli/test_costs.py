"""`tether costs`: a breakdown table with totals from the request log, time ranges, the chart
files, and bad options refused with the option's name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from tether.cli import app
from tether.cli.costs import parse_moment
from tether.store.engine import open_database
from tether.store.tables import requests

NOW = datetime.now(UTC)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _logged(request_id: str, at: datetime, cost: float, **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": request_id, "at": at, "endpoint": "chat.completions", "key_id": None,
        "model": "fast", "provider": "openai", "upstream_model": "gpt-4o-mini",
        "prompt": "triage", "prompt_version": "1.0.0", "status": 200, "error": None,
        "stream": False, "messages": "[]", "response": "", "output": None, "contract": None,
        "valid": None, "attempts": None, "input_tokens": 100, "output_tokens": 10,
        "cost_usd": cost, "latency_ms": 1.0,
    }  # fmt: skip
    return {**row, **fields}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'costs.db'}"
    path = tmp_path / "tether.toml"
    path.write_text(f'database_url = "{url}"\n')
    engine = open_database(url)
    rows = [
        _logged("req_a", NOW - timedelta(hours=1), 0.25),
        _logged(
            "req_b",
            NOW - timedelta(days=2),
            0.5,
            upstream_model="claude-haiku-4-5",
            prompt="<b>bold</b>",
            status=500,
        ),
        _logged("req_c", NOW - timedelta(days=40), 9.0),  # outside the default 30 days
    ]
    try:
        with engine.begin() as conn:
            conn.execute(insert(requests), rows)
    finally:
        engine.dispose()
    return path


def run(*args: str) -> str:
    result = CliRunner().invoke(app, ["costs", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def rows_of(output: str) -> dict[str, list[str]]:
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0]:
            found[cells[0]] = cells
    return found


def test_by_model_with_totals(config: Path) -> None:
    rows = rows_of(run("-c", str(config)))
    assert rows["gpt-4o-mini"][1:] == ["1", "0", "100", "10", "$0.25", "0.0%"]
    assert rows["claude-haiku-4-5"][1:] == ["1", "1", "100", "10", "$0.5", "100.0%"]
    assert rows["total"][1:] == ["2", "1", "200", "20", "$0.75", "66.7%"]


def test_two_dimensions_as_a_list_and_a_longer_range(config: Path) -> None:
    output = run("-c", str(config), "--by", "prompt,version", "--since", "60d")
    rows = rows_of(output)
    assert rows["triage"][1:3] == ["triage@1.0.0", "2"]
    assert rows["<b>bold</b>"][1] == "<b>bold</b>@1.0.0"  # shown as written, not as markup
    assert rows["total"][3:] == ["1", "300", "30", "$9.75", "5.1%"]


def test_until_a_date_includes_that_day(config: Path) -> None:
    day = (NOW - timedelta(days=2)).date().isoformat()
    rows = rows_of(run("-c", str(config), "--since", day, "--until", day, "--by", "day"))
    assert list(rows) == [day, "total"]
    assert rows[day][-2] == "$0.5"


def test_chart_writes_png_and_html(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "spend.png"
    output = run("-c", str(config), "--by", "prompt", "--chart", str(target))
    png, page = tmp_path / "out" / "spend.png", tmp_path / "out" / "spend.html"
    assert "spend.png" in output
    assert "spend.html" in output
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 5_000  # an actual drawing, not an empty canvas
    html = page.read_text("utf-8")
    assert "data:image/png;base64," in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # a prompt name is text, never markup
    assert "<b>bold</b>" not in html
    assert "http://" not in html
    assert "https://" not in html  # self-contained: nothing fetched
    assert "<script" not in html


def test_empty_log_still_draws(tmp_path: Path) -> None:
    config = tmp_path / "tether.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "empty.db"}"\n')
    output = run("-c", str(config), "--since", "7d", "--chart", str(tmp_path / "empty"))
    assert rows_of(output)["total"][1:3] == ["0", "0"]
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "tenant"], "'tenant' is not a dimension"),
        (["--since", "last week"], "is not a date"),
        (["--since", "2026-13-01"], "is not a date"),
        (["--since", "1d", "--until", "3d"], "is not before --until"),
    ],
)
def test_bad_options_are_refused(config: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["costs", "-c", str(config), *args],
                                env={"COLUMNS": "200"})  # fmt: skip
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_unreachable_database_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "tether.toml"
    config.write_text('database_url = "postgresql://nobody@127.0.0.1:1/none"\n')
    result = CliRunner().invoke(app, ["costs", "-c", str(config)])
    assert result.exit_code == 1
    assert "error:" in result.output
    assert "Traceback" not in result.output


def test_parse_moment() -> None:
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_moment("7d", now=now) == now - timedelta(days=7)
    assert parse_moment("12h", now=now) == now - timedelta(hours=12)
    assert parse_moment("2026-11-30", now=now) == datetime(2026, 11, 30, tzinfo=UTC)
    assert parse_moment("2026-11-30", now=now, end=True) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_moment("2026-11-30T12:00", now=now) == datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert parse_moment("2026-11-30T12:00+02:00", now=now) == datetime(2026, 11, 30, 10,
                                                                       tzinfo=UTC)  # fmt: skip
    assert parse_moment("1W", now=now) == datetime(2026, 11, 24, 10, tzinfo=UTC)
