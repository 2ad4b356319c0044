"""HTTP adapter."""

from riskengine.api.app import create_app

__all__ = ["create_app"]
