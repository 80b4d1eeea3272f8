"""The gateway: an OpenAI-compatible FastAPI app with keys, a durable request log and a
dashboard."""

from tether.server.app import create_app

__all__ = ["create_app"]
