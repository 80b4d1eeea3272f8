"""Turning a resolved request into a plan for one model: the model's provider and price, the
contract checked against what that provider can enforce, the tools' argument contracts.

Contracts are built once per schema and kept in a bounded LRU (schemas sent by gateway callers
cannot grow it without limit); a contract's enforcement spec is built once per provider.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import orjson
from pydantic import BaseModel

from tether.contracts.contract import Contract
from tether.contracts.guard import check_schema
from tether.contracts.preflight import PreflightReport
from tether.engine import Plan, output_spec
from tether.errors import InvalidRequest
from tether.messages import GenerationParams, Message, OutputSpec, ToolSpec
from tether.providers.base import Provider
from tether.providers.pool import ProviderPool
from tether.providers.request_check import check_honoured
from tether.tools import ToolContracts

CONTRACT_CACHE_SIZE = 1024

ContractLike = type[BaseModel] | Contract[Any] | Mapping[str, Any]


class Planner:
    def __init__(self, pool: ProviderPool, max_repairs: int) -> None:
        self.pool = pool
        self._max_repairs = max_repairs
        self._contracts: OrderedDict[object, Contract[Any]] = OrderedDict()
        self._specs: dict[tuple[Contract[Any], int], tuple[OutputSpec, PreflightReport]] = {}
        self._lock = threading.Lock()

    def contract(self, contract: ContractLike, *, name: str | None = None) -> Contract[Any]:
        """Build (once) the Contract for a Pydantic model, a JSON Schema, or a Contract."""
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
        model: str | None,
        messages: tuple[Message, ...],
        *,
        contract: Contract[Any] | None = None,
        tools: ToolSpec | None = None,
        params: Mapping[str, Any] | None = None,
        max_repairs: int | None = None,
    ) -> Plan[Any]:
        """Resolve `model` and check the request against it, without calling anything."""
        name, provider, price = self.pool.resolve(model)
        given = dict(params or {})
        check_honoured(
            provider.capabilities, given, tools, provider=provider.kind, model=provider.model
        )
        if "stop" in given and given["stop"] is not None:
            given["stop"] = tuple(given["stop"])
        spec = self.output_spec(contract, provider)[0] if contract is not None else None
        tool_contracts = (
            self._tool_contracts(tools, provider) if tools is not None and tools.tools else None
        )
        return Plan(
            provider=provider,
            messages=messages,
            params=GenerationParams(**given),
            contract=contract,
            output=spec,
            price=price,
            max_repairs=self._max_repairs if max_repairs is None else max_repairs,
            tools=tool_contracts,
            model=name,
        )

    def output_spec(
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
