"""`tether.Client`: the Python entry point. Sync and async calls share one request path."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, TypeVar, overload

import orjson
from pydantic import BaseModel

from tether.contracts.contract import Contract
from tether.contracts.guard import check_schema
from tether.contracts.preflight import PreflightReport, preflight
from tether.engine import Plan, output_spec, run_async, run_sync
from tether.errors import InvalidRequest
from tether.messages import GenerationParams, Message, OutputSpec, ToolSpec, as_messages
from tether.prompts.compiled import CompiledPrompt
from tether.prompts.registry import PromptVersion, Registry
from tether.providers.base import Capabilities, Provider
from tether.providers.pool import ProviderPool
from tether.providers.request_check import check_honoured
from tether.result import Result
from tether.settings import PriceSettings, Settings
from tether.store.engine import open_database
from tether.tools import ToolContracts

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

CONTRACT_CACHE_SIZE = 1024

Prompt = str | Iterable[Message | Mapping[str, str]]
ContractLike = type[BaseModel] | Contract[Any] | Mapping[str, Any]


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
        self, settings: Settings | None = None, *, providers: Mapping[str, Provider] | None = None
    ) -> None:
        self.settings = settings if settings is not None else Settings.load()
        self._pool = ProviderPool(self.settings, providers)
        self._contracts: OrderedDict[object, Contract[Any]] = OrderedDict()
        self._specs: dict[tuple[Contract[Any], int], tuple[OutputSpec, PreflightReport]] = {}
        self._lock = threading.Lock()
        self._registry: Registry | None = None

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

        `params`: max_tokens, temperature, seed, stop, max_repairs.
        """
        return run_sync(self.plan(prompt, contract=contract, model=model, **params))

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
        return await run_async(self.plan(prompt, contract=contract, model=model, **params))

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
        plan, found = self.prompt_plan(
            prompt, inputs, label=label, version=version, model=model, **params
        )
        return replace(run_sync(plan), prompt=found.name, prompt_version=found.version)

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
        plan, found = self.prompt_plan(
            prompt, inputs, label=label, version=version, model=model, **params
        )
        return replace(await run_async(plan), prompt=found.name, prompt_version=found.version)

    def prompt_plan(
        self,
        prompt: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        label: str | None = "production",
        version: str | None = None,
        model: str | None = None,
        **params: Any,
    ) -> tuple[Plan[Any], PromptVersion]:
        """Resolve and render a registered prompt into a plan, without calling anything."""
        found = self.registry.get(prompt, version=version, label=None if version else label)
        compiled = self.registry.compiled(found)
        return self.compiled_plan(compiled, inputs, model=model, **params), found

    def compiled_plan(
        self,
        compiled: CompiledPrompt,
        inputs: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        **params: Any,
    ) -> Plan[Any]:
        """A plan for a compiled prompt (registered or straight from a spec file)."""
        spec_params = {k: v for k, v in compiled.spec.params.model_dump().items() if v is not None}
        merged = {**spec_params, **params}
        if "stop" in merged:
            merged["stop"] = tuple(merged["stop"])
        return self.plan(
            compiled.render(inputs or {}),
            contract=compiled.contract,
            model=model or compiled.spec.model,
            **merged,
        )

    @property
    def registry(self) -> Registry:
        """The prompt registry in the settings' database, opened (and migrated) on first use."""
        with self._lock:
            if self._registry is None:
                self._registry = Registry(
                    open_database(self.settings.database),
                    model_modules=self.settings.prompt_model_modules,
                )
            return self._registry

    def preflight(self, contract: ContractLike, model: str | None = None) -> PreflightReport:
        """Which keywords `model` enforces while decoding, validates after, or cannot honour."""
        _, provider, _ = self._pool.resolve(model)
        schema, _ = self.contract(contract).enforcement_schema()
        return preflight(schema, provider)

    def models(self) -> list[ModelInfo]:
        infos = []
        for name in self._pool.names():
            _, provider, price = self._pool.resolve(name)
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
        return self._pool.resolve(model)[1]

    def contract(self, contract: ContractLike, *, name: str | None = None) -> Contract[Any]:
        """Build (once) the Contract for a Pydantic model, a JSON Schema, or a Contract.

        Contracts are kept in a bounded LRU: schemas sent by gateway callers cannot grow it
        without limit."""
        if isinstance(contract, Contract):
            return contract
        if not isinstance(contract, type):
            check_schema(contract, source="schema")  # before hashing: orjson refuses deep nesting
        key: object = (
            contract
            if isinstance(contract, type)
            else (name, hashlib.sha256(orjson.dumps(dict(contract))).digest())
        )
        with self._lock:
            found = self._contracts.get(key)
            if found is not None:
                self._contracts.move_to_end(key)
                return found
        found = (
            Contract.from_model(contract)
            if isinstance(contract, type)
            else Contract.from_schema(contract, name=name)
        )
        with self._lock:
            self._contracts[key] = found
            while len(self._contracts) > CONTRACT_CACHE_SIZE:
                _, evicted = self._contracts.popitem(last=False)
                self._specs = {k: v for k, v in self._specs.items() if k[0] is not evicted}
        return found

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
        """Resolve model and contract and check them, without calling anything.

        `tools`: functions the model may call; each call's arguments are a contract on that
        tool's parameter schema."""
        _, provider, price = self._pool.resolve(model)
        check_honoured(
            provider.capabilities, params, tools, provider=provider.kind, model=provider.model
        )
        resolved = self.contract(contract) if contract is not None else None
        spec = self._output_spec(resolved, provider)[0] if resolved is not None else None
        tool_contracts = (
            self._tool_contracts(tools, provider) if tools is not None and tools.tools else None
        )
        return Plan(
            provider=provider,
            messages=as_messages(prompt),
            params=GenerationParams(**params),
            contract=resolved,
            output=spec,
            price=price,
            max_repairs=self.settings.max_repairs if max_repairs is None else max_repairs,
            tools=tool_contracts,
        )

    def _tool_contracts(self, tools: ToolSpec, provider: Provider) -> ToolContracts:
        """A contract per tool's parameters, each checked against how the provider enforces
        them (the local model compiles them into its grammar)."""
        for index, tool in enumerate(tools.tools):
            problems = provider.schema_problems(tool.parameters)
            if problems:
                where = f"tools[{index}].function.parameters"
                raise InvalidRequest(
                    f"{where}: " + "; ".join(f"{p.keyword}: {p.reason}" for p in problems),
                    param=where,
                    fix="simplify the tool's parameter schema, or use another model",
                )
        contracts = {t.name: self.contract(t.parameters, name=t.name) for t in tools.tools}
        return ToolContracts(tools, contracts)

    def close(self) -> None:
        self._pool.close()
        if self._registry is not None:
            self._registry.engine.dispose()

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

    def _output_spec(
        self, contract: Contract[Any], provider: Provider
    ) -> tuple[OutputSpec, PreflightReport]:
        key = (contract, id(provider))  # contracts hash by identity; providers live in the pool
        with self._lock:
            cached = self._specs.get(key)
        if cached is None:
            cached = output_spec(contract, provider)
            with self._lock:
                self._specs[key] = cached
        return cached
