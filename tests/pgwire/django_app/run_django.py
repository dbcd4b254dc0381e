"""Run by tests/pgwire/test_django_alembic.py in its own process (Django's settings are
global): makemigrations + migrate of the ``tapp`` app against a tarndb server, a second
migration that alters and adds fields, then ORM CRUD. Prints one JSON line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import django
from django.conf import settings

port, migrations = int(sys.argv[1]), sys.argv[2]
sys.path.insert(0, str(Path(__file__).parent))
settings.configure(
    INSTALLED_APPS=["tapp"],
    MIGRATION_MODULES={"tapp": "tapp_migrations"},
    DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "HOST": "127.0.0.1",
                           "PORT": port, "NAME": "postgres", "USER": "postgres",
                           "PASSWORD": os.environ["PGPASSWORD"],
                           "OPTIONS": {"sslmode": "require"}}},
    USE_TZ=True, DEFAULT_AUTO_FIELD="django.db.models.BigAutoField")
sys.path.insert(0, migrations)  # tapp_migrations/ is written there
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import IntegrityError, connection, models, transaction  # noqa: E402
from django.db import migrations as m  # noqa: E402
from pgvector.django import L2Distance  # noqa: E402
from tapp.models import Author, Book  # noqa: E402

call_command("makemigrations", "tapp", verbosity=0)
call_command("migrate", verbosity=0)
out: dict[str, object] = {}
a = Author.objects.create(name="Ann")
b = Author.objects.create(name="Bob")
Book.objects.create(author=a, title="one", price="9.50", data={"k": 1}, embedding=[1, 0, 0])
Book.objects.create(author=a, title="two", price="3.25", data={"k": 2}, embedding=[0, 1, 0])
Book.objects.create(author=b, title="three", embedding=[0, 0, 1])
out["near"] = [x.title for x in
               Book.objects.order_by(L2Distance("embedding", [0.9, 0.1, 0]))[:2]]
out["by_author"] = list(Book.objects.filter(author__name="Ann").order_by("title")
                        .values_list("title", flat=True))
out["json"] = list(Book.objects.filter(data__k=2).values_list("title", flat=True))
Book.objects.filter(title="two").update(price="4.00")
out["price"] = str(Book.objects.get(title="two").price)
try:
    with transaction.atomic():
        Author.objects.create(name="Ann")
    out["unique"] = "no error"
except IntegrityError:
    out["unique"] = "IntegrityError"
try:
    with transaction.atomic():
        Book.objects.create(author=a, title="one")
    out["unique_together"] = "no error"
except IntegrityError:
    out["unique_together"] = "IntegrityError"

# A second migration: widen a field, change a type, add a field with a default.
ops = [
    m.AlterField("author", "name", models.CharField(max_length=300, unique=True)),
    m.AlterField("author", "born", models.DateTimeField(null=True)),
    m.AddField("book", "pages", models.IntegerField(default=100)),
]
migration = type("Migration", (m.Migration,), {
    "dependencies": [("tapp", "0001_initial")], "operations": ops})("0002_more", "tapp")
from django.db.migrations.executor import MigrationExecutor  # noqa: E402

executor = MigrationExecutor(connection)
state = executor.loader.project_state(("tapp", "0001_initial"))
with connection.schema_editor(atomic=True) as editor:
    migration.apply(state, editor)
with connection.cursor() as cur:
    cur.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute a JOIN pg_class c "
                "ON c.oid = a.attrelid WHERE c.relname = 'tapp_author' AND attname = 'born'")
    out["born_type"] = cur.fetchone()[0]
    cur.execute("SELECT pages FROM tapp_book ORDER BY id")
    out["pages"] = [r[0] for r in cur.fetchall()]
a.delete()
out["left"] = list(Book.objects.values_list("title", flat=True))
print("RESULT " + json.dumps(out))
