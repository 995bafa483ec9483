"""The single gallery version row, so writers only ever update it (no insert race)."""
import uuid

from django.db import migrations


def create_row(apps, schema_editor):
    GalleryVersion = apps.get_model("members", "GalleryVersion")
    GalleryVersion.objects.get_or_create(pk=1, defaults={"token": uuid.uuid4().hex})


class Migration(migrations.Migration):
    dependencies = [("members", "0001_initial")]

    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
