"""The filesystem provider: exact file system operations, atomicity, races."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import Counter

import pytest
from celery import states
from django.core.files.storage import FileSystemStorage

from django_storage_celery_results.adapters import CREATE, Update
from django_storage_celery_results.exceptions import StoredObjectTooLarge, VersionMismatch
from django_storage_celery_results_filesystem import FileSystemAdapter
from django_storage_celery_results_filesystem.adapter import _read_to_end
from support.fscalls import counting_fs_calls

FORK = multiprocessing.get_context("fork")


@pytest.fixture
def count_fs_calls():
    with counting_fs_calls() as calls:
        yield calls


def test_new_result_is_one_file_write_and_read_is_one_file_read(fs_app, count_fs_calls):
    backend = fs_app.backend
    backend.mark_as_done("warm-up", 0)  # creates the folder once
    count_fs_calls.clear()

    backend.mark_as_done("counted", 1)
    # one temporary file created, linked into place create-only, its temp name dropped
    assert count_fs_calls == Counter({"os.open": 1, "os.link": 1, "os.unlink": 1})

    count_fs_calls.clear()
    assert backend.get_task_meta("counted", cache=False)["result"] == 1
    assert count_fs_calls == Counter({"os.open": 1})

    count_fs_calls.clear()
    assert backend.get_task_meta("missing", cache=False)["status"] == states.PENDING
    assert count_fs_calls == Counter({"os.open": 1})


def test_started_then_success_needs_no_read(fs_app, count_fs_calls):
    backend = fs_app.backend
    backend.mark_as_done("warm-up", 0)
    count_fs_calls.clear()
    backend.mark_as_started("two-step")
    backend.mark_as_done("two-step", "ok")
    # STARTED: create-only; SUCCESS: version-matched replace (open+flock the
    # current file, stat the name, replace); never a read of the result.
    assert count_fs_calls["open"] == 0
    assert count_fs_calls["os.link"] == 1 and count_fs_calls["os.replace"] == 1
    assert count_fs_calls["os.open"] == 3  # two temp files and the lock on the current file
    assert backend.get_task_meta("two-step", cache=False)["result"] == "ok"


def test_files_honour_the_storage_permissions(tmp_path):
    storage = FileSystemStorage(
        location=str(tmp_path / "new"), file_permissions_mode=0o640, directory_permissions_mode=0o750
    )
    adapter = FileSystemAdapter(storage)
    adapter.put("celery-task-meta-x", b"{}", CREATE)
    assert (os.stat(tmp_path / "new" / "celery-task-meta-x").st_mode & 0o777) == 0o640
    assert (os.stat(tmp_path / "new").st_mode & 0o777) == 0o750
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["celery-task-meta-x"]


def test_conditional_writes(tmp_path):
    adapter = FileSystemAdapter(FileSystemStorage(location=str(tmp_path)))
    first = adapter.put("n", b"one", CREATE)
    with pytest.raises(VersionMismatch):
        adapter.put("n", b"two", CREATE)
    second = adapter.put("n", b"two", Update(first))
    with pytest.raises(VersionMismatch):
        adapter.put("n", b"three", Update(first))
    stored = adapter.read("n")
    assert stored.data == b"two" and stored.version == second
    adapter.delete("n")
    with pytest.raises(VersionMismatch):
        adapter.put("n", b"four", Update(second))
    assert adapter.read("n") is None
    assert sorted(os.listdir(tmp_path)) == []  # no temporary files left behind


def _increment(location: str, rounds: int, queue) -> None:
    adapter = FileSystemAdapter(FileSystemStorage(location=location))
    conflicts = 0
    for _ in range(rounds):
        while True:
            current = adapter.read("counter")
            try:
                adapter.put("counter", str(int(current.data) + 1).encode(), Update(current.version))
                break
            except VersionMismatch:
                conflicts += 1
    queue.put(conflicts)


def test_version_matched_writes_are_safe_between_processes(tmp_path):
    adapter = FileSystemAdapter(FileSystemStorage(location=str(tmp_path)))
    adapter.put("counter", b"0", CREATE)
    queue = FORK.Queue()
    workers = [FORK.Process(target=_increment, args=(str(tmp_path), 40, queue)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    assert adapter.read("counter").data == b"160"  # no lost update


def _create(location: str, index: int, queue) -> None:
    adapter = FileSystemAdapter(FileSystemStorage(location=location))
    try:
        adapter.put("once", str(index).encode(), CREATE)
        queue.put(index)
    except VersionMismatch:
        queue.put(None)


def test_create_only_has_exactly_one_winner_between_processes(tmp_path):
    queue = FORK.Queue()
    workers = [FORK.Process(target=_create, args=(str(tmp_path), i, queue)) for i in range(6)]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(30)
    winners = [index for index in outcomes if index is not None]
    assert len(winners) == 1
    adapter = FileSystemAdapter(FileSystemStorage(location=str(tmp_path)))
    assert adapter.read("once").data == str(winners[0]).encode()


def _rewrite(location: str, stop, payloads) -> None:
    adapter = FileSystemAdapter(FileSystemStorage(location=location))
    i = 0
    while not stop.is_set():
        adapter.put("busy", payloads[i % len(payloads)])
        i += 1


def _read_many(location: str, payloads, rounds: int, queue) -> None:
    adapter = FileSystemAdapter(FileSystemStorage(location=location))
    bad = 0
    for _ in range(rounds):
        stored = adapter.read("busy")
        if stored is None or stored.data not in payloads:
            bad += 1
    queue.put(bad)


def test_concurrent_readers_never_see_a_partial_or_missing_result(tmp_path):
    payloads = [bytes([65 + i]) * (256 * 1024) for i in range(3)]  # 256 KiB each
    adapter = FileSystemAdapter(FileSystemStorage(location=str(tmp_path)))
    adapter.put("busy", payloads[0], CREATE)
    stop, queue = FORK.Event(), FORK.Queue()
    writer = FORK.Process(target=_rewrite, args=(str(tmp_path), stop, payloads))
    readers = [FORK.Process(target=_read_many, args=(str(tmp_path), payloads, 300, queue)) for _ in range(3)]
    writer.start()
    for reader in readers:
        reader.start()
    bad = [queue.get(timeout=120) for _ in readers]
    stop.set()
    writer.join(30)
    for reader in readers:
        reader.join(30)
    assert bad == [0, 0, 0]


def test_backend_state_never_goes_backwards_while_rewritten(fs_app, results_dir):
    backend = fs_app.backend
    backend.mark_as_started("watched")
    stop, queue = FORK.Event(), FORK.Queue()

    def rewrite():
        n = 0
        while not stop.is_set():
            backend.store_result("watched", {"step": n, "pad": "x" * 50_000}, "PROGRESS")
            n += 1

    def watch():
        seen = Counter()
        for _ in range(300):
            seen[backend.get_task_meta("watched", cache=False)["status"]] += 1
        queue.put(dict(seen))

    writer = FORK.Process(target=rewrite)
    watcher = FORK.Process(target=watch)
    writer.start()
    watcher.start()
    seen = queue.get(timeout=120)
    stop.set()
    writer.join(30)
    watcher.join(30)
    assert states.PENDING not in seen
    assert sum(seen.values()) == 300


def test_listing_is_one_pass_and_skips_temporary_files(tmp_path, count_fs_calls):
    adapter = FileSystemAdapter(FileSystemStorage(location=str(tmp_path)))
    for i in range(5):
        adapter.put(f"celery-task-meta-{i}", b"{}", CREATE)
    (tmp_path / ".celery-tmp-leftover").write_bytes(b"partial")
    (tmp_path / "folder").mkdir()
    count_fs_calls.clear()
    names = sorted(item.name for item in adapter.list())
    assert names == [f"celery-task-meta-{i}" for i in range(5)]
    assert count_fs_calls == Counter({"os.scandir": 1})


def test_cleanup_removes_old_leftovers_of_interrupted_writes(fs_app, results_dir):
    backend = fs_app.backend
    backend.mark_as_done("kept", 1)
    old = results_dir / ".celery-tmp-crashed"
    fresh = results_dir / ".celery-tmp-in-flight"
    old.write_bytes(b"partial")
    fresh.write_bytes(b"being written")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    backend.cleanup()
    assert not old.exists()
    assert fresh.exists()  # a write in progress is never touched
    assert (results_dir / "celery-task-meta-kept").exists()


def _pipe_holding(*chunks: bytes, pause: float = 0.0) -> int:
    """The read end of a pipe its writer fills with chunks (pausing between
    them, so a read returns short) and then closes."""
    read_end, write_end = os.pipe()

    def fill() -> None:
        for chunk in chunks:
            os.write(write_end, chunk)
            time.sleep(pause)
        os.close(write_end)

    if pause:
        threading.Thread(target=fill, daemon=True).start()
    else:
        fill()  # all of it there before the first read
    return read_end


@pytest.mark.parametrize(
    ("chunks", "size", "pause"),
    [
        ((b"0123456789",), 10, 0.0),  # as fstat said: one read
        ((b"0123", b"456789"), 10, 0.2),  # a short read, as on a network file system
        ((b"0123456789", b"abc"), 10, 0.0),  # written in place since fstat
    ],
)
def test_a_file_is_read_to_its_end(chunks, size, pause):
    fd = _pipe_holding(*chunks, pause=pause)
    try:
        assert _read_to_end(fd, size, limit=100) == b"".join(chunks)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("chunks", "size", "limit"),
    [
        ((b"0" * 10, b"1" * 200), 10, 100),
        ((b"0" * 10, b"1"), 10, 10),  # at the limit when fstat ran, one byte past it when read
    ],
)
def test_a_file_written_in_place_past_the_limit_is_refused_while_read(chunks, size, limit):
    fd = _pipe_holding(*chunks)
    try:
        with pytest.raises(StoredObjectTooLarge):
            _read_to_end(fd, size, limit=limit)
    finally:
        os.close(fd)


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "nul\x00"])
def test_adapter_refuses_names_that_are_not_one_file_name(tmp_path, name):
    adapter = FileSystemAdapter(FileSystemStorage(location=str(tmp_path)))
    with pytest.raises(ValueError, match="not a single file name"):
        adapter.read(name)
    with pytest.raises(ValueError, match="not a single file name"):
        adapter.put(name, b"x")


def test_network_file_systems_are_read_in_parallel(tmp_path):
    from django_storage_celery_results_filesystem.adapter import filesystem_type

    mounts = tmp_path / "mounts"
    mounts.write_text(
        "overlay / overlay rw 0 0\n"
        "server:/export /mnt/shared nfs4 rw,relatime 0 0\n"
        "//host/share /mnt/win\\040share cifs rw 0 0\n"
        "tmpfs /mnt/shared/cache tmpfs rw 0 0\n"
    )
    assert filesystem_type("/mnt/shared/results", str(mounts)) == "nfs4"
    assert filesystem_type("/mnt/shared", str(mounts)) == "nfs4"
    assert filesystem_type("/mnt/sharedother", str(mounts)) == "overlay"
    assert filesystem_type("/mnt/shared/cache/x", str(mounts)) == "tmpfs"
    assert filesystem_type("/mnt/win share/results", str(mounts)) == "cifs"
    assert filesystem_type("/x", str(tmp_path / "missing")) is None
    assert not FileSystemAdapter(FileSystemStorage(location=str(tmp_path))).parallel_reads
