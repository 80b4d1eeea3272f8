"""The README's runnable examples, run on the local model and checked against what it shows.

Convention: a fenced ```python or ```sh block on the line after `<!-- readme-test -->` is run;
other blocks are not. In a runnable block, a line ending in `# -> EXPECTED` states its result:

- python: the line is an expression; EXPECTED is a Python expression, evaluated in the block's
  namespace when that line runs. The two are compared by structure: same types, equal strings,
  integers, booleans and labels, the same keys and lengths; a float only has to be a float
  (a model's confidence is not a fixed number). Pydantic models compare by class and fields.
- sh: the line is a command, run by bash in a scratch directory with this project's `tether` on
  PATH; EXPECTED is its standard output: compared by structure (as above) when it parses as
  JSON, else exactly (whitespace at the ends aside).

Every other line runs as written and must succeed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- readme-test -->"
_EXPECTED = re.compile(r"^(?P<indent>\s*)(?P<code>\S.*?)\s*# -> (?P<expected>.+?)\s*$")


@dataclass(frozen=True)
class Block:
    language: Literal["python", "sh"]
    line: int  # of the opening fence, 1-based
    lines: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.language}@README.md:{self.line}"


def runnable_blocks(text: str) -> list[Block]:
    lines = text.split("\n")
    blocks: list[Block] = []
    for index, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        fence = lines[index + 1].strip() if index + 1 < len(lines) else ""
        language = fence.removeprefix("```")
        if not fence.startswith("```") or language not in ("python", "sh"):
            raise ValueError(f"README.md:{index + 1}: {MARKER} must precede a python or sh block")
        end = lines.index("```", index + 2)
        blocks.append(Block(language, index + 2, tuple(lines[index + 2 : end])))  # type: ignore[arg-type]
    return blocks


def same(actual: Any, expected: Any) -> bool:
    """Equal in structure and labels; floats only by type."""
    if isinstance(expected, BaseModel):
        return type(actual) is type(expected) and same(actual.model_dump(), expected.model_dump())
    if isinstance(expected, float):
        return isinstance(actual, float)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(same(actual[k], expected[k]) for k in expected)
        )
    if isinstance(expected, list | tuple):
        return (
            type(actual) is type(expected)
            and len(actual) == len(expected)
            and all(same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return type(actual) is type(expected) and bool(actual == expected)


def checked_source(block: Block) -> str:
    """The block with each `expr  # -> expected` line turned into a call of `__check__`."""
    out: list[str] = []
    for line in block.lines:
        match = _EXPECTED.match(line)
        if match is None:
            out.append(line)
            continue
        code, expected = match["code"], match["expected"]
        out.append(f"{match['indent']}__check__({code}, {expected!r}, {code!r})")
    return "\n".join(out)


def run_python(block: Block) -> list[str]:
    namespace: dict[str, Any] = {"__name__": "readme"}
    checked: list[str] = []

    def check(actual: Any, expected_source: str, code: str) -> None:
        expected = eval(expected_source, namespace)
        assert same(actual, expected), f"README.md:{block.line}: {code} gave {actual!r}"
        checked.append(code)

    namespace["__check__"] = check
    # Line numbers in tracebacks match the README's (the fence line is blank padding).
    source = "\n" * block.line + checked_source(block)
    # dont_inherit: the block runs without this module's `from __future__ import annotations`.
    exec(compile(source, str(README), "exec", dont_inherit=True), namespace)
    return checked


def run_shell(block: Block, cwd: Path, env: dict[str, str]) -> list[str]:
    checked: list[str] = []
    for offset, line in enumerate(block.lines, start=block.line + 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _EXPECTED.match(line)
        command = match["code"] if match else line
        # A guard against a hung command, not a timing assertion.
        done = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"README.md:{offset}: {command}\n{done.stderr}"
        if match is None:
            continue
        expected, stdout = match["expected"], done.stdout.strip()
        try:
            parsed = json.loads(expected)
        except ValueError:
            assert stdout == expected, f"README.md:{offset}: {command} printed {stdout!r}"
        else:
            assert same(json.loads(stdout), parsed), f"README.md:{offset}: printed {stdout!r}"
        checked.append(command)
    return checked


BLOCKS = runnable_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_marks_examples_of_both_kinds() -> None:
    assert {block.language for block in BLOCKS} == {"python", "sh"}
    assert all(any(_EXPECTED.match(line) for line in block.lines) for block in BLOCKS)


def test_the_comparison_checks_labels_and_structure_not_floats() -> None:
    class Sentiment(BaseModel):
        sentiment: str
        confidence: float

    negative = Sentiment(sentiment="negative", confidence=0.9)
    assert same(Sentiment(sentiment="negative", confidence=0.1), negative)
    assert not same(Sentiment(sentiment="positive", confidence=0.9), negative)
    assert not same({"sentiment": "negative", "confidence": 0.9}, negative)
    assert same({"city": "Lyon", "n": 1.5}, {"city": "Lyon", "n": 2.0})
    assert not same({"city": "Paris"}, {"city": "Lyon"})
    assert not same({"city": "Lyon", "extra": 1}, {"city": "Lyon"})
    assert not same(1, True)
    assert not same([1, 2], [1])


def test_a_marker_without_a_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="must precede"):
        runnable_blocks(f"{MARKER}\n\nsome text\n")
    (block,) = runnable_blocks(f"text\n{MARKER}\n```sh\necho hi  # -> hi\n```\n")
    assert (block.language, block.line, block.lines) == ("sh", 3, ("echo hi  # -> hi",))


@pytest.mark.local_model
@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_readme_example(block: Block, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The README's `tether.Client()` reads ./tether.toml and TETHER_* variables: give it none,
    # and a scratch data directory; the model cache is the user's (assembled once).
    for name in list(os.environ):
        if name.startswith("TETHER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TETHER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    if block.language == "python":
        checked = run_python(block)
    else:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        checked = run_shell(block, tmp_path, env)
    assert checked, f"README.md:{block.line}: no `# ->` line was reached"


def _toml_blocks(text: str) -> list[tuple[int, str]]:
    lines = text.split("\n")
    found = []
    for index, line in enumerate(lines):
        if line.strip() == "```toml":
            end = lines.index("```", index + 1)
            found.append((index + 1, "\n".join(lines[index + 1 : end])))
    return found


@pytest.mark.parametrize(
    ("line", "block"), _toml_blocks(README.read_text()), ids=lambda v: str(v)[:12]
)
def test_every_settings_example_in_the_readme_is_valid(
    line: int, block: str, tmp_path: Path
) -> None:
    from tether import Settings

    path = tmp_path / "tether.toml"
    path.write_text(block)
    Settings.load(path, environ={})  # raises ConfigError naming the field
