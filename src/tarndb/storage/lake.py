"""The lake root: a local directory (the default) or an object-store URI such as ``s3://``.

Every table is a Lance dataset at ``<root>/<workspace>/<table>.lance``; the catalog is a Lance
dataset at ``<root>/_catalog.lance``. Object-store credentials and endpoints are Lance
``storage_options`` (the same keys pyarrow's S3 filesystem takes are derived from them).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any

import pyarrow.fs as pafs


class Lake:
    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        if "://" not in uri:
            uri = os.path.abspath(os.path.expanduser(uri))
            os.makedirs(uri, exist_ok=True)
        self.uri = uri.rstrip("/")
        self.storage_options: dict[str, str] = dict(storage_options or {})
        if self.is_s3:
            self._s3_defaults_from_env()

    @property
    def is_local(self) -> bool:
        return "://" not in self.uri or self.uri.startswith("file://")

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    def _s3_defaults_from_env(self) -> None:
        env = {
            "aws_endpoint": ("AWS_ENDPOINT_URL", "AWS_ENDPOINT"),
            "aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
            "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
            "aws_region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
        }
        for key, names in env.items():
            if key not in self.storage_options:
                for name in names:
                    if os.environ.get(name):
                        self.storage_options[key] = os.environ[name]
                        break
        endpoint = self.storage_options.get("aws_endpoint", "")
        if endpoint.startswith("http://"):
            self.storage_options.setdefault("allow_http", "true")

    def uri_for(self, *parts: str) -> str:
        return "/".join([self.uri, *parts])

    @cached_property
    def fs(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the root path inside it, for streaming blobs."""
        if self.is_local:
            path = self.uri[len("file://"):] if self.uri.startswith("file://") else self.uri
            return pafs.LocalFileSystem(), path
        if self.is_s3:
            so = self.storage_options
            kwargs: dict[str, Any] = {}
            if so.get("aws_access_key_id"):
                kwargs["access_key"] = so["aws_access_key_id"]
                kwargs["secret_key"] = so.get("aws_secret_access_key")
            if so.get("aws_endpoint"):
                endpoint = so["aws_endpoint"]
                scheme, _, host = endpoint.partition("://")
                kwargs["endpoint_override"] = host or endpoint
                kwargs["scheme"] = scheme if host else "https"
            kwargs["region"] = so.get("aws_region", "us-east-1")
            bucket_path = self.uri[len("s3://"):]
            return pafs.S3FileSystem(**kwargs), bucket_path
        fs, path = pafs.FileSystem.from_uri(self.uri)
        return fs, path

    def __repr__(self) -> str:
        return f"Lake({self.uri!r})"
