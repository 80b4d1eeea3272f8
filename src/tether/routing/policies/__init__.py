"""Routing policies, one module per kind; `tether.routing.registry` maps kinds to them."""
