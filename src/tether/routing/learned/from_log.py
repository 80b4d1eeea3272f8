"""Training rows from the request log: texts that both models answered, with feedback on each.

A logged request has one model's outcome; a training row needs both. Rows are therefore texts
seen with the cheap and with the premium model (a weighted split over repeated requests, a
replay, a shadow run), each model's outcome the majority of its judged answers (ties pass).
Texts seen with one model only are counted, not used: guessing the other outcome would teach the
router its own guesses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tether.routing.learned.dataset import Outcome, Outcomes
from tether.store.route_outcomes import LoggedOutcome


@dataclass(frozen=True)
class Paired:
    outcomes: Outcomes
    one_model_only: int  # texts left out: answered (and judged) on one of the two models only


def pair_outcomes(logged: Iterable[LoggedOutcome], *, cheap: str, premium: str) -> Paired:
    by_text: dict[str, dict[str, list[bool]]] = {}
    for outcome in logged:
        by_text.setdefault(outcome.text, {}).setdefault(outcome.model, []).append(outcome.passed)
    rows = []
    alone = 0
    for text, verdicts in by_text.items():
        if cheap in verdicts and premium in verdicts:
            rows.append(Outcome(text, _majority(verdicts[cheap]), _majority(verdicts[premium])))
        else:
            alone += 1
    return Paired(Outcomes(tuple(rows)), alone)


def _majority(verdicts: list[bool]) -> bool:
    return 2 * sum(verdicts) >= len(verdicts)
