"""The result size limit (result_storage_max_size): a result over it is never
stored, and a stored object over it is never read whole, on the folder, the
generic adapter and every object store."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import tracemalloc
import zlib
from types import SimpleNamespace

import brotli
import pytest
from celery import states
from celery.result import AsyncResult
from click.testing import CliRunner

from django_storage_celery_results import codec
from django_storage_celery_results.adapters import Content
from django_storage_celery_results.cli import results
from django_storage_celery_results.exceptions import (
    ImproperlyConfigured,
    InvalidStoredResult,
    ResultTooLarge,
    StoredObjectTooLarge,
)
from support.stores import STORES

try:
    from compression import zstd  # Python 3.14
except ImportError:
    from backports import zstd

TASK = "5d1c3e0a-9f8e-4b7a-8c6d-2e1f0a9b8c7d"
LIMIT = 2000


@pytest.fixture(params=["filesystem", "generic", *STORES])
def storage(request, make_app, results_dir):
    """(app with a 2,000-byte limit, the object store under test or None)."""
    if request.param in ("filesystem", "generic"):
        adapter = "generic" if request.param == "generic" else "auto"
        app = make_app(
            result_storage="filesystem",
            result_storage_config={"location": str(results_dir)},
            result_storage_adapter=adapter,
            result_storage_max_size=LIMIT,
        )
        return app, None
    store = request.getfixturevalue("fresh_store")(request.param)
    return store.app(make_app, result_storage_max_size=LIMIT), store


def plant(app, size: int, task_id: str = TASK) -> None:
    backend = app.backend
    backend.adapter.put(backend.get_key_for_task(task_id), b"x" * size)


def test_a_result_over_the_limit_is_refused_and_nothing_is_stored(storage):
    app, _store = storage
    backend = app.backend
    backend.store_result(TASK, None, states.STARTED)
    with pytest.raises(ResultTooLarge) as refused:
        backend.store_result(TASK, "y" * LIMIT, states.SUCCESS)
    message = str(refused.value)
    assert TASK in message and f"{LIMIT}-byte limit" in message
    assert "result_storage_max_size" in message
    assert "yyyy" not in message
    assert (refused.value.task_id, refused.value.size > LIMIT) == (TASK, True)
    # the STARTED state stays; nothing partial replaced it
    assert backend.get_task_meta(TASK, cache=False)["status"] == states.STARTED


def test_a_refused_result_costs_no_request(storage):
    app, store = storage
    if store is None:
        pytest.skip("a folder makes no requests to count")
    with store.proxy.counting() as seen, pytest.raises(ResultTooLarge):
        app.backend.store_result(TASK, "y" * LIMIT, states.SUCCESS)
    assert seen == []
    assert store.names() == set()


def test_a_result_under_the_limit_is_stored_and_read(storage):
    app, _store = storage
    value = "z" * (LIMIT - 400)  # the rest of the stored result is ~150 bytes
    app.backend.store_result(TASK, value, states.SUCCESS)
    assert app.backend.get_task_meta(TASK, cache=False)["result"] == value


def test_celery_stores_the_refusal_as_the_tasks_failure(storage):
    """What the worker does (celery.app.trace): mark_as_done raises an
    EncodeError, so the task is stored as FAILURE with that error."""
    app, _store = storage
    app.conf.task_store_eager_result = True

    @app.task(name="tests.too_big", shared=False)
    def too_big():
        return "y" * LIMIT

    too_big.apply(task_id=TASK)  # eager, through Celery's tracer, storing results
    meta = app.backend.get_task_meta(TASK, cache=False)
    assert meta["status"] == states.FAILURE
    with pytest.raises(ResultTooLarge, match=TASK):
        AsyncResult(TASK, app=app).get(timeout=1)


def test_a_failure_over_the_limit_is_stored_without_its_exception(storage):
    app, _store = storage
    app.backend.mark_as_failure(TASK, ValueError("e" * LIMIT))
    failed = AsyncResult(TASK, app=app)
    assert failed.state == states.FAILURE
    with pytest.raises(ResultTooLarge, match=f"The ValueError failure of task '{TASK}'"):
        failed.get(timeout=1)


def test_a_stored_object_over_the_limit_is_an_error_naming_the_task_and_size(storage):
    app, _store = storage
    plant(app, LIMIT + 3000)
    with pytest.raises(InvalidStoredResult) as raised:
        app.backend.get_task_meta(TASK, cache=False)
    message = str(raised.value)
    assert TASK in message and f"{LIMIT}-byte limit" in message
    if app.backend.adapter.conditional_writes:  # every provider adapter says the size
        assert f"{LIMIT + 3000} bytes" in message
    else:  # the generic adapter reads one byte past the limit and stops
        assert f"more than {LIMIT} bytes" in message
    with pytest.raises(InvalidStoredResult, match="limit"):
        list(app.backend.get_many([TASK], timeout=1))
    assert app.backend.task_result_exists(TASK)


def test_the_tasks_own_write_replaces_an_oversized_object(storage):
    app, _store = storage
    plant(app, LIMIT * 3)
    app.backend.mark_as_started(TASK)
    app.backend.mark_as_done(TASK, 7)
    assert AsyncResult(TASK, app=app).get(timeout=1) == 7


def test_an_oversized_read_stops_at_the_headers_where_the_store_allows(storage):
    app, store = storage
    if store is None:
        pytest.skip("a folder makes no requests to count")
    plant(app, LIMIT + 3000)
    with store.proxy.counting() as seen, pytest.raises(InvalidStoredResult):
        app.backend.get_task_meta(TASK, cache=False)
    # S3 and Azure say the size with the first answer; GCS streams the media and is
    # asked for the size (one metadata request) only once the limit is passed
    expected = ["read", "GET object"] if store.preset == "gcs" else ["read"]
    assert store.calls(seen) == expected


def test_a_group_over_the_limit_is_refused(storage):
    app, _store = storage
    group = app.GroupResult("g-1", [app.AsyncResult(f"task-{i:04d}-" + "x" * 30) for i in range(100)])
    with pytest.raises(ResultTooLarge, match="'g-1'"):
        group.save(backend=app.backend)
    assert app.backend.restore_group("g-1", cache=False) is None


@pytest.mark.parametrize("value", [0, -1, "64MB", 1.5, True])
def test_the_limit_must_be_a_positive_number_of_bytes(make_app, results_dir, value):
    app = make_app(
        result_storage="filesystem",
        result_storage_config={"location": str(results_dir)},
        result_storage_max_size=value,
    )
    with pytest.raises(ImproperlyConfigured, match="CELERY_RESULT_STORAGE_MAX_SIZE"):
        app.backend  # noqa: B018


def test_the_default_limit_is_64_mib(fs_app):
    assert fs_app.backend.max_size == 64 * 1024 * 1024


# -- compressed results: the limit holds after decompression too ---------------------

#: 1 MiB of zeros, zlib-compressed to about 1 KiB: under LIMIT as stored, far over it expanded.
ZLIB_BOMB = zlib.compress(bytes(1 << 20), 9)


def in_band(kombu_type: str, body: bytes) -> bytes:
    """A payload in the in-band compressed form every store can hold."""
    return codec.COMPRESSED_MARKER + kombu_type.encode() + b"\x00" + body


def assert_refused_past_the_limit(app) -> None:
    with pytest.raises(InvalidStoredResult) as raised:
        AsyncResult(TASK, app=app).get(timeout=1)
    message = str(raised.value)
    assert TASK in message and f"more than {LIMIT} bytes" in message and "result_storage_max_size" in message
    assert "\x00" not in message
    shown = CliRunner().invoke(results, ["show", TASK, "--json"], obj=SimpleNamespace(app=app))
    assert shown.exit_code == 1, shown.output
    assert f"more than {LIMIT} bytes" in json.loads(shown.output)["problem"]


def test_a_compressed_result_expanding_past_the_limit_is_refused(storage):
    app, _store = storage
    backend = app.backend
    backend.adapter.put(backend.get_key_for_task(TASK), in_band("application/x-gzip", ZLIB_BOMB))
    assert_refused_past_the_limit(app)
    # the task's own write still replaces it
    backend.mark_as_done(TASK, 7)
    assert AsyncResult(TASK, app=app).get(timeout=1) == 7


#: 1 MiB of zeros in each Content-Encoding results are stored with.
LABELLED_BOMBS = {
    "deflate": ZLIB_BOMB,
    "br": brotli.compress(bytes(1 << 20)),
    "zstd": zstd.compress(bytes(1 << 20)),
}


@pytest.mark.parametrize("encoding", LABELLED_BOMBS)
@pytest.mark.parametrize("store_name", STORES)
def test_a_labelled_object_expanding_past_the_limit_is_refused(store_name, encoding, fresh_store, make_app):
    """The form compressed results take on stores that keep labels (the body
    with its Content-Encoding: deflate, br, zstd): no SDK expands it on the way in."""
    app = fresh_store(store_name).app(make_app, result_storage_max_size=LIMIT)
    backend = app.backend
    bomb = LABELLED_BOMBS[encoding]
    assert len(bomb) < LIMIT
    backend.adapter.put(backend.get_key_for_task(TASK), bomb, content=Content("application/json", encoding))
    assert_refused_past_the_limit(app)


@pytest.mark.parametrize("store_name", STORES)
def test_a_gzip_labelled_object_is_not_a_result(store_name, fresh_store, make_app):
    """gzip is a Content-Encoding results are never stored with: a clear error, nothing expanded."""
    app = fresh_store(store_name).app(make_app, result_storage_max_size=LIMIT)
    backend = app.backend
    bomb = gzip.compress(bytes(1 << 20))
    backend.adapter.put(backend.get_key_for_task(TASK), bomb, content=Content("application/json", "gzip"))
    with pytest.raises(InvalidStoredResult, match=f"{TASK}.*Content-Encoding 'gzip'"):
        AsyncResult(TASK, app=app).get(timeout=1)


def test_a_result_over_the_limit_before_compression_is_refused(make_app, results_dir):
    """What compresses under the limit but would expand past it on read is never stored."""
    app = make_app(
        result_storage="filesystem",
        result_storage_config={"location": str(results_dir)},
        result_storage_max_size=LIMIT,
        result_compression="zlib",
    )
    with pytest.raises(ResultTooLarge, match=f"{TASK}.*serialized, over the {LIMIT}-byte limit"):
        app.backend.store_result(TASK, "y" * 10 * LIMIT, states.SUCCESS)
    value = "y" * (LIMIT - 400)
    app.backend.store_result(TASK, value, states.SUCCESS)
    assert AsyncResult(TASK, app=app).get(timeout=1) == value


class BrotliCompressor:
    """brotli's streaming compressor in the compress()/flush() shape of the others."""

    def __init__(self) -> None:
        self._compressor = brotli.Compressor()

    def compress(self, data: bytes) -> bytes:
        return self._compressor.process(data)

    def flush(self) -> bytes:
        return self._compressor.finish()


def _compressed_zeros(compressor, size: int) -> bytes:
    chunk = bytes(1 << 20)
    return b"".join(compressor.compress(chunk) for _ in range(size >> 20)) + compressor.flush()


@pytest.mark.parametrize(
    ("kombu_type", "compressor", "size"),
    [
        ("application/x-gzip", lambda: zlib.compressobj(9), 64 << 20),
        ("application/x-bz2", bz2.BZ2Compressor, 16 << 20),
        ("application/x-lzma", lambda: lzma.LZMACompressor(preset=1), 16 << 20),
        ("application/x-brotli", BrotliCompressor, 64 << 20),
        ("application/zstd", zstd.ZstdCompressor, 64 << 20),
    ],
    ids=["zlib", "bz2", "lzma", "brotli", "zstd"],
)
def test_decompression_stops_at_the_limit_without_making_the_expansion(kombu_type, compressor, size):
    payload = in_band(kombu_type, _compressed_zeros(compressor(), size))
    limit = 100_000
    tracemalloc.start()
    try:
        with pytest.raises(StoredObjectTooLarge):
            codec.unpack(payload, limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size // 8  # the decompressor's own state (lzma's 1 MiB dictionary) and the limit
    one_mib = in_band(kombu_type, _compressed_zeros(compressor(), 1 << 20))
    assert codec.unpack(one_mib, 1 << 20) == bytes(1 << 20)  # at the limit exactly: read


def test_a_truncated_compressed_body_is_not_a_result(fs_app):
    backend = fs_app.backend
    truncated = zlib.compress(b'{"a": 1}' * 10)[:-4]
    backend.adapter.put(backend.get_key_for_task(TASK), in_band("application/x-gzip", truncated))
    with pytest.raises(InvalidStoredResult, match=f"{TASK}.*does not decode"):
        backend.get_task_meta(TASK, cache=False)
