"""The results admin in a real browser: Debian's headless Chromium (the
session's `chromium` fixture) against a live server, on results a real
`celery worker` stored over a Redis broker, in a folder and in S3 (moto).

Screenshots of the list and detail pages go to a temporary folder, or to
DSCR_SCREENSHOTS when it is set (DSCR_SCREENSHOTS=docs/images refreshes the
documentation's).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery, group
from celery import _state as celery_state
from celery._state import get_current_app

pytestmark = pytest.mark.e2e

#: What one result holds: the pages must show it as text, never run it.
SCRIPT = "<script>alert(1)</script>"
#: One group's members: more results than one page of the list (50) holds.
GROUP_SIZE = 55
#: Seconds an explicit wait waits for a page to show what it should.
WAIT = 15

PASSWORD = "browser-test-password"


@dataclass
class StoredResults:
    """What the worker stored, and a client app on the same storage to check it."""

    app: Celery
    storage: str
    config: dict
    successes: list[str] = field(default_factory=list)
    failure: str = ""
    script: str = ""
    forgettable: str = ""
    group_id: str = ""
    members: list[str] = field(default_factory=list)

    def stored(self, task_id: str) -> bool:
        backend = self.app.backend
        return backend.adapter.read(backend.get_key_for_task(task_id)) is not None


def storage_under_test(request, name: str) -> tuple[str, dict, dict]:
    """CELERY_RESULT_STORAGE, the backend's config and the worker's (JSON) config."""
    if name == "filesystem":
        config = {"location": str(request.getfixturevalue("results_dir"))}
        return "filesystem", config, config
    store = request.getfixturevalue("fresh_store")(name)  # its client's environment set for this test
    return store.preset, store.config, store.worker_config()


@pytest.fixture(params=["filesystem", "s3"])
def stored_results(request, redis_url, start_worker, make_app) -> Iterator[StoredResults]:
    """Successes, a failure, a result holding a script, a saved group of
    GROUP_SIZE and one more success to forget, stored by a real worker; a
    client app on the same storage is Celery's current and default app (the one the admin reads)."""
    storage, config, worker_config = storage_under_test(request, request.param)
    start_worker(
        broker_url=redis_url, result_storage=storage, result_storage_config=json.dumps(worker_config)
    )
    app = make_app(
        broker_url=redis_url, result_storage=storage, result_storage_config=config, result_extended=True
    )
    add, fail, echo = (app.signature(f"tests.{task}") for task in ("add", "fail", "echo"))

    members = group(add.clone((i, i)) for i in range(GROUP_SIZE)).apply_async()
    failed = fail.clone(("expected failure for the admin",)).delay()
    script = echo.clone(({"note": SCRIPT},)).delay()
    forgettable = add.clone((1000, 1)).delay()
    assert members.join_native(timeout=60) == [2 * i for i in range(GROUP_SIZE)]
    members.save()
    failed.get(timeout=30, propagate=False)
    assert script.get(timeout=30) == {"note": SCRIPT}
    assert forgettable.get(timeout=30) == 1001

    ids = [member.id for member in members.results]
    # the live server answers in threads of its own: they see Celery's default app
    previous, previous_default = get_current_app(), celery_state.default_app
    app.set_current()
    app.set_default()
    yield StoredResults(
        app,
        storage,
        config,
        successes=[*ids, script.id, forgettable.id],
        failure=failed.id,
        script=script.id,
        forgettable=forgettable.id,
        group_id=members.id,
        members=ids,
    )
    previous.set_current()
    celery_state.set_default_app(previous_default)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the screenshots go: DSCR_SCREENSHOTS, else this test's temporary folder."""
    folder = Path(os.environ["DSCR_SCREENSHOTS"]) if os.environ.get("DSCR_SCREENSHOTS") else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Admin:
    """The browser on the live server's admin, with explicit waits."""

    def __init__(self, driver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def wait_for(self, css: str):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, WAIT).until(
            expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
        )

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.find("body").text

    def click_and_wait(self, element, css: str):
        """Click what loads a new page, and wait for that page (not the old one) to show css."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        element.click()
        # mid-navigation Chromium may answer "node does not belong to the document": not yet stale
        WebDriverWait(self.driver, WAIT, ignored_exceptions=[WebDriverException]).until(
            expected_conditions.staleness_of(element)
        )
        return self.wait_for(css)

    def log_in(self, username: str, password: str) -> None:
        self.open("/admin/login/")
        self.wait_for("#id_username").send_keys(username)
        self.find("#id_password").send_keys(password)
        self.click_and_wait(self.find("input[type=submit]"), "#user-tools")
        # the admin's navigation sidebar closed (as its toggle leaves it): the table gets the width
        self.driver.execute_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")

    def listed_ids(self) -> list[str]:
        return [link.text for link in self.find_all("#result_list th.field-task_id a")]

    def cell(self, task_id: str, field: str) -> str:
        row = self.find(f"#result_list input.action-select[value='{task_id}']").find_element(
            "xpath", "ancestor::tr"
        )
        return row.find_element("css selector", f"td.field-{field}").text

    def log_out(self) -> None:
        self.driver.delete_all_cookies()


@pytest.fixture(scope="session")
def admin_server(django_db_setup, live_server):
    """The live server, started after the test database exists (so its
    request threads open the database file themselves, sharing no connection)."""
    return live_server


@pytest.fixture
def admin_browser(chromium, admin_server, django_user_model) -> Admin:
    """The session's browser logged in through the admin's login form as a
    staff user with the view and delete permissions (logged out afterwards)."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("operator", password=PASSWORD, is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="django_storage_celery_results")
    )
    admin = Admin(chromium, admin_server.url)
    admin.log_in("operator", PASSWORD)
    yield admin
    admin.log_out()


def test_list_filter_page_search_detail_forget_and_group(admin_browser, stored_results, screenshots):
    from django.urls import reverse
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions

    admin, results = admin_browser, stored_results
    changelist = reverse("admin:django_storage_celery_results_storedresult_changelist")
    task_ids = sorted([*results.successes, results.failure])  # the storage lists them by task id

    # the list: the first 50 task results, in the listing's order, with their states and task names
    admin.open(changelist)
    admin.wait_for("#result_list")
    assert "Stored results" in admin.find("#content h1").text
    assert admin.listed_ids() == task_ids[:50]
    first_page = admin.text()
    for column in ("Task id", "State", "Task name", "Worker", "Date done", "Size"):
        assert column.upper() in admin.find("#result_list thead").text.upper()  # the theme's capitals
    shown = task_ids[:50]
    if results.failure in shown:
        assert admin.cell(results.failure, "state") == "FAILURE"
        assert admin.cell(results.failure, "task_name") == "tests.fail"
    member = next(i for i in shown if i in results.members)
    assert admin.cell(member, "state") == "SUCCESS"
    assert admin.cell(member, "task_name") == "tests.add"
    assert "@localhost" in admin.cell(member, "worker")
    assert "50 on this page" in first_page
    admin.driver.save_screenshot(str(screenshots / "admin-list.png"))

    # the next page holds the rest, and is the last; First goes back
    admin.click_and_wait(admin.find("p.paginator a.next"), "#result_list")
    assert admin.listed_ids() == task_ids[50:]
    assert "on this page, the last" in admin.find("p.paginator").text
    assert not admin.find_all("p.paginator a.next")
    admin.click_and_wait(admin.find("p.paginator a.first"), "#result_list")
    assert admin.listed_ids() == task_ids[:50]

    # the state filter: only the failure
    failure_filter = admin.find("#changelist-filter details[data-filter-title='state']").find_element(
        By.LINK_TEXT, "Failure"
    )
    admin.click_and_wait(failure_filter, "#result_list")
    assert admin.listed_ids() == [results.failure]
    assert admin.cell(results.failure, "state") == "FAILURE"
    selected = admin.find("#changelist-filter details[data-filter-title='state'] li.selected")
    assert selected.text == "Failure"

    # its detail: the decoded exception and the traceback
    admin.click_and_wait(admin.find("#result_list th.field-task_id a"), "#traceback")
    assert admin.find("#result-id").text == results.failure
    detail = admin.text()
    assert "FAILURE" in detail
    assert "tests.fail" in detail
    assert "ValueError" in admin.find("#result-value").text
    assert "ValueError: expected failure for the admin" in admin.find("#traceback").text
    admin.driver.save_screenshot(str(screenshots / "admin-detail.png"))

    # search by task id, then the detail of a result holding a script: shown as text, never run
    admin.open(changelist)
    admin.wait_for("#searchbar").send_keys(results.script)
    admin.click_and_wait(admin.find("#changelist-search input[type=submit]"), "#result_list")
    assert admin.listed_ids() == [results.script]
    assert admin.cell(results.script, "task_name") == "tests.echo"
    admin.click_and_wait(admin.find("#result_list th.field-task_id a"), "#result-value")
    assert json.loads(admin.find("#result-value").text) == {"note": SCRIPT}
    assert SCRIPT in admin.text()
    assert expected_conditions.alert_is_present()(admin.driver) is False
    assert not admin.find_all("#content script")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin.driver.page_source

    # forget one result through the action and its confirmation page
    admin.open(changelist)
    admin.wait_for("#searchbar").send_keys(results.forgettable)
    admin.click_and_wait(admin.find("#changelist-search input[type=submit]"), "#result_list")
    admin.find(f"#result_list input.action-select[value='{results.forgettable}']").click()
    admin.click_and_wait(admin.find("#changelist-form .actions button[type=submit]"), "#forget-ids")
    assert admin.find("#forget-ids").text == results.forgettable
    admin.click_and_wait(admin.find("#content-main form input[type=submit]"), "ul.messagelist")
    assert "Forgot 1 task result(s)." in admin.find("ul.messagelist").text
    assert not results.stored(results.forgettable)
    assert results.stored(results.script)
    admin.open(f"{changelist}?q={results.forgettable}")
    admin.wait_for("#no-results")
    admin.open(changelist)
    admin.wait_for("#result_list")
    remaining = sorted(set(task_ids) - {results.forgettable})
    assert admin.listed_ids() == remaining[:50]

    # the groups: the saved group, and its members with their states
    admin.click_and_wait(
        admin.find("#changelist-filter").find_element(By.LINK_TEXT, "Group results"), "#result_list"
    )
    assert admin.listed_ids() == [results.group_id]
    admin.click_and_wait(admin.find("#result_list th.field-task_id a"), "#members")
    assert admin.find("#result-id").text == results.group_id
    assert admin.find("#members caption").text.upper() == f"MEMBERS ({GROUP_SIZE})"  # the theme's capitals
    member_rows = admin.find_all("#members tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, "a").text for row in member_rows] == results.members
    assert {row.find_elements(By.CSS_SELECTOR, "td")[1].text for row in member_rows} == {"SUCCESS"}
