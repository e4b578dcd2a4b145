"""The arena: an evaluation server for trustworthy-ML challenges."""

from trustlab.server.app import create_app
from trustlab.server.settings import Settings

__all__ = ["Settings", "create_app"]
