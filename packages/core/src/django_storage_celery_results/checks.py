"""Django system checks for the result storage of the current Celery app."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.files.storage import FileSystemStorage

from .adapters import StorageAdapter
from .config import StorageConfig, resolve
from .exceptions import ImproperlyConfigured
from .providers import missing_provider_for, registry

OUR_BACKENDS = ("django-storage", "django_storage_celery_results.backends.StorageBackend")


def uses_storage_backend(conf: Any) -> bool:
    backend = conf.get("result_backend") or ""
    if not isinstance(backend, str):
        return False
    return backend.split("://", 1)[0] in OUR_BACKENDS or backend.startswith(OUR_BACKENDS[1])


def _current_storage() -> tuple[Any, StorageConfig, StorageAdapter] | ImproperlyConfigured | None:
    """The current Celery app's conf, resolved config and adapter; None when
    the app does not use this backend; the error when it cannot be built."""
    from celery import current_app

    conf = current_app.conf
    if not uses_storage_backend(conf):
        return None
    try:
        config = resolve(conf)
        return conf, config, config.build_adapter()
    except ImproperlyConfigured as exc:
        return exc


@checks.register("celery_results")
def check_result_storage(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    current = _current_storage()
    if current is None:
        return []
    if isinstance(current, ImproperlyConfigured):
        return [
            checks.Error(
                str(current), id="django_storage_celery_results.E001", hint="Fix the setting named above."
            )
        ]
    conf, config, adapter = current
    messages = list(web_served_warnings(adapter.storage))
    if not conf.get("result_storage"):
        messages.append(
            checks.Info(
                f"Celery results are stored in the default {adapter.describe()}.",
                hint="Name the folder with CELERY_RESULT_STORAGE = 'filesystem' and "
                "CELERY_RESULT_STORAGE_CONFIG = {'location': ...} so that web and worker "
                "processes surely share it.",
                id="django_storage_celery_results.I001",
            )
        )
    messages.extend(provider_warnings(config.storage_class, config.provider is not None))
    if config.provider is not None and config.provider.checks is not None:
        messages.extend(config.provider.checks(adapter))
    return redacted(messages, adapter)


@checks.register("celery_results", deploy=True)
def check_result_storage_connection(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Talk to the store (``manage.py check --deploy``): reachable, writable, expiring."""
    current = _current_storage()
    if current is None or isinstance(current, ImproperlyConfigured):
        return []  # E001 of check_result_storage reports a broken configuration
    conf, config, adapter = current
    if config.provider is None or config.provider.connectivity is None:
        return []
    return redacted(config.provider.connectivity(adapter, expires_seconds(conf)), adapter)


def redacted(messages: list[checks.CheckMessage], adapter: StorageAdapter) -> list[checks.CheckMessage]:
    """The findings with the storage's credentials hidden (a finding may quote an error)."""
    for message in messages:
        message.msg = adapter.redact(message.msg)
        if message.hint:
            message.hint = adapter.redact(message.hint)
    return messages


def expires_seconds(conf: Any) -> float | None:
    """result_expires in seconds; None when results never expire."""
    expires = conf.get("result_expires")
    if isinstance(expires, datetime.timedelta):
        expires = expires.total_seconds()
    return float(expires) if expires else None


def provider_warnings(storage_class: type, served: bool) -> Iterable[checks.CheckMessage]:
    for name, error in registry().broken.items():
        yield checks.Warning(
            f"The result storage provider {name!r} failed to load: {error}",
            hint="Reinstall or upgrade that package, or uninstall it.",
            id="django_storage_celery_results.W003",
        )
    distribution = None if served else missing_provider_for(storage_class)
    if distribution:
        yield checks.Warning(
            f"{storage_class.__name__} is served by the generic adapter: a read before "
            "every write, no atomic updates, chords by polling.",
            hint=f"pip install {distribution}",
            id="django_storage_celery_results.W002",
        )


def web_served_warnings(storage: Any) -> Iterable[checks.CheckMessage]:
    if not isinstance(storage, FileSystemStorage):
        return
    location = os.path.realpath(storage.location)
    for setting, folder in _web_served_folders():
        if _inside(location, os.path.realpath(folder)):
            yield checks.Warning(
                f"Celery results are stored in {location}, inside {setting} "
                f"({folder}), which the web server may publish.",
                hint="Set CELERY_RESULT_STORAGE_CONFIG = {'location': ...} to a "
                "folder that is not served, or leave it unset for the default.",
                id="django_storage_celery_results.W001",
            )


def _web_served_folders() -> Iterable[tuple[str, str]]:
    for setting in ("MEDIA_ROOT", "STATIC_ROOT"):
        folder = getattr(settings, setting, None)
        if folder:
            yield setting, os.fspath(folder)
    for entry in getattr(settings, "STATICFILES_DIRS", None) or ():
        folder = entry[1] if isinstance(entry, (tuple, list)) else entry
        yield "STATICFILES_DIRS", os.fspath(folder)


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
