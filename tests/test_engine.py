"""The attempt loop: validate every output, repair within a bound, charge every attempt."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from tether import (
    Client,
    Completion,
    ContextWindowExceeded,
    ContractViolation,
    FakeProvider,
    ProviderError,
    ProviderUnavailable,
    Usage,
)


class Label(BaseModel):
    label: Literal["spam", "ham"]


GOOD = '{"label": "spam"}'
BAD_ENUM = '{"label": "eggs"}'


def test_valid_first_answer_is_returned_typed(client: Client, fake: FakeProvider) -> None:
    fake.enqueue(GOOD)
    result = client.generate("classify: buy now", contract=Label)
    assert result.output == Label(label="spam")
    assert result.raw == GOOD
    assert result.repairs == 0
    assert result.provider == "fake"
    assert fake.calls[0].output is not None
    assert fake.calls[0].output.schema["additionalProperties"] is False


def test_invalid_answer_is_repaired_with_the_validator_errors(
    client: Client, fake: FakeProvider
) -> None:
    fake.enqueue(BAD_ENUM, GOOD)
    result = client.generate("classify: buy now", contract=Label)
    assert result.output.label == "spam"
    assert [a.valid for a in result.attempts] == [False, True]
    repair = fake.calls[1].messages
    assert repair[-2].role == "assistant"
    assert repair[-2].content == BAD_ENUM
    assert "at /label" in repair[-1].content


def test_every_attempt_is_charged_to_the_one_request(client: Client, fake: FakeProvider) -> None:
    fake.enqueue(
        Completion(BAD_ENUM, Usage(100, 10), "m", "fake"),
        Completion(GOOD, Usage(150, 20), "m", "fake"),
    )
    result = client.generate("x", contract=Label)
    assert result.usage == Usage(250, 30)
    # prices: $1 per million input tokens, $2 per million output tokens
    assert result.cost_usd == pytest.approx((250 * 1.0 + 30 * 2.0) / 1_000_000)
    assert [a.cost_usd for a in result.attempts] == pytest.approx([120e-6, 190e-6])


def test_exhausted_repairs_raise_with_every_attempt(client: Client, fake: FakeProvider) -> None:
    fake.enqueue("not json", BAD_ENUM, '{"label": null}')
    with pytest.raises(ContractViolation) as err:
        client.generate("x", contract=Label, max_repairs=2)
    violation = err.value
    assert len(violation.attempts) == 3
    assert violation.last_raw == '{"label": null}'
    assert violation.attempts[0].errors[0].startswith("not valid JSON")
    assert violation.contract == "Label"
    assert len(fake.calls) == 3


def test_zero_repairs_means_one_attempt(client: Client, fake: FakeProvider) -> None:
    fake.enqueue(BAD_ENUM, GOOD)
    with pytest.raises(ContractViolation):
        client.generate("x", contract=Label, max_repairs=0)
    assert len(fake.calls) == 1


def test_truncated_output_says_so(client: Client, fake: FakeProvider) -> None:
    fake.enqueue(Completion('{"label": "sp', Usage(1, 64), "m", "fake", finish_reason="length"))
    with pytest.raises(ContractViolation) as err:
        client.generate("x", contract=Label, max_repairs=0)
    assert "max_tokens" in err.value.attempts[0].errors[0]


def test_a_cut_off_output_is_not_repaired(client: Client, fake: FakeProvider) -> None:
    fake.enqueue(
        Completion('{"label": "sp', Usage(1, 64), "m", "fake", finish_reason="length"), GOOD
    )
    with pytest.raises(ContractViolation) as err:
        client.generate("x", contract=Label, max_repairs=2)
    assert len(fake.calls) == 1  # the same budget would cut a repair off too
    assert len(err.value.attempts) == 1
    assert "raise max_tokens" in str(err.value)


def test_json_schema_contracts_return_plain_values(client: Client, fake: FakeProvider) -> None:
    fake.enqueue("[1, 2, 3]")
    schema = {"type": "array", "items": {"type": "integer"}, "maxItems": 3}
    assert client.generate("x", contract=schema).output == [1, 2, 3]


def test_without_a_contract_text_passes_through(client: Client, fake: FakeProvider) -> None:
    fake.enqueue("hello there")
    result = client.generate([{"role": "user", "content": "hi"}])
    assert result.output == "hello there"
    assert fake.calls[0].output is None


def test_generation_params_reach_the_provider(client: Client, fake: FakeProvider) -> None:
    fake.enqueue("ok")
    client.generate("x", max_tokens=7, temperature=0.5, seed=3, stop=("\n",))
    params = fake.calls[0].params
    assert (params.max_tokens, params.temperature, params.seed, params.stop) == (7, 0.5, 3, ("\n",))


async def test_async_generate_shares_the_request_path(client: Client, fake: FakeProvider) -> None:
    fake.enqueue(BAD_ENUM, GOOD)
    result = await client.agenerate("x", contract=Label)
    assert result.output.label == "spam"
    assert result.repairs == 1


def test_provider_errors_propagate_unchanged(client: Client, fake: FakeProvider) -> None:
    fake.enqueue(ProviderUnavailable(provider="fake", model="m", url="http://x", reason="down"))
    with pytest.raises(ProviderUnavailable):
        client.generate("x", contract=Label)


# -- failures after billed attempts --------------------------------------------------------------


async def _generate(client: Client, mode: str) -> None:
    if mode == "sync":
        client.generate("x", contract=Label)
    else:
        await client.agenerate("x", contract=Label)


def _unavailable() -> ProviderUnavailable:
    return ProviderUnavailable(provider="fake", model="m", url="http://x", reason="timed out")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_an_error_after_a_repair_carries_the_billed_attempts(
    client: Client, fake: FakeProvider, mode: str
) -> None:
    fake.enqueue(Completion(BAD_ENUM, Usage(100, 10), "m", "fake"), _unavailable())
    with pytest.raises(ProviderUnavailable) as err:
        await _generate(client, mode)
    first, failed = err.value.attempts
    assert (first.raw, first.usage) == (BAD_ENUM, Usage(100, 10))
    assert first.cost_usd == pytest.approx(120e-6)  # $1/M input, $2/M output
    assert failed.usage == Usage()
    assert failed.cost_usd == 0.0
    assert failed.finish_reason == "error"
    assert "timed out" in failed.errors[0]


def test_a_context_overflow_on_a_repair_keeps_the_first_attempt(
    client: Client, fake: FakeProvider
) -> None:
    overflow = ContextWindowExceeded(
        provider="fake", model="m", prompt_tokens=4000, max_tokens=512, context_window=4096
    )
    fake.enqueue(Completion(BAD_ENUM, Usage(3900, 30), "m", "fake"), overflow)
    with pytest.raises(ContextWindowExceeded) as err:
        client.generate("x", contract=Label)
    assert [a.usage for a in err.value.attempts] == [Usage(3900, 30), Usage()]


def test_what_a_failed_call_was_billed_is_charged(client: Client, fake: FakeProvider) -> None:
    cut = ProviderError("the stream was cut", provider="fake", model="m")
    cut.usage = Usage(40, 7)
    fake.enqueue(Completion(BAD_ENUM, Usage(100, 10), "m", "fake"), cut)
    with pytest.raises(ProviderError) as err:
        client.generate("x", contract=Label)
    assert [a.usage for a in err.value.attempts] == [Usage(100, 10), Usage(40, 7)]
    assert err.value.attempts[-1].cost_usd == pytest.approx((40 * 1.0 + 7 * 2.0) / 1e6)


def test_a_first_call_that_fails_is_the_only_attempt(client: Client, fake: FakeProvider) -> None:
    fake.enqueue(_unavailable())
    with pytest.raises(ProviderUnavailable) as err:
        client.generate("x", contract=Label)
    (failed,) = err.value.attempts
    assert not failed.valid
    assert failed.usage == Usage()
