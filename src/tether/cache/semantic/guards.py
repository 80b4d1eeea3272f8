"""Guards: checks that veto a semantic neighbour whose meaning differs in a way a sentence
embedding barely sees.

Two texts can sit close in embedding space and still ask different things: "is this safe to
eat" and "is this not safe to eat", "shares close higher" and "shares close lower", "kill 9"
and "kill 19", "Friday, December 6" and "Friday, July 12". Each guard compares one feature of
the two texts and names itself when it vetoes; the request log shows which one did.

A guard is one function `(query, cached) -> bool` (True: veto) behind a name in GUARDS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

Guard = Callable[["Features", "Features"], bool]


def word_list(text: str) -> list[str]:
    """A list of words written as one string (long vocabularies stay readable)."""
    return text.split()


_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*(?:\.\d+)?")

# Words that flip or deny what a sentence says.
_NEGATIONS = frozenset(
    word_list(
        "not no never none nobody nothing neither nor without cannot can't won't don't doesn't "
        "didn't isn't aren't wasn't weren't shouldn't wouldn't couldn't hasn't haven't hadn't "
        "mustn't nowhere"
    )
)
# Pairs of opposites: a text with one side and a neighbour with the other ask different things.
_OPPOSITES = (
    ("higher", "lower"), ("high", "low"), ("up", "down"), ("rise", "fall"), ("rises", "falls"),
    ("rose", "fell"), ("gain", "loss"), ("gains", "losses"), ("increase", "decrease"),
    ("increases", "decreases"), ("increased", "decreased"), ("more", "less"), ("most", "least"),
    ("before", "after"), ("above", "below"), ("open", "close"), ("opens", "closes"),
    ("opened", "closed"), ("win", "lose"), ("wins", "loses"), ("won", "lost"),
    ("buy", "sell"), ("buys", "sells"), ("bought", "sold"), ("safe", "unsafe"),
    ("true", "false"), ("yes", "no"), ("male", "female"), ("man", "woman"), ("men", "women"),
    ("boy", "girl"), ("boys", "girls"), ("enter", "exit"), ("start", "stop"),
    ("starts", "stops"), ("first", "last"), ("cheap", "expensive"), ("cheapest", "dearest"),
    ("hot", "cold"), ("warm", "cool"), ("add", "remove"), ("allow", "deny"),
    ("accept", "reject"), ("accepted", "rejected"), ("taken", "released"), ("arrive", "depart"),
    ("import", "export"), ("imports", "exports"), ("minimum", "maximum"), ("min", "max"),
    ("positive", "negative"), ("legal", "illegal"), ("possible", "impossible"),
    ("agree", "disagree"), ("like", "dislike"), ("always", "never"), ("all", "none"),
    ("north", "south"), ("east", "west"), ("left", "right"), ("inside", "outside"),
    ("today", "tomorrow"), ("today", "yesterday"), ("yesterday", "tomorrow"),
)  # fmt: skip
_OPPOSITE: dict[str, frozenset[str]] = {}
for _a, _b in _OPPOSITES:
    _OPPOSITE[_a] = _OPPOSITE.get(_a, frozenset()) | {_b}
    _OPPOSITE[_b] = _OPPOSITE.get(_b, frozenset()) | {_a}

_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
    "half": "0.5", "once": "1", "twice": "2", "single": "1", "double": "2", "triple": "3",
}  # fmt: skip
_MONTHS = {
    "january": "jan", "jan": "jan", "february": "feb", "feb": "feb", "march": "mar",
    "april": "apr", "apr": "apr", "may": "may", "june": "jun", "jun": "jun", "july": "jul",
    "jul": "jul", "august": "aug", "aug": "aug", "september": "sep", "sept": "sep",
    "sep": "sep", "october": "oct", "oct": "oct", "november": "nov", "nov": "nov",
    "december": "dec", "dec": "dec",
}  # fmt: skip
_DAYS = {
    "monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu", "friday": "fri",
    "saturday": "sat", "sunday": "sun",
}  # fmt: skip
_UNITS = frozenset(
    word_list(
        "percent % km kilometre kilometres kilometer kilometers mile miles m metre metres meter "
        "meters cm mm kg kilogram kilograms g gram grams lb lbs pound pounds oz ounce ounces l "
        "litre litres liter liters ml gallon gallons c f celsius fahrenheit kelvin second seconds "
        "minute minutes hour hours day days week weeks month months year years usd eur gbp dollar "
        "dollars euro euros cent cents yen gb mb kb tb mph kph"
    )
)
# Capitalised words that start a question or a sentence are not names.
_NOT_NAMES = frozenset(
    word_list(
        "a an the i is are was were do does did can could should would will what which who whom "
        "whose when where why how this that these those it its there here my your our their his "
        "her please tell give show list find explain describe"
    )
)


@dataclass(frozen=True)
class Features:
    """What the guards compare, read once per text."""

    words: frozenset[str]
    negated: bool
    numbers: frozenset[str]
    dates: frozenset[str]
    units: frozenset[str]
    names: frozenset[str]


@lru_cache(maxsize=65536)
def features(text: str) -> Features:
    tokens = _WORD.findall(text)
    lower = [token.lower() for token in tokens]
    numbers = {_canonical_number(n) for n in _NUMBER.findall(text)}
    numbers |= {_NUMBER_WORDS[word] for word in lower if word in _NUMBER_WORDS}
    dates = {_MONTHS[word] for word in lower if word in _MONTHS and word != "may"}
    dates |= {_DAYS[word.removesuffix("s")] for word in lower if word.removesuffix("s") in _DAYS}
    units = {word for word in lower if word in _UNITS}
    if "%" in text:
        units.add("percent")
    names = {
        word.lower()
        for index, word in enumerate(tokens)
        if word[:1].isupper() and index > 0 and word.lower() not in _NOT_NAMES
        and word.lower() not in _MONTHS and word.lower() not in _DAYS
    }  # fmt: skip
    return Features(
        words=frozenset(lower),
        negated=sum(word in _NEGATIONS or word.endswith("n't") for word in lower) % 2 == 1,
        numbers=frozenset(numbers),
        dates=frozenset(dates),
        units=frozenset(units),
        names=frozenset(names),
    )


def _canonical_number(text: str) -> str:
    plain = text.replace(",", "")
    try:
        value = float(plain)
    except ValueError:
        return text
    return f"{value:g}"


def negation(query: Features, cached: Features) -> bool:
    """One text denies what the other says (an odd number of negations on one side only)."""
    return query.negated != cached.negated


def polarity(query: Features, cached: Features) -> bool:
    """One text uses a word whose opposite the other uses (higher/lower, taken/released)."""
    only_query = query.words - cached.words
    only_cached = cached.words - query.words
    return any(_OPPOSITE.get(word, frozenset()) & only_cached for word in only_query)


def numbers(query: Features, cached: Features) -> bool:
    """Both texts give numbers and they differ (9 and 19 people, 0.39% and 2.47%); a number
    on one side only ("two men" and "the men") leaves the choice to the score."""
    return bool(query.numbers and cached.numbers and query.numbers != cached.numbers)


def dates(query: Features, cached: Features) -> bool:
    """Both texts name months or weekdays, and different ones."""
    return bool(query.dates and cached.dates and query.dates != cached.dates)


def units(query: Features, cached: Features) -> bool:
    """Both give units and they differ (miles and kilometres)."""
    return bool(query.units and cached.units and query.units != cached.units)


def entities(query: Features, cached: Features) -> bool:
    """Each text names something the other does not (capitalised words past the first)."""
    return bool(query.names - cached.names and cached.names - query.names)


GUARDS: dict[str, Guard] = {
    "negation": negation,
    "polarity": polarity,
    "numbers": numbers,
    "dates": dates,
    "units": units,
    "entities": entities,
}
# `entities` is left out by default: names are written many ways ("Tim"/"Timothy", "FTC"), and
# on STS-B it vetoed 30 of 264 paraphrases for 102 of 647 non-paraphrases.
DEFAULT_GUARDS = ("negation", "polarity", "numbers", "dates", "units")


def veto(query: str, cached: str, guards: Iterable[str] = DEFAULT_GUARDS) -> str | None:
    """The name of the first guard that vetoes serving `cached`'s answer for `query`."""
    asked, held = features(query), features(cached)
    for name in guards:
        if GUARDS[name](asked, held):
            return name
    return None
