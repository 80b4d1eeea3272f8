"""client.run: label → version → render → call → validated, typed result tagged with the prompt."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tether import Client, FakeProvider, Settings
from tether.errors import PromptNotFound, RenderError
from tether.prompts.spec import PromptSpec

from .specs import spec


@pytest.fixture
def prompt_client(settings: Settings, fake: FakeProvider, tmp_path: Path) -> Client:
    local = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'r.db'}"})
    client = Client(local, providers={"fake": fake})
    for s in (spec(params={"max_tokens": 20}), spec("1.1.0", description="v2")):
        client.registry.push(s, source="", author="a", message="")
    client.registry.set_label("ticket", "production", "1.0.0", actor="a", reason="")
    return client


def test_run_resolves_the_label(prompt_client: Client, fake: FakeProvider) -> None:
    fake.enqueue('{"queue": "tech", "urgent": true}')
    result = prompt_client.run("ticket", {"text": "the app crashes"})
    assert result.output == {"queue": "tech", "urgent": True}
    assert (result.prompt, result.prompt_version) == ("ticket", "1.0.0")
    call = fake.calls[0]
    assert call.messages[-1].content == "the app crashes"
    assert call.params.max_tokens == 20  # from the spec's params
    assert call.output is not None


def test_run_by_version_and_overrides(prompt_client: Client, fake: FakeProvider) -> None:
    fake.enqueue('{"queue": "sales", "urgent": false}')
    result = prompt_client.run("ticket", {"text": "pricing?"}, version="1.1.0", max_tokens=5)
    assert result.prompt_version == "1.1.0"
    assert fake.calls[0].params.max_tokens == 5


def test_run_repairs_like_any_call(prompt_client: Client, fake: FakeProvider) -> None:
    fake.enqueue('{"queue": "moon", "urgent": true}', '{"queue": "tech", "urgent": true}')
    assert prompt_client.run("ticket", {"text": "x"}).repairs == 1


async def test_arun(prompt_client: Client, fake: FakeProvider) -> None:
    fake.enqueue('{"queue": "tech", "urgent": true}')
    result = await prompt_client.arun("ticket", {"text": "x"}, label="production")
    assert result.prompt == "ticket"


def test_errors(prompt_client: Client) -> None:
    with pytest.raises(PromptNotFound):
        prompt_client.run("ticket", {"text": "x"}, label="staging")
    with pytest.raises(RenderError, match="inputs schema"):
        prompt_client.run("ticket", {"txt": "x"})


def test_pydantic_output_models(
    settings: Settings, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Output models are imported only from the `prompts` package by default.
    package = tmp_path / "models" / "prompts"
    package.mkdir(parents=True)
    (package / "judging.py").write_text(
        "from pydantic import BaseModel\n\n\n"
        "class Verdict(BaseModel):\n    verdict: str\n    reason: str\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "models"))
    monkeypatch.delitem(sys.modules, "prompts", raising=False)
    local = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'r.db'}"})
    with Client(local, providers={"fake": fake}) as client:
        s = PromptSpec.model_validate(
            {
                "name": "judge",
                "version": "1.0.0",
                "output": {"model": "prompts.judging:Verdict"},
                "messages": [{"role": "user", "content": "grade it"}],
            }
        )
        client.registry.push(s, source="", author="a", message="")
        fake.enqueue('{"verdict": "pass", "reason": "fine"}')
        result = client.run("judge", label=None)
        assert result.output.verdict == "pass"
    sys.modules.pop("prompts.judging", None)
