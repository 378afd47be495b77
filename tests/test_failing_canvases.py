"""Failing canvases behave as they do on Celery's Redis backend.

Every case runs on Celery's own Redis result backend, the reference that
Celery's canvas semantics are written against, and on every storage: the
filesystem provider, the generic adapter on a folder (chords by Celery's
chord_unlock polling) and each object store of support.stores (S3 on moto,
GCS on fake-gcs-server, Azure on Azurite). Each backend gets one real
`celery worker` (prefork, 2 processes) on a real Redis broker for the whole
module; its cases are applied at once, then awaited one by one, so a
backend costs about as long as its slowest case.

For each case ours and Redis agree on what `.get()` raises, on the final
state (and stored error) of every task of the canvas, and on the errbacks
that ran (each appends a line to a file). Where Redis leaves a task that
can no longer run PENDING (each case's pending_on_redis), ours marks it
failed instead; where Redis's `.get()` hangs (HANGS_ON_REDIS), ours raises
the failure's own error at once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import celery
import pytest
from celery import Celery, chain, chord, group, states
from celery.canvas import Signature, _chain, _chord
from celery.exceptions import ChordError
from celery.exceptions import TimeoutError as ResultTimeout

from support.processes import Worker
from support.setups import Setup, storage_setup
from support.stores import STORES

pytestmark = pytest.mark.e2e

STORAGES = ["filesystem-provider", "generic-adapter", *(f"{preset}-provider" for preset in STORES)]
#: How long a case's `.get()` may take; one that has not returned by then hangs.
GET_TIMEOUT = 15
#: How long Redis is given in the cases where it hangs.
HANG_TIMEOUT = 3
#: After the gets: how long the tasks of every case may take to reach a final state.
SETTLE_TIMEOUT = 4
#: Errbacks sent as tasks arrive late: the errback files must stay unchanged this long.
ERRBACKS_QUIET = 1.0
#: The Celery whose Redis backend is the reference: older ones (5.4) have canvas
#: bugs of their own there (a group body's `.get()` hangs, a chain body stays
#: PENDING), so ours is compared with Redis on this version and newer.
REFERENCE_CELERY = (5, 7)
CELERY = tuple(int(part) for part in celery.__version__.split(".")[:2])
#: Celery 5.4 never runs a chord whose header holds a chain and whose body is a
#: chain, on any backend (every task stays PENDING, on Redis too).
OLD_CELERY_CANNOT_RUN = pytest.mark.skipif(
    CELERY < REFERENCE_CELERY, reason=f"Celery {celery.__version__} never runs this canvas, on Redis either"
)


# -- the cases -------------------------------------------------------------------


@dataclass
class Kit:
    """Signatures of the test project's tasks for one case, and its errback log."""

    app: Celery
    errback_log: Path

    def s(self, name: str, *args: Any) -> Signature:
        return self.app.signature(f"tests.{name}", args=args)

    def si(self, name: str, *args: Any) -> Signature:
        return self.app.signature(f"tests.{name}", args=args, immutable=True)

    def errback(self) -> Signature:
        """Called with the failed task's id (Celery's old-style errback, sent as a task)."""
        return self.s("note_failure", str(self.errback_log))

    def immutable_errback(self) -> Signature:
        """Called with its own arguments only (run inside the worker that saw the failure)."""
        return self.si("note_failure", "immutable", str(self.errback_log))


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Kit], Signature]
    #: What `.get()` raises on ours where Redis hangs.
    ours_raise: str | None = None
    #: The tasks Redis leaves PENDING though they can never run, and the state ours gives them.
    pending_on_redis: dict[str, str] = field(default_factory=dict)
    #: A chain in the header and a chain body (see OLD_CELERY_CANNOT_RUN).
    needs_new_celery: bool = False


def dependency_failed(role: str, error: str) -> str:
    """How the ChordError of a callback whose header task failed reads."""
    return repr(ChordError(f"Dependency <{role}> raised {error}"))


BOOM = repr(ValueError("boom"))

CASES = [
    # a failing task in the header
    Case("header-task", lambda k: chord([k.si("fail", "boom")], k.s("echo"))),
    Case("header-task-of-two", lambda k: chord([k.si("add", 1, 1), k.si("fail", "boom")], k.s("echo"))),
    Case(
        "header-task-body-chain",
        lambda k: chord([k.si("fail", "boom")], chain(k.s("echo"), k.s("echo"))),
        # Redis fails the chain's last task only
        pending_on_redis={"body.chain[0]": f"FAILURE {dependency_failed('header.group[0]', BOOM)}"},
    ),
    Case(
        "header-group",
        lambda k: chord([group(k.si("echo", 42), k.si("fail", "boom"))], k.s("echo")),
    ),
    Case("header-chain-head", lambda k: chord([chain(k.si("fail", "boom"), k.s("echo"))], k.s("echo"))),
    Case(
        "header-chain-middle",
        lambda k: chord([chain(k.si("add", 1, 1), k.s("fail"), k.s("echo")), k.si("add", 2, 2)], k.s("echo")),
    ),
    Case("header-chain-tail", lambda k: chord([chain(k.si("add", 1, 1), k.s("fail"))], k.s("echo"))),
    Case(
        "header-chain-tail-body-chain",
        lambda k: chord([chain(k.si("add", 1, 1), k.s("fail"))], chain(k.s("echo"), k.s("echo"))),
        needs_new_celery=True,
        pending_on_redis={
            "body.chain[0]": f"FAILURE {dependency_failed('header.group[0].chain[1]', 'ValueError(2)')}"
        },
    ),
    # a failing body
    Case("body-task", lambda k: chord([k.si("add", 1, 1), k.si("add", 2, 2)], k.s("fail"))),
    Case("body-chain", lambda k: chord([k.si("add", 1, 1)], chain(k.s("fail"), k.s("echo")))),
    Case("body-group", lambda k: chord([k.si("add", 1, 1)], group(k.s("fail"), k.s("echo")))),
    # nested chords
    Case(
        "nested-chord-in-header",
        lambda k: chord(
            [chord([k.si("fail", "boom"), k.si("add", 1, 1)], k.s("echo")), k.si("add", 2, 2)], k.s("echo")
        ),
        # Redis never counts the inner callback towards the outer chord
        pending_on_redis={
            "body": "FAILURE "
            + dependency_failed(
                "header.group[0].body", dependency_failed("header.group[0].header.group[0]", BOOM)
            )
        },
    ),
    Case(
        "nested-chord-body-fails",
        lambda k: chord([chord([k.si("add", 1, 1)], k.s("fail")), k.si("add", 2, 2)], k.s("echo")),
    ),
    # a chain that ends in a group after a failing task
    Case(
        "chain-ending-in-group",
        lambda k: chain(k.si("add", 1, 1), k.s("fail"), group(k.s("add", 1), k.s("add", 1))),
        ours_raise="ValueError(2)",
        pending_on_redis=dict.fromkeys(["chain[2].group[0]", "chain[2].group[1]"], "FAILURE ValueError(2)"),
    ),
    Case(
        "chain-ending-in-chord",
        lambda k: chain(k.si("add", 1, 1), k.s("fail"), chord([k.s("add", 1), k.s("add", 2)], k.s("echo"))),
        # Redis fails the chord's callback, not its header tasks (the callback is
        # listed for the Celery versions that do not reach it either)
        pending_on_redis=dict.fromkeys(
            ["chain[2].header.group[0]", "chain[2].header.group[1]", "chain[2].body"], "FAILURE ValueError(2)"
        ),
    ),
    # errbacks, counted through the errback log
    Case(
        "errbacks-on-header-task-and-chord",
        lambda k: chord(
            [k.si("fail", "boom").on_error(k.errback()), k.si("add", 1, 1)], k.s("echo")
        ).on_error(k.errback()),
    ),
    Case(
        "immutable-errbacks-on-header-task-and-chord",
        lambda k: chord(
            [k.si("fail", "boom").on_error(k.immutable_errback()), k.si("add", 1, 1)], k.s("echo")
        ).on_error(k.immutable_errback()),
    ),
    Case(
        "errbacks-on-failing-body",
        lambda k: chord([k.si("add", 1, 1)], k.s("fail")).on_error(k.errback()),
    ),
    Case(
        "errbacks-on-chain-in-header",
        lambda k: chord(
            [chain(k.si("add", 1, 1), k.s("fail"), k.s("echo")).on_error(k.errback())], k.s("echo")
        ),
    ),
    Case(
        "errbacks-on-chain-ending-in-group",
        lambda k: chain(k.si("add", 1, 1), k.s("fail"), group(k.s("add", 1), k.s("add", 1))).on_error(
            k.immutable_errback()
        ),
        ours_raise="ValueError(2)",
        pending_on_redis=dict.fromkeys(["chain[2].group[0]", "chain[2].group[1]"], "FAILURE ValueError(2)"),
    ),
]

CASES = [case for case in CASES if CELERY >= REFERENCE_CELERY or not case.needs_new_celery]

#: Where Celery's Redis backend itself never returns: the group's tasks after
#: the failed one are never marked (celery/celery#6437, "Celery hangs when an
#: exception occurs inside a group of chains"); its `.get()` waits forever.
HANGS_ON_REDIS = {case.name for case in CASES if case.ours_raise}


# -- running a case ----------------------------------------------------------------


def task_ids(signature: Signature, path: str = "") -> list[tuple[str, str]]:
    """(role, id) of every task in a frozen canvas, in a fixed order."""
    if isinstance(signature, _chord):
        header = task_ids(signature.tasks, f"{path}header.")
        return header + task_ids(signature.body, f"{path}body.")
    if isinstance(signature, (group, _chain)):
        kind = "group" if isinstance(signature, group) else "chain"
        found = []
        for index, task in enumerate(signature.tasks):
            found += task_ids(task, f"{path}{kind}[{index}].")
        return found
    return [(path.rstrip(".") or "task", signature.id)]


@dataclass
class Outcome:
    """What a user sees of one case, with every id written as its role in the canvas."""

    raised: str
    states: dict[str, str] = field(default_factory=dict)
    errbacks: list[str] = field(default_factory=list)


@dataclass
class Started:
    case: Case
    roles: list[tuple[str, str]]
    result: Any
    errback_log: Path

    def named(self, text: str) -> str:
        for role, task_id in self.roles:
            text = text.replace(task_id, f"<{role}>")
        return text


def await_result(started: Started, timeout: float) -> str:
    try:
        value = started.result.get(timeout=timeout, interval=0.1)
    except ResultTimeout:
        return "timed out"
    except Exception as exc:
        return started.named(repr(exc))
    return f"returned {value!r}"


def stored_state(app: Celery, started: Started, task_id: str) -> str:
    meta = app.backend.get_task_meta(task_id)
    status = meta["status"]
    if status not in states.READY_STATES:
        return status
    return f"{status} {started.named(repr(meta['result']))}"


def run_cases(app: Celery, folder: Path, reference: bool) -> dict[str, Outcome]:
    started = []
    for case in CASES:
        kit = Kit(app, folder / f"{case.name}.errbacks")
        canvas = case.build(kit)
        canvas.freeze()
        started.append(Started(case, task_ids(canvas), canvas.apply_async(), kit.errback_log))
    outcomes = {}
    hang_deadline = None  # the cases that hang on Redis share one wait there
    for run in sorted(started, key=lambda run: run.case.name in HANGS_ON_REDIS):
        timeout: float = GET_TIMEOUT
        if reference and run.case.name in HANGS_ON_REDIS:
            hang_deadline = hang_deadline or time.monotonic() + HANG_TIMEOUT
            timeout = max(0.1, hang_deadline - time.monotonic())
        outcomes[run.case.name] = Outcome(await_result(run, timeout))
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        if all(
            app.backend.get_task_meta(task_id)["status"] in states.READY_STATES
            for run in started
            for role, task_id in run.roles
            if not (reference and role in run.case.pending_on_redis)  # they never will on Redis
        ):
            break
        time.sleep(0.2)
    wait_until_quiet([run.errback_log for run in started])
    for run in started:
        outcome = outcomes[run.case.name]
        outcome.states = {role: stored_state(app, run, task_id) for role, task_id in run.roles}
        lines = run.errback_log.read_text().splitlines() if run.errback_log.exists() else []
        outcome.errbacks = sorted(run.named(json.loads(line)) for line in lines)
    return outcomes


def wait_until_quiet(logs: list[Path]) -> None:
    def sizes() -> list[int]:
        return [log.stat().st_size if log.exists() else 0 for log in logs]

    last, since = sizes(), time.monotonic()
    while time.monotonic() - since < ERRBACKS_QUIET:
        time.sleep(0.1)
        now = sizes()
        if now != last:
            last, since = now, time.monotonic()


@contextmanager
def worker_and_client(
    name: str, worker_env: dict[str, str], conf: dict[str, Any], folder: Path
) -> Iterator[Celery]:
    """A real worker, and a client app configured as it is."""
    worker = Worker(worker_env, folder / "worker.log")
    app = Celery(f"failing-canvases-{name}", set_as_current=False)
    app.conf.update(accept_content=["json"], result_extended=True, **conf)
    try:
        yield app
    finally:
        app.close()
        worker.stop()
        output = worker.output()
        assert "Unrecoverable error" not in output, output


# -- the reference and ours ----------------------------------------------------------


@pytest.fixture(scope="module")
def on_redis(redis_url, tmp_path_factory) -> dict[str, Outcome]:
    """Every case on Celery's Redis result backend (its own broker database,
    so no other worker of the session takes its tasks)."""
    broker = redis_url.rsplit("/", 1)[0] + "/2"
    backend = redis_url.rsplit("/", 1)[0] + "/3"
    env = {"TEST_BROKER_URL": broker, "TEST_RESULT_BACKEND": backend}
    conf = {"broker_url": broker, "result_backend": backend}
    folder = tmp_path_factory.mktemp("on-redis")
    with worker_and_client("redis", env, conf, folder) as app:
        return run_cases(app, folder, reference=True)


@dataclass
class Ours:
    app: Celery
    outcomes: dict[str, Outcome]


@pytest.fixture(scope="module", params=STORAGES)
def on_storage(request, redis_url, tmp_path_factory) -> Iterator[Ours]:
    folder = tmp_path_factory.mktemp(request.param)
    with pytest.MonkeyPatch.context() as monkeypatch:
        setup: Setup = storage_setup(request, request.param, folder / "results", monkeypatch)
        env = {
            "TEST_BROKER_URL": redis_url,
            "TEST_RESULT_STORAGE": setup.storage,
            "TEST_RESULT_STORAGE_CONFIG": json.dumps(setup.config),
        }
        conf = {
            "broker_url": redis_url,
            "result_backend": "django-storage",
            "result_storage": setup.storage,
            "result_storage_config": setup.config,
        }
        with worker_and_client(request.param, env, conf, folder) as app:
            yield Ours(app, run_cases(app, folder, reference=False))


@pytest.mark.skipif(
    CELERY < REFERENCE_CELERY,
    reason=f"Redis is the reference on Celery {'.'.join(map(str, REFERENCE_CELERY))}+",
)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_failing_canvas_behaves_as_on_redis(on_redis, on_storage, case):
    redis, ours = on_redis[case.name], on_storage.outcomes[case.name]
    print(f"{case.name}\n  redis: {redis}\n  ours:  {ours}")
    assert ours.errbacks == redis.errbacks
    if case.name in HANGS_ON_REDIS:
        assert redis.raised == "timed out"
        assert ours.raised == case.ours_raise
    else:
        assert ours.raised == redis.raised
    # Where Redis leaves a task that can no longer run PENDING, ours fails it.
    # (a later Celery may mark some of them: then ours must agree with it)
    never_marked = {role for role, state in redis.states.items() if state == states.PENDING}
    assert never_marked <= set(case.pending_on_redis)
    for role, state in ours.states.items():
        expected = case.pending_on_redis[role] if role in never_marked else redis.states[role]
        assert state == expected, role


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_nothing_of_a_failing_canvas_waits_forever(on_storage, case):
    ours = on_storage.outcomes[case.name]
    assert ours.raised != "timed out"
    waiting = {
        role: state for role, state in ours.states.items() if state.split()[0] not in states.READY_STATES
    }
    assert not waiting


@pytest.mark.parametrize(
    "build",
    [
        lambda k: chord([k.si("fail", "boom")], k.s("echo")),
        lambda k: chord([group(k.si("echo", 42), k.si("fail", "boom"))], k.s("echo")),
        pytest.param(
            lambda k: chord([chain(k.si("fail", "boom"), k.s("echo"))], chain(k.s("echo"), k.s("echo"))),
            marks=OLD_CELERY_CANNOT_RUN,
        ),
        lambda k: chord([chain(k.si("echo", 1), k.si("fail", "boom"))], k.s("echo")),
    ],
    ids=["header-task", "header-group", "header-chain-head-body-chain", "header-chain-tail"],
)
def test_a_failed_header_raises_its_own_error_when_awaited_at_once(on_storage, build, tmp_path):
    """As a user calls it: `.delay().get()` at once, the header task's own
    exception, never the callback's ChordError, however the timing falls."""
    kit = Kit(on_storage.app, tmp_path / "errbacks")
    for _ in range(3):
        with pytest.raises(ValueError, match="boom"):
            build(kit).delay().get(timeout=GET_TIMEOUT, interval=0.1)
