"""One object store as the tests see it: its emulator, a fresh bucket on it,
the backend's configuration for that bucket, and raw access behind the
backend's back.

A provider's subclass (one module per store in support.stores, registered in
support/stores/__init__.py) is all the object-store contract suite
(tests/test_object_stores.py), the behaviour suite and the end-to-end tests
need to run against that store.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote

from support.faults import Fault
from support.processes import EmulatorProcess
from support.proxy import CountingProxy, Request

if TYPE_CHECKING:
    import pytest


@dataclass
class Emulator:
    """A running emulator and the counting proxy in front of it."""

    server: EmulatorProcess
    proxy: CountingProxy

    def stop(self) -> None:
        self.proxy.close()
        self.server.stop()


#: The vocabulary of stores that write with HTTP preconditions on a PUT (S3, Azure).
PLAIN_HTTP = {
    "PUT if-none-match=*": "create",
    "PUT if-match": "update",
    "PUT": "write",
    "GET": "read",
    "DELETE": "delete",
}


def keys_under(root: str) -> Callable[[Request], list[str]]:
    """The object key in a request's path below root ("/bucket/"), if any."""
    return lambda r: [unquote(r.path.removeprefix(root))] if r.path.startswith(root) else []


class StoreUnderTest(ABC):
    """A fresh bucket (container) on a running emulator, for one test or module.

    The class says what the provider is (its preset, settings, limits, how its
    requests look on the wire); an instance is one bucket, its config through
    the counting proxy, and a raw client straight to the emulator (uncounted)
    to plant and inspect objects. Creating one empties the proxy's record.
    """

    #: The provider's preset (result_storage) and its name in the registry.
    preset: ClassVar[str]
    #: The config key of the bucket (container).
    bucket_key: ClassVar[str]
    #: The storage class the earlier package's README named.
    storage_class: ClassVar[str]
    #: A canned ACL that makes objects public (None: the store has no ACLs).
    public_acl: ClassVar[str | None]
    #: The provider's wire description of requests (wire()) in the suite's
    #: words: create, update, write, read, delete, and list, bulk-delete for cleanup.
    vocabulary: ClassVar[dict[str, str]]
    #: The size of the client's connection pool.
    pool_size: ClassVar[int]
    #: The most keys one bulk delete takes.
    delete_batch: ClassVar[int]
    #: The module the store's tests need, and what installs it.
    requirement: ClassVar[tuple[str, str]]
    #: A client straight to the emulator (uncounted), set by create_bucket().
    raw: Any

    def __init__(self, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
        self.emulator = emulator
        self.proxy = emulator.proxy
        self.monkeypatch = monkeypatch
        self.bucket = f"results-{uuid.uuid4().hex[:16]}"
        self.create_bucket()
        #: The result_storage_config of the bucket, through the proxy.
        self.config = self.make_config()
        for name, value in self.environment().items():
            monkeypatch.setenv(name, value)  # worker subprocesses started later inherit it
        self.proxy.reset()

    # -- what each provider writes ---------------------------------------------

    @classmethod
    @abstractmethod
    def start(cls) -> Emulator:
        """Start the emulator and the counting proxy in front of it."""

    @classmethod
    def missing(cls) -> str | None:
        """What this machine lacks to run the store (None: nothing)."""
        module, install = cls.requirement
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install {install})"
        return None

    @abstractmethod
    def create_bucket(self) -> None:
        """Create self.bucket on the emulator and keep a raw client to it in self.raw."""

    @abstractmethod
    def make_config(self) -> dict:
        """The result_storage_config of self.bucket, through the proxy."""

    def environment(self) -> dict[str, str]:
        """Environment variables the backend's client needs (a worker's too)."""
        return {}

    def worker_config(self) -> dict:
        """The config as JSON for a worker subprocess (with environment())."""
        return self.config

    @abstractmethod
    def wire(self, requests: list[Request]) -> list[str]:
        """Requests as the provider's exact budgets describe them."""

    @abstractmethod
    def keys(self, request: Request) -> list[str]:
        """The object keys a request touches."""

    @abstractmethod
    def plant(self, key: str, data: bytes) -> None:
        """Write an object straight to the emulator."""

    @abstractmethod
    def fetch(self, key: str) -> bytes:
        """An object's bytes as stored (never decompressed on the way)."""

    @abstractmethod
    def names(self) -> set[str]:
        """Every key of the bucket."""

    @abstractmethod
    def labels(self, key: str) -> tuple[str | None, str | None]:
        """An object's Content-Type and Content-Encoding."""

    @property
    @abstractmethod
    def faults(self) -> dict[str, Fault]:
        """Error answers: "unavailable", "throttled", "internal-error" for reads, "forbidden" for writes."""

    @abstractmethod
    def without_client_retries(self) -> dict:
        """The config with the client's own retries off (Celery's alone remain)."""

    def timing_out(self, seconds: float) -> dict | None:
        """The config without the client's own retries and with a read timeout
        of seconds, or None when the storage has no setting for it (where the
        adapter passes the timeout itself, GCS, the app's result_storage_timeout
        sets it: the caller sets that too)."""
        return None

    @abstractmethod
    def lifecycle(self, adapter: Any, expires: float) -> object:
        """Write the lifecycle rule (policy) that expires results: the provider's own helper."""

    # -- shared ----------------------------------------------------------------

    def app(self, make_app, config: dict | None = None, **conf):
        return make_app(result_storage=self.preset, result_storage_config=config or self.config, **conf)

    def calls(self, requests: list[Request]) -> list[str]:
        return [self.vocabulary.get(call, call) for call in self.wire(requests)]
