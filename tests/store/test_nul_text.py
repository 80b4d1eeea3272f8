"""Text from requests and model outputs is stored faithfully on every database, NUL included
(PostgreSQL `text` cannot hold it), and reads back as written through the dashboard."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from tether.observe.request_log import RequestLog, RequestRecord
from tether.server.dashboard.filters import RequestFilters
from tether.server.dashboard.request_log import list_requests, request_detail
from tether.store import open_database
from tether.store.tables import feedback
from tether.store.types import ESCAPE, escape_nul, unescape_nul

AWKWARD = [
    "a\x00b",
    "\x00",
    "\x00\x00",
    ESCAPE,
    ESCAPE + "0",  # what a NUL is escaped to, written literally
    ESCAPE + ESCAPE,
    ESCAPE + "\x00" + ESCAPE + "0" + "\x00" + ESCAPE,
    ESCAPE + "x",  # never produced by the escape: read back unchanged
    "plain text, \\0 and \\u0000 as characters",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_the_escape_round_trips_and_leaves_no_nul(value: str) -> None:
    escaped = escape_nul(value)
    assert "\x00" not in escaped
    assert unescape_nul(escaped) == value


def test_ordinary_text_is_stored_unchanged() -> None:
    text = "naïve café — 東京 \\n \\u0000 %_"
    assert escape_nul(text) is text


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    found = open_database(database_url)
    try:
        yield found
    finally:
        found.dispose()


def _record(request_id: str, text: str) -> RequestRecord:
    return RequestRecord(
        id=request_id, at=datetime.now(UTC), endpoint="chat.completions", key_id=None,
        model=text, provider="fake", upstream_model=text, prompt=text, prompt_version=None,
        status=500, error=text, stream=False, messages='[{"role": "user", "content": "hi"}]',
        response=text, output=None, contract=text, valid=None, attempts=None,
        input_tokens=1, output_tokens=1, cost_usd=0.0, latency_ms=1.0,
    )  # fmt: skip


def test_request_rows_round_trip_through_the_log_and_the_dashboard(
    engine: sa.Engine, tmp_path: Path
) -> None:
    log = RequestLog(engine, spool_dir=tmp_path / "spool")
    log.start()
    for n, text in enumerate(AWKWARD):
        log.record(_record(f"req_{n}", text))
    log.close()
    assert log.stats() == {"pending": 0, "spooled": 0, "quarantined": 0, "dropped": 0}
    for n, text in enumerate(AWKWARD):
        shown = request_detail(engine, f"req_{n}")
        assert shown is not None
        assert (shown.response, shown.error, shown.row.model, shown.contract) == (text,) * 4
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT response FROM requests")).scalars().all()
    if engine.dialect.name == "postgresql":
        assert all("\x00" not in s for s in stored)  # escaped on the way in
    found = list_requests(engine, RequestFilters(q=ESCAPE + "x"))
    assert [r.id for r in found.rows] == [f"req_{AWKWARD.index(ESCAPE + 'x')}"]


def test_feedback_text_and_lookups_by_id_with_nul(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(feedback).values(
                request_id="req_\x00", label="a\x00b", comment=ESCAPE + "0", at=datetime.now(UTC)
            )
        )
    with engine.connect() as conn:
        row = conn.execute(sa.select(feedback).where(feedback.c.request_id == "req_\x00")).one()
    assert (row.request_id, row.label, row.comment) == ("req_\x00", "a\x00b", ESCAPE + "0")
