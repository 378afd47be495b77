"""The table-less StoredResult: migrate creates its content type and permissions, no table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.CreateModel(
            name="StoredResult",
            fields=[
                (
                    "task_id",
                    models.CharField(
                        max_length=255, primary_key=True, serialize=False, verbose_name="task id"
                    ),
                ),
            ],
            options={
                "verbose_name": "stored result",
                "verbose_name_plural": "stored results",
                "managed": False,
                "default_permissions": ("view", "delete"),
            },
        ),
    ]
