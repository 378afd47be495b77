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
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery, group

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
def stored_results(request, redis_url, start_worker, make_app, settings) -> StoredResults:
    """Successes, a failure, a result holding a script, a saved group of
    GROUP_SIZE and one more success to forget, stored by a real worker; the
    admin's settings point at the same storage."""
    storage, config, worker_config = storage_under_test(request, request.param)
    start_worker(
        broker_url=redis_url, result_storage=storage, result_storage_config=json.dumps(worker_config)
    )
    app = make_app(
        broker_url=redis_url, result_storage=storage, result_storage_config=config, result_extended=True
    )
    settings.CELERY_RESULT_STORAGE = storage
    settings.CELERY_RESULT_STORAGE_CONFIG = config
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
    return StoredResults(
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
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        element.click()
        WebDriverWait(self.driver, WAIT).until(expected_conditions.staleness_of(element))
        return self.wait_for(css)

    def log_in(self, username: str, password: str) -> None:
        self.open("/admin/login/")
        self.wait_for("#id_username").send_keys(username)
        self.find("#id_password").send_keys(password)
        self.click_and_wait(self.find("input[type=submit]"), "#user-tools")

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


def test_admin_pages(admin_browser, stored_results, screenshots):
    admin = admin_browser
    admin.open("/admin/")
    admin.wait_for("#content")
    assert "Site administration" in admin.text()
    admin.driver.save_screenshot(str(screenshots / "admin-index.png"))
