"""`tether.Client`: the Python entry point. Every call runs the request pipeline: sync calls
on the runtime's own event loop, async ones on the caller's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, overload

from pydantic import BaseModel

from tether.contracts.contract import Contract
from tether.contracts.preflight import PreflightReport, preflight
from tether.engine import Plan
from tether.messages import Message, ToolSpec, as_messages
from tether.pipeline.context import Ask, Context
from tether.pipeline.planning import ContractLike
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.registry import Registry
from tether.providers.base import Capabilities, Provider
from tether.result import Result
from tether.runtime import Runtime
from tether.settings import PriceSettings, Settings

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Prompt = str | Iterable[Message | Mapping[str, str]]


@dataclass(frozen=True)
class ModelInfo:
    name: str
    provider: str
    upstream_model: str
    capabilities: Capabilities
    price: PriceSettings
    default: bool


class Client:
    """Typed, validated model calls.

    >>> client = Client()                                    # doctest: +SKIP
    >>> result = client.generate("Great food!", contract=Sentiment)  # doctest: +SKIP
    >>> result.output.sentiment                              # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        providers: Mapping[str, Provider] | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        if runtime is None:
            runtime = Runtime(settings if settings is not None else Settings.load(), providers)
        self.runtime = runtime
        self.settings = runtime.settings
        # Where calls come from, as the request log names them ("library", "cli").
        self.entry = "library"

    # -- public API -------------------------------------------------------------------------

    @overload
    def generate(
        self, prompt: Prompt, *, contract: type[M], model: str | None = ..., **params: Any
    ) -> Result[M]: ...
    @overload
    def generate(
        self, prompt: Prompt, *, contract: Contract[T], model: str | None = ..., **params: Any
    ) -> Result[T]: ...
    @overload
    def generate(
        self,
        prompt: Prompt,
        *,
        contract: Mapping[str, Any],
        model: str | None = ...,
        **params: Any,
    ) -> Result[Any]: ...
    @overload
    def generate(
        self, prompt: Prompt, *, contract: None = ..., model: str | None = ..., **params: Any
    ) -> Result[str]: ...
    def generate(
        self,
        prompt: Prompt,
        *,
        contract: ContractLike | None = None,
        model: str | None = None,
        **params: Any,
    ) -> Result[Any]:
        """Call `model` and return an output that meets `contract` (or raise).

        `params`: max_tokens, temperature, seed, stop, max_repairs, tools, timeout_s, metadata,
        cache ("use", "refresh": a fresh answer that replaces the cached one, "off").
        """
        ctx = self.runtime.run_sync(self._raw(prompt, contract, model, params))
        return _result(ctx)

    @overload
    async def agenerate(
        self, prompt: Prompt, *, contract: type[M], model: str | None = ..., **params: Any
    ) -> Result[M]: ...
    @overload
    async def agenerate(
        self, prompt: Prompt, *, contract: Contract[T], model: str | None = ..., **params: Any
    ) -> Result[T]: ...
    @overload
    async def agenerate(
        self,
        prompt: Prompt,
        *,
        contract: Mapping[str, Any],
        model: str | None = ...,
        **params: Any,
    ) -> Result[Any]: ...
    @overload
    async def agenerate(
        self, prompt: Prompt, *, contract: None = ..., model: str | None = ..., **params: Any
    ) -> Result[str]: ...
    async def agenerate(
        self,
        prompt: Prompt,
        *,
        contract: ContractLike | None = None,
        model: str | None = None,
        **params: Any,
    ) -> Result[Any]:
        """The async twin of `generate`."""
        ctx = await self.runtime.pipeline.run(self._raw(prompt, contract, model, params))
        return _result(ctx)

    def run(
        self,
        prompt: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        label: str | None = "production",
        version: str | None = None,
        model: str | None = None,
        **params: Any,
    ) -> Result[Any]:
        """Run a registered prompt: resolve the version (or label), render, call, validate."""
        ask = self._prompt_ask(prompt, inputs, label, version, model, params)
        return _result(self.runtime.run_sync(Context(ask)))

    async def arun(
        self,
        prompt: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        label: str | None = "production",
        version: str | None = None,
        model: str | None = None,
        **params: Any,
    ) -> Result[Any]:
        """The async twin of `run`."""
        ask = self._prompt_ask(prompt, inputs, label, version, model, params)
        return _result(await self.runtime.pipeline.run(Context(ask)))

    def run_compiled(
        self,
        compiled: CompiledPrompt,
        inputs: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        **params: Any,
    ) -> Result[Any]:
        """Run a prompt compiled straight from its spec file (not from the registry)."""
        ask = Ask(
            f"{self.entry}.run",
            compiled=compiled,
            inputs=inputs or {},
            model=model,
            **_ask_options(params),
        )
        return _result(self.runtime.run_sync(Context(ask)))

    def compiled_plan(
        self,
        compiled: CompiledPrompt,
        inputs: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        **params: Any,
    ) -> Plan[Any]:
        """The plan a compiled prompt would run with, without calling anything."""
        spec_params = {k: v for k, v in compiled.spec.params.model_dump().items() if v is not None}
        return self.plan(
            compiled.render(inputs or {}),
            contract=compiled.contract,
            model=model or compiled.spec.model,
            **{**spec_params, **params},
        )

    @property
    def registry(self) -> Registry:
        """The prompt registry in the settings' database, opened (and migrated) on first use."""
        return self.runtime.registry

    def preflight(self, contract: ContractLike, model: str | None = None) -> PreflightReport:
        """Which keywords `model` enforces while decoding, validates after, or cannot honour."""
        _, provider, _ = self.runtime.pool.resolve(model)
        schema, _ = self.contract(contract).enforcement_schema()
        return preflight(schema, provider)

    def models(self) -> list[ModelInfo]:
        infos = []
        for name in self.runtime.pool.names():
            _, provider, price = self.runtime.pool.resolve(name)
            infos.append(
                ModelInfo(
                    name=name,
                    provider=provider.kind,
                    upstream_model=provider.model,
                    capabilities=provider.capabilities,
                    price=price,
                    default=name == self.settings.default_model,
                )
            )
        return infos

    def provider(self, model: str | None = None) -> Provider:
        return self.runtime.pool.resolve(model)[1]

    def contract(self, contract: ContractLike, *, name: str | None = None) -> Contract[Any]:
        """Build (once) the Contract for a Pydantic model, a JSON Schema, or a Contract."""
        return self.runtime.planner.contract(contract, name=name)

    def plan(
        self,
        prompt: Prompt,
        *,
        contract: ContractLike | None = None,
        model: str | None = None,
        max_repairs: int | None = None,
        tools: ToolSpec | None = None,
        **params: Any,
    ) -> Plan[Any]:
        """Resolve model and contract and check them, without calling anything."""
        return self.runtime.planner.plan(
            model,
            as_messages(prompt),
            contract=self.contract(contract) if contract is not None else None,
            tools=tools,
            params=params,
            max_repairs=max_repairs,
        )

    def close(self) -> None:
        self.runtime.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _raw(
        self,
        prompt: Prompt,
        contract: ContractLike | None,
        model: str | None,
        params: dict[str, Any],
    ) -> Context:
        return Context(
            Ask(
                f"{self.entry}.generate",
                messages=as_messages(prompt),
                model=model,
                contract=self.contract(contract) if contract is not None else None,
                **_ask_options(params),
            )
        )

    def _prompt_ask(
        self,
        prompt: str,
        inputs: Mapping[str, Any] | None,
        label: str | None,
        version: str | None,
        model: str | None,
        params: dict[str, Any],
    ) -> Ask:
        return Ask(
            f"{self.entry}.run",
            prompt=prompt,
            label=None if version else label,
            version=version,
            inputs=inputs or {},
            model=model,
            **_ask_options(params),
        )


CACHE_USES = ("use", "refresh", "off")


def _ask_options(params: dict[str, Any]) -> dict[str, Any]:
    """Split a call's keyword arguments into the Ask's own fields and sampling parameters."""
    given = dict(params)
    options: dict[str, Any] = {
        "max_repairs": given.pop("max_repairs", None),
        "tools": given.pop("tools", None),
        "timeout_s": given.pop("timeout_s", None),
        "metadata": given.pop("metadata", None) or {},
        "cache": given.pop("cache", "use"),
    }
    if options["cache"] not in CACHE_USES:
        raise ValueError(f"cache={options['cache']!r}: use one of {', '.join(CACHE_USES)}")
    options["params"] = given
    return options


def _result(ctx: Context) -> Result[Any]:
    """The pipeline's answer (it raised if there was none)."""
    return ctx.result
