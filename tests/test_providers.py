"""Provider discovery through entry points, including a broken provider."""

from __future__ import annotations

import sys

import pytest

from django_storage_celery_results import providers
from django_storage_celery_results.config import resolve
from django_storage_celery_results.exceptions import ImproperlyConfigured


@pytest.fixture
def broken_distribution(tmp_path, monkeypatch):
    """Install (on sys.path) a distribution whose provider entry point fails.

    It publishes a preset of its own, as ours do: the real providers may all
    be installed here, and one of them would answer for its name.
    """
    monkeypatch.setitem(providers.KNOWN_PRESETS, "example", "django-storage-celery-results-example")
    info = tmp_path / "broken_results_provider-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-results-provider\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[django_storage_celery_results.providers]\nexample = broken_results_provider:provider\n"
    )
    (tmp_path / "broken_results_provider.py").write_text("raise RuntimeError('cannot import boto')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    providers.registry.cache_clear()
    yield
    sys.modules.pop("broken_results_provider", None)
    providers.registry.cache_clear()


def test_installed_providers_are_found():
    found = providers.registry()
    assert "filesystem" in found.providers
    assert found.providers["filesystem"].distribution == "django-storage-celery-results-filesystem"


def test_a_broken_provider_is_reported_not_fatal(broken_distribution, tmp_path, caplog):
    found = providers.registry()
    assert "filesystem" in found.providers  # the others still load
    assert "example" in found.broken and "cannot import boto" in found.broken["example"]
    with pytest.raises(
        ImproperlyConfigured, match=r"'example' needs django-storage-celery-results-example but failed"
    ):
        resolve({"result_storage": "example"})
    assert resolve({"result_storage": "filesystem", "result_storage_config": {"location": str(tmp_path)}})


def test_most_specific_provider_wins():
    from django.core.files.storage import FileSystemStorage, Storage

    class Special(FileSystemStorage):
        pass

    registry = providers.registry()
    assert registry.for_storage(Special) is registry.providers["filesystem"]
    assert registry.for_storage(Storage) is None


def test_a_broken_provider_shows_in_the_checks(broken_distribution, make_app, tmp_path):
    from django_storage_celery_results.checks import check_result_storage

    app = make_app(result_storage="filesystem", result_storage_config={"location": str(tmp_path)})
    app.set_current()
    messages = check_result_storage()
    assert [m.id for m in messages] == ["django_storage_celery_results.W003"]
    assert "'example' failed to load" in messages[0].msg
