"""Errors raised by the backend, catchable as Celery's or Django's."""

from celery.exceptions import ImproperlyConfigured as CeleryImproperlyConfigured
from django.core.exceptions import ImproperlyConfigured as DjangoImproperlyConfigured


class ImproperlyConfigured(CeleryImproperlyConfigured, DjangoImproperlyConfigured):
    """A setting is wrong; the message names the setting and the fix."""


class InvalidResultId(ValueError):
    """A task, group or chord id that cannot be stored safely."""


class VersionMismatch(Exception):
    """A conditional write lost: the object exists (create) or changed (update)."""
