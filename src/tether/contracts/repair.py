"""The repair turn: show the model its last output and the validator's errors."""

from __future__ import annotations

from collections.abc import Sequence

from tether.messages import Message


def repair_messages(
    original: Sequence[Message], raw: str, errors: Sequence[str]
) -> tuple[Message, ...]:
    """Messages for the next attempt. Only the latest failed output is shown, so the context
    stays bounded however many repairs are allowed."""
    listed = "\n".join(f"- {e}" for e in errors)
    return (
        *original,
        Message("assistant", raw),
        Message(
            "user",
            "That output does not meet the required JSON schema:\n"
            f"{listed}\n"
            "Reply with corrected JSON only, no other text.",
        ),
    )
