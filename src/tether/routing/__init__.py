"""Routing: policies that pick the model for a request, fallbacks, circuit breakers.

build_policy(name, settings)   the policy of `[routers.NAME]` (see routing/config.py)
RouteInput / RouteDecision     what a policy reads and what it says (routing/base.py)
"""

from tether.routing.base import RouteDecision, RouteInput, RoutePolicy
from tether.routing.config import ROUTER_PREFIX, RouterSettings, router_name
from tether.routing.registry import POLICY_KINDS, build_policy

__all__ = [
    "POLICY_KINDS",
    "ROUTER_PREFIX",
    "RouteDecision",
    "RouteInput",
    "RoutePolicy",
    "RouterSettings",
    "build_policy",
    "router_name",
]
