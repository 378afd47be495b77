"""Nothing is lost under faults: every kind the counting proxy injects, on
every object store, before the store acts (a refused request, a reset) and
after it (the write applied, its answer lost, replaced, cut or late).

The writer recognises its own applied write: a create-only or
version-matched write whose answer was lost is refused when retried, and
the backend then reads what is stored instead of concluding that another
writer won. With retries off, each failure is a Celery BackendError naming
the result and the store, never a credential, and the stored state is one
the task reached. The stores' own rate limits (GCS: one write per second to
an object name; S3: SlowDown past a prefix's request rate) are retried with
backoff by the default settings.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import pytest
from celery import states
from celery.exceptions import BackendError

from django_storage_celery_results.exceptions import StoreRequestFailed
from django_storage_celery_results.providers import registry
from support.faults import Fault, RateLimit, rate_limited, xml_error
from support.proxy import Request
from support.stores import STORES, StoreUnderTest
from support.stores.azure import AZURITE_KEY
from support.stores.gcs import gcs_error

TASK = "task-1"
KEY = f"celery-results/celery-task-meta-{TASK}"
#: The read timeout of the clients that see late answers, and how late they come.
TIMEOUT, LATE = 0.3, 0.8
#: Faults that answer without forwarding (the store did nothing) and after it (the store acted).
BEFORE = ["refused", "reset"]
AFTER = ["lost", "replaced", "cut", "late"]


@pytest.fixture(params=list(STORES))
def store(request, fresh_store) -> StoreUnderTest:
    return fresh_store(request.param)


def fault(store: StoreUnderTest, kind: str, method: str) -> Fault:
    """One fault of a kind for the requests to the result KEY with the method ("write" or "GET")."""

    def matches(request: Request) -> bool:
        written = request.method in ("PUT", "POST")
        return (written if method == "write" else request.method == method) and KEY in store.keys(request)

    error = store.faults["unavailable"]
    made = {
        "refused": error,
        "reset": Fault(0, drop=True),
        "lost": Fault(0, drop=True, after_forward=True),
        "replaced": dataclasses.replace(store.faults["internal-error"], after_forward=True),
        "cut": Fault(0, cut=True),
        "late": Fault(0, drop=True, after_forward=True, delay=LATE),
    }[kind]
    return dataclasses.replace(made, matches=matches, times=1)


def app_for(store: StoreUnderTest, make_app, kind: str, **conf):
    """The app with the client's own retries off (a short read timeout for late answers)."""
    config = store.timing_out(TIMEOUT) if kind == "late" else store.without_client_retries()
    if config is None:
        pytest.skip(f"{store.preset}: no setting for a client read timeout")
    if kind == "late":  # what the GCS adapter passes; the storage's own setting elsewhere
        conf = {"result_storage_timeout": TIMEOUT, **conf}
    return store.app(make_app, config, **conf)


def stored(store: StoreUnderTest, make_app) -> dict:
    """The result as stored, read by a fresh backend without faults."""
    return store.app(make_app).backend.get_task_meta(TASK, cache=False)


# -- with Celery's retries (result_backend_always_retry) ---------------------------


@pytest.mark.parametrize(
    ("kind", "write"),
    # a task's next state (a version-matched write) under every kind; a new result
    # (create-only) where the answer comes after the store acted
    [*((kind, "update") for kind in BEFORE + AFTER), ("lost", "create"), ("late", "create")],
)
def test_a_faulty_write_is_retried_and_lands_once(store, make_app, kind, write):
    backend = app_for(store, make_app, kind, result_backend_always_retry=True).backend
    if write == "update":
        backend.store_result(TASK, None, states.STARTED)
    store.proxy.inject(fault(store, kind, "write"))
    state, value = (states.SUCCESS, 42) if write == "update" else (states.STARTED, None)
    backend.store_result(TASK, value, state)
    meta = stored(store, make_app)
    assert (meta["status"], meta["result"]) == (state, value)
    assert store.proxy.faults[0].times == 0  # the fault was served
    backend.store_result(TASK, 42, states.SUCCESS)  # the next state still goes through
    assert stored(store, make_app)["result"] == 42


@pytest.mark.parametrize("kind", ["refused", "reset", "cut", "late"])
def test_a_faulty_read_is_retried(store, make_app, kind):
    backend = app_for(store, make_app, kind, result_backend_always_retry=True).backend
    backend.store_result(TASK, "x" * 2000, states.SUCCESS)
    store.proxy.inject(fault(store, kind, "GET"))
    assert backend.get_task_meta(TASK, cache=False)["result"] == "x" * 2000
    assert store.proxy.faults[0].times == 0


@pytest.mark.parametrize("write", ["create", "update"])
def test_a_lost_answer_retried_by_the_client_itself(store, make_app, write):
    """With the client's own retries (the default settings) the retry is the
    client's: its second write is refused (412), and the backend finds its
    own write stored."""
    if store.preset == "azure":
        pytest.skip("Azure's SDK waits 15 s before its first retry; Celery's retries are tested above")
    backend = store.app(make_app).backend
    if write == "update":
        backend.store_result(TASK, None, states.STARTED)
    store.proxy.inject(fault(store, "lost", "write"))
    with store.proxy.counting() as seen:
        backend.store_result(TASK, 42, states.SUCCESS)
    assert stored(store, make_app)["result"] == 42
    assert store.calls(seen)[-1] == "read"  # what it found was its own SUCCESS: done
    # a late duplicate from another process still leaves SUCCESS alone
    store.app(make_app).backend.store_result(TASK, None, states.STARTED)
    assert stored(store, make_app)["status"] == states.SUCCESS


# -- with retries off ------------------------------------------------------------------


def secrets_of(store: StoreUnderTest) -> list[str]:
    return [AZURITE_KEY, *(str(value) for key, value in store.config.items() if "secret" in key)]


@pytest.mark.parametrize("kind", [*BEFORE, "lost", "replaced", "late"])  # a write's answer has no body to cut
def test_without_retries_a_failure_names_the_result_and_the_store(store, make_app, kind):
    backend = app_for(store, make_app, kind).backend
    backend.store_result(TASK, None, states.STARTED)
    store.proxy.inject(fault(store, kind, "write"))
    with pytest.raises(BackendError) as raised:
        backend.store_result(TASK, 42, states.SUCCESS)
    error = raised.value
    assert isinstance(error, StoreRequestFailed)
    message = str(error)
    assert f"writing 'celery-task-meta-{TASK}' to" in message
    assert backend.adapter.url() in message
    assert not any(secret in message for secret in secrets_of(store))
    # the stored state is one the task reached: STARTED, or SUCCESS where the store acted
    meta = stored(store, make_app)
    expected = (states.SUCCESS, 42) if kind in AFTER else (states.STARTED, None)
    assert (meta["status"], meta["result"]) == expected


@pytest.mark.parametrize("kind", ["refused", "reset", "cut"])
def test_without_retries_a_failed_read_names_the_result_and_the_store(store, make_app, kind):
    backend = app_for(store, make_app, kind).backend
    backend.store_result(TASK, 42, states.SUCCESS)
    store.proxy.inject(fault(store, kind, "GET"))
    if (store.preset, kind) == ("azure", "cut"):  # Azure's downloader re-reads the rest itself
        assert backend.get_task_meta(TASK, cache=False)["result"] == 42
        return
    with pytest.raises(StoreRequestFailed, match=f"reading 'celery-task-meta-{TASK}' from") as raised:
        backend.get_task_meta(TASK, cache=False)
    assert backend.adapter.url() in str(raised.value)
    assert backend.get_task_meta(TASK, cache=False)["result"] == 42


@pytest.mark.parametrize("method", ["GET", "write"])
def test_without_retries_a_late_answer_is_a_timeout_not_a_wait(store, make_app, method):
    """An answer later than the client's read timeout fails as a timeout (a
    transient error: Celery's retries apply) instead of being waited for."""
    backend = app_for(store, make_app, "late").backend
    backend.store_result(TASK, None, states.STARTED)
    store.proxy.inject(fault(store, "late", method))
    with pytest.raises(StoreRequestFailed) as raised:
        if method == "GET":
            backend.get_task_meta(TASK, cache=False)
        else:
            backend.store_result(TASK, 42, states.SUCCESS)
    cause = raised.value.cause
    assert cause is not None and "timeout" in f"{type(cause).__name__} {cause}".lower().replace(" ", "")
    assert backend.exception_safe_to_retry(raised.value)


# -- the stores' own rate limits, with default settings ------------------------------------


def gcs_rewrite_limit(store: StoreUnderTest) -> Fault:
    """GCS: about one write per second to one object name, then 429."""
    name = lambda r: next(iter(store.keys(r)), None) if r.method == "POST" else None  # noqa: E731
    return rate_limited(gcs_error(429, "rateLimitExceeded"), RateLimit(name, 1, 1.0))


def s3_busy_prefix(store: StoreUnderTest, window: float) -> Fault:
    """S3: 503 SlowDown for every write to the results prefix past one per window."""
    prefix = lambda r: "celery-results/" if r.method == "PUT" else None  # noqa: E731
    return rate_limited(xml_error(503, "SlowDown"), RateLimit(prefix, 1, window))


def started_then_success(
    store: StoreUnderTest, backend, throttle: Fault, from_started: bool = True
) -> tuple[float, list[str]]:
    """A quick task's two writes, throttled from the first (or the second) on;
    how long SUCCESS took, and its requests."""
    if from_started:
        store.proxy.inject(throttle)
    backend.store_result(TASK, None, states.STARTED)
    if not from_started:
        store.proxy.inject(throttle)
    started = time.monotonic()
    with store.proxy.counting() as seen:
        backend.store_result(TASK, 42, states.SUCCESS)
    return time.monotonic() - started, store.calls(seen)


def test_gcs_one_write_per_second_to_an_object_with_default_settings(fresh_store, make_app):
    store = fresh_store("gcs")
    limit = gcs_rewrite_limit(store)
    waited, calls = started_then_success(store, store.app(make_app).backend, limit)
    refused = limit.matches.refused  # type: ignore[attr-defined]
    assert stored(store, make_app)["result"] == 42
    assert refused >= 1 and calls == ["update"] * (refused + 1)
    print(f"gcs: SUCCESS landed after {waited:.2f} s, {refused} answers 429")


def test_s3_slowdown_with_default_settings(fresh_store, make_app):
    """botocore's default retries (3 attempts, backoff) carry SUCCESS past two SlowDowns."""
    store = fresh_store("s3")
    backend = store.app(make_app).backend
    slowdown = dataclasses.replace(xml_error(503, "SlowDown", "PUT"), times=2)
    waited, calls = started_then_success(store, backend, slowdown, from_started=False)
    assert stored(store, make_app)["result"] == 42
    assert calls == ["update"] * 3
    print(f"s3: SUCCESS landed after {waited:.2f} s, 2 answers SlowDown")


def test_s3_a_longer_slowdown_needs_celerys_retries(fresh_store, make_app):
    """Throttled for 3 s, longer than botocore's three attempts last:
    result_backend_always_retry carries SUCCESS through (without it the
    write fails, and the task stays STARTED: docs/operating.md says so)."""
    store = fresh_store("s3")
    backend = store.app(make_app, result_backend_always_retry=True).backend
    limit = s3_busy_prefix(store, 3.0)
    waited, calls = started_then_success(store, backend, limit)
    refused = limit.matches.refused  # type: ignore[attr-defined]
    assert stored(store, make_app)["result"] == 42
    assert refused >= 1 and calls == ["update"] * (refused + 1)
    print(f"s3: SUCCESS landed after {waited:.2f} s, {refused} answers SlowDown")


# -- a store that ignores the conditions -------------------------------------------------


def test_a_store_ignoring_conditions_is_reported_and_the_generic_fallback_holds(store, make_app):
    """The deploy check's probe finds the conditions ignored (E014), and the
    fallback its hint names, the generic adapter, reads before it writes, so a
    late duplicate still leaves SUCCESS alone."""
    store.proxy.inject(Fault(0, strip_conditions=True, times=sys.maxsize))
    adapter = store.app(make_app).backend.adapter
    messages = registry().providers[store.preset].connectivity(adapter, None)
    if store.preset == "azure":
        # Shared Key signs If-Match / If-None-Match: without them Azure refuses the
        # request itself, so an Azure-compatible store ignoring them cannot be played here
        assert [message.id.rsplit(".", 1)[1] for message in messages] == ["E011"], messages
        return
    e014 = [message for message in messages if message.id.endswith(".E014")]
    assert len(e014) == 1 and "result_storage_adapter" not in e014[0].msg
    assert "generic" in e014[0].hint
    first = store.app(make_app, result_storage_adapter="generic").backend
    late = store.app(make_app, result_storage_adapter="generic").backend
    first.store_result(TASK, 42, states.SUCCESS)
    late.store_result(TASK, None, states.STARTED)
    assert stored(store, make_app)["result"] == 42


# -- found by the soak (bench/soak.py) -------------------------------------------------


def test_a_refusal_whose_answer_is_cut_is_still_a_conflict(store, make_app):
    """A 412 whose body is cut short (no error code to read) still means the
    object changed: a late duplicate leaves the stored SUCCESS alone instead
    of failing the task (the soak lost a chord to this on S3; on GCS and
    Azure a cut answer is a transport error, retried into the same 412)."""
    backend = app_for(store, make_app, "cut", result_backend_always_retry=True).backend
    backend.store_result(TASK, None, states.STARTED)
    store.app(make_app).backend.store_result(TASK, 42, states.SUCCESS)  # another delivery's write
    store.proxy.inject(fault(store, "cut", "write"))
    backend.store_result(TASK, None, states.STARTED)  # refused (412), its answer cut
    assert store.proxy.faults[0].times == 0
    assert (stored(store, make_app)["status"], stored(store, make_app)["result"]) == (states.SUCCESS, 42)


def test_a_wrapped_store_error_crosses_the_prefork_pool(store, make_app):
    """A prefork pool pickles the type of a task's exception (billiard's
    ExceptionInfo) to send it to the main process; a StoreRequestFailed that
    is also the store's error class must survive it (the soak saw a
    PicklingError turn a failed store into a lost result)."""
    import pickle

    from billiard.einfo import ExceptionInfo

    backend = app_for(store, make_app, "refused").backend
    store.proxy.inject(fault(store, "refused", "write"))
    try:
        backend.store_result(TASK, 42, states.SUCCESS)
    except StoreRequestFailed as exc:
        info, error = ExceptionInfo(), exc
    else:
        pytest.fail("the refused write did not raise")
    assert type(error) is not StoreRequestFailed  # also the store's own class
    assert pickle.loads(pickle.dumps(type(error))) is StoreRequestFailed
    assert str(pickle.loads(pickle.dumps(info)).exception) == str(error)
