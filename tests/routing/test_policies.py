"""fixed, weighted and rules policies, driven as the route stage drives them."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.errors import ConfigError
from tether.messages import Message
from tether.routing.base import RouteInput
from tether.routing.config import RuleSettings, RulesRouterSettings
from tether.routing.context import BuildContext
from tether.routing.policies.fixed import FixedPolicy
from tether.routing.policies.rules import RulesPolicy
from tether.routing.policies.weighted import WeightedPolicy


def ask(text: str, **kw: object) -> RouteInput:
    return RouteInput(messages=(Message("user", text),), **kw)  # type: ignore[arg-type]


def rules(*rules: dict[str, object], allowed: tuple[str, ...] = ()) -> RulesPolicy:
    config = RulesRouterSettings(
        policy="rules", default="cheap", rules=[RuleSettings.model_validate(r) for r in rules]
    )
    return RulesPolicy.from_settings(config, BuildContext("r", allowed_modules=allowed))


def test_fixed_always_names_its_model() -> None:
    decision = FixedPolicy("gpt-4o").decide(ask("anything"))
    assert (decision.model, decision.policy, decision.answer) == ("gpt-4o", "fixed", None)


# -- weighted ---------------------------------------------------------------------------------


def test_weighted_same_request_id_same_arm_across_instances() -> None:
    arms = [("a", 1.0), ("b", 1.0), ("c", 1.0)]
    first = WeightedPolicy(arms, seed="exp-1")
    second = WeightedPolicy(arms, seed="exp-1")  # another replica, or after a restart
    for i in range(200):
        request = ask("hi", request_id=f"req-{i}")
        assert first.decide(request).model == second.decide(request).model
        assert first.decide(request).model == first.decide(request).model  # a retry


def test_weighted_seed_changes_the_assignment() -> None:
    arms = [("a", 1.0), ("b", 1.0)]
    one, other = WeightedPolicy(arms, seed="s1"), WeightedPolicy(arms, seed="s2")
    picks = [(one.decide(ask("x", request_id=str(i))).model,
              other.decide(ask("x", request_id=str(i))).model) for i in range(200)]  # fmt: skip
    assert sum(a != b for a, b in picks) > 50


def test_weighted_shares_follow_weights() -> None:
    policy = WeightedPolicy([("big", 9.0), ("small", 1.0)], seed="k")
    counts = Counter(policy.decide(ask("x", request_id=f"id{i}")).model for i in range(20_000))
    assert 0.88 < counts["big"] / 20_000 < 0.92
    unseeded = WeightedPolicy([("big", 3.0), ("small", 1.0)])
    counts = Counter(unseeded.decide(ask("x")).model for _ in range(20_000))
    assert 0.72 < counts["big"] / 20_000 < 0.78


def test_weighted_reason_says_how_it_drew() -> None:
    reason = WeightedPolicy([("a", 1.0)], seed="k").decide(ask("x", request_id="1")).reason
    assert "hashed from the request id" in reason
    assert "a" in reason
    assert "random" in WeightedPolicy([("a", 1.0)], seed="k").decide(ask("x")).reason


def test_weighted_refuses_bad_weights() -> None:
    with pytest.raises(ValueError, match="every weight > 0"):
        WeightedPolicy([("a", 0.0)])


# -- rules ------------------------------------------------------------------------------------


def test_first_matching_rule_wins_and_default_otherwise() -> None:
    policy = rules(
        {"name": "long", "min_chars": 50, "model": "premium"},
        {"keywords": ["refund", "charge back"], "model": "billing"},
    )
    assert policy.decide(ask("x" * 60 + " refund")).model == "premium"
    decided = policy.decide(ask("I want a REFUND now"))
    assert decided.model == "billing"
    assert "keyword 'refund'" in decided.reason
    assert policy.decide(ask("please charge back")).model == "billing"
    # Whole words only: "refunds" is not "refund".
    fallback = policy.decide(ask("refunds policy"))
    assert fallback.model == "cheap"
    assert "no rule matched" in fallback.reason


def test_length_in_tokens_and_every_condition_must_hold() -> None:
    policy = rules({"min_tokens": 5, "max_chars": 40, "metadata": {"tier": "gold"}, "model": "p"})
    assert policy.decide(ask("one two three four five", metadata={"tier": "gold"})).model == "p"
    assert policy.decide(ask("one two three four five", metadata={"tier": "free"})).model == "cheap"
    assert policy.decide(ask("one two", metadata={"tier": "gold"})).model == "cheap"
    assert policy.decide(ask("w " * 30, metadata={"tier": "gold"})).model == "cheap"


def test_rules_read_only_the_users_text() -> None:
    policy = rules({"keywords": ["secret"], "model": "premium"})
    request = RouteInput(messages=(Message("system", "the secret word"), Message("user", "hello")))
    assert policy.decide(request).model == "cheap"


def test_answer_tier_replies_without_a_model() -> None:
    policy = rules(
        {"name": "greeting", "regex": r"^\s*(hi|hello)\b", "answer": "Hello! How can I help?"},
        {"min_chars": 1, "model": "premium"},
    )
    decision = policy.decide(ask("hello there"))
    assert decision.model is None
    assert decision.answer == "Hello! How can I help?"
    assert "greeting" in decision.reason
    assert "without a model" in decision.reason
    assert policy.decide(ask("ohello")).model == "premium"


def test_catastrophic_regex_gives_up_and_the_next_rule_decides() -> None:
    # Overlapping alternatives under a repeat: the regex module cannot optimise this one away.
    policy = rules({"regex": r"^(a|aa)+$", "model": "trap"}, {"min_chars": 1, "model": "next"})
    started = time.perf_counter()
    decision = policy.decide(ask("a" * 40 + "!"))  # ~fib(40) paths to try and fail
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert decision.model == "next"
    assert "skipped" in decision.reason
    assert "gave up" in decision.reason


def test_invalid_or_huge_regex_is_a_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError) as caught:
        rules({"min_chars": 1, "model": "x"}, {"regex": "(unclosed", "model": "y"})
    assert caught.value.field == "routers.r.rules.1.regex"
    with pytest.raises(ConfigError, match="characters"):
        rules({"regex": "a" * 5000, "model": "y"})


# -- user functions ---------------------------------------------------------------------------


@pytest.fixture
def functions(tmp_path: Path) -> Iterator[Path]:
    """An allowed package with a rule function, and a module whose import leaves a mark."""
    package = tmp_path / "routefns"
    package.mkdir()
    (package / "__init__.py").write_text(
        "def is_vip(request):\n    return request.metadata.get('vip') == 'yes'\n"
        "def broken(request):\n    raise RuntimeError('bug')\n"
    )
    mark = tmp_path / "imported.mark"
    (tmp_path / "evilmod.py").write_text(
        f"import pathlib\npathlib.Path({str(mark)!r}).write_text('ran')\n"
        "def check(request):\n    return True\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield mark
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("routefns", "evilmod"):
            sys.modules.pop(name, None)


def test_user_function_from_the_allow_list(functions: Path) -> None:
    policy = rules({"function": "routefns:is_vip", "model": "premium"}, allowed=("routefns",))
    assert policy.decide(ask("x", metadata={"vip": "yes"})).model == "premium"
    assert policy.decide(ask("x")).model == "cheap"


def test_user_function_outside_the_allow_list_is_never_imported(functions: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        rules({"function": "evilmod:check", "model": "x"}, allowed=("routefns",))
    assert caught.value.field == "routers.r.rules.0.function"
    assert "not in prompt_model_modules" in caught.value.message
    assert not functions.exists()
    assert "evilmod" not in sys.modules
    with pytest.raises(ConfigError, match="not module:function"):
        rules({"function": "os.system", "model": "x"}, allowed=("os",))


def test_user_function_that_raises_skips_its_rule(functions: Path) -> None:
    policy = rules({"function": "routefns:broken", "model": "premium"}, allowed=("routefns",))
    decision = policy.decide(ask("x"))
    assert decision.model == "cheap"
    assert "raised RuntimeError" in decision.reason
