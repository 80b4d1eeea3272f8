"""The request log's on-disk side: a bounded spool of rows waiting for the database, and a
dead-letter file for rows the database refuses for good.

Both are JSON lines written with ASCII escapes (a lone surrogate, which UTF-8 cannot encode,
still round-trips) and fsync'd. A spool file appears whole (written aside, then renamed); the
dead-letter file only grows and is never replayed: it is for people to read and repair.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("tether.request_log")

DEAD_LETTER = "dead-letter.jsonl"


def _to_json(row: dict[str, Any]) -> str:
    return json.dumps({**row, "at": row["at"].isoformat()})


def _from_json(line: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(line)
    data["at"] = datetime.fromisoformat(data["at"])
    return data


@dataclass(frozen=True)
class SpoolFile:
    path: Path
    rows: list[dict[str, Any]]
    unreadable: list[str]  # lines that do not parse as a row


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self._max = max_bytes
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rows = sum(_lines(f) for f in self.files())  # rows waiting, across restarts
        self.dropped = 0  # rows lost because the spool was full
        self.quarantined = 0  # rows moved to the dead-letter file
        self.full = False  # the last write had to drop rows to fit

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.jsonl") if p.name != DEAD_LETTER)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Spool rows in a new file; the oldest files give way when the spool is full."""
        files = self.files()
        used = sum(f.stat().st_size for f in files)
        text = "".join(_to_json(r) + "\n" for r in rows)
        self.full = False
        while files and used + len(text) > self._max:
            oldest = files.pop(0)
            lost = _lines(oldest)
            used -= oldest.stat().st_size
            oldest.unlink()
            self.rows -= lost
            self.dropped += lost
            self.full = True
            log.error("request log: spool full, dropped %s (%d rows)", oldest.name, lost)
        try:
            _write_whole(self.directory / f"{time.time_ns()}-{os.getpid()}.jsonl", text)
        except OSError as exc:
            self.dropped += len(rows)
            log.error("request log: cannot write the spool, %d rows lost: %s", len(rows), exc)
            return
        self.rows += len(rows)

    def read(self, path: Path) -> SpoolFile:
        rows: list[dict[str, Any]] = []
        unreadable: list[str] = []
        for line in path.read_text("utf-8").splitlines():
            if not line:
                continue
            try:
                rows.append(_from_json(line))
            except (ValueError, KeyError, TypeError):
                unreadable.append(line)
        return SpoolFile(path, rows, unreadable)

    def done(self, spooled: SpoolFile, left: Sequence[dict[str, Any]]) -> None:
        """Replace a replayed file by the rows still waiting (none: remove it)."""
        before = len(spooled.rows) + len(spooled.unreadable)
        if left:
            _write_whole(spooled.path, "".join(_to_json(r) + "\n" for r in left))
        else:
            spooled.path.unlink()
            self.full = False
        self.rows -= before - len(left)

    def quarantine(self, row: dict[str, Any] | str, reason: str) -> None:
        """Append a refused row (or an unreadable spool line) to the dead-letter file."""
        entry = {
            "quarantined_at": datetime.now(UTC).isoformat(),
            "reason": reason,
            "row": json.loads(_to_json(row)) if isinstance(row, dict) else None,
            "line": row if isinstance(row, str) else None,
        }
        try:
            with (self.directory / DEAD_LETTER).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self.dropped += 1
            log.error("request log: cannot write the dead-letter file, row lost: %s", exc)
            return
        self.quarantined += 1
        log.error("request log: row quarantined in %s: %s", DEAD_LETTER, reason)


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _write_whole(path: Path, text: str) -> None:
    partial = path.with_suffix(".tmp")
    with partial.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
