"""Debian's headless Chromium driven by Selenium through Debian's chromedriver.

Both paths are given, so Selenium Manager (which would download a driver or
a browser) never runs; SE_OFFLINE says the same to any part of Selenium
that would still ask it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WINDOW_SIZE = (1280, 900)

# A root user on a closed network: no sandbox (it needs an unprivileged user),
# no GPU, and none of the browser's own calls home (updates, sync, QUIC probes).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}",
)


def missing() -> str | None:
    """What this machine lacks to run the browser tests (None: nothing)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium)"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing (apt-get install {package})"
    return None


class Browser:
    """One headless Chromium with a fresh profile, removed when it stops."""

    def __init__(self) -> None:
        from selenium.webdriver import Chrome, ChromeOptions
        from selenium.webdriver.chrome.service import Service

        os.environ["SE_OFFLINE"] = "true"
        self._profile = tempfile.TemporaryDirectory(prefix="dscr-chromium-")
        options = ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}"):
            options.add_argument(flag)
        self.driver: Chrome = Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        self.driver.set_window_size(*WINDOW_SIZE)

    def stop(self) -> None:
        try:
            self.driver.quit()
        finally:
            self._profile.cleanup()
