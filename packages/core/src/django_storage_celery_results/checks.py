"""Django system checks for the result storage of the current Celery app."""

from __future__ import annotations

import datetime
import importlib.util
import os
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.files.storage import FileSystemStorage

from .adapters import StorageAdapter
from .catalogue import Catalogue, CheckId
from .config import StorageConfig, resolve
from .exceptions import ImproperlyConfigured
from .providers import missing_provider_for, registry

OUR_BACKENDS = ("django-storage", "django_storage_celery_results.backends.StorageBackend")

#: The ids of core's own checks (the providers' are in their packages).
CHECKS = Catalogue(
    "django_storage_celery_results",
    CheckId("E001", "the result storage settings cannot be resolved (the message names the setting)"),
    CheckId(
        "W001", "results are stored in a folder the web server may publish (MEDIA_ROOT, STATIC_ROOT, ...)"
    ),
    CheckId("W002", "a storage that a provider package would serve better is served by the generic adapter"),
    CheckId("W003", "an installed result storage provider failed to load"),
    CheckId(
        "W004", "no Celery app uses this backend, so nothing was checked (the message says what to import)"
    ),
    CheckId("I001", "no result storage is configured: results go to the default folder"),
)


def uses_storage_backend(conf: Any) -> bool:
    backend = conf.get("result_backend") or ""
    if not isinstance(backend, str):
        return False
    return backend.split("://", 1)[0] in OUR_BACKENDS or backend.startswith(OUR_BACKENDS[1])


def project_app() -> Any:
    """The current Celery app, or None when there is only Celery's fallback app.

    Celery builds that fallback (``Celery("default", fixups=[])``) when an app
    is asked for before any was created: the project's Celery module was
    never imported.
    """
    from celery import current_app

    app = current_app._get_current_object()
    return None if app.main == "default" and not app.fixups else app


def _current_storage() -> tuple[Any, StorageConfig, StorageAdapter] | ImproperlyConfigured | None:
    """The project app's conf, resolved config and adapter; None when there
    is no app or it does not use this backend; the error when it cannot be built."""
    app = project_app()
    if app is None or not uses_storage_backend(app.conf):
        return None
    conf = app.conf
    try:
        config = resolve(conf)
        return conf, config, config.build_adapter()
    except ImproperlyConfigured as exc:
        return exc


@checks.register("celery_results")
def check_result_storage(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    current = _current_storage()
    if current is None:
        return list(no_app_warnings())
    if isinstance(current, ImproperlyConfigured):
        return [CHECKS.message("E001", current.message, current.hint)]
    return configuration_findings(*current)


def configuration_findings(
    conf: Any, config: StorageConfig, adapter: StorageAdapter
) -> list[checks.CheckMessage]:
    """The findings of one configured storage from its settings alone (no request)."""
    messages = list(web_served_warnings(adapter.storage))
    if not conf.get("result_storage"):
        messages.append(
            CHECKS.message(
                "I001",
                f"Celery results are stored in the default {adapter.describe()}.",
                "Name the folder with CELERY_RESULT_STORAGE = 'filesystem' and "
                "CELERY_RESULT_STORAGE_CONFIG = {'location': ...} so that web and worker "
                "processes surely share it.",
            )
        )
    messages.extend(provider_warnings(config.storage_class, config.provider is not None))
    if config.provider is not None and config.provider.checks is not None:
        messages.extend(config.provider.checks(adapter, config))
    return redacted(messages, adapter)


@checks.register("celery_results", deploy=True)
def check_result_storage_connection(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Talk to the store (``manage.py check --deploy``): reachable, writable, expiring."""
    current = _current_storage()
    if current is None or isinstance(current, ImproperlyConfigured):
        return []  # E001 of check_result_storage reports a broken configuration
    return connectivity_findings(*current)


def connectivity_findings(
    conf: Any, config: StorageConfig, adapter: StorageAdapter
) -> list[checks.CheckMessage]:
    """What the provider's probe finds by talking to the store; [] without a probe."""
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


def no_app_warnings() -> Iterable[checks.CheckMessage]:
    """W004: this app is installed but no Celery app uses the backend, so nothing was checked.

    Nothing is said of an app that uses another result backend: that is the
    project's explicit choice, which Celery itself validates.
    """
    app = project_app()
    unchecked = "so the result storage settings were not checked (nor, with --deploy, the storage)"
    if app is None:
        yield CHECKS.message(
            "W004", f"No Celery app was found when Django started, {unchecked}.", _import_hint()
        )
    elif not app.conf.get("result_backend"):
        yield CHECKS.message(
            "W004",
            f"The Celery app {app.main!r} has no result backend, {unchecked}; its results are not stored.",
            _backend_hint(),
        )


def _import_hint() -> str:
    """What to import where, in the layout of Celery's "First steps with Django"."""
    module = getattr(settings, "SETTINGS_MODULE", None) or ""
    package = module.split(".", 1)[0] if "." in module else ""
    if not package:
        return (
            "Import your Celery app in your project package's __init__.py "
            '(from .celery import app as celery_app), as Celery\'s "First steps with Django" shows.'
        )
    where = f"add 'from .celery import app as celery_app' to {package}/__init__.py"
    if _module_exists(f"{package}.celery"):
        return f"{package}/celery.py is never imported: {where}."
    return (
        f"Create the Celery app in {package}/celery.py and {where}, as Celery's "
        '"First steps with Django" shows.'
    )


def _module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _backend_hint() -> str:
    if getattr(settings, "CELERY_RESULT_BACKEND", None):
        return (
            "CELERY_RESULT_BACKEND is set but the app does not read it: "
            "app.config_from_object('django.conf:settings', namespace='CELERY')."
        )
    return "Set CELERY_RESULT_BACKEND = 'django-storage'."


def expires_seconds(conf: Any) -> float | None:
    """result_expires in seconds; None when results never expire."""
    expires = conf.get("result_expires")
    if isinstance(expires, datetime.timedelta):
        expires = expires.total_seconds()
    return float(expires) if expires else None


def provider_warnings(storage_class: type, served: bool) -> Iterable[checks.CheckMessage]:
    for name, error in registry().broken.items():
        yield CHECKS.message(
            "W003",
            f"The result storage provider {name!r} failed to load: {error}",
            "Reinstall or upgrade that package, or uninstall it.",
        )
    distribution = None if served else missing_provider_for(storage_class)
    if distribution:
        yield CHECKS.message(
            "W002",
            f"{storage_class.__name__} is served by the generic adapter: a read before "
            "every write, no atomic updates, chords by polling.",
            f"pip install {distribution}",
        )


def web_served_warnings(storage: Any) -> Iterable[checks.CheckMessage]:
    if not isinstance(storage, FileSystemStorage):
        return
    location = os.path.realpath(storage.location)
    for setting, folder in _web_served_folders():
        if _inside(location, os.path.realpath(folder)):
            yield CHECKS.message(
                "W001",
                f"Celery results are stored in {location}, inside {setting} "
                f"({folder}), which the web server may publish.",
                "Set CELERY_RESULT_STORAGE_CONFIG = {'location': ...} to a "
                "folder that is not served, or leave it unset for the default.",
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
