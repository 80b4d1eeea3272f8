"""Schema profiles: what each server accepts and enforces, and the rewrite that fits a
contract schema to it (see vendors.py for the sources)."""

from tether.providers.schema_profiles.plan import (
    any_object,
    default_engine,
    profile_for,
    wire_plan,
)
from tether.providers.schema_profiles.profile import Limits, SchemaProfile, StrictRules, WirePlan
from tether.providers.schema_profiles.requests import forced_tool, response_format, restored
from tether.providers.schema_profiles.restore import restore
from tether.providers.schema_profiles.vendors import PROFILES

__all__ = [
    "PROFILES",
    "Limits",
    "SchemaProfile",
    "StrictRules",
    "WirePlan",
    "any_object",
    "default_engine",
    "forced_tool",
    "profile_for",
    "response_format",
    "restore",
    "restored",
    "wire_plan",
]
