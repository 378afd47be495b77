"""The test project's URLs: the admin and the JSON status views."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("celery-results/", include("django_storage_celery_results.urls")),
]
