"""Logits processors for the sampling fields the local model honours beyond llama.cpp's own
arguments: `logit_bias` (llama-cpp-python's own drops every other processor when given one) and
`logprobs`/`top_logprobs` (its own need the whole context's logits kept, `logits_all`: about
2.4 GB for a 4k context and a 151k vocabulary)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from tether.messages import GenerationParams, TokenLogprob


def sampling_options(params: GenerationParams) -> dict[str, float]:
    """The sampling fields llama.cpp takes as arguments, where set (else its defaults)."""
    options: dict[str, float] = {}
    for name in ("top_p", "presence_penalty", "frequency_penalty"):
        value = getattr(params, name)
        if value is not None:
            options[name] = value
    return options


class LogitBias:
    """Adds each bias to its token's logit (-100 bans a token, 100 all but forces it)."""

    def __init__(self, bias: Sequence[tuple[int, float]], vocab_size: int) -> None:
        self._ids = np.array([t for t, _ in bias if 0 <= t < vocab_size], dtype=np.intp)
        self._values = np.array([b for t, b in bias if 0 <= t < vocab_size], dtype=np.single)

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        scores[self._ids] += self._values
        return scores


class LogprobRecorder:
    """Records each step's log-probabilities (after every earlier processor: a grammar's masked
    tokens have none) and the token sampled from them, which the next step's input reveals."""

    def __init__(self, top: int, piece: Callable[[int], bytes]) -> None:
        self._top = top
        self._piece = piece
        self._prompt: int | None = None
        self._steps: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.double]]] = []
        self._sampled: list[float] = []  # logprob of each step's sampled token, when known
        self._tokens: list[int] = []
        self._last: npt.NDArray[np.double] | None = None

    def __call__(
        self, input_ids: npt.NDArray[np.intc], scores: npt.NDArray[np.single]
    ) -> npt.NDArray[np.single]:
        if self._prompt is None:
            self._prompt = len(input_ids)
        elif self._last is not None:
            self._note(int(input_ids[-1]))
        logp = _log_softmax(scores)
        best = np.argpartition(-logp, self._top)[: self._top] if self._top else np.array([], int)
        best = best[np.argsort(-logp[best])]
        best = best[np.isfinite(logp[best])]  # tokens a grammar ruled out are no alternative
        self._steps.append((best, logp[best]))
        self._last = logp
        return scores

    def _note(self, token: int) -> None:
        assert self._last is not None
        self._tokens.append(token)
        self._sampled.append(float(self._last[token]))

    def entries(
        self, text: str, tokenize: Callable[[bytes], list[int]]
    ) -> tuple[TokenLogprob, ...]:
        """One entry per token of `text` (the completion as returned): tokens that formed a
        stop sequence or came after it are left out; a last token that no later step revealed
        (the output was cut at max_tokens) is found from the rest of the text."""
        target = text.encode("utf-8")
        out: list[TokenLogprob] = []
        used = 0
        for step, token in enumerate(self._tokens):
            piece = self._piece(token)
            if used + len(piece) > len(target):
                break
            out.append(self._entry(step, token, piece, self._sampled[step]))
            used += len(piece)
        rest = target[used:]
        step = len(out)
        if rest and self._last is not None and step < len(self._steps):
            found = tokenize(rest)
            if len(found) == 1:
                token = found[0]
                out.append(self._entry(step, token, rest, float(self._last[token])))
        return tuple(out)

    def _entry(self, step: int, token: int, piece: bytes, logprob: float) -> TokenLogprob:
        ids, values = self._steps[step]
        top = tuple(_token(self._piece(int(i)), float(v)) for i, v in zip(ids, values, strict=True))
        return TokenLogprob(
            token=piece.decode("utf-8", errors="replace"),
            logprob=logprob,
            bytes=tuple(piece),
            top=top,
        )


def _token(piece: bytes, logprob: float) -> TokenLogprob:
    return TokenLogprob(piece.decode("utf-8", errors="replace"), logprob, tuple(piece))


def _log_softmax(scores: npt.NDArray[np.single]) -> npt.NDArray[np.double]:
    values = scores.astype(np.double)
    finite = np.isfinite(values)
    peak = values[finite].max() if finite.any() else 0.0
    shifted = values - peak
    total = np.log(np.exp(shifted[finite]).sum()) if finite.any() else 0.0
    return shifted - total
