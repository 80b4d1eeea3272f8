"""Inputs of two topics (billing, shipping) for the input-drift tests: templates filled from
seeded slots, so two windows can share a topic mix or differ in it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BILLING = (
    "I was charged twice for my {plan} plan this month, please refund the extra {amount} dollars",
    "Why does my invoice for the {plan} subscription show {amount} dollars more than last time",
    "My card was billed {amount} dollars after I cancelled the {plan} plan, I want my money back",
    "Can you explain the {amount} dollar fee on my {plan} account statement",
)
SHIPPING = (
    "My parcel {order} still has not arrived in {city}, the tracking page has not moved in days",
    "The courier left order {order} at the wrong address in {city}, where is my delivery",
    "Package {order} shows delivered but nothing came to my door in {city}",
    "How long does shipping to {city} take, order {order} is a week late",
)
SLOTS = {
    "plan": ("basic", "premium", "family", "business", "student"),
    "amount": ("12", "29", "49", "99", "120"),
    "order": ("A1041", "B2213", "C3380", "D4457", "E5512"),
    "city": ("Lyon", "Denver", "Osaka", "Leeds", "Porto"),
}


def texts(templates: Sequence[str], n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    picked = [templates[int(rng.integers(len(templates)))] for _ in range(n)]
    return [t.format(**{k: v[int(rng.integers(len(v)))] for k, v in SLOTS.items()}) for t in picked]
