"""The admin's results pages and the JSON status views, through Django's test
client, on the folder and each cloud emulator (behind the counting proxy):
every view, each permission, each action, escaping, an object that is not a
result, the download, and the exact requests a page costs.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from celery import states
from celery._state import get_current_app
from celery.app.task import Context
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from django_storage_celery_results import browse
from support.fscalls import counting_fs_calls

OBJECT_STORES = ("s3", "gcs", "azure")
STORES = ("filesystem", *OBJECT_STORES)
LIST = "admin:django_storage_celery_results_storedresult_changelist"
SCRIPT = "<script>alert('stored')</script>"

pytestmark = pytest.mark.django_db


def url(name: str, *args: str) -> str:
    return reverse(f"admin:django_storage_celery_results_storedresult_{name}", args=[quote(a) for a in args])


@dataclass
class Site:
    """One store under test: the project's Celery app over it and what was seeded."""

    preset: str
    app: Any
    store: Any = None  # the StoreUnderTest of an object store
    made: dict[str, list[str]] = field(default_factory=dict)

    @property
    def backend(self) -> Any:
        return self.app.backend

    def requests(self) -> list[str]:
        return sorted(self.store.calls(self.store.proxy.requests))

    def reset(self) -> None:
        if self.store is not None:
            self.store.proxy.reset()

    def exists(self, task_id: str) -> bool:
        return (
            self.backend.adapter.read(self.backend.layout.name(self.backend.task_keyprefix, task_id))
            is not None
        )


@pytest.fixture(params=STORES)
def site(request, make_app, fresh_store, tmp_path) -> Iterator[Site]:
    preset = request.param
    if preset in OBJECT_STORES:
        store = fresh_store(preset)
        found = Site(preset, store.app(make_app, result_extended=True), store)
    else:
        app = make_app(
            result_storage="filesystem",
            result_storage_config={"location": str(tmp_path / "results")},
            result_extended=True,
        )
        found = Site(preset, app)
    previous = get_current_app()
    found.app.set_current()  # the project's app, as the admin finds it
    found.made = seed(found.app)
    yield found
    previous.set_current()


def seed(app: Any) -> dict[str, list[str]]:
    backend = app.backend
    made: dict[str, list[str]] = {"add": [], "fail": [], "script": [], "broken": [], "group": []}
    for number in range(2):
        task_id = str(uuid.uuid4())
        backend.store_result(task_id, number, states.SUCCESS, request=_request("tests.add", "w1@host"))
        made["add"].append(task_id)
    failed, group_id = str(uuid.uuid4()), str(uuid.uuid4())
    backend.store_result(
        failed,
        ValueError("boom"),
        states.FAILURE,
        traceback="Traceback (most recent call last):\nValueError: boom",
        request=_request("tests.fail", "w2@host", group=group_id),
    )
    made["fail"].append(failed)
    script = str(uuid.uuid4())
    backend.store_result(script, {"html": SCRIPT}, states.SUCCESS, request=_request("tests.echo", SCRIPT))
    made["script"].append(script)
    broken = str(uuid.uuid4())
    backend.adapter.put(backend.layout.name(backend.task_keyprefix, broken), b"\x00\x01 not a result")
    made["broken"].append(broken)
    group = app.GroupResult(group_id, [app.AsyncResult(made["add"][0]), app.AsyncResult(failed)])
    group.save(backend=backend)
    made["group"].append(group.id)
    return made


def _request(task: str, worker: str, group: str | None = None) -> Context:
    return Context(
        id=None,
        task=task,
        hostname=worker,
        args=[1, 2],
        kwargs={"x": 1},
        retries=0,
        delivery_info={},
        group=group,
    )


# -- users ---------------------------------------------------------------------------


def _user(django_user_model, name: str, *perms: str, staff: bool = True, via_group: bool = False) -> Client:
    user = django_user_model.objects.create_user(name, password="pw", is_staff=staff)
    granted = Permission.objects.filter(
        content_type__app_label="django_storage_celery_results", codename__in=perms
    )
    assert granted.count() == len(perms)
    if via_group:  # permissions are grantable per group
        group = Group.objects.create(name=f"{name}-group")
        group.permissions.set(granted)
        user.groups.add(group)
    else:
        user.user_permissions.set(granted)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(django_user_model) -> Client:
    return _user(django_user_model, "viewer", "view_storedresult", via_group=True)


@pytest.fixture
def manager(django_user_model) -> Client:
    return _user(django_user_model, "manager", "view_storedresult", "delete_storedresult")


@pytest.fixture
def staff(django_user_model) -> Client:
    return _user(django_user_model, "staff")


def test_migrate_creates_only_the_two_permissions(db):
    codenames = set(
        Permission.objects.filter(content_type__app_label="django_storage_celery_results").values_list(
            "codename", flat=True
        )
    )
    assert codenames == {"view_storedresult", "delete_storedresult"}
    from django.db import connection

    from django_storage_celery_results.models import StoredResult

    assert StoredResult._meta.db_table not in connection.introspection.table_names()  # no table


# -- permissions ------------------------------------------------------------------------


def test_permissions(site, client, staff, viewer, manager):
    task_id = site.made["add"][0]
    group_id = site.made["group"][0]
    reading = [
        reverse(LIST),
        url("change", task_id),
        url("download", task_id),
        url("group", group_id),
        url("group_download", group_id),
    ]
    deleting = [url("delete", task_id), url("purge")]
    for page in reading + deleting:
        answer = client.get(page)  # anonymous: the admin's login
        assert answer.status_code == 302 and "/admin/login/" in answer["Location"], page
        assert staff.get(page).status_code == 403, page
    for page in reading:
        assert viewer.get(page).status_code == 200, page
        assert manager.get(page).status_code == 200, page
    for page in deleting:
        assert viewer.get(page).status_code == 403, page
        assert manager.get(page).status_code == 200, page
    assert viewer.post(url("forget"), {"_selected_action": [task_id], "post": "yes"}).status_code == 403
    assert viewer.post(url("purge"), {"older_than": "2999-01-01", "post": "yes"}).status_code == 403
    assert site.exists(task_id)
    # the index shows the app and its model to those who may see it
    index = viewer.get(reverse("admin:index")).content.decode()
    assert "Celery results in Django Storage" in index and "Stored results" in index
    assert "Stored results" not in staff.get(reverse("admin:index")).content.decode()
    assert "Forget selected results" not in viewer.get(reverse(LIST)).content.decode()
    assert "Forget selected results" in manager.get(reverse(LIST)).content.decode()


# -- the list -----------------------------------------------------------------------------


def test_list(site, viewer):
    made = site.made
    page = viewer.get(reverse(LIST)).content.decode()
    for task_id in [*made["add"], *made["fail"], *made["script"], *made["broken"]]:
        assert task_id in page
    assert made["group"][0] not in page  # groups are their own kind
    assert "tests.fail" in page and "w2@host" in page and "FAILURE" in page
    assert "UNREADABLE" in page and "it does not decode" in page
    assert "not newest first" in page and "no total count" in page
    assert SCRIPT not in page and "&lt;script&gt;" in page  # a worker named <script> is text

    def ids(**params: str) -> set[str]:
        text = viewer.get(reverse(LIST), params).content.decode()
        every = [*made["add"], *made["fail"], *made["script"], *made["broken"], *made["group"]]
        return {task_id for task_id in every if task_id in text}

    assert ids(state="FAILURE") == set(made["fail"])
    assert ids(state="success") == {*made["add"], *made["script"]}
    assert ids(task="tests.add") == set(made["add"])
    assert ids(written="24h") == {*made["add"], *made["fail"], *made["script"], *made["broken"]}
    assert ids(written="older-7d") == set()
    assert ids(q=made["fail"][0][:8]) == set(made["fail"])  # an id's start: a prefix listing
    assert ids(q=made["fail"][0]) == set(made["fail"])
    assert ids(q="ech", field="name") == set(made["script"])
    assert ids(kind="group") == set(made["group"])
    # a cursor from elsewhere: the store refuses it (an error page) or lists after it, never a 500
    assert viewer.get(reverse(LIST), {"cursor": "not-a-token"}).status_code in (200, 503)
    scanned = viewer.get(reverse(LIST), {"state": "FAILURE"}).content.decode()
    assert "Scanned 5 listed task results" in scanned and "1 match." in scanned


def test_list_pages_by_cursor(site, viewer, monkeypatch):
    monkeypatch.setattr(browse, "PER_PAGE", 2)
    expected = {*site.made["add"], *site.made["fail"], *site.made["script"], *site.made["broken"]}
    seen: list[str] = []
    answer = viewer.get(reverse(LIST))
    pages = 0
    while True:
        pages += 1
        rows = answer.context["rows"]
        assert len(rows) <= 2
        seen.extend(row["id"] for row in rows)
        next_url = answer.context["next_url"]
        if pages > 1:
            assert answer.context["first_url"] is not None
        if not next_url:
            break
        answer = viewer.get(reverse(LIST) + next_url)
    assert sorted(seen) == seen  # the listing's order: by name, that is by task id
    assert set(seen) == expected and len(seen) == len(expected)


# -- one result ---------------------------------------------------------------------------


def test_detail(site, viewer):
    made = site.made
    failed = viewer.get(url("change", made["fail"][0])).content.decode()
    for text in ("FAILURE", "tests.fail", "w2@host", "ValueError: boom", "Traceback", "Stored at", "Retries"):
        assert text in failed
    assert "&quot;x&quot;: 1" in failed  # kwargs, pretty-printed (and escaped)
    assert made["group"][0] in failed  # its group, linked
    where = site.backend.adapter.describe()
    assert (where.split(" at ", 1)[-1] if site.store else "results") in failed

    shown = viewer.get(url("change", made["script"][0])).content.decode()
    assert SCRIPT not in shown and "&lt;script&gt;alert(&#x27;stored&#x27;)&lt;/script&gt;" in shown

    broken = viewer.get(url("change", made["broken"][0]))
    assert broken.status_code == 200
    assert (
        "not a readable task result" in broken.content.decode()
        and "it does not decode" in broken.content.decode()
    )

    group = viewer.get(url("group", made["group"][0])).content.decode()
    assert made["add"][0] in group and made["fail"][0] in group
    assert "SUCCESS" in group and "FAILURE" in group

    assert viewer.get(url("change", str(uuid.uuid4()))).status_code == 404
    assert viewer.get(url("change", "../../etc/passwd")).status_code == 404  # a name in the prefix: none


def test_download(site, viewer):
    task_id = site.made["script"][0]
    answer = viewer.get(url("download", task_id))
    name = site.backend.layout.name(site.backend.task_keyprefix, task_id)
    assert answer.status_code == 200
    assert answer["Content-Disposition"] == f'attachment; filename="{name}"'
    assert answer["Content-Type"] == "application/octet-stream"
    assert answer.content == site.backend.adapter.read(name).data
    broken = viewer.get(url("download", site.made["broken"][0]))
    assert broken.content == b"\x00\x01 not a result"


# -- actions --------------------------------------------------------------------------------


def test_forget_selected(site, manager):
    doomed, kept = site.made["add"]
    confirm = manager.post(url("forget"), {"_selected_action": [doomed, site.made["fail"][0]]})
    assert confirm.status_code == 200 and "Forget these 2 task results?" in confirm.content.decode()
    assert site.exists(doomed)  # nothing is deleted before the confirmation
    done = manager.post(url("forget"), {"_selected_action": [doomed, site.made["fail"][0]], "post": "yes"})
    assert done.status_code == 302
    assert not site.exists(doomed) and not site.exists(site.made["fail"][0]) and site.exists(kept)
    # one from its own page
    assert "Forget these 1 task result?" in manager.get(url("delete", kept)).content.decode()
    manager.post(url("forget"), {"_selected_action": [kept], "post": "yes"})
    assert not site.exists(kept)


def test_actions_need_csrf(site, django_user_model):
    client = Client(enforce_csrf_checks=True)
    user = django_user_model.objects.create_superuser("root", password="pw")
    client.force_login(user)
    task_id = site.made["add"][0]
    assert client.post(url("forget"), {"_selected_action": [task_id], "post": "yes"}).status_code == 403
    assert client.post(url("purge"), {"older_than": "2999-01-01", "post": "yes"}).status_code == 403
    assert site.exists(task_id)


def test_purge_older_than(site, manager):
    asked = manager.get(url("purge"), {"older_than": "2000-01-01"}).content.decode()
    assert "Delete the task results older than 2000-01-01T00:00:00+00:00" in asked
    assert manager.get(url("purge"), {"older_than": "yesterday"}).content.decode().count("is not a date") == 1
    manager.post(url("purge"), {"older_than": "2000-01-01", "post": "yes"})
    assert site.exists(site.made["add"][0])  # nothing was that old
    tomorrow = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).date().isoformat()
    done = manager.post(url("purge"), {"older_than": tomorrow, "post": "yes"}, follow=True)
    assert "Deleted 5 task results older than" in done.content.decode()
    for task_id in [*site.made["add"], *site.made["fail"], *site.made["script"], *site.made["broken"]]:
        assert not site.exists(task_id)
    assert site.backend.restore_group(site.made["group"][0]) is not None  # groups are not task results


# -- what a page costs -------------------------------------------------------------------


@pytest.mark.parametrize("preset", OBJECT_STORES)
def test_a_page_of_50_is_one_listing_and_50_reads(preset, fresh_store, make_app, viewer):
    store = fresh_store(preset)
    app = store.app(make_app, result_extended=True)
    previous = get_current_app()
    app.set_current()
    try:
        ids = sorted(str(uuid.uuid4()) for _ in range(53))
        for task_id in ids:
            app.backend.store_result(task_id, 1, states.SUCCESS, request=_request("tests.add", "w1@host"))
        store.proxy.reset()
        first = viewer.get(reverse(LIST))
        assert len(first.context["rows"]) == 50
        assert sorted(store.calls(store.proxy.requests)) == ["list"] + ["read"] * 50
        store.proxy.reset()
        second = viewer.get(reverse(LIST) + first.context["next_url"])
        assert [row["id"] for row in second.context["rows"]] == ids[50:]
        assert sorted(store.calls(store.proxy.requests)) == ["list"] + ["read"] * 3
        store.proxy.reset()
        assert viewer.get(url("change", ids[0])).status_code == 200
        assert store.calls(store.proxy.requests) == ["read"]
        store.proxy.reset()
        assert viewer.get(url("download", ids[0])).status_code == 200
        assert store.calls(store.proxy.requests) == ["read"]
        store.proxy.reset()
        assert viewer.get(reverse(LIST), {"q": ids[0][:6]}).status_code == 200
        matching = [task_id for task_id in ids if task_id.startswith(ids[0][:6])]
        assert sorted(store.calls(store.proxy.requests)) == ["list"] + ["read"] * len(matching)
        store.proxy.reset()  # a filter on the date: the listing's times, no read
        assert viewer.get(reverse(LIST), {"written": "older-7d"}).context["rows"] == []
        assert store.calls(store.proxy.requests) == ["list"]
        store.proxy.reset()  # a filter on the state: one listing of up to SCAN names, each read
        assert len(viewer.get(reverse(LIST), {"state": "SUCCESS"}).context["rows"]) == 53
        assert sorted(store.calls(store.proxy.requests)) == ["list"] + ["read"] * 53
    finally:
        previous.set_current()


def test_a_folder_page_is_one_scan_and_50_opens(make_app, tmp_path, viewer):
    app = make_app(result_storage="filesystem", result_storage_config={"location": str(tmp_path)})
    previous = get_current_app()
    app.set_current()
    try:
        for _ in range(60):
            app.backend.store_result(str(uuid.uuid4()), 1, states.SUCCESS)
        viewer.get(reverse(LIST))  # the templates are read (and cached) once per process
        with counting_fs_calls() as calls:
            assert len(viewer.get(reverse(LIST)).context["rows"]) == 50
        assert dict(calls) == {"os.scandir": 1, "os.open": 50}
    finally:
        previous.set_current()


# -- the status views ----------------------------------------------------------------------


def test_status_views(site, client):
    made = site.made
    done = client.get(reverse("celery_results:task_status", args=[made["add"][1]])).json()
    assert done["task"]["status"] == "SUCCESS" and done["task"]["result"] == 1
    failed = client.get(reverse("celery_results:task_status", args=[made["fail"][0]])).json()["task"]
    assert failed["status"] == "FAILURE"
    assert failed["result"] == {"exc_type": "ValueError", "exc_message": "boom"}
    assert "traceback" not in failed  # never sent to a front end
    progress_id = str(uuid.uuid4())
    site.backend.store_result(progress_id, {"current": 3, "total": 10}, "PROGRESS")
    progress = client.get(reverse("celery_results:task_status", args=[progress_id])).json()["task"]
    assert progress == {
        "id": progress_id,
        "status": "PROGRESS",
        "result": {"current": 3, "total": 10},
        "date_done": progress["date_done"],
    }
    pending = client.get(reverse("celery_results:task_status", args=["not-run-yet"])).json()["task"]
    assert pending["status"] == "PENDING" and pending["result"] is None
    broken = client.get(reverse("celery_results:task_status", args=[made["broken"][0]])).json()["task"]
    assert broken["status"] == "UNREADABLE" and "it does not decode" in broken["problem"]
    escaped = client.get(reverse("celery_results:task_status", args=["..%2F..%2Fsecrets"]))
    assert escaped.json()["task"]["status"] == "PENDING"  # an odd id is encoded into one name in the prefix

    group = client.get(reverse("celery_results:group_status", args=[made["group"][0]])).json()["group"]
    assert group["total"] == 2 and group["completed"] == 2
    assert [member["status"] for member in group["results"]] == ["SUCCESS", "FAILURE"]
    assert group["results"][1]["result"]["exc_type"] == "ValueError"
    missing = client.get(reverse("celery_results:group_status", args=[str(uuid.uuid4())]))
    assert missing.status_code == 404 and missing.json()["group"]["saved"] is False
    assert client.post(reverse("celery_results:task_status", args=[made["add"][0]])).status_code == 405
    assert json.loads(client.get("/celery-results/task/x/").content)["task"]["id"] == "x"


# -- what the storage returns is input too --------------------------------------------


def test_an_object_over_the_size_limit_shows_as_such(make_app, tmp_path, viewer, client):
    app = make_app(
        result_storage="filesystem",
        result_storage_config={"location": str(tmp_path)},
        result_storage_max_size=200,
    )
    previous = get_current_app()
    app.set_current()
    try:
        task_id = str(uuid.uuid4())
        app.backend.adapter.put(app.backend.layout.name(app.backend.task_keyprefix, task_id), b"x" * 1000)
        listed = viewer.get(reverse(LIST)).content.decode()
        assert task_id in listed and "UNREADABLE" in listed and "larger than" in listed
        detail = viewer.get(url("change", task_id))
        assert detail.status_code == 200 and "larger than" in detail.content.decode()
        assert viewer.get(url("download", task_id)).status_code == 413
        status = client.get(reverse("celery_results:task_status", args=[task_id])).json()["task"]
        assert status["status"] == "UNREADABLE"
    finally:
        previous.set_current()


def test_a_project_without_our_backend_gets_a_page_saying_so(make_app, viewer):
    app = make_app(result_backend="cache+memory://")
    previous = get_current_app()
    app.set_current()
    try:
        answer = viewer.get(reverse(LIST))
        assert answer.status_code == 503 and "not django-storage" in answer.content.decode()
        status = viewer.get(reverse("celery_results:task_status", args=["x"]))
        assert status.status_code == 503 and "not django-storage" in status.json()["error"]
    finally:
        previous.set_current()


def test_any_storage_pages_by_name_and_dates_only_the_page(make_app, tmp_path, viewer, monkeypatch):
    """The generic adapter: one listdir a page, a modified time for each name shown."""
    from support.storages import ThirdPartyFolderStorage

    app = make_app(
        result_storage="support.storages.ThirdPartyFolderStorage",
        result_storage_config={"location": str(tmp_path)},
        result_extended=True,
    )
    previous = get_current_app()
    app.set_current()
    try:
        ids = sorted(str(uuid.uuid4()) for _ in range(7))
        for task_id in ids:
            app.backend.store_result(task_id, 1, states.SUCCESS, request=_request("tests.add", "w1@host"))
        asked: list[str] = []
        modified = ThirdPartyFolderStorage.get_modified_time
        monkeypatch.setattr(
            ThirdPartyFolderStorage,
            "get_modified_time",
            lambda self, name: asked.append(name) or modified(self, name),
        )
        monkeypatch.setattr(browse, "PER_PAGE", 3)
        first = viewer.get(reverse(LIST))
        assert [row["id"] for row in first.context["rows"]] == ids[:3]
        assert len(asked) == 3
        second = viewer.get(reverse(LIST) + first.context["next_url"])
        third = viewer.get(reverse(LIST) + second.context["next_url"])
        shown = [row["id"] for page in (second, third) for row in page.context["rows"]]
        assert shown == ids[3:] and third.context["next_url"] is None
    finally:
        previous.set_current()
