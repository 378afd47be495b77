"""The JSON status views; a project turns them on by including this module:

    path("celery-results/", include("django_storage_celery_results.urls"))

See docs/admin.md for who can reach them (the id is the only key).
"""

from django.urls import path

from . import views

app_name = "celery_results"

urlpatterns = [
    path("task/<str:task_id>/", views.task_status, name="task_status"),
    path("group/<str:group_id>/", views.group_status, name="group_status"),
]
