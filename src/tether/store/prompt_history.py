"""Every prompt version, label and label move as stored, for the dashboard's prompts page.

Three queries in all (versions, labels, label events), whatever the number of prompts; the
stored specs are not read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Row, select

from tether.store.tables import label_events, prompt_labels, prompt_versions

_V = prompt_versions.c
# The page shows neither the spec nor its source, which can be long.
_VERSION_COLUMNS: tuple[ColumnElement[Any], ...] = (
    _V.name,
    _V.version,
    _V.content_hash,
    _V.author,
    _V.message,
    _V.created_at,
)


@dataclass(frozen=True)
class PromptHistory:
    versions: Sequence[Row[Any]]  # _VERSION_COLUMNS
    labels: Sequence[Row[Any]]  # every column of prompt_labels
    events: Sequence[Row[Any]]  # every column of label_events, oldest first


def prompt_history(engine: Engine) -> PromptHistory:
    with engine.connect() as conn:
        versions = conn.execute(select(*_VERSION_COLUMNS)).all()
        labels = conn.execute(select(prompt_labels)).all()
        events = conn.execute(select(label_events).order_by(label_events.c.id)).all()
    return PromptHistory(versions, labels, events)
