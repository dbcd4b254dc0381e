"""The Django app of tests/pgwire/test_django_alembic.py."""

from django.db import models
from pgvector.django import VectorField


class Author(models.Model):
    name = models.CharField(max_length=100, unique=True)
    born = models.DateField(null=True)


class Book(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    title = models.CharField(max_length=200, db_index=True)
    price = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    data = models.JSONField(default=dict)
    embedding = VectorField(dimensions=3, null=True)

    class Meta:
        indexes = [models.Index(fields=["price", "title"])]
        constraints = [models.UniqueConstraint(fields=["author", "title"],
                                               name="uniq_author_title")]
