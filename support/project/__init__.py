"""The Django project a test or benchmark worker runs: settings, the Celery app, its tasks."""
