"""Every setting of the backend, read in one place.

``BackendSettings.from_conf`` reads the Celery app's configuration once;
``resolve`` turns the storage settings into a storage class, its options
and an adapter.

``result_storage`` (``CELERY_RESULT_STORAGE`` in Django settings) may be:

* empty: a FileSystemStorage in a private folder (never the media folder);
* a dotted class path, with ``result_storage_config`` as constructor kwargs;
* a ``STORAGES`` alias, whose OPTIONS ``result_storage_config`` overrides;
* a provider preset name such as ``"filesystem"``.

The options may hold credentials: they are never logged or put in messages.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage
from django.utils.module_loading import import_string
from kombu.compression import encoders as compression_encoders
from kombu.compression import get_encoder

from .adapters import DEFAULT_TIMEOUT, StorageAdapter
from .exceptions import ImproperlyConfigured
from .generic import GenericAdapter
from .providers import KNOWN_PRESETS, PRESET_ALIASES, Provider, registry
from .redact import redact
from .suggestions import closest, import_storage_class

STORAGE_SETTING = "CELERY_RESULT_STORAGE (result_storage)"
CONFIG_SETTING = "CELERY_RESULT_STORAGE_CONFIG (result_storage_config)"
ADAPTER_SETTING = "CELERY_RESULT_STORAGE_ADAPTER (result_storage_adapter)"
SAFE_TO_RETRY_SETTING = "CELERY_RESULT_SAFE_TO_RETRY (result_safe_to_retry)"
CONCURRENCY_SETTING = "result_storage_concurrency"
DEFAULT_CONCURRENCY = 16
MAX_SIZE_SETTING = "CELERY_RESULT_STORAGE_MAX_SIZE (result_storage_max_size)"
#: The largest stored result, in bytes: far above any result a task should
#: return (big outputs belong in files, their names in the result), far
#: below what would exhaust a worker's or a web process's memory.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
DEFAULT_FOLDER = "celery-results"
TIMEOUT_SETTING = "CELERY_RESULT_STORAGE_TIMEOUT (result_storage_timeout)"


@dataclasses.dataclass(frozen=True)
class StorageConfig:
    """A resolved configuration; builds fresh storages (one per process)."""

    source: str
    storage_class: type[Storage]
    options: Mapping[str, Any] = dataclasses.field(repr=False)  # may hold credentials
    provider: Provider | None

    def build_storage(self) -> Storage:
        try:
            return self.storage_class(**self.options)
        except ImproperlyConfigured:
            raise
        except Exception as exc:
            raise ImproperlyConfigured(
                f"{self.source}: {self.class_path} could not be created from "
                f"{CONFIG_SETTING} keys {sorted(self.options)}: "
                f"{type(exc).__name__}: {redact(str(exc), self.options)}",
                hint=f"Correct that value in {CONFIG_SETTING} or in the Django setting the storage "
                "reads it from.",
            ) from None

    def build_adapter(self) -> StorageAdapter:
        storage = self.build_storage()
        adapter = self.provider.adapter(storage) if self.provider is not None else GenericAdapter(storage)
        adapter.redact.learn(self.options)  # secrets the storage may keep under other names
        return adapter

    @property
    def class_path(self) -> str:
        return f"{self.storage_class.__module__}.{self.storage_class.__qualname__}"


@dataclasses.dataclass(frozen=True)
class BackendSettings:
    """The backend's settings, checked: a bad value fails here, naming its setting."""

    storage: StorageConfig
    compression: str | None
    safe_to_retry: tuple[type[BaseException], ...]
    concurrency: int
    #: Results larger than this many bytes (as stored) are neither written nor read.
    max_size: int = DEFAULT_MAX_SIZE
    #: (connect, read) seconds of each request, where the adapter sets it (GCS).
    timeout: tuple[float, float] = DEFAULT_TIMEOUT

    @classmethod
    def from_conf(cls, conf: Mapping[str, Any]) -> BackendSettings:
        return cls(
            storage=resolve(conf),
            compression=_compression(conf.get("result_compression")),
            safe_to_retry=_exception_classes(conf.get("result_safe_to_retry")),
            concurrency=_positive_int(
                conf.get("result_storage_concurrency"), DEFAULT_CONCURRENCY, CONCURRENCY_SETTING
            ),
            max_size=_positive_int(conf.get("result_storage_max_size"), DEFAULT_MAX_SIZE, MAX_SIZE_SETTING),
            timeout=_timeout(conf.get("result_storage_timeout")),
        )


def _compression(method: str | None) -> str | None:
    if not method:
        return None
    try:
        get_encoder(method)
    except KeyError:
        raise ImproperlyConfigured(
            f"result_compression = {method!r} is not a known compression; "
            f"choose one of {', '.join(sorted(compression_encoders()))}"
        ) from None
    return method


def _positive_int(value: Any, default: int, setting: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"{setting} must be a positive integer, not {value!r}")
    return value


def _timeout(value: Any) -> tuple[float, float]:
    """result_storage_timeout: seconds for both, or a (connect, read) pair."""
    if value is None:
        return DEFAULT_TIMEOUT
    pair = value if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(_positive_number(part) for part in pair):
        raise ImproperlyConfigured(
            f"{TIMEOUT_SETTING} must be a number of seconds or a (connect, read) pair of them, not {value!r}"
        )
    return float(pair[0]), float(pair[1])


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _exception_classes(value: Any) -> tuple[type[BaseException], ...]:
    """result_safe_to_retry: exception classes or dotted paths to them."""
    if not value:
        return ()
    items = [value] if isinstance(value, (str, type)) else list(value)
    classes = []
    for item in items:
        cls = item
        if isinstance(item, str):
            try:
                cls = import_string(item)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f"{SAFE_TO_RETRY_SETTING}: cannot import {item!r}: {exc}"
                ) from None
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise ImproperlyConfigured(
                f"{SAFE_TO_RETRY_SETTING} must list exception classes or their dotted paths; "
                f"{item!r} is not one"
            )
        classes.append(cls)
    return tuple(classes)


def default_location() -> str:
    base = getattr(settings, "BASE_DIR", None) if settings.configured else None
    return os.path.join(os.fspath(base or os.getcwd()), DEFAULT_FOLDER)


def resolve(conf: Mapping[str, Any]) -> StorageConfig:
    config = _resolve_storage(conf)
    choice = conf.get("result_storage_adapter") or "auto"
    if choice == "generic":
        return dataclasses.replace(config, provider=None)
    if choice != "auto":
        raise ImproperlyConfigured(
            f"{ADAPTER_SETTING} = {choice!r}: use 'auto' (the installed provider for the "
            "storage, else the generic adapter) or 'generic'"
        )
    return config


def _resolve_storage(conf: Mapping[str, Any]) -> StorageConfig:
    value = conf.get("result_storage")
    config = conf.get("result_storage_config") or {}
    if not isinstance(config, Mapping):
        raise ImproperlyConfigured(
            f"{CONFIG_SETTING} must be a dict of storage constructor arguments, not {type(config).__name__}",
            hint="For example CELERY_RESULT_STORAGE_CONFIG = {'location': '/var/lib/myproject/results'}.",
        )
    options = dict(config)
    if not value:
        source = f"{STORAGE_SETTING} is not set (default)"
        storage_class: type[Storage] = FileSystemStorage
    elif isinstance(value, type):
        source = f"{STORAGE_SETTING} = {value.__name__}"
        storage_class = value
    elif not isinstance(value, str):
        raise ImproperlyConfigured(
            f"{STORAGE_SETTING} must be a dotted class path, a STORAGES alias "
            f"or a preset name, not {type(value).__name__}",
            hint="For example 'filesystem' (a preset), 'storages.backends.s3.S3Storage' (a class path) "
            "or a key of STORAGES.",
        )
    elif "." in value:
        source = f"{STORAGE_SETTING} = {value!r}"
        storage_class = _import_storage_class(value, source)
    elif value in _storages_setting():
        source = f"{STORAGE_SETTING} = {value!r} (STORAGES alias)"
        params = _storages_setting()[value]
        storage_class = _import_storage_class(params.get("BACKEND", ""), f"STORAGES[{value!r}]['BACKEND']")
        options = {**params.get("OPTIONS", {}), **options}
        return _finish(source, storage_class, options, defaults=False)
    else:
        provider = _preset(value)
        source = f"{STORAGE_SETTING} = {value!r} (preset)"
        storage_class = _import_storage_class(provider.preset_class, source)
        options = {**provider.preset_defaults, **options}
    return _finish(source, storage_class, options, defaults=True)


def _finish(source: str, storage_class: type, options: dict[str, Any], defaults: bool) -> StorageConfig:
    if not (isinstance(storage_class, type) and issubclass(storage_class, Storage)):
        raise ImproperlyConfigured(
            f"{source} is not a django.core.files.storage.Storage subclass",
            hint=_not_a_class_hint(storage_class),
        )
    if defaults and issubclass(storage_class, FileSystemStorage) and not options.get("location"):
        options["location"] = default_location()
    provider = registry().for_storage(storage_class)
    _check_arguments(storage_class, options, source, provider)
    return StorageConfig(source, storage_class, options, provider)


def _storages_setting() -> Mapping[str, Any]:
    if not settings.configured:
        return {}
    return getattr(settings, "STORAGES", None) or {}


def _import_storage_class(path: str, source: str) -> type[Storage]:
    return cast("type[Storage]", import_storage_class(path, source))  # _finish checks that it is one


def _not_a_class_hint(value: object) -> str:
    if isinstance(value, Storage):
        kind = type(value)
        return f"That is a storage instance: name its class, {kind.__module__}.{kind.__qualname__}."
    return "Name a Storage class, for example 'django.core.files.storage.FileSystemStorage'."


def _preset(name: str) -> Provider:
    found = registry()
    if name in found.providers:
        return found.providers[name]
    if name in KNOWN_PRESETS:
        broken = found.broken.get(name)
        why = f" but failed to load ({broken})" if broken else " which is not installed"
        raise ImproperlyConfigured(
            f"{STORAGE_SETTING} = {name!r} needs {KNOWN_PRESETS[name]}{why}: "
            f"pip install {KNOWN_PRESETS[name]}"
        )
    close = closest(name, [*found.providers, *_storages_setting(), *KNOWN_PRESETS], PRESET_ALIASES)
    suggestion = f"; did you mean {close!r}?" if close else ""
    if close in KNOWN_PRESETS and close not in found.providers:
        suggestion += f" (it needs pip install {KNOWN_PRESETS[close]})"
    raise ImproperlyConfigured(
        f"{STORAGE_SETTING} = {name!r} is not a dotted class path, a STORAGES "
        f"alias ({', '.join(sorted(_storages_setting())) or 'none defined'}) or an "
        f"installed preset ({', '.join(sorted(found.providers)) or 'none installed'})"
        f"{suggestion}"
    )


def _check_arguments(
    storage_class: type, options: Mapping[str, Any], source: str, provider: Provider | None
) -> None:
    accepted = _accepted_arguments(storage_class, provider)
    if accepted is None:
        return  # the class validates its own keyword settings
    for key in options:
        if key not in accepted:
            close = closest(key, accepted)
            suggestion = f" Did you mean {close!r}?" if close else ""
            raise ImproperlyConfigured(
                f"{CONFIG_SETTING} has the key {key!r}, which "
                f"{storage_class.__name__} does not accept ({source}).{suggestion} "
                f"Accepted keys: {', '.join(accepted)}."
            )


def _accepted_arguments(storage_class: type, provider: Provider | None) -> list[str] | None:
    """The constructor keys a storage class accepts, or None when unknowable."""
    # __init__, not the class: @deconstructible hides it behind __new__(*args, **kwargs)
    parameters = dict(inspect.signature(storage_class.__init__).parameters)  # type: ignore[misc]
    parameters.pop("self", None)
    accepted = [
        name
        for name, p in parameters.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return accepted
    # **settings: django-storages classes accept the keys of get_default_settings()
    # (a subclass may add some), and the provider's settings map names the rest.
    declared = [*(provider.settings if provider else ()), *_default_settings_keys(storage_class)]
    return list(dict.fromkeys([*accepted, *declared])) if declared else None


def _default_settings_keys(storage_class: type) -> list[str]:
    defaults = getattr(storage_class, "get_default_settings", None)
    if defaults is None:
        return []
    try:
        # reads Django settings only; no instance state is needed
        return list(defaults(object.__new__(storage_class)))
    except Exception:
        return []
