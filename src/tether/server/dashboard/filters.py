"""The request log's filters: parsed from a query string (bad values become messages for the
page, never errors), and written back into links for pagination."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import date
from urllib.parse import urlencode

STATUSES = ("", "ok", "error")
VALIDITY = ("", "yes", "no", "none")
MAX_TEXT = 500  # longer filter values are cut: they only ever narrow a search


@dataclass(frozen=True)
class RequestFilters:
    model: str = ""
    prompt: str = ""  # a prompt name, or name@version
    status: str = ""  # "ok" (< 400) or "error"
    valid: str = ""  # "yes", "no" or "none" (no contract)
    key: str = ""  # a key id
    q: str = ""  # text in the rendered prompt or the response
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1

    @property
    def active(self) -> bool:
        return self != RequestFilters(page=self.page)

    def query(self, page: int | None = None) -> str:
        """The query string of these filters (on another page), without empty fields."""
        target = self if page is None else replace(self, page=page)
        pairs: list[tuple[str, str]] = []
        for field in fields(target):
            value = getattr(target, field.name)
            if value in ("", None) or (field.name == "page" and value == 1):
                continue
            pairs.append((field.name, value.isoformat() if isinstance(value, date) else str(value)))
        return urlencode(pairs)


def _text(params: Mapping[str, str], name: str) -> str:
    return params.get(name, "").strip()[:MAX_TEXT]


def _choice(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], errors: list[str]
) -> str:
    value = _text(params, name)
    if value not in allowed:
        errors.append(f"{name}: choose one of {', '.join(a for a in allowed if a)}")
        return ""
    return value


def _date(params: Mapping[str, str], name: str, errors: list[str]) -> date | None:
    value = _text(params, name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"{name.replace('_', ' ')}: {value!r} is not a date (YYYY-MM-DD)")
        return None


def _page(params: Mapping[str, str]) -> int:
    value = _text(params, "page")
    return max(1, min(int(value), 1_000_000)) if value.isdigit() else 1


def parse_filters(params: Mapping[str, str]) -> tuple[RequestFilters, list[str]]:
    """Filters from a query string, and a message for each value that was ignored."""
    errors: list[str] = []
    filters = RequestFilters(
        model=_text(params, "model"),
        prompt=_text(params, "prompt"),
        status=_choice(params, "status", STATUSES, errors),
        valid=_choice(params, "valid", VALIDITY, errors),
        key=_text(params, "key"),
        q=_text(params, "q"),
        date_from=_date(params, "date_from", errors),
        date_to=_date(params, "date_to", errors),
        page=_page(params),
    )
    return filters, errors
