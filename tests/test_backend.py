"""The backend's Celery semantics over real storages (no worker needed)."""

from __future__ import annotations

import datetime
import json
import logging
import os
import threading

import pytest
from celery import states
from celery.exceptions import ImproperlyConfigured as CeleryImproperlyConfigured
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult, GroupResult, ResultSet
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage

from django_storage_celery_results.backends import StorageBackend
from django_storage_celery_results.exceptions import ImproperlyConfigured
from django_storage_celery_results.generic import GenericAdapter
from django_storage_celery_results_filesystem import FileSystemAdapter
from support.storages import ThirdPartyFolderStorage

FOLDER_STORAGES = {
    "filesystem": "filesystem",
    "third-party": "support.storages.ThirdPartyFolderStorage",
    "plain-folder": "support.storages.PlainFolderStorage",
}


def _conf(kind: str, results_dir) -> dict:
    if kind == "memory":
        return {"result_storage": InMemoryStorage}
    return {"result_storage": FOLDER_STORAGES[kind], "result_storage_config": {"location": str(results_dir)}}


@pytest.fixture(params=[*FOLDER_STORAGES, "memory"])
def storage_conf(request, results_dir):
    return _conf(request.param, results_dir)


@pytest.fixture(params=FOLDER_STORAGES)
def folder_conf(request, results_dir):
    """Storages in a folder: shared between apps, modified times settable."""
    return _conf(request.param, results_dir)


@pytest.fixture
def backend(make_app, storage_conf) -> StorageBackend:
    return make_app(**storage_conf).backend


def test_alias_and_class_path_select_this_backend(make_app, results_dir):
    for name in ("django-storage", "django_storage_celery_results.backends.StorageBackend"):
        app = make_app(
            result_backend=name,
            result_storage="filesystem",
            result_storage_config={"location": str(results_dir)},
        )
        assert isinstance(app.backend, StorageBackend)


def test_adapter_choice(make_app, results_dir):
    fs = make_app(result_storage="filesystem", result_storage_config={"location": str(results_dir)})
    assert isinstance(fs.backend.adapter, FileSystemAdapter)
    generic = make_app(
        result_storage=ThirdPartyFolderStorage, result_storage_config={"location": str(results_dir)}
    )
    assert isinstance(generic.backend.adapter, GenericAdapter)


def test_missing_result_is_pending(backend):
    meta = backend.get_task_meta("never-stored")
    assert meta["status"] == states.PENDING
    assert not backend.task_result_exists("never-stored") if hasattr(backend, "task_result_exists") else True


@pytest.mark.parametrize("serializer", ["json", "pickle", "msgpack", "yaml"])
@pytest.mark.parametrize("compression", [None, "gzip"])
def test_every_serializer_and_compression_round_trips(make_app, storage_conf, serializer, compression):
    app = make_app(result_serializer=serializer, result_compression=compression, **storage_conf)
    value = {"text": "héllo ✓", "numbers": [1, 2.5, None], "nested": {"ok": True}}
    if serializer in ("pickle", "msgpack"):
        value["raw"] = b"\xff\x00\xfe binary"
    app.backend.store_result("task-1", value, states.SUCCESS)
    app.backend._cache.clear()
    assert app.backend.get_task_meta("task-1")["result"] == value
    assert AsyncResult("task-1", app=app).get(timeout=1) == value


def test_compressed_payload_is_smaller_and_marked(make_app, results_dir):
    app = make_app(
        result_storage="filesystem",
        result_compression="zlib",
        result_storage_config={"location": str(results_dir)},
    )
    app.backend.store_result("big", "x" * 100_000, states.SUCCESS)
    data = (results_dir / "celery-task-meta-big").read_bytes()
    assert data.startswith(b"\x00celery-compressed\x00")
    assert len(data) < 2_000


def test_unknown_compression_names_the_setting(make_app, storage_conf):
    with pytest.raises(CeleryImproperlyConfigured, match="result_compression"):
        _ = make_app(result_compression="zstd-nope", **storage_conf).backend


def test_failure_is_stored_with_traceback(backend):
    try:
        raise KeyError("missing thing")
    except KeyError as exc:
        backend.mark_as_failure("failing", exc, traceback="Traceback (most recent call last): ...")
    backend._cache.clear()
    meta = backend.get_task_meta("failing")
    assert meta["status"] == states.FAILURE
    assert isinstance(meta["result"], KeyError)
    assert meta["traceback"].startswith("Traceback")


def test_success_is_never_overwritten_by_a_late_duplicate(backend):
    backend.mark_as_started("dup")
    backend.mark_as_done("dup", 42)
    backend.mark_as_started("dup")  # a redelivered copy of the task starts late
    backend.mark_as_failure("dup", ValueError("late"))
    backend._cache.clear()
    assert backend.get_task_meta("dup")["status"] == states.SUCCESS
    assert backend.get_task_meta("dup")["result"] == 42


def test_success_is_kept_even_against_another_process_writer(make_app, folder_conf):
    first, second = make_app(**folder_conf).backend, make_app(**folder_conf).backend
    first.mark_as_started("shared")
    second.mark_as_done("shared", "done")
    first.mark_as_failure("shared", ValueError("stale writer"))
    assert second.get_task_meta("shared", cache=False)["status"] == states.SUCCESS


def test_states_progress_in_place(backend):
    backend.mark_as_started("progress", pid=1)
    assert backend.get_task_meta("progress", cache=False)["status"] == states.STARTED
    backend.store_result("progress", {"current": 5}, "PROGRESS")
    assert backend.get_task_meta("progress", cache=False)["result"] == {"current": 5}
    backend.mark_as_done("progress", "finished")
    assert backend.get_task_meta("progress", cache=False)["status"] == states.SUCCESS


def test_forget_deletes_the_result(backend):
    backend.mark_as_done("gone", 1)
    result = AsyncResult("gone", backend=backend)
    result.forget()
    assert backend.get_task_meta("gone", cache=False)["status"] == states.PENDING
    backend.forget("gone")  # forgetting twice is fine


def test_group_save_restore_delete(make_app, storage_conf):
    app = make_app(**storage_conf)
    children = [AsyncResult(f"child-{i}", app=app) for i in range(3)]
    for i, child in enumerate(children):
        app.backend.mark_as_done(child.id, i * 10)
    group = GroupResult("group-1", children, app=app)
    group.save()
    restored = GroupResult.restore("group-1", app=app)
    assert [child.id for child in restored.results] == [child.id for child in children]
    assert restored.join_native(timeout=5) == [0, 10, 20]
    restored.delete()
    assert GroupResult.restore("group-1", app=app) is None


def test_result_set_reads_in_parallel_and_times_out(make_app, storage_conf):
    app = make_app(**storage_conf)
    ids = [f"many-{i}" for i in range(40)]
    for i, task_id in enumerate(ids):
        app.backend.mark_as_done(task_id, i)
    results = ResultSet([AsyncResult(task_id, app=app) for task_id in ids], app=app)
    assert app.backend.supports_native_join
    assert results.join_native(timeout=5) == list(range(40))
    assert results.get(timeout=5) == list(range(40))
    waiting = ResultSet([AsyncResult("many-0", app=app), AsyncResult("never", app=app)], app=app)
    with pytest.raises(CeleryTimeoutError):
        waiting.join_native(timeout=0.3, interval=0.1)


def test_result_extended_fields(make_app, storage_conf):
    app = make_app(result_extended=True, **storage_conf)

    @app.task(name="tests.local_add", shared=False)
    def local_add(x, y):
        return x + y

    request = type(
        "Request",
        (),
        {
            "id": "ext-1",
            "task": "tests.local_add",
            "args": [1, 2],
            "kwargs": {"z": 3},
            "hostname": "host",
            "retries": 0,
            "delivery_info": {"routing_key": "celery"},
            "ignore_result": False,
            "group": None,
            "parent_id": None,
            "root_id": None,
            "children": [],
            "properties": {},
            "worker": "host",
        },
    )()
    app.backend.store_result("ext-1", 3, states.SUCCESS, request=request)
    meta = app.backend.get_task_meta("ext-1", cache=False)
    assert meta["name"] == "tests.local_add"
    assert meta["args"] == [1, 2]
    assert meta["kwargs"] == {"z": 3}
    assert meta["date_done"]


def test_results_of_the_earlier_package_stay_readable(make_app, results_dir):
    results_dir.mkdir(parents=True)
    task_id = "0b7e6f2a-4b1b-4d8a-9a3c-3f0a5a6c1d2e"
    earlier = {
        "status": "SUCCESS",
        "result": [1, 2],
        "traceback": None,
        "children": [],
        "date_done": "2024-01-01T00:00:00",
        "task_id": task_id,
    }
    (results_dir / f"celery-task-meta-{task_id}").write_text(json.dumps(earlier))
    app = make_app(
        result_storage="django.core.files.storage.FileSystemStorage",
        result_storage_config={"location": str(results_dir)},
    )
    assert AsyncResult(task_id, app=app).get(timeout=1) == [1, 2]


def test_uuid_results_keep_the_earlier_file_names(fs_app, results_dir):
    task_id = "2c5d6b62-6b0e-4b59-8a3e-86a6b1b3d1f0"
    fs_app.backend.mark_as_done(task_id, "x")
    assert (results_dir / f"celery-task-meta-{task_id}").is_file()


def test_global_keyprefix(make_app, results_dir):
    app = make_app(
        result_storage="filesystem",
        result_storage_config={"location": str(results_dir)},
        result_backend_transport_options={"global_keyprefix": "tenant1"},
    )
    app.backend.mark_as_done("abc", 1)
    assert (results_dir / "tenant1_celery-task-meta-abc").is_file()
    assert AsyncResult("abc", app=app).get(timeout=1) == 1


@pytest.mark.parametrize("hostile", ["../../x", "../outside", "/etc/passwd", "a/../../b", "..", "C:\\x"])
def test_hostile_ids_never_leave_the_location(make_app, tmp_path, hostile):
    location = tmp_path / "a" / "b" / "results"
    app = make_app(result_storage="filesystem", result_storage_config={"location": str(location)})
    # A valid result outside the location must not be readable through any id.
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text(json.dumps({"status": "SUCCESS", "result": "secret"}))
    (tmp_path / "a" / "celery-task-meta-x").write_text(json.dumps({"status": "SUCCESS", "result": "secret"}))
    assert app.backend.get_task_meta(hostile)["status"] == states.PENDING
    app.backend.mark_as_done(hostile, "stored")
    written = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert all(location in p.parents for p in written if p.parent != tmp_path / "a")
    assert AsyncResult(hostile, app=app).get(timeout=1) == "stored"


def test_payloads_and_credentials_stay_out_of_logs(make_app, results_dir, caplog):
    secret_value = "payload-that-must-not-be-logged"
    app = make_app(
        result_storage=ThirdPartyFolderStorage, result_storage_config={"location": str(results_dir)}
    )
    with caplog.at_level(logging.DEBUG):
        app.backend.mark_as_done("quiet", secret_value)
        app.backend.get_task_meta("quiet")
        app.backend.cleanup()
    assert secret_value not in caplog.text


def test_cleanup_deletes_exactly_the_expired_results(make_app, folder_conf, results_dir):
    app = make_app(result_expires=datetime.timedelta(hours=1), **folder_conf)
    for name in ("old-1", "old-2", "new-1"):
        app.backend.mark_as_done(name, name)
    app.backend.save_group("old-group", GroupResult("old-group", [], app=app))
    (results_dir / "unrelated.txt").write_text("not a result")
    past = (datetime.datetime.now() - datetime.timedelta(hours=2)).timestamp()
    for name in (
        "celery-task-meta-old-1",
        "celery-task-meta-old-2",
        "celery-taskset-meta-old-group",
        "unrelated.txt",
    ):
        os.utime(results_dir / name, (past, past))
    app.backend.cleanup()
    assert sorted(p.name for p in results_dir.iterdir() if not p.name.startswith(".")) == [
        "celery-task-meta-new-1",
        "unrelated.txt",
    ]


def test_cleanup_expires_chord_bookkeeping_after_result_chord_expires(make_app, results_dir):
    app = make_app(
        result_expires=datetime.timedelta(days=1),
        result_chord_expires=datetime.timedelta(minutes=10),
        result_storage="filesystem",
        result_storage_config={"location": str(results_dir)},
    )
    app.backend.mark_as_done("result", 1)
    app.backend.set(app.backend.get_key_for_chord("abandoned"), app.backend.encode({"size": 2, "done": []}))
    past = (datetime.datetime.now() - datetime.timedelta(hours=1)).timestamp()
    for name in ("celery-task-meta-result", "chord-unlock-abandoned"):
        os.utime(results_dir / name, (past, past))
    app.backend.cleanup()
    assert sorted(p.name for p in results_dir.iterdir()) == ["celery-task-meta-result"]


def test_cleanup_with_no_expiry_keeps_everything(make_app, results_dir):
    app = make_app(
        result_expires=None, result_storage="filesystem", result_storage_config={"location": str(results_dir)}
    )
    app.backend.mark_as_done("keep", 1)
    past = (datetime.datetime.now() - datetime.timedelta(days=30)).timestamp()
    os.utime(results_dir / "celery-task-meta-keep", (past, past))
    app.backend.cleanup()
    assert (results_dir / "celery-task-meta-keep").exists()


class Flaky(ThirdPartyFolderStorage):
    """Fails the next `failures` reads with `error`."""

    failures = 0
    error: Exception = ConnectionResetError("connection reset by peer")

    def _open(self, name, mode="rb"):
        if Flaky.failures > 0:
            Flaky.failures -= 1
            raise Flaky.error
        return super()._open(name, mode)


class CustomTransient(Exception):
    pass


@pytest.fixture
def flaky_app(make_app, results_dir):
    def build(error: Exception, **conf):
        Flaky.error, Flaky.failures = error, 0
        app = make_app(
            result_storage=Flaky,
            result_storage_config={"location": str(results_dir)},
            result_backend_always_retry=True,
            result_backend_base_sleep_between_retries_ms=1,
            **conf,
        )
        app.backend.mark_as_done("flaky", "ok")
        return app

    yield build
    Flaky.failures = 0


def test_transient_errors_retry_under_always_retry(flaky_app):
    app = flaky_app(ConnectionResetError("connection reset by peer"), result_backend_max_retries=5)
    Flaky.failures = 2
    assert app.backend.get_task_meta("flaky", cache=False)["result"] == "ok"
    Flaky.failures = 10
    with pytest.raises(Exception, match=r"failed to get meta|connection reset"):
        app.backend.get_task_meta("flaky", cache=False)


def test_access_errors_are_not_retried(flaky_app):
    app = flaky_app(PermissionError("denied"), result_backend_max_retries=5)
    Flaky.failures = 1
    with pytest.raises(PermissionError):
        app.backend.get_task_meta("flaky", cache=False)
    assert Flaky.failures == 0  # tried once, not again


def test_result_safe_to_retry_adds_exception_classes(flaky_app):
    app = flaky_app(
        CustomTransient("try again"),
        result_backend_max_retries=3,
        result_safe_to_retry=["tests.test_backend.CustomTransient"],
    )
    Flaky.failures = 2
    assert app.backend.get_task_meta("flaky", cache=False)["result"] == "ok"
    assert app.backend.exception_safe_to_retry(CustomTransient())
    assert not app.backend.exception_safe_to_retry(PermissionError())


def test_result_safe_to_retry_bad_value_is_named(make_app, results_dir):
    with pytest.raises(ImproperlyConfigured, match=r"result_safe_to_retry.*no\.such\.Error"):
        _ = make_app(
            result_storage="filesystem",
            result_storage_config={"location": str(results_dir)},
            result_safe_to_retry=["no.such.Error"],
        ).backend


def test_adapter_is_rebuilt_after_fork(fs_app):
    backend = fs_app.backend
    parent_adapter = backend.adapter
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        try:
            child_adapter = backend.adapter
            backend.mark_as_done("from-child", "hi")
            os.write(write_end, b"1" if child_adapter is not parent_adapter else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read_end, 1) == b"1"
    assert backend.adapter is parent_adapter
    assert backend.get_task_meta("from-child")["result"] == "hi"


class CountingMemoryStorage(InMemoryStorage):
    """InMemoryStorage that counts the Storage API calls the backend makes."""

    calls: list[str] = []

    def open(self, name, mode="rb"):
        self.calls.append("open")
        return super().open(name, mode)

    def save(self, name, content, max_length=None):
        self.calls.append("save")
        return super().save(name, content, max_length)

    def delete(self, name):
        self.calls.append("delete")
        return super().delete(name)

    def get_modified_time(self, name):
        self.calls.append("get_modified_time")
        return super().get_modified_time(name)


def test_generic_adapter_storage_calls(make_app):
    backend = make_app(result_storage=CountingMemoryStorage).backend
    CountingMemoryStorage.calls = []
    backend.mark_as_started("g")
    assert CountingMemoryStorage.calls == ["open", "save"]  # read first (Celery's rule), then write
    CountingMemoryStorage.calls = []
    backend.get_task_meta("g", cache=False)
    assert CountingMemoryStorage.calls == ["open"]
    CountingMemoryStorage.calls = []
    backend.mark_as_done("g", 1)
    # InMemoryStorage keeps existing files, so the rewrite replaces the
    # original and drops the copy the storage saved beside it.
    assert CountingMemoryStorage.calls == ["open", "save", "delete", "save", "delete"]
    assert backend.get_task_meta("g", cache=False)["result"] == 1
    assert backend.adapter.storage.listdir("")[1] == ["celery-task-meta-g"]


def test_fork_while_another_thread_holds_the_lock(fs_app):
    backend = fs_app.backend
    backend.mark_as_done("before-fork", 1)
    backend._lock.acquire()  # as if a reader thread were inside the lock at fork time
    try:
        pid = os.fork()
        if pid == 0:
            try:
                backend.mark_as_done("child-after-fork", 2)
                os._exit(0)
            finally:
                os._exit(1)
    finally:
        backend._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert backend.get_task_meta("child-after-fork", cache=False)["result"] == 2


class BarrierStorage(ThirdPartyFolderStorage):
    """Lets reads through only in groups of four at once, counting overlap."""

    barrier = threading.Barrier(4, timeout=10)
    lock = threading.Lock()
    in_flight = 0
    most = 0

    def _open(self, name, mode="rb"):
        cls = BarrierStorage
        with cls.lock:
            cls.in_flight += 1
            cls.most = max(cls.most, cls.in_flight)
        try:
            cls.barrier.wait()
            return super()._open(name, mode)
        finally:
            with cls.lock:
                cls.in_flight -= 1


def test_batch_reads_run_in_parallel_bounded_by_the_concurrency_setting(make_app, results_dir):
    writer = make_app(result_storage="filesystem", result_storage_config={"location": str(results_dir)})
    ids = [f"par-{i}" for i in range(8)]
    for i, task_id in enumerate(ids):
        writer.backend.mark_as_done(task_id, i)
    app = make_app(
        result_storage=BarrierStorage,
        result_storage_config={"location": str(results_dir)},
        result_storage_concurrency=4,
    )
    results = ResultSet([AsyncResult(task_id, app=app) for task_id in ids], app=app)
    # Eight reads pass a four-party barrier only if four run at once.
    assert results.join_native(timeout=30) == list(range(8))
    assert BarrierStorage.most == 4


def test_local_files_are_read_in_the_calling_thread(fs_app, monkeypatch):
    backend = fs_app.backend
    for i in range(5):
        backend.mark_as_done(f"seq-{i}", i)
    readers = set()
    original = backend.adapter.read

    def read(name):
        readers.add(threading.current_thread().name)
        return original(name)

    monkeypatch.setattr(backend.adapter, "read", read)
    results = ResultSet([AsyncResult(f"seq-{i}", app=fs_app) for i in range(5)], app=fs_app)
    assert results.join_native(timeout=5) == list(range(5))
    assert readers == {threading.current_thread().name}


def test_an_empty_object_reads_as_pending_also_in_batch_reads(make_app, results_dir):
    app = make_app(
        result_storage=ThirdPartyFolderStorage, result_storage_config={"location": str(results_dir)}
    )
    app.backend.mark_as_done("whole", 1)
    (results_dir / "celery-task-meta-being-written").write_bytes(b"")  # created, not yet written
    assert app.backend.get_task_meta("being-written", cache=False)["status"] == states.PENDING
    pending = ResultSet([AsyncResult("whole", app=app), AsyncResult("being-written", app=app)], app=app)
    with pytest.raises(CeleryTimeoutError):
        pending.join_native(timeout=0.2, interval=0.05)


def test_generic_cleanup_asks_modified_times_of_results_only(make_app):
    backend = make_app(result_storage=CountingMemoryStorage).backend
    backend.mark_as_done("r1", 1)
    backend.mark_as_done("r2", 2)
    backend.adapter.storage.save("media/unrelated.jpg", ContentFile(b"jpeg"))
    backend.adapter.storage.save("unrelated.txt", ContentFile(b"text"))
    CountingMemoryStorage.calls = []
    backend.cleanup()
    assert CountingMemoryStorage.calls == ["get_modified_time", "get_modified_time"]
