"""`tether route train|eval|explain`, and training rows from a prompt's test cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tether import Client, FakeProvider
from tether.cli import app
from tether.messages import ProviderCall
from tether.prompts.loader import load_spec
from tether.routing.learned.dataset import Outcomes, read_outcomes
from tether.routing.learned.from_prompt import outcomes_from_tests
from tether.routing.learned.model import TrainedRouter
from tether.settings import ModelSettings, Settings

runner = CliRunner()


@pytest.fixture
def dataset(gsm8k: Outcomes, tmp_path: Path) -> Path:
    path = tmp_path / "outcomes.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(
                {
                    "text": r.text,
                    "cheap_correct": r.cheap_correct,
                    "premium_correct": r.premium_correct,
                }
            )
            for r in gsm8k.rows
        )
    )
    return path


def test_train_eval_explain_from_a_dataset(dataset: Path, tmp_path: Path) -> None:
    router = tmp_path / "router.npz"
    trained = runner.invoke(
        app,
        ["route", "train", "--data", str(dataset), "--out", str(router), "--embedder", "fake",
         "--target-premium-share", "0.3", "--folds", "3"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert router.is_file()
    assert "held-out APGR" in trained.output
    evaluated = runner.invoke(app, ["route", "eval", str(router)])
    assert evaluated.exit_code == 0, evaluated.output
    assert "APGR" in evaluated.output
    assert "50% of the quality gap" in evaluated.output
    again = runner.invoke(
        app, ["route", "eval", str(router), "--data", str(dataset), "--embedder", "fake"]
    )
    assert again.exit_code == 0, again.output
    explained = runner.invoke(
        app,
        ["route", "explain", "Tom has 3 apples and buys 5 more. How many?", "--file",
         str(router), "--embedder", "fake", "--neighbours", "3"],
    )  # fmt: skip
    assert explained.exit_code == 0, explained.output
    assert "p(cheap passes)=" in explained.output
    assert "nearest training requests" in explained.output


def test_bad_dataset_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "cheap_correct": true, "premium_correct": true}\n{"text": "b"}\n')
    result = runner.invoke(
        app, ["route", "train", "--data", str(bad), "--out", str(tmp_path / "r.npz")]
    )
    assert result.exit_code == 1
    assert "line 2" in result.output
    assert "missing cheap_correct, premium_correct" in result.output
    assert not (tmp_path / "r.npz").exists()


def test_csv_dataset_and_bad_flags(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,cheap_correct,premium_correct\nhello,maybe,1\n")
    with pytest.raises(Exception, match=r"line 2\.cheap_correct.*'maybe' is not true or false"):
        read_outcomes(path)
    result = runner.invoke(app, ["route", "train", "--out", str(tmp_path / "r.npz")])
    assert result.exit_code == 1
    assert "exactly one of --data, --prompt and --from-log" in result.output


SPEC = """
name: arithmetic
version: 1.0.0
model: small
inputs:
  type: object
  properties: {question: {type: string}}
  required: [question]
output:
  schema:
    type: object
    properties: {answer: {type: string}}
    required: [answer]
messages:
  - role: system
    content: Answer the question.
  - role: user
    content: "Question: {{ question }}"
tests:
"""


def test_training_rows_from_a_prompts_tests(tmp_path: Path) -> None:
    cases = [("easy" if i % 2 else "hard") + f" sum number {i}" for i in range(12)]
    spec = tmp_path / "arithmetic.yaml"
    spec.write_text(
        SPEC
        + "".join(
            f"  - name: case {i}\n    inputs: {{question: {q!r}}}\n"
            "    assert: [{type: equals, field: answer, value: right}]\n"
            for i, q in enumerate(cases)
        )
    )

    def small(call: ProviderCall) -> str:  # the cheap model gets only the easy ones right
        easy = "easy" in call.messages[-1].content
        return json.dumps({"answer": "right" if easy else "wrong"})

    settings = Settings(
        cache_dir=tmp_path / "cache",
        models={"small": ModelSettings(provider="fake"), "large": ModelSettings(provider="fake")},
    )
    providers = {
        "small": FakeProvider(respond=small),
        "large": FakeProvider(respond=lambda _: json.dumps({"answer": "right"})),
    }
    with Client(settings, providers=providers) as client:
        loaded = load_spec(spec)
        outcomes = outcomes_from_tests(client, loaded, cheap="small", premium="large")
    assert len(outcomes) == 12
    assert outcomes.texts[0] == "Question: hard sum number 0"  # what the route stage reads
    assert outcomes.cheap == [i % 2 == 1 for i in range(12)]
    assert all(outcomes.premium)


def test_unknown_prompt_is_named(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["route", "train", "--prompt", "no-such-prompt", "--dir", str(tmp_path), "--cheap", "a",
         "--premium", "b", "--out", str(tmp_path / "r.npz")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "no-such-prompt" in result.output


def test_router_file_without_training_texts(dataset: Path, tmp_path: Path) -> None:
    router = tmp_path / "private.npz"
    trained = runner.invoke(
        app,
        ["route", "train", "--data", str(dataset), "--out", str(router), "--embedder", "fake",
         "--folds", "3", "--no-keep-texts"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    assert TrainedRouter.load(router).texts == ()
    with np.load(router, allow_pickle=False) as stored:
        assert stored["text_bytes"].size == 0  # no training text in the file at all
    explained = runner.invoke(
        app, ["route", "explain", "How many ducks?", "--file", str(router), "--embedder", "fake"]
    )
    assert explained.exit_code == 0, explained.output
    assert "nearest training requests" in explained.output


@pytest.mark.parametrize("embedding", ["minilm-static", "none"])
def test_the_embedding_is_chosen_at_training_and_kept_in_the_file(
    dataset: Path, tmp_path: Path, embedding: str
) -> None:
    router = tmp_path / "router.npz"
    trained = runner.invoke(
        app,
        ["route", "train", "--data", str(dataset), "--out", str(router), "--embedding",
         embedding, "--max-tokens", "32", "--folds", "3"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    loaded = TrainedRouter.load(router)
    assert (loaded.embedding, loaded.max_tokens) == (embedding, 32)
    # eval and explain read requests the way the file says, whatever --embedder names
    again = runner.invoke(app, ["route", "eval", str(router), "--data", str(dataset)])
    assert again.exit_code == 0, again.output
    explained = runner.invoke(app, ["route", "explain", "How many apples?", "--file", str(router)])
    assert explained.exit_code == 0, explained.output


def test_an_unknown_embedding_is_named(dataset: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["route", "train", "--data", str(dataset), "--out", str(tmp_path / "r.npz"),
         "--embedding", "bert"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "--embedding" in result.output
    assert "minilm-static" in result.output
