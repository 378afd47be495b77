from django.apps import AppConfig


class CeleryResultsStorageConfig(AppConfig):
    name = "django_storage_celery_results"
    verbose_name = "Celery results in Django Storage"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
