"""Settings resolution: class path, STORAGES alias, preset, default; clear errors."""

import os

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage

from django_storage_celery_results.config import default_location, resolve
from django_storage_celery_results.exceptions import ImproperlyConfigured
from django_storage_celery_results.generic import GenericAdapter
from django_storage_celery_results_filesystem import FileSystemAdapter

FS = "django.core.files.storage.FileSystemStorage"


def test_earlier_package_configuration_unchanged(tmp_path):
    config = resolve({"result_storage": FS, "result_storage_config": {"location": str(tmp_path)}})
    adapter = config.build_adapter()
    assert isinstance(adapter, FileSystemAdapter)
    assert adapter.root == str(tmp_path)


def test_preset_name(tmp_path):
    config = resolve({"result_storage": "filesystem", "result_storage_config": {"location": str(tmp_path)}})
    assert config.storage_class is FileSystemStorage
    assert config.provider is not None and config.provider.name == "filesystem"


def test_storages_alias_with_options_overridden(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "results": {"BACKEND": FS, "OPTIONS": {"location": "/not/used", "file_permissions_mode": 0o600}},
    }
    config = resolve({"result_storage": "results", "result_storage_config": {"location": str(tmp_path)}})
    storage = config.build_storage()
    assert storage.location == str(tmp_path)
    assert storage.file_permissions_mode == 0o600


def test_default_is_a_private_folder_not_media(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    config = resolve({})
    storage = config.build_storage()
    assert isinstance(storage, FileSystemStorage)
    assert storage.location == os.path.join(str(tmp_path), "celery-results")
    assert not storage.location.startswith(str(settings.MEDIA_ROOT))
    assert default_location() == storage.location


def test_class_path_without_location_does_not_use_media_root(settings, tmp_path):
    settings.BASE_DIR = tmp_path
    storage = resolve({"result_storage": FS}).build_storage()
    assert storage.location == os.path.join(str(tmp_path), "celery-results")


def test_storage_class_object_and_in_memory_storage_use_the_generic_adapter():
    config = resolve({"result_storage": InMemoryStorage})
    assert isinstance(config.build_adapter(), GenericAdapter)
    config = resolve({"result_storage": "django.core.files.storage.InMemoryStorage"})
    assert config.provider is None


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"result_storage": "no.such.Storage"}, r"CELERY_RESULT_STORAGE.*cannot import 'no.such.Storage'"),
        (
            {"result_storage": "storages.backends.nothing.Storage"},
            r"cannot import.*pip install django-storages",
        ),
        (
            {"result_storage": "filesytem"},
            r"'filesytem' is not a dotted class path.*did you mean 'filesystem'",
        ),
        (
            {"result_storage": FS, "result_storage_config": {"locaton": "/x"}},
            r"CELERY_RESULT_STORAGE_CONFIG.*has the key 'locaton'.*Did you mean 'location'",
        ),
        ({"result_storage": FS, "result_storage_config": ["location"]}, r"must be a dict"),
        ({"result_storage": 42}, r"must be a dotted class path"),
        ({"result_storage": "collections.OrderedDict"}, r"not a django.core.files.storage.Storage subclass"),
    ],
)
def test_errors_name_the_setting_and_the_fix(conf, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        resolve(conf)


def test_a_preset_of_a_provider_not_installed_names_the_package(monkeypatch):
    from django_storage_celery_results import providers

    package = "django-storage-celery-results-example"
    # every provider we publish may be installed here: name one that is not
    monkeypatch.setitem(providers.KNOWN_PRESETS, "example", package)
    with pytest.raises(ImproperlyConfigured, match=rf"needs {package}.*pip install {package}"):
        resolve({"result_storage": "example"})


def test_constructor_errors_never_echo_secrets():
    secret = "sup3r-s3cret-value"

    class NeedsKey(FileSystemStorage):
        def __init__(self, location=None, access_key=None):
            raise ValueError(f"bad key {access_key}")

    config = resolve({"result_storage": NeedsKey, "result_storage_config": {"access_key": secret}})
    with pytest.raises(ImproperlyConfigured) as error:
        config.build_storage()
    assert secret not in str(error.value)
    assert "access_key" in str(error.value)


def test_errors_are_both_celery_and_django_improperly_configured():
    import celery.exceptions
    import django.core.exceptions

    with pytest.raises(celery.exceptions.ImproperlyConfigured):
        resolve({"result_storage": "no.such.Storage"})
    with pytest.raises(django.core.exceptions.ImproperlyConfigured):
        resolve({"result_storage": "no.such.Storage"})


def test_the_generic_adapter_can_be_forced(tmp_path):
    conf = {"result_storage": "filesystem", "result_storage_config": {"location": str(tmp_path)}}
    assert isinstance(resolve(conf).build_adapter(), FileSystemAdapter)
    assert isinstance(resolve({**conf, "result_storage_adapter": "generic"}).build_adapter(), GenericAdapter)
    with pytest.raises(ImproperlyConfigured, match=r"CELERY_RESULT_STORAGE_ADAPTER.*'fast'"):
        resolve({**conf, "result_storage_adapter": "fast"})


def test_resolved_configuration_repr_hides_constructor_arguments(tmp_path):
    config = resolve({"result_storage": FS, "result_storage_config": {"location": str(tmp_path)}})
    assert str(tmp_path) not in repr(config)


@pytest.mark.parametrize(
    ("value", "timeout"),
    [(None, (10.0, 60.0)), (5, (5.0, 5.0)), ((2, 7.5), (2.0, 7.5)), ([1, 3], (1.0, 3.0))],
)
def test_the_request_timeout_reaches_the_adapter(make_app, tmp_path, value, timeout):
    conf = {} if value is None else {"result_storage_timeout": value}
    app = make_app(result_storage="filesystem", result_storage_config={"location": str(tmp_path)}, **conf)
    assert app.backend.adapter.request_timeout == timeout


@pytest.mark.parametrize("value", [0, -1, "60", True, (1,), (1, 2, 3), (1, "2")])
def test_the_request_timeout_must_be_seconds(make_app, tmp_path, value):
    app = make_app(
        result_storage="filesystem",
        result_storage_config={"location": str(tmp_path)},
        result_storage_timeout=value,
    )
    with pytest.raises(ImproperlyConfigured, match="CELERY_RESULT_STORAGE_TIMEOUT"):
        app.backend  # noqa: B018
