"""What the short fault runs of the suite (tests/test_faults_worker.py) and
the soak (bench/soak.py) share: the mix of every fault kind at a rate, a
second reader that watches results while they are written, and the check
that nothing was lost."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
from collections.abc import Callable, Iterable
from typing import Any

from celery import Celery, states

from django_storage_celery_results.exceptions import InvalidStoredResult
from support.faults import Fault, Sometimes, at_rate
from support.proxy import Request
from support.stores import StoreUnderTest

#: How far a state is along a task's life: a reader must never see it go back.
RANK = {states.PENDING: 0, states.RECEIVED: 1, states.STARTED: 1, states.RETRY: 2}
FINAL = 3


def client_app(name: str, broker_url: str, storage: str, config: dict, **conf: Any) -> Celery:
    """The app a test or soak sends tasks and reads results with, beside a worker."""
    app = Celery(name, set_as_current=False)
    app.conf.update(
        broker_url=broker_url,
        result_backend="django-storage",
        result_storage=storage,
        result_storage_config=config,
        accept_content=["json"],
        **conf,
    )
    return app


def rank(state: str) -> int:
    return RANK.get(state, FINAL)


def fault_kinds(store: StoreUnderTest, late: float | None) -> dict[str, Fault]:
    """Every kind of fault for any request: refused (the store's 503, throttling and
    500 answers), reset, and after the store acted: answer lost, replaced, cut,
    and (with a client read timeout) late by `late` seconds."""
    every: dict[str, Fault] = {
        "unavailable": store.faults["unavailable"],
        "throttled": store.faults["throttled"],
        "internal-error": store.faults["internal-error"],
        "reset": Fault(0, drop=True),
        "lost": Fault(0, drop=True, after_forward=True),
        "replaced": dataclasses.replace(store.faults["internal-error"], after_forward=True),
        "cut": Fault(0, cut=True),
    }
    if late is not None:
        every["late"] = Fault(0, drop=True, after_forward=True, delay=late)
    return every


def inject_mix(
    store: StoreUnderTest,
    rate: float,
    seed: int,
    late: float | None = None,
    only: Callable[[Request], bool] | None = None,
) -> dict[str, Sometimes]:
    """Faults of every kind on `rate` of the requests (only those `only` matches),
    the same share for each kind; the counters of each kind's faults injected."""
    rng = random.Random(seed)
    kinds = fault_kinds(store, late)
    counters: dict[str, Sometimes] = {}
    for name, fault in kinds.items():
        share = rate / len(kinds)
        # each kind at least once by the request it would be expected on
        injected = store.proxy.inject(at_rate(fault, share, rng, only, surely_by=math.ceil(1 / share)))
        counters[name] = injected.matches  # type: ignore[assignment]
    return counters


class Watcher(threading.Thread):
    """A second reader: polls the results of `ids` while they are written and
    records each state it reads, any state that went back, and any object
    that did not read as a result (a partial write would)."""

    def __init__(self, app: Any, ids: list[str]) -> None:
        super().__init__(name="results-watcher", daemon=True)
        self.backend = app.backend
        self.ids = ids
        self.seen: dict[str, str] = {}
        self.reads = 0
        self.read_errors = 0
        self.backwards: list[tuple[str, str, str]] = []
        self.invalid: list[str] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            for task_id in list(self.ids):
                if self._stop_event.is_set():
                    return
                self.look(task_id)

    def look(self, task_id: str) -> None:
        try:
            meta = self.backend.get_task_meta(task_id, cache=False)
        except InvalidStoredResult as exc:
            self.invalid.append(str(exc))
            return
        except Exception:  # a fault the reader's own retries did not overcome
            self.read_errors += 1
            return
        self.reads += 1
        state, before = meta["status"], self.seen.get(task_id)
        if before is not None and (rank(state) < rank(before) or (rank(before) == FINAL and state != before)):
            self.backwards.append((task_id, before, state))
        self.seen[task_id] = state

    def stop(self) -> None:
        """Idempotent, so a test's `finally` can stop it whether or not it got that far."""
        self._stop_event.set()
        if self.is_alive():
            self.join(30)


def lost(app: Any, expected: Iterable[tuple[str, Any]]) -> list[str]:
    """The task ids whose stored result is not SUCCESS with the expected value."""
    missing = []
    for task_id, value in expected:
        meta = app.backend.get_task_meta(task_id, cache=False)
        if meta["status"] != states.SUCCESS or meta["result"] != value:
            missing.append(task_id)
    return missing
