"""Driving native chords through the backend as a worker would, for the
chord tests: apply a chord, finish its header tasks, read what the callback
recorded (the fixture "chord_app" in tests/conftest.py gives the app)."""

from __future__ import annotations

import uuid

from celery.app.task import Context


def start_chord(app, size: int):
    """What chord.apply_async does before the header runs; returns (group id, task ids, callback)."""
    group_id = str(uuid.uuid4())
    task_ids = [str(uuid.uuid4()) for _ in range(size)]
    header = [app.AsyncResult(task_id) for task_id in task_ids]
    callback = app.signature("tests.record_callback")
    callback.freeze()
    app.backend.apply_chord((group_id, header), callback)
    app.backend.set_chord_size(group_id, size)
    return group_id, task_ids, callback


def finish(app, group_id: str, task_id: str, callback, value=1, position: int | None = None) -> None:
    """Store a header task's result as a worker does; position is its request.group_index."""
    request = Context(
        id=task_id, group=group_id, chord=dict(callback), group_index=position, delivery_info={}
    )
    app.backend.mark_as_done(task_id, value, request=request)


def callback_lines(app) -> list[str]:
    return app.calls.read_text().splitlines() if app.calls.exists() else []
