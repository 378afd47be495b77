"""Settings errors point the right way: class path typos, preset names, a hint per E001 cause."""

from __future__ import annotations

import pickle

import pytest
from django.core.files.storage import FileSystemStorage

from django_storage_celery_results import providers
from django_storage_celery_results.checks import check_result_storage
from django_storage_celery_results.config import resolve
from django_storage_celery_results.exceptions import ImproperlyConfigured

FS = "django.core.files.storage.FileSystemStorage"


def error_of(conf) -> ImproperlyConfigured:
    with pytest.raises(ImproperlyConfigured) as caught:
        resolve(conf)
    return caught.value


def test_a_class_name_typo_names_the_attribute_and_the_module_classes():
    error = error_of({"result_storage": "storages.backends.s3.S3Storag"})
    assert error.message == (
        "CELERY_RESULT_STORAGE (result_storage) = 'storages.backends.s3.S3Storag': the module "
        "storages.backends.s3 has no attribute 'S3Storag'; did you mean 'storages.backends.s3.S3Storage'? "
        "Its Storage classes: S3ManifestStaticStorage, S3StaticStorage, S3Storage."
    )
    assert "pip install" not in str(error)


def test_a_class_of_django_itself_is_suggested_too():
    error = error_of({"result_storage": "django.core.files.storage.filesystemstorage"})
    assert "did you mean 'django.core.files.storage.FileSystemStorage'?" in error.message
    assert "InMemoryStorage" in error.message


def test_a_module_typo_inside_an_installed_package_suggests_its_modules():
    error = error_of({"result_storage": "storages.backends.s3boto.S3Boto3Storage"})
    assert "storages.backends has no module 's3boto'; did you mean 'storages.backends.s3boto3'?" in (
        error.message
    )
    assert "s3boto3, sftpstorage" in error.hint
    assert "pip install django-storages --upgrade" in error.hint


def test_a_package_not_installed_names_what_to_install(monkeypatch):
    from django_storage_celery_results import suggestions

    monkeypatch.setitem(suggestions.DISTRIBUTION_OF_MODULE, "nowhere_storages", "django-nowhere")
    error = error_of({"result_storage": "nowhere_storages.backends.Storage"})
    assert "No module named 'nowhere_storages'" in error.message
    assert error.hint == "Install it with: pip install django-nowhere"


def test_a_missing_dependency_of_the_module_is_named(tmp_path, monkeypatch):
    (tmp_path / "needs_dependency.py").write_text("import not_installed_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    error = error_of({"result_storage": "needs_dependency.Storage"})
    assert "needs_dependency needs the module 'not_installed_dependency', which is not installed" in (
        error.message
    )


def test_a_module_failing_to_import_is_an_error_naming_it(tmp_path, monkeypatch):
    (tmp_path / "broken_storage_module.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    error = error_of({"result_storage": "broken_storage_module.Storage"})
    assert "importing broken_storage_module failed with RuntimeError: boom at import" in error.message


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("S3", "s3"),
        ("aws", "s3"),
        ("AWS", "s3"),
        ("s3boto", "s3"),
        ("S3Boto3", "s3"),
        ("minio", "s3"),
        ("GCS", "gcs"),
        ("gcloud", "gcs"),
        ("google-cloud", "gcs"),
        ("Azure", "azure"),
        ("azure_storage", "azure"),
        ("FileSystem", "filesystem"),
        ("file-system", "filesystem"),
        ("local", "filesystem"),
    ],
)
def test_preset_names_get_the_preset_meant(name, meant):
    error = error_of({"result_storage": name})
    assert f"{name!r} is not a dotted class path" in error.message  # suggested, never accepted
    assert error.message.endswith(f"did you mean {meant!r}?")


def test_a_suggested_preset_that_is_not_installed_names_its_package(monkeypatch):
    monkeypatch.setattr("django_storage_celery_results.config.registry", lambda: providers.Registry({}, {}))
    error = error_of({"result_storage": "aws"})
    assert error.message.endswith(
        "did you mean 's3'? (it needs pip install django-storage-celery-results-s3)"
    )


def test_storages_aliases_and_keys_match_without_case(settings):
    settings.STORAGES = {**settings.STORAGES, "results": {"BACKEND": FS}}
    assert error_of({"result_storage": "Results"}).message.endswith("did you mean 'results'?")
    error = error_of({"result_storage": FS, "result_storage_config": {"Location": "/x"}})
    assert "Did you mean 'location'?" in error.message


def test_closest_folds_case_and_separators_then_aliases_then_spelling():
    from django_storage_celery_results import suggestions

    assert suggestions.closest("Bucket-Name", ["bucket_name", "location"]) == "bucket_name"
    assert suggestions.closest("aws", ["s3"], {"aws": "s3"}) == "s3"
    assert suggestions.closest("locaton", ["bucket_name", "location"]) == "location"
    assert suggestions.closest("zzz", ["bucket_name", "location"]) is None


@pytest.mark.parametrize(
    ("conf", "hint"),
    [
        (
            {"result_storage": FS, "result_storage_config": ["location"]},
            "For example CELERY_RESULT_STORAGE_CONFIG",
        ),
        ({"result_storage": 42}, "For example 'filesystem' (a preset)"),
        ({"result_storage": "collections.OrderedDict"}, "Name a Storage class"),
        ({"result_storage": "django.core.files.storage.default_storage"}, "That is a storage instance"),
        ({"result_storage": "no.such.Storage"}, "Check the spelling"),
        ({"result_storage": "storages.backends.nothing.Storage"}, "The modules of storages.backends"),
        # the message says it all: the closest name, the choices, the accepted keys
        ({"result_storage": "storages.backends.s3.S3Storag"}, None),
        ({"result_storage": "aws"}, None),
        ({"result_storage": FS, "result_storage_config": {"locaton": "/x"}}, None),
        ({"result_storage": "filesystem", "result_storage_adapter": "fast"}, None),
    ],
)
def test_every_e001_cause_has_its_own_hint_or_none(current, conf, hint):
    current(**conf)
    [message] = check_result_storage()
    assert message.id == "django_storage_celery_results.E001"
    if hint is None:
        assert message.hint is None
    else:
        assert message.hint.startswith(hint)
        assert message.hint not in message.msg  # shown once, below the message


def test_a_storage_that_cannot_be_built_gets_a_hint(current):
    class Picky(FileSystemStorage):
        def __init__(self, location=None, mode=None):
            raise ValueError("mode must be an int")

    current(result_storage=Picky, result_storage_config={"mode": "rw"})
    [message] = check_result_storage()
    assert "could not be created" in message.msg
    assert message.hint.startswith("Correct that value in CELERY_RESULT_STORAGE_CONFIG")


def test_the_exception_text_carries_the_hint_for_logs_and_survives_pickling():
    error = ImproperlyConfigured("X is wrong", hint="Set X.")
    assert str(error) == "X is wrong. Set X."
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.hint) == ("X is wrong", "Set X.")
    assert str(ImproperlyConfigured("Y is wrong")) == "Y is wrong"
