"""Chords exactly once under faults and races (issue 17).

The bucketed markers (chords.MarkerCounter) with small buckets, so a few
tasks span several; the double election replayed deterministically; chord
bookkeeping under injected transient errors with the client's own retries
off; create-only markers whose answer is lost after the store applied them;
and random interleavings of header completions, with duplicates, from
several threads (hypothesis), on the folder, S3 (moto) and Azure (Azurite),
where the buckets are append blobs (chords.AppendCounter).
"""

from __future__ import annotations

import threading
import uuid
from unittest import mock
from urllib.parse import unquote

import pytest
from celery import states
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_storage_celery_results import chords
from django_storage_celery_results.backends import StorageBackend
from support.chords import callback_lines, finish, start_chord
from support.faults import lost_answer, xml_error
from support.stores.azure import azure_error
from support.stores.azure import no_sdk_retries as no_azure_sdk_retries
from support.stores.s3 import no_sdk_retries


@pytest.fixture
def small_buckets(monkeypatch):
    for name in ("BUCKET_SIZE", "FOLDER_BUCKET_SIZE"):  # not raising: the tests also run on the old design
        monkeypatch.setattr(chords, name, 3, raising=False)
    monkeypatch.setattr(chords, "SUB_BUCKET_SIZE", 2, raising=False)  # a short sub-bucket in every bucket
    monkeypatch.setattr(chords, "FULL_GROUP_SIZE", 2, raising=False)  # from 3 buckets on, groups of 2
    return 3


def eager_app(make_app, tmp_path, config, storage="s3", **conf):
    app = make_app(
        result_storage=storage,
        result_storage_config=config,
        task_always_eager=True,
        task_store_eager_result=True,
        result_backend_base_sleep_between_retries_ms=1,
        result_backend_max_sleep_between_retries_ms=5,
        **conf,
    )
    calls = tmp_path / "callback-calls"
    errbacks = tmp_path / "errback-calls"

    @app.task(name="tests.record_callback", shared=False)
    def record_callback(values):
        with calls.open("a") as handle:
            handle.write(f"{sum(values)}\n")
        return sum(values)

    @app.task(name="tests.record_errback", shared=False)
    def record_errback(*args, **kwargs):
        with errbacks.open("a") as handle:
            handle.write("errback\n")

    app.calls = calls
    app.errbacks = errbacks
    return app


def chord_objects(app) -> list[str]:
    prefix = app.backend.chord_keyprefix
    return [item.name for item in app.backend.adapter.list(prefix=prefix)]


# -- the buckets -----------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, 4, 10])
def test_positional_buckets_fire_once_after_the_last_task(chord_app, small_buckets, size):
    group_id, task_ids, callback = start_chord(chord_app, size)
    order = list(range(size))[::-1]  # the last bucket, the short one, fills first
    for done, position in enumerate(order):
        assert callback_lines(chord_app) == []
        finish(chord_app, group_id, task_ids[position], callback, position=position)
        if done < size - 1:
            finish(chord_app, group_id, task_ids[position], callback, position=position)  # redelivered
            assert chord_app.backend.restore_group(group_id, cache=False) is not None
    assert callback_lines(chord_app) == [str(size)]
    assert chord_objects(chord_app) == []


def test_tasks_with_and_without_positions_in_one_chord(chord_app, small_buckets):
    group_id, task_ids, callback = start_chord(chord_app, 8)
    for position, task_id in enumerate(task_ids):
        assert callback_lines(chord_app) == []
        # every third task reports no position (or one out of range)
        unplaced = {0: None, 1: 99}.get(position % 3, position)
        finish(chord_app, group_id, task_id, callback, position=unplaced)
    assert callback_lines(chord_app) == ["8"]
    assert chord_objects(chord_app) == []


def test_a_nested_header_counts_the_corrected_size(chord_app, small_buckets):
    """A group in the header: apply sees 2 results, Celery corrects the size to 4,
    and the positions of the inner group's tasks collide with the outer ones."""
    app = chord_app
    group_id = str(uuid.uuid4())
    inner = app.GroupResult(str(uuid.uuid4()), [app.AsyncResult(str(uuid.uuid4())) for _ in range(3)])
    single = app.AsyncResult(str(uuid.uuid4()))
    callback = app.signature("tests.record_callback")
    callback.freeze()
    app.backend.apply_chord((group_id, [inner, single]), callback)
    app.backend.set_chord_size(group_id, 4)
    reporters = [(result.id, index) for index, result in enumerate(inner.results)] + [(single.id, 1)]
    for task_id, position in reporters:
        assert callback_lines(app) == []
        finish(app, group_id, task_id, callback, position=position)
    assert callback_lines(app) == ["4"]


def test_a_size_correction_on_a_flat_header_is_honoured(chord_app, small_buckets):
    group_id, task_ids, callback = start_chord(chord_app, 7)
    chord_app.backend.set_chord_size(group_id, 6)  # one header entry reports no completion
    chord_app.backend.store_result(task_ids[6], 1, states.SUCCESS)
    for position, task_id in enumerate(task_ids[:6]):
        assert callback_lines(chord_app) == []
        finish(chord_app, group_id, task_id, callback, position=position)
    assert callback_lines(chord_app) == ["7"]


def test_apply_tells_the_header_tasks_how_many_places_the_header_has(chord_app):
    """The callback signature, which each header task gets as request.chord,
    carries the number of positions of a flat header; a nested one gets none."""
    _, _, callback = start_chord(chord_app, 7)
    assert callback[chords.POSITIONS_KEY] == 7
    nested = chord_app.signature("tests.record_callback")
    nested.freeze()
    inner = chord_app.GroupResult(str(uuid.uuid4()), [chord_app.AsyncResult(str(uuid.uuid4()))])
    chord_app.backend.apply_chord((str(uuid.uuid4()), [inner]), nested)
    assert chords.POSITIONS_KEY not in nested


def test_a_callback_without_the_number_of_places_still_fires_once_after_all(chord_app, small_buckets):
    """A chord applied by a version that did not write the number of places:
    every finisher lists its bucket, and the chord still fires once, last."""
    group_id, task_ids, callback = start_chord(chord_app, 8)
    bare = {key: value for key, value in callback.items() if key != chords.POSITIONS_KEY}
    for position in [7, 0, 3, 5, 1, 6, 2]:
        finish(chord_app, group_id, task_ids[position], bare, position=position)
        finish(chord_app, group_id, task_ids[position], bare, position=position)  # redelivered
    assert callback_lines(chord_app) == []
    finish(chord_app, group_id, task_ids[4], bare, position=4)
    assert callback_lines(chord_app) == ["8"]
    assert chord_objects(chord_app) == []


def listed(request) -> str:
    """What an S3 listing of a chord's markers asked for after the chord's name ("b0~1~", "full~", "")."""
    return unquote(request.query).split("prefix=", 1)[1].split("&")[0].split("~", 1)[1]


def test_only_the_last_of_a_sub_bucket_lists_its_bucket(make_app, s3_config, s3_proxy, tmp_path):
    """Sub-buckets of 2 in buckets of 3 (5 tasks: sub-buckets {0,1} {2} | {3,4}):
    a finisher lists its bucket only when its sub-bucket is full."""
    app = eager_app(make_app, tmp_path, s3_config)
    with mock.patch.object(chords, "BUCKET_SIZE", 3), mock.patch.object(chords, "SUB_BUCKET_SIZE", 2):
        group_id, task_ids, callback = start_chord(app, 5)
        listings = []
        for position in [1, 3, 0, 2, 4]:
            with s3_proxy.counting() as seen:
                finish(app, group_id, task_ids[position], callback, position=position)
            listings.append([listed(request) for request in seen if "list-type" in request.query])
    # its sub-bucket only, or then its bucket; the bucket full: the full~ level;
    # the last: both levels, the snapshots of the buckets' results for the
    # join, then the clean-up's listing of the whole chord
    assert listings == [
        ["b0~0~"],
        ["b1~0~"],
        ["b0~0~", "b0~"],
        ["b0~1~", "b0~", "full~"],
        ["b1~0~", "b1~", "full~", "joined~", ""],
    ]
    assert app.calls.read_text().splitlines() == ["5"]


def test_the_full_buckets_are_counted_in_groups_one_level_up(make_app, s3_config, s3_proxy, tmp_path):
    """Buckets of 2 counted in groups of 2 (7 tasks: buckets {0,1} {2,3} | {4,5} {6}):
    a bucket's last finisher lists its group's full buckets, not every one, and
    only a group's last lists the full groups."""
    app = eager_app(make_app, tmp_path, s3_config)
    sizes = {"BUCKET_SIZE": 2, "SUB_BUCKET_SIZE": 2, "FULL_GROUP_SIZE": 2}
    with mock.patch.multiple(chords, **sizes):
        group_id, task_ids, callback = start_chord(app, 7)
        listings = []
        for position in [0, 1, 6, 4, 5, 3, 2]:
            with s3_proxy.counting() as seen:
                finish(app, group_id, task_ids[position], callback, position=position)
            listings.append([listed(request) for request in seen if "list-type" in request.query])
            assert position == 2 or not app.calls.exists()  # 2 is the last
    assert listings == [
        ["b0~0~"],
        ["b0~0~", "b0~", "full~0~"],
        ["b3~0~", "b3~", "full~1~"],
        ["b2~0~"],
        ["b2~0~", "b2~", "full~1~", "fullgroup~"],
        ["b1~0~"],
        ["b1~0~", "b1~", "full~0~", "fullgroup~", "joined~", ""],
    ]
    assert app.calls.read_text().splitlines() == ["7"]
    assert chord_objects(app) == []


def test_folder_neighbours_rewrite_different_bucket_objects(chord_app, small_buckets):
    """In a folder, position p goes to bucket p mod the number of buckets, so
    header tasks finishing together (neighbours) do not race for one object."""
    backend = chord_app.backend
    if backend.adapter.prefix_listing:
        pytest.skip("object stores count markers, not bucket objects")
    group_id, task_ids, callback = start_chord(chord_app, 8)  # 3 buckets of at most 3
    chord_name = backend.get_key_for_chord(group_id)
    assert [backend.decode(backend.get(f"{chord_name}~b{n}"))["count"] for n in range(3)] == [3, 3, 2]
    for position in (0, 1, 2):
        finish(chord_app, group_id, task_ids[position], callback, position=position)
    held = [backend.decode(backend.get(f"{chord_name}~b{n}"))["done"] for n in range(3)]
    assert held == [[task_ids[0]], [task_ids[1]], [task_ids[2]]]
    for position in range(3, 8):
        assert callback_lines(chord_app) == []
        finish(chord_app, group_id, task_ids[position], callback, position=position)
    assert callback_lines(chord_app) == ["8"]
    assert chord_objects(chord_app) == []


def test_a_folder_chord_applied_with_buckets_by_range_still_completes(chord_app, small_buckets):
    """A chord applied before the spread buckets (bucket p // size, no places in
    the chord's object, none in the callback) completes once, after all."""
    app = chord_app
    backend = app.backend
    if backend.adapter.prefix_listing:
        pytest.skip("object stores count markers, not bucket objects")
    group_id = str(uuid.uuid4())
    task_ids = [str(uuid.uuid4()) for _ in range(5)]
    callback = app.signature("tests.record_callback")
    callback.freeze()
    app.GroupResult(group_id, [app.AsyncResult(task_id) for task_id in task_ids]).save(backend=backend)
    chord_name = backend.get_key_for_chord(group_id)
    backend.write_encoded(chord_name, {"size": 5, "done": [], "buckets": 2, "full": [], "fired": False})
    backend.write_encoded(f"{chord_name}~b0", {"count": 3, "done": []})
    backend.write_encoded(f"{chord_name}~b1", {"count": 2, "done": []})
    for position in [4, 0, 2, 3]:
        finish(app, group_id, task_ids[position], dict(callback), position=position)
    assert callback_lines(app) == []
    finish(app, group_id, task_ids[1], dict(callback), position=1)
    assert callback_lines(app) == ["5"]
    assert chord_objects(app) == []


# -- the double election (the failure 2) --------------------------------------


def test_a_finisher_elected_after_the_chord_fired_and_was_cleaned_up_does_nothing(
    make_app, s3_config, tmp_path
):
    """B sees the set complete; before its create of "fired", A (a redelivery of
    the other header task) fires the chord and removes every marker, so B's
    create succeeds: B must find the chord fired, not fail the callback."""
    app = eager_app(make_app, tmp_path, s3_config)
    group_id = str(uuid.uuid4())
    task_ids = [str(uuid.uuid4()) for _ in range(2)]
    callback = app.signature("tests.record_callback").on_error(app.signature("tests.record_errback"))
    callback.freeze()
    app.backend.apply_chord((group_id, [app.AsyncResult(task_id) for task_id in task_ids]), callback)
    finish(app, group_id, task_ids[0], callback)

    backend = app.backend
    write = backend.write_encoded
    replayed = threading.Event()

    def write_encoded(name, value, mode="overwrite"):
        if name.endswith("~fired") and not replayed.is_set():
            replayed.set()
            finish(app, group_id, task_ids[0], callback)  # A, in another worker, wins and cleans up
        return write(name, value, mode)

    backend.write_encoded = write_encoded
    finish(app, group_id, task_ids[1], callback)  # B
    assert replayed.is_set()
    assert callback_lines(app) == ["2"]
    assert not app.errbacks.exists()
    assert app.AsyncResult(callback.id).state == states.SUCCESS
    assert chord_objects(app) == []


# -- transient errors with the client's own retries off (failure 1) -------------------


def chord_request(request) -> bool:
    return "chord-unlock-" in unquote(request.path + "?" + request.query)


def finish_under_faults(app, proxy, faults) -> None:
    """Inject each (fault, requests it matches, how many times), finish a chord
    of 7 header tasks, and check that every fault was served and the chord
    fired once and was cleaned up."""
    group_id, task_ids, callback = start_chord(app, 7)
    for fault, matches, times in faults:
        fault.matches, fault.times = matches, times
        proxy.inject(fault)
    for position, task_id in enumerate(task_ids):
        finish(app, group_id, task_id, callback, position=position)
    assert all(fault.times == 0 for fault in proxy.faults)  # every fault was served
    assert callback_lines(app) == ["7"]
    assert app.AsyncResult(callback.id).get(timeout=5) == 7
    assert chord_objects(app) == []


def test_bookkeeping_survives_transient_errors_with_client_retries_off(
    make_app, s3_config, s3_proxy, tmp_path, small_buckets
):
    app = eager_app(make_app, tmp_path, no_sdk_retries(s3_config))
    faults = [
        (xml_error(status, code, method), lambda r, method=method: r.method == method and chord_request(r), 3)
        for status, code, method in [
            (503, "SlowDown", "PUT"),  # markers and create-only markers
            (503, "SlowDown", "GET"),  # listings
            (500, "InternalError", "PUT"),
            (503, "ServiceUnavailable", "GET"),
        ]
    ]

    def reads_group(request) -> bool:
        return request.method == "GET" and "celery-taskset-meta-" in request.path

    group_read = (xml_error(503, "SlowDown", "GET"), reads_group, 2)
    finish_under_faults(app, s3_proxy, [*faults, group_read])


# -- a create whose answer was lost -------------------------------------------------------


@pytest.mark.parametrize("marker", ["fired", "full~1"])
def test_a_create_only_marker_whose_answer_was_lost_is_recognised(
    make_app, s3_config, s3_proxy, tmp_path, small_buckets, marker
):
    """The store applies the create, the answer never arrives, botocore retries
    and is refused (412): the writer must see that the marker is its own."""
    app = eager_app(make_app, tmp_path, s3_config)
    group_id, task_ids, callback = start_chord(app, 6)
    lost = s3_proxy.inject(
        lost_answer(
            lambda r: (
                r.method == "PUT" and "if-none-match" in r.headers and unquote(r.path).endswith(f"~{marker}")
            )
        )
    )
    for position, task_id in enumerate(task_ids):
        finish(app, group_id, task_id, callback, position=position)
    assert lost.times == 0
    assert callback_lines(app) == ["6"]
    assert chord_objects(app) == []


# -- random interleavings (hypothesis) ----------------------------------------------------


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_random_interleavings_fire_exactly_once_after_all(chord_app, small_buckets, data):
    size = data.draw(st.integers(min_value=1, max_value=10), label="size")
    completions = data.draw(
        st.lists(st.integers(0, size - 1), max_size=2 * size).map(lambda extra: list(range(size)) + extra),
        label="completions",
    )
    completions = data.draw(st.permutations(completions), label="order")
    unplaced = data.draw(st.sets(st.integers(0, size - 1), max_size=2), label="without a position")
    workers = data.draw(st.integers(min_value=2, max_value=4), label="threads")
    app = chord_app
    before = len(callback_lines(app))
    group_id, task_ids, callback = start_chord(app, size)
    started: set[int] = set()
    at_fire: list[set[int]] = []
    fire = StorageBackend._fire_chord

    def observed_fire(*args, **kwargs):
        at_fire.append(set(started))
        return fire(*args, **kwargs)

    errors: list[BaseException] = []

    def work(share: list[int]) -> None:
        try:
            for position in share:
                started.add(position)
                where = None if position in unplaced else position
                finish(app, group_id, task_ids[position], callback, position=where)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(completions[i::workers],)) for i in range(workers)]
    # each thread has a backend of its own (Celery's app.backend is per thread)
    with mock.patch.object(StorageBackend, "_fire_chord", observed_fire):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert callback_lines(app)[before:] == [str(size)]
    # the elected finisher ran after every header task had started finishing
    assert at_fire[:1] == [set(range(size))]


def test_a_chord_applied_before_the_buckets_still_completes(chord_app):
    """What the previous design wrote is counted: on object stores size markers and
    done-<task id>, in the folder one state object with the size and every id."""
    app = chord_app
    backend = app.backend
    group_id = str(uuid.uuid4())
    task_ids = [str(uuid.uuid4()) for _ in range(3)]
    callback = app.signature("tests.record_callback")
    callback.freeze()
    app.GroupResult(group_id, [app.AsyncResult(task_id) for task_id in task_ids]).save(backend=backend)
    chord_name = backend.get_key_for_chord(group_id)
    if backend.adapter.prefix_listing:
        for member in ["size1-3", "size2-3", f"done-{task_ids[0]}"]:
            backend.write_encoded(f"{chord_name}~{member}", {})
    else:
        backend.write_encoded(chord_name, {"size": 3, "done": [task_ids[0]]})
    backend.store_result(task_ids[0], 1, states.SUCCESS)
    for position, task_id in enumerate(task_ids[1:], start=1):
        assert callback_lines(app) == []
        finish(app, group_id, task_id, callback, position=position)
    assert callback_lines(app) == ["3"]
    assert chord_objects(app) == []


# -- Azure: buckets counted in append blobs (chords.AppendCounter) -------------------------


def appends(request) -> bool:
    return request.method == "PUT" and "comp=appendblock" in request.query and chord_request(request)


def test_an_append_whose_answer_was_lost_counts_its_task_once(
    make_app, azure_config, azure_proxy, tmp_path, small_buckets
):
    """Azure applies the append, the answer never arrives, the SDK retries: the
    line is there twice, the count one too high; the task still counts once
    and the chord fires only after its last task."""
    app = eager_app(make_app, tmp_path, azure_config, storage="azure")
    group_id, task_ids, callback = start_chord(app, 3)  # one bucket of 3
    lost = azure_proxy.inject(lost_answer(appends, times=2))
    with azure_proxy.counting() as seen:
        for position, task_id in enumerate(task_ids[:2]):
            finish(app, group_id, task_id, callback, position=position)
    assert lost.times == 0
    assert len([request for request in seen if appends(request)]) == 4  # 2 tasks, each twice
    assert callback_lines(app) == []  # a count of 4 over 3 places is read, not trusted
    finish(app, group_id, task_ids[2], callback, position=2)
    assert callback_lines(app) == ["3"]
    assert chord_objects(app) == []


def test_azure_bookkeeping_survives_transient_errors_with_client_retries_off(
    make_app, azure_config, azure_proxy, tmp_path, small_buckets
):
    app = eager_app(make_app, tmp_path, no_azure_sdk_retries(azure_config), storage="azure")
    matching = [
        appends,
        lambda r: r.method == "GET" and chord_request(r),  # reads of a bucket's lines, listings
        lambda r: r.method == "PUT" and "if-none-match" in r.headers and chord_request(r),  # full~, fired
    ]
    faults = [(azure_error(503, "ServerBusy"), matches, 3) for matches in matching]
    finish_under_faults(app, azure_proxy, faults)


def test_lines_that_name_no_task_never_complete_a_bucket(azure_app, tmp_path, small_buckets):
    """What else an append blob holds (written by another program, or a
    partial line) raises the count, so it is read sooner, but counts no task."""
    app = azure_app
    app.conf.update(task_always_eager=True, task_store_eager_result=True)
    app.calls = tmp_path / "callback-calls"

    @app.task(name="tests.record_callback", shared=False)
    def record_callback(values):
        with app.calls.open("a") as handle:
            handle.write(f"{sum(values)}\n")

    group_id, task_ids, callback = start_chord(app, 3)
    blob = f"{app.backend.get_key_for_chord(group_id)}~b0~.expect-3-of-3-in-1"
    for line in ["+", "garbage", '{"status": "SUCCESS"}', "-", "\u00e9"]:
        assert app.backend.append_line(blob, line) is not None
    for position, task_id in enumerate(task_ids):
        assert callback_lines(app) == []
        finish(app, group_id, task_id, callback, position=position)
        if position == 0:  # a result that is not base64: the join reads the task's own
            assert app.backend.append_line(blob, f"+{task_id} not-base64!") is not None
    assert callback_lines(app) == ["3"]


def test_a_chord_applied_with_markers_completes_where_the_store_appends(
    make_app, azure_config, tmp_path, small_buckets
):
    """A chord whose .expect markers are block blobs (applied by MarkerCounter):
    the appends are refused (InvalidBlobType) and the finishers write markers."""
    app = eager_app(make_app, tmp_path, azure_config, storage="azure")
    backend = app.backend
    appending = backend.chord_counter
    assert isinstance(appending, chords.AppendCounter)
    backend.chord_counter = chords.MarkerCounter(appending.store, appending.keys)
    group_id, task_ids, callback = start_chord(app, 5)
    backend.chord_counter = appending
    for position, task_id in enumerate(task_ids):
        assert callback_lines(app) == []
        finish(app, group_id, task_id, callback, position=position)
    assert callback_lines(app) == ["5"]
    assert chord_objects(app) == []


def test_the_join_takes_what_is_stored_not_what_a_redelivery_tried_to_store(
    make_app, azure_config, azure_proxy, tmp_path, small_buckets
):
    """A redelivered header task whose write found SUCCESS stored carries no
    result in its line: the join reads the one stored, not the second run's."""
    app = eager_app(make_app, tmp_path, azure_config, storage="azure")
    group_id, task_ids, callback = start_chord(app, 3)
    finish(app, group_id, task_ids[0], callback, position=0)
    finish(app, group_id, task_ids[0], callback, value=100, position=0)  # SUCCESS stays 1
    finish(app, group_id, task_ids[1], callback, position=1)
    with azure_proxy.counting() as seen:
        finish(app, group_id, task_ids[2], callback, position=2)
    assert callback_lines(app) == ["3"]
    result_reads = [r for r in seen if r.method == "GET" and "celery-task-meta-" in unquote(r.path)]
    assert len(result_reads) == 1  # only the redelivered one's, which its line does not carry


def test_results_too_large_to_carry_are_read_by_the_join(make_app, azure_config, tmp_path, small_buckets):
    app = eager_app(make_app, tmp_path, azure_config, storage="azure")

    @app.task(name="tests.values", shared=False)
    def values(header_values):
        return header_values

    group_id = str(uuid.uuid4())
    task_ids = [str(uuid.uuid4()) for _ in range(4)]
    callback = app.signature("tests.values")
    callback.freeze()
    app.backend.apply_chord((group_id, [app.AsyncResult(task_id) for task_id in task_ids]), callback)
    big = "x" * (chords.INLINE_RESULT_LIMIT + 1)
    stored = [1, big, 2, big + "y"]
    for position, task_id in enumerate(task_ids):
        finish(app, group_id, task_id, callback, value=stored[position], position=position)
    assert app.AsyncResult(callback.id).get(timeout=5) == stored
