"""Settings for the response cache (read by tether.settings) and a prompt's own `cache:` block.

```toml
[cache]
mode = "semantic"          # off | exact | semantic: what every call gets unless its prompt says
backend = "local"          # local (in process, persisted to a SQLite file) | redis (shared)
ttl_s = 86400
max_entries = 100000
[cache.semantic]
delta = 0.02               # the false-hit rate to stay under (served answers that are wrong)
guards = ["negation", "polarity", "numbers", "dates", "units"]
verify_rate = 0.0          # share of semantic hits re-checked by calling the model anyway
```

```yaml
cache:                     # in a prompt spec: overrides [cache] for this prompt
  mode: semantic
  ttl_s: 3600
  delta: 0.01
  compare: [question]      # the variables compared by meaning; the others must match exactly
  shared: false            # true: one cache for every key (the answers hold no tenant's data)
  tags: [faq]
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tether.cache.semantic.guards import DEFAULT_GUARDS, GUARDS

CacheMode = Literal["off", "exact", "semantic"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _known_guards(names: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [name for name in names if name not in GUARDS]
    if unknown:
        raise ValueError(f"unknown guard(s) {unknown} (known: {', '.join(GUARDS)})")
    return names


class SemanticSettings(_Strict):
    delta: float = Field(
        default=0.02,
        gt=0,
        lt=0.5,
        description="target false-hit rate: the share of semantic hits whose answer is wrong",
    )
    embedder: str = Field(
        default="minilm",
        description='"minilm" (bundled, local) or the name of a configured embedding model',
    )
    guards: tuple[str, ...] = Field(
        default=DEFAULT_GUARDS,
        description="checks that veto a neighbour; also: entities",
    )
    neighbours: int = Field(default=4, ge=1, le=64, description="candidates looked at per lookup")
    verify_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of semantic hits re-checked by calling the model anyway (graded "
        "samples for calibration; the caller gets the model's answer)",
    )
    scorer: Path | None = Field(
        default=None,
        description="a scorer file from `tether cache fit-scorer`; default: the bundled one "
        "(fitted on STS-B for the bundled embedder)",
    )
    entailment_model: str | None = Field(
        default=None,
        description="a model asked, before a semantic hit is served, whether both requests "
        "ask for the same answer (one call per would-be hit; a no vetoes it)",
    )
    min_grades: int = Field(
        default=100,
        ge=10,
        description="graded samples a prompt needs before its own calibration replaces the "
        "bundled one",
    )

    _guards = field_validator("guards")(_known_guards)


class CacheSettings(_Strict):
    mode: CacheMode = Field(default="off", description="off | exact | semantic")
    backend: Literal["local", "redis"] = "local"
    path: Path | None = Field(
        default=None, description="the local backend's SQLite file; default: data_dir"
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="for backend = redis")
    key_prefix: str = Field(default="tether", min_length=1)
    ttl_s: float = Field(default=86400.0, gt=0, description="how long an answer is served")
    max_entries: int = Field(default=100_000, gt=0, description="least recently used go first")
    semantic: SemanticSettings = SemanticSettings()


class PromptCache(_Strict):
    """A prompt's own cache policy (its spec's `cache:` block)."""

    mode: CacheMode | None = None
    ttl_s: float | None = Field(default=None, gt=0)
    delta: float | None = Field(default=None, gt=0, lt=0.5)
    compare: tuple[str, ...] | None = Field(
        default=None, description="input variables compared semantically (default: all)"
    )
    shared: bool = Field(default=False, description="one cache for every key")
    tags: tuple[str, ...] = ()
