"""JSON status views for front ends, as django-celery-results offers.

Off unless a project includes ``django_storage_celery_results.urls``. The task
or group id is the only key: anyone who knows an id can see its state and
result, so wrap the views (login_required, a permission) where ids are not
secret enough. Ids become storage names through keys.py, so no id reaches
anything outside the configured location. Tracebacks are never sent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from celery import states
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from . import browse
from .exceptions import ImproperlyConfigured, InvalidResultId
from .inventory import Inventory, Result


class _Encoder(DjangoJSONEncoder):
    """A result that JSON cannot say (a pickled object) is sent as its repr."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return repr(o)


def _json(document: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(document, status=status, encoder=_Encoder)


def task_document(task_id: str, result: Result | None) -> dict[str, Any]:
    """{id, status, result}: for a failure the result is {exc_type, exc_message};
    for a task under way it is its progress meta (what update_state stored)."""
    state = browse.state_of(result)
    if result is not None and result.problem:
        return {"id": task_id, "status": state, "result": None, "problem": result.problem}
    meta = result.meta if result is not None and result.meta is not None else {}
    value = meta.get("result")
    if state in states.EXCEPTION_STATES:
        value = browse.exception_of(value)
    return {"id": task_id, "status": state, "result": value, "date_done": meta.get("date_done")}


View = Callable[..., JsonResponse]


def _with_inventory(view: View) -> View:
    """The view gets the project backend's Inventory; a 503 naming the
    problem when the project's result backend cannot be used."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *ids: str, **named_ids: str) -> JsonResponse:
        try:
            inventory = Inventory(browse.storage_backend())
        except ImproperlyConfigured as exc:
            return _json({"error": str(exc)}, status=503)
        return view(request, inventory, *ids, **named_ids)

    return wrapper


@require_GET
@_with_inventory
def task_status(request: HttpRequest, inventory: Inventory, task_id: str) -> JsonResponse:
    """One read: the task's state, result or progress meta."""
    try:
        result = inventory.read_one(inventory.task_entry(task_id))
    except InvalidResultId as exc:
        return _json({"error": str(exc)}, status=400)
    return _json({"task": task_document(task_id, result)})


@require_GET
@_with_inventory
def group_status(request: HttpRequest, inventory: Inventory, group_id: str) -> JsonResponse:
    """The group's read, then its members' in parallel: each member's state and result."""
    try:
        group = inventory.read_one(inventory.task_entry(group_id, group=True))
    except InvalidResultId as exc:
        return _json({"error": str(exc)}, status=400)
    if group is None:
        return _json({"group": {"id": group_id, "saved": False, "results": []}}, status=404)
    if group.meta is None:
        return _json({"group": {"id": group_id, "saved": True, "problem": group.problem, "results": []}})
    try:
        members = browse.group_members(inventory, group)
    except ValueError:
        return _json(
            {"group": {"id": group_id, "saved": True, "problem": "not a saved group", "results": []}}
        )
    documents = [task_document(member_id, found) for member_id, found in members]
    done = sum(1 for document in documents if document["status"] in states.READY_STATES)
    return _json(
        {
            "group": {
                "id": group_id,
                "saved": True,
                "completed": done,
                "total": len(documents),
                "results": documents,
            }
        }
    )
