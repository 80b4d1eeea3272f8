"""The local model's tool pieces without the model: the grammar a call runs under, how its
output is read back, how tools and tool turns are written for templates that do not know them,
and the tool-call contract itself."""

from __future__ import annotations

import json

import pytest
from llguidance import LLMatcher, LLTokenizer, TokenizerWrapper

from tether.contracts.contract import Contract
from tether.messages import Completion, Message, OutputSpec, Tool, ToolCall, ToolSpec, Usage
from tether.providers.grammar import GrammarError, compile_lark
from tether.providers.local_tools import (
    flattened,
    made_up,
    read_calls,
    text_grammar,
    tool_grammar,
)
from tether.providers.prompt_format import TranscriptFormat
from tether.tools import ToolContracts, new_call_id

WEATHER = Tool(
    "get_weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "Current weather for a city",
)
TIME = Tool("get_time", {"type": "object", "properties": {"zone": {"type": "string"}}})
UNITS = Tool(
    "convert",
    {
        "type": "object",
        "properties": {
            "unit": {"enum": ["celsius", "kelvin"]},
            "n": {"type": "number"},
            "note": {"type": "string"},
        },
    },
)


def _bytes(_: bytes) -> list[int]:
    return [1, 2, 3]  # the tags are several tokens: written as literal text


def _accepts(grammar: str, text: str) -> bool:
    """Whether the grammar admits exactly `text`, fed byte by byte (no model needed)."""
    matcher = LLMatcher(_BYTES, compile_lark(grammar), log_level=0)
    for byte in text.encode():
        if not matcher.consume_token(byte):
            return False
    return matcher.is_accepting()


class _ByteVocab:
    """A vocabulary of the 256 bytes plus an end token."""

    eos_token_id = 256
    bos_token_id = None
    tokens = [bytes([b]) for b in range(256)] + [b"\xff[eos]"]

    def __call__(self, data: bytes) -> list[int]:
        return list(data)


_BYTES = LLTokenizer(TokenizerWrapper(_ByteVocab()))


def test_required_grammar_admits_only_valid_calls() -> None:
    grammar = tool_grammar(ToolSpec((WEATHER, TIME), "required"), None, _bytes)
    good = '<tool_call>\n{"name":"get_weather","arguments":{"city":"Oslo"}}\n</tool_call>'
    assert _accepts(grammar, good)
    two = good + '\n<tool_call>\n{"name":"get_time","arguments":{"zone":"CET"}}\n</tool_call>'
    assert _accepts(grammar, two)
    assert not _accepts(grammar, two + "\n" + good)  # at most one call per offered tool
    assert not _accepts(grammar, "It is sunny.")
    assert not _accepts(grammar, good.replace("get_weather", "get_wether"))
    assert not _accepts(grammar, good.replace('"city"', '"town"'))


def test_named_and_single_call_grammars() -> None:
    named = tool_grammar(ToolSpec((WEATHER, TIME), "required", "get_time"), None, _bytes)
    call = '<tool_call>\n{"name":"get_time","arguments":{"zone":"CET"}}\n</tool_call>'
    assert _accepts(named, call)
    assert not _accepts(named, call.replace("get_time", "get_weather"))
    single = tool_grammar(ToolSpec((WEATHER, TIME), "auto", parallel=False), None, _bytes)
    assert _accepts(single, call)
    assert not _accepts(single, call + "\n" + call)


def test_auto_grammar_admits_text_or_calls() -> None:
    grammar = tool_grammar(ToolSpec((WEATHER,)), None, _bytes)
    assert _accepts(grammar, "It is sunny in Oslo.")
    assert _accepts(
        grammar, '<tool_call>\n{"name":"get_weather","arguments":{"city":"Oslo"}}\n</tool_call>'
    )
    # Text cannot open with the tag: a call is always read as one, with checked arguments.
    assert not _accepts(grammar, '<tool_call>\n{"name":"get_weather","arguments":{}}\n</tool_call>')


def test_auto_grammar_takes_a_call_written_without_the_tag() -> None:
    grammar = tool_grammar(ToolSpec((WEATHER, TIME)), None, _bytes)
    bare = '{"name":"get_weather","arguments":{"city":"Paris"}}'
    assert _accepts(grammar, bare)
    assert _accepts(grammar, f"```json\n{bare}\n```")
    assert _accepts(grammar, f"```\n{bare}\n```")
    # JSON-shaped text must be a call: to an offered tool, with arguments that meet its schema.
    assert not _accepts(grammar, '{"name":"get_wether","arguments":{"city":"Paris"}}')
    assert not _accepts(grammar, '{"name":"get_weather","arguments":{}}')
    assert not _accepts(grammar, '{"answer":"sunny"}')
    assert not _accepts(grammar, '```json\n{"answer":"sunny"}\n```')
    # Other text, code fences and braces later on are still text.
    assert _accepts(grammar, "Hello! How can I help?")
    assert _accepts(grammar, "```python\nprint(1)\n```")
    assert _accepts(grammar, "Use {city} as the key.")


def test_untagged_calls_are_read_back_under_auto_only() -> None:
    spec = ToolSpec((WEATHER, TIME))
    bare = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    for text in (bare, f"```json\n{bare}\n```", f" ```\n{bare}\n```\n"):
        (made,) = read_calls(text, spec)
        assert (made.name, json.loads(made.arguments)) == ("get_weather", {"city": "Paris"})
        assert made.id.startswith("call_")
    assert read_calls(bare) == ()  # no tools offered: text
    assert read_calls(bare.replace("get_weather", "get_mail"), spec) == ()  # not offered
    assert read_calls('{"name": "get_weather"}', spec) == ()
    assert read_calls('{"name": "get_weather", "arguments": {}} and more', spec) == ()
    answer = OutputSpec("reply", {"type": "object"}, strict=False)
    assert read_calls(bare, spec, answer) == ()  # a contract's JSON answer is the answer


def test_a_call_the_conversation_never_mentions_is_made_up() -> None:
    spec = ToolSpec((WEATHER, UNITS))
    asked = [Message("system", "Use London by default."), Message("user", "Weather in Paris?")]
    paris = ToolCall("c", "get_weather", '{"city": "Paris"}')
    london = ToolCall("c", "get_weather", '{"city": "London"}')
    assert not made_up([paris], spec, asked)
    assert made_up([london], spec, asked)  # a system turn is no grounds
    assert made_up([paris, london], spec, asked)
    assert not made_up([ToolCall("c", "get_weather", '{"city": "paris, France"}')], spec, asked)
    # Values the schema lists, and arguments with no words, need no grounds.
    assert not made_up([ToolCall("c", "convert", '{"unit": "kelvin", "n": 3}')], spec, asked)
    assert made_up([ToolCall("c", "convert", '{"unit": "kelvin", "note": "Oslo"}')], spec, asked)
    assert not made_up([ToolCall("c", "get_time", "{}")], ToolSpec((TIME,)), asked)


def test_a_call_the_conversation_already_made_is_a_repeat() -> None:
    spec = ToolSpec((WEATHER,))
    history = [
        Message("user", "Weather in Paris?"),
        Message("assistant", "", (ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)),
        Message("tool", "21 C", tool_call_id="call_1"),
    ]
    assert made_up([ToolCall("c", "get_weather", '{"city": "Paris"}')], spec, history)
    assert not made_up([ToolCall("c", "get_weather", '{"city": "paris"}')], spec, history)


def test_text_grammar_cannot_open_like_a_call() -> None:
    grammar = text_grammar()
    assert _accepts(grammar, "Hello! How can I help?\n```json\n{}\n```")
    for opening in ("{", "[1]", "```json\n{}", "<tool_call>", " Hi"):
        assert not _accepts(grammar, opening)


def test_auto_grammar_with_a_contract_answers_in_its_json() -> None:
    answer = OutputSpec(
        "reply",
        {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
        strict=False,
    )
    grammar = tool_grammar(ToolSpec((WEATHER,)), answer, _bytes)
    assert _accepts(grammar, '{"ok":true}')
    assert not _accepts(grammar, "plain text")


def test_special_token_tags_are_matched_by_id() -> None:
    grammar = tool_grammar(ToolSpec((WEATHER,), "required"), None, lambda b: [151657])
    assert "<[151657]>" in grammar
    compile_lark(grammar)


def test_a_grammar_that_does_not_compile_raises() -> None:
    with pytest.raises(GrammarError):
        compile_lark("start: missing_rule\n")


def test_calls_are_read_back_with_fresh_ids() -> None:
    text = (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"zone": "CET"}}\n</tool_call>'
    )
    first, second = read_calls(text)
    assert (first.name, json.loads(first.arguments)) == ("get_weather", {"city": "Oslo"})
    assert (second.name, json.loads(second.arguments)) == ("get_time", {"zone": "CET"})
    assert first.id.startswith("call_")
    assert first.id != second.id
    assert read_calls("It is sunny.") == ()
    (cut,) = read_calls('<tool_call>\n{"name": "get_wea')  # cut off at max_tokens
    assert (cut.name, cut.arguments) == ("", '{"name": "get_wea')


def test_tool_turns_are_flattened_for_templates_without_tools() -> None:
    history = [
        Message("system", "Be brief."),
        Message("user", "Oslo?"),
        Message("assistant", "", (ToolCall("call_1", "get_weather", '{"city":"Oslo"}'),)),
        Message("tool", "3 C", tool_call_id="call_1"),
    ]
    out = flattened(history, ToolSpec((WEATHER,), "required"))
    assert [m.role for m in out] == ["system", "user", "assistant", "user"]
    assert "<tools>" in out[0].content
    assert out[0].content.endswith("Be brief.")
    assert "You must call one of these functions." in out[0].content
    assert out[2].content == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    )
    assert out[3].content == "<tool_response>\n3 C\n</tool_response>"
    rendered = TranscriptFormat().render(history, ToolSpec((WEATHER,)))
    assert "<tool_response>" in rendered.text
    assert "get_weather" in rendered.text


def test_tool_contracts_judge_calls() -> None:
    contracts = ToolContracts(
        ToolSpec((WEATHER, TIME), "auto", parallel=False),
        {t.name: Contract.from_schema(t.parameters, name=t.name) for t in (WEATHER, TIME)},
    )

    def judged(*calls: ToolCall, text: str = "") -> tuple[str, ...]:
        completion = Completion(text, Usage(), "m", "p", "tool_calls", calls)
        return contracts.check(completion)[1]

    ok = ToolCall(new_call_id(), "get_weather", '{"city": "Oslo"}')
    assert judged(ok) == ()
    assert judged(ok, ok) == ("2 tool calls were made; make exactly one",)
    (error,) = judged(ToolCall("c", "get_weather", '{"city": 3}'))
    assert error.startswith("tool call 0 (get_weather) arguments")
    (error,) = judged(ToolCall("c", "get_weather", "{not json"))
    assert "tool call 0 (get_weather) arguments" in error
    assert judged(ToolCall("c", "nope", "{}")) == (
        "tool call 0 names 'nope'; allowed: get_time, get_weather",
    )
    assert not contracts.applies(Completion("text", Usage(), "m", "p"))
