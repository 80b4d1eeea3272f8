"""Routing: policies that pick the model for a request, fallbacks, circuit breakers."""
