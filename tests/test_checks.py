"""Django system checks for the configured result storage."""

from __future__ import annotations

from django.core import checks

from django_storage_celery_results.checks import check_result_storage


def ids(messages):
    return [message.id for message in messages]


def test_private_folder_passes(current, tmp_path):
    current(result_storage="filesystem", result_storage_config={"location": str(tmp_path / "r")})
    assert check_result_storage() == []


def test_results_inside_media_root_warn(current, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    current(
        result_storage="django.core.files.storage.FileSystemStorage",
        result_storage_config={"location": str(tmp_path / "media" / "celery-results")},
    )
    messages = check_result_storage()
    assert ids(messages) == ["django_storage_celery_results.W001"]
    assert "MEDIA_ROOT" in messages[0].msg
    assert messages[0].level == checks.WARNING


def test_results_inside_staticfiles_dirs_warn(current, settings, tmp_path):
    settings.STATICFILES_DIRS = [("assets", str(tmp_path / "assets"))]
    current(result_storage="filesystem", result_storage_config={"location": str(tmp_path / "assets")})
    assert ids(check_result_storage()) == ["django_storage_celery_results.W001"]


def test_bad_configuration_is_an_error_naming_the_setting(current):
    current(result_storage="no.such.Storage")
    messages = check_result_storage()
    assert ids(messages) == ["django_storage_celery_results.E001"]
    assert "CELERY_RESULT_STORAGE" in messages[0].msg


def test_other_backends_are_left_alone(current):
    current(result_backend="rpc://", result_storage="no.such.Storage")
    assert check_result_storage() == []


def test_check_is_registered_with_django(current, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    current(result_storage="filesystem", result_storage_config={"location": str(tmp_path / "r")})
    assert "django_storage_celery_results.W001" in ids(checks.run_checks())


def test_missing_provider_is_suggested(current, tmp_path, monkeypatch):
    from django_storage_celery_results import providers

    monkeypatch.setattr(providers, "registry", lambda: providers.Registry({}, {}))
    monkeypatch.setattr("django_storage_celery_results.config.registry", providers.registry)
    monkeypatch.setattr("django_storage_celery_results.checks.registry", providers.registry)
    current(
        result_storage="django.core.files.storage.FileSystemStorage",
        result_storage_config={"location": str(tmp_path)},
    )
    messages = check_result_storage()
    assert ids(messages) == ["django_storage_celery_results.W002"]
    assert messages[0].hint == "pip install django-storage-celery-results-filesystem"


def test_the_default_folder_is_named(current, settings, tmp_path):
    settings.BASE_DIR = tmp_path
    current()
    messages = check_result_storage()
    assert ids(messages) == ["django_storage_celery_results.I001"]
    assert str(tmp_path / "celery-results") in messages[0].msg
