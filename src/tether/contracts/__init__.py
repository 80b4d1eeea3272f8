"""Output contracts: schemas, validation, pre-flight checks and bounded repair."""

from tether.contracts.contract import Contract
from tether.contracts.preflight import Enforcement, KeywordSupport, PreflightReport, preflight
from tether.contracts.validator import Check, SchemaValidator

__all__ = [
    "Check",
    "Contract",
    "Enforcement",
    "KeywordSupport",
    "PreflightReport",
    "SchemaValidator",
    "preflight",
]
