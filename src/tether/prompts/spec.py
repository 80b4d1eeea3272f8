"""A prompt spec: one YAML file per prompt version, diffable in git.

```yaml
name: feedback-sentiment
version: 1.1.0
description: Sentiment, confidence and themes of one customer comment.
model: local                      # a model name from the settings (optional)
params: {max_tokens: 64}
inputs:                           # JSON Schema of the input variables
  type: object
  properties: {comment: {type: string, minLength: 1}}
  required: [comment]
output:                           # the output contract: `schema:` or `model: module:Class`
  schema: {...}
messages:                         # Jinja2 templates, rendered in a sandbox
  - {role: system, content: Classify the comment.}
  - {role: user, content: "{{ comment }}"}
examples:                         # few-shot examples as data
  - inputs: {comment: Great app!}
    output: {sentiment: positive, confidence: 0.9, themes: [usability]}
cache: {mode: semantic, delta: 0.02}  # optional: see tether.cache.config.PromptCache
tests:                            # test cases: inputs plus assertions
  - name: angry customer
    inputs: {comment: Refund me now.}
    assert:
      - {type: equals, field: sentiment, value: negative}
```
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tether.cache.config import PromptCache
from tether.evals.assertions import Assertion
from tether.messages import Role
from tether.prompts.semver import SemVer


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Params(_Spec):
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    stop: list[str] | None = None
    max_repairs: int | None = Field(default=None, ge=0, le=10)


class OutputContract(_Spec):
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    model: str | None = Field(default=None, description="module:Class of a Pydantic model")

    @model_validator(mode="after")
    def _exactly_one(self) -> OutputContract:
        if (self.schema_ is None) == (self.model is None):
            raise ValueError("give exactly one of `schema` (JSON Schema) or `model` (module:Class)")
        return self


class TemplateMessage(_Spec):
    role: Role
    content: str


class Example(_Spec):
    inputs: dict[str, Any]
    output: Any


class TestCase(_Spec):
    __test__ = False  # not a pytest class

    name: str = Field(min_length=1)
    inputs: dict[str, Any]
    asserts: list[Assertion] = Field(default_factory=list, alias="assert")


class PromptSpec(_Spec):
    name: str = Field(min_length=1, max_length=512)
    version: str
    description: str = ""
    model: str | None = None
    params: Params = Params()
    inputs: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})
    output: OutputContract | None = None
    messages: list[TemplateMessage] = Field(min_length=1)
    examples: list[Example] = Field(default_factory=list)
    tests: list[TestCase] = Field(default_factory=list)
    cache: PromptCache | None = None

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        SemVer.parse(value)
        return value

    @property
    def semver(self) -> SemVer:
        return SemVer.parse(self.version)

    def canonical(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=False)
        if data.get("cache") is None:
            data.pop("cache", None)  # specs without a cache policy hash as they always did
        return data

    def content_hash(self) -> str:
        """sha256 of everything but the version: equal content, equal hash. Key order counts:
        it is the order in which a model writes an object's properties."""
        content = {k: v for k, v in self.canonical().items() if k != "version"}
        text = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
