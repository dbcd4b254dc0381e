"""LlamaIndex ``PGVectorStore`` against a real server: its table setup (an expression index,
an hnsw index), building an index from documents, and a filtered query; SQLAlchemy ORM models
with a schema (``schema.table.column`` references). Embeddings come from a hashing class."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import numpy as np
import pytest

from .conftest import Server

DIM = 32


def _embed(text: str) -> list[float]:
    v = np.zeros(DIM, np.float32)
    for word in text.lower().split():
        v[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIM] += 1.0
    n = float(np.linalg.norm(v))
    return (v / n if n else v).tolist()


def test_llamaindex_pgvectorstore_build_and_query_with_filter(pg_server: Server) -> None:
    pytest.importorskip("psycopg2")
    pytest.importorskip("asyncpg")
    core = pytest.importorskip("llama_index.core")
    base_embedding = pytest.importorskip("llama_index.core.embeddings").BaseEmbedding
    vs = pytest.importorskip("llama_index.core.vector_stores")
    pg = pytest.importorskip("llama_index.vector_stores.postgres")

    class HashEmbedding(base_embedding):  # type: ignore[misc,valid-type]
        def _get_query_embedding(self, query: str) -> list[float]:
            return _embed(query)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return _embed(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return _embed(text)

    table = f"li_{uuid.uuid4().hex[:6]}"
    store = pg.PGVectorStore.from_params(
        host=pg_server.host, port=str(pg_server.port), user="postgres",
        password=pg_server.password, database="postgres", table_name=table, embed_dim=DIM,
        hnsw_kwargs={"hnsw_m": 16, "hnsw_ef_construction": 64, "hnsw_ef_search": 40,
                     "hnsw_dist_method": "vector_cosine_ops"})
    docs = [core.Document(text="red apple fruit", metadata={"kind": "fruit"}),
            core.Document(text="blue car engine", metadata={"kind": "car"}),
            core.Document(text="red sports car", metadata={"kind": "car"})]
    ctx = core.StorageContext.from_defaults(vector_store=store)
    index = core.VectorStoreIndex.from_documents(docs, storage_context=ctx,
                                                 embed_model=HashEmbedding())
    filters = vs.MetadataFilters(filters=[vs.MetadataFilter(key="kind", value="car")])
    nodes = index.as_retriever(similarity_top_k=2, filters=filters).retrieve("red car")
    assert [n.node.get_content() for n in nodes] == ["red sports car", "blue car engine"]
    nodes = index.as_retriever(similarity_top_k=1).retrieve("red apple")
    assert [n.node.get_content() for n in nodes] == ["red apple fruit"]
    asyncio.run(store.close())  # its close is a coroutine (sync and async engines)


def test_sqlalchemy_orm_models_with_a_schema(pg_server: Server) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    orm = pytest.importorskip("sqlalchemy.orm")
    schema = f"s_{uuid.uuid4().hex[:6]}"

    class Base(orm.DeclarativeBase):  # type: ignore[misc,name-defined]
        pass

    class Item(Base):
        __tablename__ = "items_s"
        __table_args__ = {"schema": schema}
        id = orm.mapped_column(sqlalchemy.Integer, primary_key=True)
        name = orm.mapped_column(sqlalchemy.String(40))

    engine = sqlalchemy.create_engine(pg_server.url("postgresql+psycopg"))
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.schema.CreateSchema(schema))
        Base.metadata.create_all(engine)
        with orm.Session(engine) as s:
            s.add_all([Item(id=1, name="a"), Item(id=2, name="b")])
            s.commit()
            got = s.scalars(sqlalchemy.select(Item).where(Item.name == "b")).all()
            assert [(i.id, i.name) for i in got] == [(2, "b")]
            got[0].name = "bb"
            s.commit()
            assert s.execute(sqlalchemy.select(Item.name).order_by(Item.id)).all() == [
                ("a",), ("bb",)]
    finally:
        engine.dispose()
