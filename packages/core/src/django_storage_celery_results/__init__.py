"""Celery task results kept in any Django Storage."""

from .__about__ import __version__

__all__ = ["__version__"]
