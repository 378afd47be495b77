"""A model with no table: it gives the admin a place in its index and the
two permissions that guard the results pages (view, delete), grantable per
user and group. Results stay in the storage; nothing is ever saved here."""

from __future__ import annotations

from django.db import models


class StoredResult(models.Model):
    task_id: models.CharField[str, str] = models.CharField("task id", max_length=255, primary_key=True)

    class Meta:
        managed = False
        default_permissions = ("view", "delete")
        verbose_name = "stored result"
        verbose_name_plural = "stored results"

    def __str__(self) -> str:
        return self.task_id
