"""Where exports live: a local directory or `s3://bucket/prefix`, behind one pyarrow file system."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path

import pyarrow.fs as pafs

from ddb_iceberg.errors import SettingError

EXPORTS_FOLDER = "AWSDynamoDB"


@dataclass(frozen=True)
class S3Options:
    """How to reach S3 when a source is `s3://...` (all optional: the AWS default chain applies)."""

    region: str | None = None
    endpoint_url: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    def filesystem(self) -> pafs.FileSystem:
        options: dict[str, object] = {}
        if self.region:
            options["region"] = self.region
        if self.endpoint_url:
            scheme, _, rest = self.endpoint_url.partition("://")
            options["endpoint_override"] = rest or scheme
            options["scheme"] = scheme if rest else "https"
            # Local stand-ins for S3 (moto, MinIO) serve buckets as paths, not as virtual hosts.
            options["force_virtual_addressing"] = False
        if self.access_key and self.secret_key:
            options["access_key"] = self.access_key
            options["secret_key"] = self.secret_key
            if self.session_token:
                options["session_token"] = self.session_token
        return pafs.S3FileSystem(**options)


@dataclass(frozen=True)
class ExportSource:
    """The location that holds `AWSDynamoDB/`: the export's S3 prefix, or a local copy of it."""

    uri: str
    filesystem: pafs.FileSystem
    root: str
    s3: S3Options | None = None  # how `filesystem` reaches S3 (None: local), for readers in other processes

    @classmethod
    def from_uri(cls, uri: str, s3: S3Options | None = None) -> ExportSource:
        if uri.startswith("s3://"):
            bucket_and_prefix = uri[len("s3://") :].strip("/")
            if not bucket_and_prefix:
                raise SettingError(f"source {uri!r} names no bucket")
            options = s3 or S3Options()
            return cls(uri=uri, filesystem=options.filesystem(), root=bucket_and_prefix, s3=options)
        if "://" in uri and not uri.startswith("file://"):
            raise SettingError(f"source {uri!r}: only local directories and s3:// URIs are supported")
        path = Path(uri.removeprefix("file://")).expanduser().resolve()
        return cls(uri=str(path), filesystem=pafs.LocalFileSystem(), root=path.as_posix())

    @property
    def exports_root(self) -> str:
        return f"{self.root}/{EXPORTS_FOLDER}"

    def path_for_key(self, key: str, s3_prefix: str | None) -> str:
        """Resolve a key from the bucket root (it includes the export's S3 prefix) inside this source.

        The source stands for the prefix, so the prefix is stripped: a copy of the exports under another
        prefix or in a local directory resolves the same way.
        """
        relative = key
        prefix = (s3_prefix or "").strip("/")
        if prefix and key.startswith(prefix + "/"):
            relative = key[len(prefix) + 1 :]
        normalized = posixpath.normpath(relative)
        if normalized.startswith(("..", "/")) or not normalized.startswith(EXPORTS_FOLDER + "/"):
            raise ValueError(f"key {key!r} does not lie under {EXPORTS_FOLDER}/ of prefix {prefix!r}")
        return f"{self.root}/{normalized}"

    def open_raw(self, path: str) -> pafs.NativeFile:
        """Open a file as its bytes (pyarrow would otherwise inflate `.gz` files by their name)."""
        return self.filesystem.open_input_stream(path, compression=None)

    def read_bytes(self, path: str) -> bytes:
        with self.open_raw(path) as stream:
            data: bytes = stream.readall()
            return data

    def exists(self, path: str) -> bool:
        return bool(self.filesystem.get_file_info(path).type != pafs.FileType.NotFound)

    def describe(self, path: str) -> str:
        """A path as a user would write it (for messages)."""
        return f"s3://{path}" if isinstance(self.filesystem, pafs.S3FileSystem) else path
