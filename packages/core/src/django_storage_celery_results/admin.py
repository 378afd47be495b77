"""The results pages of the Django admin, over the storage itself.

``StoredResult`` has no table: every page is our own view over an Inventory
(no queryset, nothing copied to a database). Seeing anything takes staff and
the ``view_storedresult`` permission; forgetting and purging take
``delete_storedresult``. Every change is a POST with CSRF after a
confirmation page; everything shown is escaped by the templates.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.dateparse import parse_date, parse_datetime

from . import browse
from .exceptions import ImproperlyConfigured, InvalidResultId, StoredObjectTooLarge, StoreRequestFailed
from .inventory import DELETE_BATCH, GROUP, KINDS, SUMMARY_FIELDS, TASK, Inventory, Result
from .models import StoredResult
from .selection import Selection, purge

TEMPLATES = "django_storage_celery_results/admin/"
#: States offered by the state filter (PENDING is never stored; custom states show when seen).
FILTER_STATES = ("SUCCESS", "FAILURE", "STARTED", "RETRY", "REVOKED", "UNREADABLE")


@admin.register(StoredResult)
class StoredResultAdmin(admin.ModelAdmin):
    # -- who may do what ---------------------------------------------------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name=f"{info}_changelist"),
            path("forget/", wrap(self.forget_view), name=f"{info}_forget"),
            path("purge/", wrap(self.purge_view), name=f"{info}_purge"),
            path("group/<str:object_id>/change/", wrap(self.group_view), name=f"{info}_group"),
            path("group/<str:object_id>/download/", wrap(self.group_download), name=f"{info}_group_download"),
            path("<str:object_id>/change/", wrap(self.change_view), name=f"{info}_change"),
            path("<str:object_id>/delete/", wrap(self.delete_view), name=f"{info}_delete"),
            path("<str:object_id>/download/", wrap(self.download_view), name=f"{info}_download"),
        ]

    def _require(self, request: HttpRequest, delete: bool = False) -> None:
        if not self.has_view_permission(request) or (delete and not self.has_delete_permission(request)):
            raise PermissionDenied

    def _inventory(self) -> Inventory:
        return Inventory(browse.storage_backend())

    def _context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "title": title,
            "has_delete_permission": self.has_delete_permission(request),
            **extra,
        }

    def _misconfigured(self, request: HttpRequest, exc: Exception) -> TemplateResponse:
        return TemplateResponse(
            request,
            TEMPLATES + "unavailable.html",
            self._context(request, "Results are unavailable", reason=str(exc)),
            status=503,
        )

    def _url(self, name: str, *args: str) -> str:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return reverse(
            f"admin:{info}_{name}", args=[quote(a) for a in args], current_app=self.admin_site.name
        )

    # -- the list ----------------------------------------------------------------

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        self._require(request)
        query = query_of(request)
        cursor = request.GET.get("cursor") or None
        try:
            inventory = self._inventory()
            page = browse.list_page(inventory, query, cursor)
        except (ImproperlyConfigured, InvalidResultId, StoreRequestFailed) as exc:
            return self._misconfigured(request, exc)
        params: dict[str, str] = {key: str(value) for key, value in request.GET.items() if key != "cursor"}
        rows = [self._row(result, query.kind) for result in page.rows]
        context = self._context(
            request,
            "Stored results",
            query=query,
            page=page,
            rows=rows,
            where=inventory.adapter.describe(),
            per_page=browse.PER_PAGE,
            scan=browse.SCAN,
            filters=self._filters(query, params, page),
            active_filters=query.filtered or query.kind != TASK,
            search=query.id_search or query.name_search,
            search_field="name" if query.name_search else "id",
            hidden_params=[(k, v) for k, v in params.items() if k not in ("q", "field")],
            first_url="?" + urlencode(params) if cursor else None,
            next_url="?" + urlencode({**params, "cursor": page.cursor}) if page.cursor else None,
            kind_label="group results" if query.kind == GROUP else "task results",
            prefix_listing=inventory.adapter.prefix_listing,
        )
        return TemplateResponse(request, TEMPLATES + "change_list.html", context)

    def _row(self, result: Result, kind: str) -> dict[str, Any]:
        ident = result.id or result.entry.name
        return {
            "result": result,
            "id": ident,
            "url": self._url("group" if kind == GROUP else "change", ident),
            "members": browse.member_count(result) if kind == GROUP else None,
        }

    def _filters(
        self, query: browse.Query, params: dict[str, str], page: browse.Page
    ) -> list[dict[str, Any]]:
        def choice(label: str, key: str, value: str | None, selected: bool) -> dict[str, Any]:
            changed = {k: v for k, v in params.items() if k != key}
            if value is not None:
                changed[key] = value
            return {"display": label, "selected": selected, "query_string": "?" + urlencode(changed)}

        state = next(iter(query.states), "")
        seen_states = [r.state for r in page.rows if r.state and r.state not in FILTER_STATES]
        names = sorted({*page.names_seen, *([query.task] if query.task else [])})
        filters = [
            {
                "title": "kind",
                "choices": [
                    choice("Task results", "kind", None, query.kind == TASK),
                    choice("Group results", "kind", GROUP, query.kind == GROUP),
                ],
            },
            {
                "title": "date written",
                "choices": [choice("Any date", "written", None, not query.age)]
                + [
                    choice(label, "written", key, query.age == key)
                    for key, (label, _, _) in browse.AGES.items()
                ],
            },
        ]
        if query.kind == TASK:
            filters.append(
                {
                    "title": "state",
                    "choices": [choice("All", "state", None, not state)]
                    + [
                        choice(name.capitalize(), "state", name, state == name)
                        for name in (*FILTER_STATES, *sorted(set(seen_states)))
                    ],
                }
            )
            filters.append(
                {
                    "title": "task name (names on this page)",
                    "choices": [choice("All", "task", None, not query.task)]
                    + [choice(name, "task", name, query.task == name) for name in names],
                }
            )
        return filters

    # -- one result --------------------------------------------------------------

    def _read(self, object_id: str, kind: str) -> tuple[Inventory, Result, str]:
        ident = unquote(object_id)
        inventory = self._inventory()
        try:
            entry = inventory.task_entry(ident, group=kind == GROUP)
        except InvalidResultId as exc:
            raise Http404(str(exc)) from None
        found = inventory.read_one(entry)
        if found is None:
            raise Http404(f"No result is stored for {kind} {ident!r}.")
        return inventory, found, ident

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        return self._detail(request, object_id, TASK)

    def group_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._detail(request, object_id, GROUP)

    def _detail(self, request: HttpRequest, object_id: str, kind: str) -> HttpResponse:
        self._require(request)
        try:
            inventory, result, ident = self._read(object_id, kind)
        except (ImproperlyConfigured, StoreRequestFailed) as exc:
            return self._misconfigured(request, exc)
        meta = dict(result.meta or {})
        fields = []
        for key, label in SUMMARY_FIELDS:
            if meta.get(key) is not None:
                fields.append((label, str(meta[key])))
        links = []
        if meta.get("parent_id"):
            links.append(("Parent task", str(meta["parent_id"]), self._url("change", str(meta["parent_id"]))))
        if meta.get("group_id"):
            links.append(("Group", str(meta["group_id"]), self._url("group", str(meta["group_id"]))))
        members, problem = [], result.problem
        if kind == GROUP and result.meta is not None:
            try:
                found = browse.group_members(inventory, result)
            except ValueError as exc:
                found, problem = [], str(exc)
            members = [
                {"id": member_id, "state": browse.state_of(member), "url": self._url("change", member_id)}
                for member_id, member in found
            ]
        context = self._context(
            request,
            f"{'Group' if kind == GROUP else 'Task'} {ident}",
            ident=ident,
            kind=kind,
            result=result,
            problem=problem,
            fields=fields,
            links=links,
            members=members,
            value=None if kind == GROUP else browse.pretty(meta.get("result")),
            traceback=meta.get("traceback"),
            args=browse.pretty(meta["args"]) if meta.get("args") is not None else None,
            kwargs=browse.pretty(meta["kwargs"]) if meta.get("kwargs") is not None else None,
            children=browse.pretty(meta["children"]) if meta.get("children") else None,
            where=inventory.where(result.entry),
            download_url=self._url("group_download" if kind == GROUP else "download", ident),
            delete_url=self._url("delete", ident) if kind == TASK else None,
            list_url=self._url("changelist"),
        )
        return TemplateResponse(request, TEMPLATES + "detail.html", context)

    def download_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._download(request, object_id, TASK)

    def group_download(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._download(request, object_id, GROUP)

    def _download(self, request: HttpRequest, object_id: str, kind: str) -> HttpResponse:
        self._require(request)
        inventory = self._inventory()
        try:
            entry = inventory.task_entry(unquote(object_id), group=kind == GROUP)
        except InvalidResultId as exc:
            raise Http404(str(exc)) from None
        try:
            data = inventory.raw(entry)
        except StoredObjectTooLarge:
            limit = inventory.backend.max_size
            return HttpResponse(
                f"The stored object is larger than result_storage_max_size ({limit} bytes).",
                status=413,
                content_type="text/plain",
            )
        if data is None:
            raise Http404("Nothing is stored under this id.")
        response = HttpResponse(data, content_type="application/octet-stream")
        response["Content-Disposition"] = f'attachment; filename="{entry.name}"'
        return response

    # -- forgetting and purging ----------------------------------------------------

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        self._require(request, delete=True)
        return self._forget(request, [unquote(object_id)])

    def forget_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, delete=True)
        if request.method != "POST":
            return HttpResponseRedirect(self._url("changelist"))
        return self._forget(request, request.POST.getlist("_selected_action"))

    def _forget(self, request: HttpRequest, ids: list[str]) -> HttpResponse:
        ids = [i for i in dict.fromkeys(ids) if i]
        if not ids:
            self.message_user(request, "Select results to forget first.", messages.WARNING)
            return HttpResponseRedirect(self._url("changelist"))
        try:
            inventory = self._inventory()
            entries = [inventory.task_entry(i) for i in ids]
        except InvalidResultId as exc:
            raise Http404(str(exc)) from None
        except ImproperlyConfigured as exc:
            return self._misconfigured(request, exc)
        if request.method == "POST" and request.POST.get("post") == "yes":
            forgot = sum(len(batch) for batch in inventory.delete(entries))
            self.message_user(request, f"Forgot {forgot} task result(s).", messages.SUCCESS)
            return HttpResponseRedirect(self._url("changelist"))
        context = self._context(
            request,
            "Forget these results?",
            ids=ids,
            where=inventory.adapter.describe(),
            action_url=self._url("forget"),
            list_url=self._url("changelist"),
        )
        return TemplateResponse(request, TEMPLATES + "confirm_forget.html", context)

    def purge_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, delete=True)
        try:
            inventory = self._inventory()
        except ImproperlyConfigured as exc:
            return self._misconfigured(request, exc)
        source = request.POST if request.method == "POST" else request.GET
        before, error = moment_of(source.get("older_than", ""))
        context = self._context(
            request,
            "Purge results older than a date",
            where=inventory.adapter.describe(),
            older_than=source.get("older_than", ""),
            error=error,
            list_url=self._url("changelist"),
        )
        if before is not None:
            selection = Selection(TASK, older_than=before)
            context["selection"] = selection.describe()
            if request.method == "POST" and request.POST.get("post") == "yes":
                deleted = sum(len(batch) for batch in purge(inventory, selection, DELETE_BATCH))
                self.message_user(
                    request,
                    f"Deleted {deleted} {selection.describe()} from {context['where']}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(self._url("changelist"))
        return TemplateResponse(request, TEMPLATES + "confirm_purge.html", context)


def query_of(request: HttpRequest) -> browse.Query:
    """The list page's filters and search from its query string (unknown values are ignored)."""
    get = request.GET
    kind = get.get("kind") if get.get("kind") in KINDS else TASK
    state = (get.get("state") or "").upper()
    search = (get.get("q") or "").strip()
    by_name = get.get("field") == "name"
    return browse.Query(
        kind=kind if kind in (TASK, GROUP) else TASK,
        states=frozenset([state]) if state else frozenset(),
        task=get.get("task") or "" if kind == TASK else "",
        age=str(get.get("written")) if get.get("written") in browse.AGES else "",
        id_search="" if by_name else search,
        name_search=search if by_name and kind == TASK else "",
    )


def moment_of(text: str) -> tuple[datetime.datetime | None, str | None]:
    """A date or date-time typed in the purge form, as an aware time (UTC when naive)."""
    text = text.strip()
    if not text:
        return None, None
    try:
        when = parse_datetime(text)
        if when is None:
            day = parse_date(text)
            when = None if day is None else datetime.datetime.combine(day, datetime.time())
    except ValueError:
        when = None
    if when is None:
        return None, f"{text!r} is not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DD HH:MM)."
    return (when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)), None
