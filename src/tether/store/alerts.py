"""Alerts raised by the alert rules: stored when a rule fires, updated with what each sink did,
read back newest first (the dashboard, cooldowns after a restart).

Blocking calls: run them off the event loop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update

from tether.store.dialect import utc, utc_bound
from tether.store.tables import alerts


@dataclass(frozen=True)
class AlertRow:
    at: datetime
    rule: str
    prompt: str | None
    version: str | None
    signal: str
    value: float | None
    threshold: float | None
    message: str
    delivered: dict[str, Any] = field(default_factory=dict)  # sink name -> outcome
    id: int | None = None  # set once stored

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "rule": self.rule,
            "prompt": self.prompt,
            "version": self.version,
            "signal": self.signal,
            "value": self.value,
            "threshold": self.threshold,
            "message": self.message,
            "delivered": self.delivered,
        }


def add_alert(engine: Engine, alert: AlertRow) -> int:
    """Store `alert`; its id."""
    values = {
        "at": utc_bound(alert.at),
        "rule": alert.rule,
        "prompt": alert.prompt,
        "version": alert.version,
        "signal": alert.signal,
        "value": alert.value,
        "threshold": alert.threshold,
        "message": alert.message,
        "delivered": json.dumps(alert.delivered, sort_keys=True),
    }
    with engine.begin() as conn:
        result = conn.execute(insert(alerts).values(**values))
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def set_delivered(engine: Engine, alert_id: int, delivered: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(alerts)
            .where(alerts.c.id == alert_id)
            .values(delivered=json.dumps(delivered, sort_keys=True))
        )


def recent_alerts(
    engine: Engine,
    *,
    limit: int = 100,
    since: datetime | None = None,
    prompt: str | None = None,
    rule: str | None = None,
) -> list[AlertRow]:
    """The latest `limit` alerts, newest first (optionally of one prompt or rule)."""
    c = alerts.c
    query = select(alerts).order_by(c.at.desc(), c.id.desc()).limit(max(0, limit))
    start = utc_bound(since)
    if start is not None:
        query = query.where(c.at >= start)
    if prompt is not None:
        query = query.where(c.prompt == prompt)
    if rule is not None:
        query = query.where(c.rule == rule)
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]


def last_alert_at(
    engine: Engine, rule: str, prompt: str | None, version: str | None
) -> datetime | None:
    """When `rule` last fired for this prompt version (None: never)."""
    c = alerts.c
    query = select(c.at).where(
        c.rule == rule,
        c.prompt.is_(None) if prompt is None else c.prompt == prompt,
        c.version.is_(None) if version is None else c.version == version,
    )
    query = query.order_by(c.at.desc()).limit(1)
    with engine.connect() as conn:
        found = conn.execute(query).scalar_one_or_none()
    return utc(found) if found is not None else None


def _row(r: Any) -> AlertRow:
    try:
        delivered = json.loads(r.delivered)
    except ValueError:
        delivered = {}  # written by hand or cut short: shown as not delivered
    return AlertRow(
        id=r.id,
        at=utc(r.at),
        rule=r.rule,
        prompt=r.prompt,
        version=r.version,
        signal=r.signal,
        value=r.value,
        threshold=r.threshold,
        message=r.message,
        delivered=delivered if isinstance(delivered, dict) else {},
    )
