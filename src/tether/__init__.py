"""tether: a contract around every LLM call."""

from tether.client import Client, ModelInfo
from tether.contracts import Contract, Enforcement, PreflightReport, SchemaValidator
from tether.errors import (
    ConfigError,
    ContextWindowExceeded,
    ContractError,
    ContractViolation,
    MissingApiKey,
    ModelFileError,
    ModelNotFound,
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    SchemaError,
    TetherError,
    UnsupportedSchema,
)
from tether.messages import Completion, GenerationParams, Message, OutputSpec, ProviderCall, Usage
from tether.providers.base import Capabilities, Provider, SchemaSupport
from tether.providers.testing import FakeProvider
from tether.result import Attempt, Result
from tether.settings import ModelSettings, PriceSettings, Settings

__all__ = [
    "Attempt",
    "Capabilities",
    "Client",
    "Completion",
    "ConfigError",
    "ContextWindowExceeded",
    "Contract",
    "ContractError",
    "ContractViolation",
    "Enforcement",
    "FakeProvider",
    "GenerationParams",
    "Message",
    "MissingApiKey",
    "ModelFileError",
    "ModelInfo",
    "ModelNotFound",
    "ModelSettings",
    "OutputSpec",
    "PreflightReport",
    "PriceSettings",
    "Provider",
    "ProviderCall",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnavailable",
    "Result",
    "SchemaError",
    "SchemaSupport",
    "SchemaValidator",
    "Settings",
    "TetherError",
    "UnsupportedSchema",
    "Usage",
]
