"""The registry honours `prompt_model_modules`: a configured package's models load, and any
other module is refused without being imported."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tether.errors import SpecError
from tether.prompts.loader import parse_spec
from tether.prompts.registry import Registry
from tether.store.engine import open_database

SPEC = """\
name: typed
version: 1.0.0
model: fake
inputs: {type: object, properties: {text: {type: string}}, required: [text]}
output: {model: "acme_models_for_tests:Out"}
messages:
  - {role: user, content: "{{ text }}"}
"""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[None]:
    folder = tmp_path / "acme_models_for_tests"
    folder.mkdir()
    (folder / "__init__.py").write_text(
        "from pydantic import BaseModel\n\nclass Out(BaseModel):\n    label: str\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("acme_models_for_tests", None)


def test_registry_uses_the_configured_modules(tmp_path: Path, package: None) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'r.db'}")
    allowed = ("acme_models_for_tests",)
    loaded = parse_spec(SPEC, source_name="typed.yaml", model_modules=allowed)
    configured = Registry(engine, model_modules=allowed)
    configured.push(loaded.spec, source=loaded.source, author="t", message="")
    found = configured.get("typed", version="1.0.0")
    assert configured.compiled(found).contract is not None
    sys.modules.pop("acme_models_for_tests", None)
    with pytest.raises(SpecError, match="prompt_model_modules"):
        Registry(engine).compiled(found)  # the default list does not name that package
    assert "acme_models_for_tests" not in sys.modules
