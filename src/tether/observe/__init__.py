"""Observability: the request log first; metrics, drift and alerts read from it."""
