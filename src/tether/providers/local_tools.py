"""Tool calling on the local model.

The tools go into the prompt through the model's chat template where it renders them (Qwen2.5's
does: `<tools>` signatures, calls as `<tool_call>{"name": ..., "arguments": ...}</tool_call>`,
results as `<tool_response>`); a model whose template does not gets the same format spelled out
by tether. Calls are enforced by an llguidance grammar: a required or named call is a JSON
object naming an allowed tool whose `arguments` meet that tool's parameter schema (up to one
per offered tool, one per line, when parallel calls are allowed); `auto` lets the model answer
in text (or in the contract's JSON) instead.

Small models often write a call without the tag: as the bare JSON object, or in a ```json fence.
Under `auto` with no contract these forms are calls too: text may not open with `{` or with a
fence around an object, so an answer shaped like JSON goes through the call grammar (an allowed
tool's name, arguments that meet its schema) and is read back as a call. Such a model also
writes that JSON by reflex, for "Say hello" as for a weather question: an untagged call whose
free-text arguments share no word with the conversation (a city the user never named), or that
repeats a call whose result the conversation already holds, is taken as made up, and the answer
is generated again as text that cannot open with a call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from tether.messages import Message, OutputSpec, Tool, ToolCall, ToolSpec
from tether.tools import new_call_id

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_BLOCK = re.compile(re.escape(OPEN) + r"\s*(.*?)\s*(?:" + re.escape(CLOSE) + r"|\Z)", re.S)
# A call written without the tag: the object alone, or fenced as ```json (or a bare ```).
_FENCED = re.compile(r"```(?:json)?\n(\{.*\})\n```", re.S)
_WORD = re.compile(r"\w+")
# Text that cannot be mistaken for a call: it opens with neither `<` (the call tag), nor
# whitespace (which could lead up to it), nor `{` or a fence around an object (a call written
# without the tag).
_TEXT = r"TEXT: /[^<\s{](.|\n)*/ & ~/```[a-z]*\s*\{(.|\n)*/"
# Compact JSON as elsewhere; keywords llguidance does not implement are left to validation.
_JSON_OPTIONS = {"whitespace_flexible": False, "lenient": True}


def offered(call_tools: ToolSpec | None) -> ToolSpec | None:
    """The tools a call may use, or None when it may not call any."""
    if call_tools is None or call_tools.choice == "none" or not call_tools.callable:
        return None
    return call_tools


def template_tools(spec: ToolSpec) -> list[dict[str, Any]]:
    """Tools in OpenAI's shape, as chat templates read them."""
    return [{"type": "function", "function": _signature(t)} for t in spec.tools]


def _signature(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = dict(tool.parameters)
    return function


def template_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as a tool-aware chat template reads them (arguments as objects: templates
    serialise them themselves)."""
    out: list[dict[str, Any]] = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.tool_calls:
            item["tool_calls"] = [
                {
                    "type": "function",
                    "function": {"name": c.name, "arguments": _parsed(c.arguments)},
                }
                for c in message.tool_calls
            ]
        if message.tool_call_id is not None:
            item["tool_call_id"] = message.tool_call_id
        out.append(item)
    return out


def flattened(messages: Sequence[Message], spec: ToolSpec | None) -> list[Message]:
    """For a template that knows no tools: the tool format spelled out in a system message,
    calls and results written as text turns in that format."""
    out: list[Message] = [tool_instruction(spec)] if spec is not None else []
    for message in messages:
        if message.tool_calls:
            calls = "\n".join(_call_text(c) for c in message.tool_calls)
            out.append(Message("assistant", f"{message.content}\n{calls}".strip()))
        elif message.role == "tool":
            out.append(Message("user", f"<tool_response>\n{message.content}\n</tool_response>"))
        elif message.role == "system" and out and out[-1].role == "system":
            # One system turn: some templates accept no other (Gemma's alternation check).
            out[-1] = Message("system", f"{out[-1].content}\n\n{message.content}")
        else:
            out.append(Message(message.role, message.content))
    return out


def tool_instruction(spec: ToolSpec) -> Message:
    signatures = "\n".join(
        json.dumps({"type": "function", "function": _signature(t)}, ensure_ascii=False)
        for t in spec.tools
    )
    must = ""
    if spec.function is not None:
        must = f"\nYou must call {spec.function}."
    elif spec.required:
        must = "\nYou must call one of these functions."
    return Message(
        "system",
        "You may call one or more functions to assist with the user query.\n"
        f"Function signatures, within <tools></tools>:\n<tools>\n{signatures}\n</tools>\n"
        "For each function call, return a JSON object with the function name and arguments "
        f'within {OPEN}{CLOSE} tags:\n{OPEN}\n{{"name": <function-name>, "arguments": '
        f"<args-json-object>}}\n{CLOSE}{must}",
    )


def _call_text(call: ToolCall) -> str:
    body = json.dumps({"name": call.name, "arguments": _parsed(call.arguments)}, ensure_ascii=False)
    return f"{OPEN}\n{body}\n{CLOSE}"


def _parsed(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


def tool_grammar(
    spec: ToolSpec, answer: OutputSpec | None, tokenize: Callable[[bytes], list[int]]
) -> str:
    """A Lark grammar (llguidance's dialect) for this call's output: tool calls, or (unless a
    call is required) an answer in text or in the contract's JSON."""
    branches = [_call_schema(t) for t in spec.callable]
    body = branches[0] if len(branches) == 1 else {"anyOf": branches}
    calls = _calls_rule(len(branches) if spec.parallel else 1)
    lines = [
        f"calls: {calls}",
        f'call: {_marker(OPEN, tokenize)} "\\n" body "\\n" {_marker(CLOSE, tokenize)}',
        f"body: %json {_json(body)}",
    ]
    if spec.required:
        lines.insert(0, "start: calls")
    elif answer is not None:
        lines[:0] = ["start: answer | calls", f"answer: %json {_json(dict(answer.schema))}"]
    else:
        # A call written without the tag (bare or fenced JSON) must be a call.
        lines[:0] = [
            "start: TEXT | calls | body | fenced",
            'fenced: FENCE body "\\n```"',
            r'FENCE: "```json\n" | "```\n"',
            _TEXT,
        ]
    return "\n".join(lines) + "\n"


def text_grammar() -> str:
    """A Lark grammar for an answer in prose: it cannot open like a call, nor with JSON or a
    code fence (where a model that meant to call a tool goes next)."""
    return "start: TEXT\n" + r"TEXT: /[^<\s{\[`](.|\n)*/" + "\n"


def untagged(text: str) -> bool:
    """Whether the output is not a tagged call (a bare or fenced JSON one, or text)."""
    return not text.lstrip().startswith(OPEN)


def made_up(calls: Sequence[ToolCall], spec: ToolSpec, messages: Sequence[Message]) -> bool:
    """Whether a call repeats one the conversation already made (its result is there), or its
    free-text arguments share no word with the conversation: every string in its arguments
    that is not one of the values its schema lists (`enum`, `const`) must have a word
    (casefolded) that a user, assistant or tool turn used."""
    made = {
        (c.name, json.dumps(_parsed(c.arguments), sort_keys=True))
        for m in messages
        for c in m.tool_calls
    }
    if any((c.name, json.dumps(_parsed(c.arguments), sort_keys=True)) in made for c in calls):
        return True
    said = {
        w.casefold() for m in messages if m.role != "system" for w in _WORD.findall(m.content or "")
    }
    schemas = {t.name: t.parameters for t in spec.callable}
    for call in calls:
        listed = _listed_values(schemas.get(call.name, {}))
        for value in _strings(_parsed(call.arguments)):
            words = {w.casefold() for w in _WORD.findall(value)}
            if value not in listed and words and not words & said:
                return True
    return False


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _listed_values(schema: Any) -> set[str]:
    """Every string a schema names as an `enum` or `const` value, at any depth."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "enum" and isinstance(value, list):
                    found.update(v for v in value if isinstance(v, str))
                elif key == "const" and isinstance(value, str):
                    found.add(value)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _calls_rule(most: int) -> str:
    """One call, or up to `most` one per line. The bound is one call per offered tool: small
    models otherwise repeat a call until max_tokens."""
    rule = "call"
    for _ in range(most - 1):
        rule = f'call ("\\n" {rule})?'
    return rule


def _call_schema(tool: Tool) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"name": {"const": tool.name}, "arguments": dict(tool.parameters)},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }


def _json(schema: dict[str, Any]) -> str:
    return json.dumps({**schema, "x-guidance": _JSON_OPTIONS})


def _marker(text: str, tokenize: Callable[[bytes], list[int]]) -> str:
    """The tag as a grammar symbol: by token id where the vocabulary has it as one token (a
    special token can only be matched that way), else as literal text."""
    ids = tokenize(text.encode("utf-8"))
    return f"<[{ids[0]}]>" if len(ids) == 1 else json.dumps(text)


def read_calls(
    text: str, spec: ToolSpec | None = None, answer: OutputSpec | None = None
) -> tuple[ToolCall, ...]:
    """The calls in a local model's output (none unless it opens with the call tag, or, under
    `auto` with no contract, is a call written as a bare or fenced JSON object). A tagged block
    that is not a {"name", "arguments"} object is kept as it is, to fail validation."""
    if spec is not None and answer is None and not spec.required:
        untagged = _untagged_call(text.strip(), {t.name for t in spec.callable})
        if untagged is not None:
            return (untagged,)
    if not text.lstrip().startswith(OPEN):
        return ()
    calls: list[ToolCall] = []
    for block in _BLOCK.findall(text):
        try:
            value = json.loads(block)
            name, arguments = value["name"], value["arguments"]
        except (ValueError, TypeError, KeyError):
            calls.append(ToolCall(new_call_id(), "", block))
            continue
        calls.append(ToolCall(new_call_id(), str(name), json.dumps(arguments, ensure_ascii=False)))
    return tuple(calls)


def _untagged_call(text: str, names: set[str]) -> ToolCall | None:
    """A call written without the tag, where the text is one and names an offered tool (its
    arguments are left to validation, as a tagged call's are)."""
    fenced = _FENCED.fullmatch(text)
    body = fenced.group(1) if fenced else text
    if not body.startswith("{"):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or set(value) != {"name", "arguments"}:
        return None
    name, arguments = value["name"], value["arguments"]
    if name not in names or not isinstance(arguments, dict):
        return None
    return ToolCall(new_call_id(), name, json.dumps(arguments, ensure_ascii=False))
