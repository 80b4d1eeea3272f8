"""The fields of an OpenAI embeddings request, checked, and vectors encoded for the answer.

`encoding_format` matters in practice: the official `openai` SDK asks for `base64` unless told
otherwise (and decodes it as little-endian float32), so a gateway that only answers with floats
breaks it. Token arrays (`input` as lists of integers) are what LangChain's `OpenAIEmbeddings`
sends by default, tokenized with tiktoken; they cannot be decoded without that tokenizer, so
they are refused with the setting that makes LangChain send text.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from tether.errors import InvalidRequest

EncodingFormat = Literal["float", "base64"]
_FIX = "correct the request body (OpenAI embeddings format)"


def embedding_inputs(body: Mapping[str, Any]) -> list[str]:
    texts = body.get("input")
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts):
        return texts
    if _is_tokens(texts):
        raise InvalidRequest(
            "`input` holds token ids; this gateway embeds text only (its tokenizer is not "
            "tiktoken's)",
            param="input",
            fix="send strings; with LangChain's OpenAIEmbeddings set "
            "check_embedding_ctx_length=False",
        )
    raise InvalidRequest(
        "`input` must be a string or a non-empty array of strings", param="input", fix=_FIX
    )


def _is_tokens(value: object) -> bool:
    """A token array (list of ints) or a list of them; bools are not tokens."""
    if not isinstance(value, list) or not value:
        return False
    return all((isinstance(v, int) and not isinstance(v, bool)) or _is_tokens(v) for v in value)


def encoding_format(body: Mapping[str, Any]) -> EncodingFormat:
    value = body.get("encoding_format", "float")
    if value is None or value == "float":
        return "float"
    if value == "base64":
        return "base64"
    raise InvalidRequest(
        '`encoding_format` must be "float" or "base64"', param="encoding_format", fix=_FIX
    )


def requested_dimensions(body: Mapping[str, Any]) -> int | None:
    value = body.get("dimensions")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequest(
            "`dimensions` must be a positive integer", param="dimensions", fix=_FIX
        )
    return value


def encode(vector: Sequence[float], fmt: EncodingFormat) -> list[float] | str:
    if fmt == "float":
        return list(vector)
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
