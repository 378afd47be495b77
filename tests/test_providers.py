"""Provider discovery through entry points, including a broken provider."""

from __future__ import annotations

import subprocess
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


#: The store SDKs a provider imports when its adapter or checks are first used.
SDKS = ("boto3", "botocore", "google.cloud.storage", "azure.storage.blob")


def test_a_folder_backend_imports_no_store_sdk(tmp_path):
    """Every provider is installed here, yet a process on the folder imports
    none of their SDKs: the registry loads them by name, not by import."""
    script = f"""
import subprocess
import sys
import django
from django.conf import settings
settings.configure()
django.setup()
from celery import Celery
app = Celery(set_as_current=False)
app.conf.update(result_backend="django-storage", result_storage="filesystem",
                result_storage_config={{"location": {str(tmp_path)!r}}})
from django_storage_celery_results.providers import registry
assert sorted(registry().providers) == ["azure", "filesystem", "gcs", "s3"], registry()
app.backend.store_result("t", 1, "SUCCESS")
assert app.AsyncResult("t").get(timeout=1) == 1
print([name for name in {SDKS!r} if name in sys.modules])
"""
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"


def test_a_provider_field_is_imported_when_first_used():
    s3 = providers.registry().providers["s3"]
    assert isinstance(s3.adapter, providers.Deferred)
    adapter_class = providers.resolve(s3.adapter)
    assert adapter_class.__name__ == "S3Adapter"
    import django_storage_celery_results_s3 as package

    assert package.S3Adapter is adapter_class  # the package's own name, imported lazily too
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        package.Nope  # noqa: B018


def test_storage_classes_match_where_defined_or_where_re_exported():
    from django.core.files.storage import FileSystemStorage
    from django.core.files.storage.filesystem import FileSystemStorage as Defined

    class Special(FileSystemStorage):
        pass

    mro = Special.__mro__
    assert providers.served_at("django.core.files.storage.filesystem.FileSystemStorage", mro) == 1
    assert providers.served_at("django.core.files.storage.FileSystemStorage", mro) == 1  # re-exported
    assert Defined is FileSystemStorage
    assert providers.served_at("no.such.module.Storage", mro) is None
    assert providers.served_at("django.core.files.storage.Storage", (FileSystemStorage,)) is None
