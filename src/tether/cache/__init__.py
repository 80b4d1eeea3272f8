"""Exact and semantic caches, the embedders behind semantic lookup, and their backends."""
