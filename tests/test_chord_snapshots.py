"""Snapshots of full buckets' header results, read by the chord's join (snapshots.py).

With buckets of 3 on S3 (moto), the finisher that fills a bucket stores its
results in one object, and the join after the last header task reads those
objects instead of every result. A snapshot is only a head start: one that
is garbage, missing or holds a result that was not finished yet changes
nothing the callback sees.
"""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from celery import states

from django_storage_celery_results import chords, snapshots
from support.chords import finish, start_chord
from tests.test_chord_faults import chord_objects, eager_app


@pytest.fixture
def buckets_of_3():
    with mock.patch.object(chords, "BUCKET_SIZE", 3), mock.patch.object(chords, "SUB_BUCKET_SIZE", 2):
        yield


def result_reads(seen, task_ids) -> list[str]:
    """The header results the requests read (GETs naming a task id)."""
    gets = [request.path for request in seen if request.method == "GET"]
    return [task_id for path in gets for task_id in task_ids if task_id in path]


def joined(app, group_id: str, number: int) -> str:
    return app.backend.chord_counter.keys.member(group_id, f"{chords.MarkerCounter.JOINED}{number}")


def test_the_join_reads_a_snapshot_per_full_bucket_not_every_result(
    make_app, s3_config, s3_proxy, tmp_path, buckets_of_3
):
    app = eager_app(make_app, tmp_path, s3_config)
    group_id, task_ids, callback = start_chord(app, 7)  # buckets {0,1,2} {3,4,5} {6}
    for position in range(6):
        with s3_proxy.counting() as seen:
            finish(app, group_id, task_ids[position], callback, value=position, position=position)
        # the one that fills a bucket reads its results (then stores them in one object)
        expected = task_ids[position - 2 : position + 1] if position in (2, 5) else []
        assert sorted(result_reads(seen, task_ids)) == sorted(expected)
    stored = snapshots.unpack(app.backend.get(joined(app, group_id, 0)))
    assert sorted(stored) == sorted(app.backend.get_key_for_task(task_id) for task_id in task_ids[:3])
    with s3_proxy.counting() as seen:
        finish(app, group_id, task_ids[6], callback, value=6, position=6)
    # the one that fires stores no snapshot: its join reads the two snapshots
    # and its own bucket's one result
    assert not [request for request in seen if request.method == "PUT" and "joined" in request.path]
    assert result_reads(seen, task_ids) == [task_ids[6]]
    assert app.calls.read_text().splitlines() == [str(sum(range(7)))]
    assert chord_objects(app) == []  # the snapshots go with the rest of the bookkeeping


def test_a_redelivered_task_of_a_full_bucket_does_not_snapshot_it_again(
    make_app, s3_config, s3_proxy, tmp_path, buckets_of_3
):
    """Only the finisher whose create made full~<n> stores the snapshot."""
    app = eager_app(make_app, tmp_path, s3_config)
    group_id, task_ids, callback = start_chord(app, 7)
    for position in range(3):
        finish(app, group_id, task_ids[position], callback, position=position)
    with s3_proxy.counting() as seen:
        finish(app, group_id, task_ids[2], callback, position=2)  # redelivered: sees the bucket full
    assert result_reads(seen, task_ids) == [task_ids[2]]  # its own result's re-check only
    assert not [request for request in seen if request.method == "PUT" and "joined" in request.path]


def test_a_snapshot_that_is_not_one_is_left_to_the_join(make_app, s3_config, tmp_path, buckets_of_3, caplog):
    app = eager_app(make_app, tmp_path, s3_config)
    group_id, task_ids, callback = start_chord(app, 7)
    for position in range(6):
        finish(app, group_id, task_ids[position], callback, value=position, position=position)
    app.backend.set(joined(app, group_id, 0), b"not a snapshot")
    app.backend.delete(joined(app, group_id, 1))
    finish(app, group_id, task_ids[6], callback, value=6, position=6)
    assert app.calls.read_text().splitlines() == [str(sum(range(7)))]
    assert "not used" in caplog.text and "not a snapshot" not in caplog.text  # names no content
    assert chord_objects(app) == []


def test_a_result_that_was_not_finished_in_a_snapshot_is_read_again(
    make_app, s3_config, tmp_path, buckets_of_3
):
    """A snapshot entry is used once: a state that is not ready makes the join
    read that result from the store, as it would without snapshots."""
    app = eager_app(make_app, tmp_path, s3_config)
    group_id, task_ids, callback = start_chord(app, 7)
    for position in range(6):
        finish(app, group_id, task_ids[position], callback, value=position + 10, position=position)
    name = app.backend.get_key_for_task(task_ids[0])
    started = app.backend.encode({"status": states.STARTED, "result": None, "task_id": task_ids[0]})
    held = snapshots.unpack(app.backend.get(joined(app, group_id, 0)))
    app.backend.set(joined(app, group_id, 0), snapshots.pack({**held, name: started}))
    finish(app, group_id, task_ids[6], callback, value=16, position=6)
    assert app.calls.read_text().splitlines() == [str(sum(range(10, 17)))]


def test_a_chord_of_one_bucket_stores_no_snapshot(make_app, s3_config, s3_proxy, tmp_path):
    app = eager_app(make_app, tmp_path, s3_config)
    group_id, task_ids, callback = start_chord(app, 5)
    for position, task_id in enumerate(task_ids[:-1]):
        finish(app, group_id, task_id, callback, position=position)
    with s3_proxy.counting() as seen:
        finish(app, group_id, task_ids[-1], callback, position=4)
    assert not any(chords.MarkerCounter.JOINED in request.query for request in seen)
    assert sorted(result_reads(seen, task_ids)) == sorted(task_ids)  # the join, as before
    assert app.calls.read_text().splitlines() == ["5"]


def test_snapshots_round_trip():
    payloads = {"celery-task-meta-a": b'{"status": "SUCCESS"}', "celery-task-meta-b": b"\x00\n\xff", "c": b""}
    assert snapshots.unpack(snapshots.pack(payloads)) == payloads
    assert snapshots.unpack(snapshots.pack({})) == {}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b'{"status": "SUCCESS"}', "does not start like"),
        (snapshots.MAGIC + b'[["a", 1]]', "no index line"),
        (snapshots.MAGIC + b"[[\n", "not JSON"),
        (snapshots.MAGIC + b'{"a": 1}\nx', "not a list"),
        (snapshots.MAGIC + b'[["a", -1]]\n', "not a list"),
        (snapshots.MAGIC + b'[["a", true]]\nx', "not a list"),
        (snapshots.MAGIC + b'[["a", 2]]\nx', "another size"),
    ],
)
def test_what_is_not_a_snapshot_is_refused(data, problem):
    with pytest.raises(ValueError, match=problem):
        snapshots.unpack(data)


def test_apply_writes_the_expect_markers_in_parallel(make_app, s3_config, s3_proxy, tmp_path):
    """One .expect marker per bucket, written through the backend's thread pool."""
    app = eager_app(make_app, tmp_path, s3_config)
    threads = []
    put = app.backend._put

    def recorded_put(name, *args, **kwargs):
        threads.append((name.rsplit("~", 1)[-1], threading.current_thread().name))
        return put(name, *args, **kwargs)

    with mock.patch.object(app.backend, "_put", recorded_put), s3_proxy.counting() as seen:
        start_chord(app, 250)
    expects = sorted((member, thread) for member, thread in threads if member.startswith(".expect"))
    assert [member for member, _ in expects] == [
        ".expect-100-of-250-in-3",
        ".expect-100-of-250-in-3",
        ".expect-50-of-250-in-3",
    ]
    assert all(thread.startswith("celery-results") for _, thread in expects)
    assert len(seen) == 4  # the group record and the three markers
