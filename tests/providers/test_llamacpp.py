"""The real local model (the default, Qwen2.5-Coder-0.5B-Instruct, via llama.cpp) under
llguidance-constrained decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tether import (
    Client,
    ContextWindowExceeded,
    ContractViolation,
    ModelFileError,
    ModelSettings,
    Settings,
)
from tether.providers.gguf_file import DEFAULT_MODEL_SHA256, default_model_file

pytestmark = pytest.mark.local_model


def _yelp(data_dir: Path, count: int) -> list[tuple[str, str]]:
    text = (data_dir / "sentiment" / "yelp_labelled.tsv").read_text(encoding="utf-8")
    rows: list[tuple[str, str]] = []
    for line in text.split("\n")[1:]:  # "\n" only: a review may hold "\x85"; line 1 is a header
        if line.strip():
            review, _, label = line.rpartition("\t")
            rows.append((review, label))
    # evenly spaced: a spread over the file rather than its first rows
    return rows[:: max(1, len(rows) // count)][:count]


def test_thirty_yelp_reviews_are_all_schema_valid(
    local_client: Client, feedback_classifier: Any, data_dir: Path
) -> None:
    reviews = _yelp(data_dir, 30)
    independent = jsonschema.Draft202012Validator(feedback_classifier.Feedback.model_json_schema())
    assert len(reviews) == 30
    valid = correct = 0
    for text, label in reviews:
        try:
            result = feedback_classifier.classify(local_client, text)
        except ContractViolation as violation:  # pragma: no cover - reported by the assert
            pytest.fail(f"no valid output for {text!r}: {violation}")
        # Re-checked by another validator than the engine's (jsonschema, not jsonschema-rs).
        assert independent.is_valid(result.output.model_dump(mode="json"))
        valid += 1
        correct += (result.output.sentiment == "positive") == (label == "1")
        assert result.usage.output_tokens > 0
        assert result.provider == "llamacpp"
    assert valid == 30
    print(f"30/30 schema-valid, {correct}/30 sentiment correct")
    assert correct >= 20  # a 0.5B model few-shot: far above chance, far from perfect


def test_zero_shot_structured_call_follows_the_schema(local_client: Client) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    result = local_client.generate("Paris is the capital of France.", contract=schema)
    assert set(result.output) == {"city", "country"}
    assert len(result.output["city"]) <= 40


async def test_async_calls_run_the_local_model(local_client: Client) -> None:
    result = await local_client.agenerate(
        "Reply with a number.", contract={"type": "integer", "minimum": 0, "maximum": 9}
    )
    assert 0 <= result.output <= 9


def test_plain_text_generation(local_client: Client) -> None:
    result = local_client.generate("The capital of France is", max_tokens=8)
    assert isinstance(result.output, str)
    assert result.usage.output_tokens <= 8


def _settings(tmp_path: Path, **model: Any) -> Settings:
    return Settings(
        cache_dir=tmp_path,
        models={"m": ModelSettings(provider="llamacpp", **model)},
        default_model="m",
    )


def test_prompt_longer_than_the_context_window(tmp_path: Path) -> None:
    path = default_model_file(Path.home() / ".cache" / "tether").path
    with (
        Client(_settings(tmp_path, path=path, context_window=256)) as client,
        pytest.raises(ContextWindowExceeded) as err,
    ):
        client.generate("word " * 400, max_tokens=32)
    assert err.value.context_window == 256
    assert err.value.prompt_tokens > 256
    assert "context_window" in err.value.fix


def test_corrupt_model_file_is_refused_before_loading(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 1024)
    with (
        Client(_settings(tmp_path, path=bogus, sha256=DEFAULT_MODEL_SHA256)) as client,
        pytest.raises(ModelFileError, match="sha256 mismatch") as err,
    ):
        client.generate("x")
    assert err.value.path == str(bogus)
    assert "delete" in err.value.fix


def test_missing_model_file(tmp_path: Path) -> None:
    with (
        Client(_settings(tmp_path, path=tmp_path / "absent.gguf")) as client,
        pytest.raises(ModelFileError, match="not found"),
    ):
        client.generate("x")


def test_unloadable_file_without_a_checksum(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"this is not a gguf file")
    with (
        Client(_settings(tmp_path, path=junk)) as client,
        pytest.raises(ModelFileError, match="cannot load"),
    ):
        client.generate("x")


def test_default_model_is_assembled_into_the_cache_and_verified(tmp_path: Path) -> None:
    file = default_model_file(tmp_path)
    assert file.path.parent == tmp_path / "models"
    assert file.path.stat().st_size == file.size == 491_400_064
    assert file.sha256 == DEFAULT_MODEL_SHA256
    assert not list((tmp_path / "models").glob("*.part"))
