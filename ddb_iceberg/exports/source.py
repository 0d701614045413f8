"""Where exports live: a local directory or `s3://bucket/prefix`, behind one pyarrow file system."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from ddb_iceberg.errors import SettingError

EXPORTS_FOLDER = "AWSDynamoDB"
# S3's DeleteObjects takes at most 1,000 keys a request.
_DELETE_BATCH = 1000


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

    def boto3_client(self) -> Any:
        """boto3's S3 client with the same settings (for what pyarrow's file system does not offer)."""
        import boto3

        keys = bool(self.access_key and self.secret_key)
        return boto3.client(
            "s3",
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key if keys else None,
            aws_secret_access_key=self.secret_key if keys else None,
            aws_session_token=self.session_token if keys else None,
        )


@dataclass(frozen=True)
class ExportSource:
    """The location that holds `AWSDynamoDB/`: the export's S3 prefix, or a local copy of it."""

    uri: str
    filesystem: pafs.FileSystem
    root: str
    s3: S3Options | None = None  # how `filesystem` reaches S3 (None: local), for readers in other processes

    @staticmethod
    def check_uri(uri: str) -> None:
        """Refuse a URI no source can stand for, before anything is opened."""
        if uri.startswith("s3://") and not uri[len("s3://") :].strip("/"):
            raise SettingError(f"source {uri!r} names no bucket")
        if "://" in uri and not uri.startswith(("s3://", "file://")):
            raise SettingError(f"source {uri!r}: only local directories and s3:// URIs are supported")

    @classmethod
    def from_uri(cls, uri: str, s3: S3Options | None = None) -> ExportSource:
        cls.check_uri(uri)
        if uri.startswith("s3://"):
            options = s3 or S3Options()
            return cls(uri=uri, filesystem=options.filesystem(), root=uri[len("s3://") :].strip("/"), s3=options)
        path = Path(uri.removeprefix("file://")).expanduser().resolve()
        return cls(uri=str(path), filesystem=pafs.LocalFileSystem(), root=path.as_posix())

    @property
    def location(self) -> str:
        """The source as one canonical URI (`s3://bucket/prefix` or an absolute local path): what the ledger
        records, and what export housekeeping compares before it removes anything."""
        return self.describe(self.root)

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

    def list_folder(self, path: str) -> dict[str, pafs.FileInfo]:
        """What a folder holds, by name (nothing when it does not exist): one listing, never a HEAD per name.

        Whether a key exists is decided from listings only: S3 answers a GET or HEAD of a missing key with 403,
        not 404, when the caller may not list the bucket there (`s3:ListBucket` granted under a `s3:prefix`
        condition, which a HEAD does not carry), so a HEAD cannot tell "missing" from "forbidden".
        """
        selector = pafs.FileSelector(path, allow_not_found=True, recursive=False)
        return {info.base_name: info for info in self.filesystem.get_file_info(selector)}

    def file_size(self, path: str) -> int | None:
        """A file's size, None when it cannot be told (gone already, or S3's 403 for a key it may not list)."""
        try:
            info = self.filesystem.get_file_info(path)
        except OSError:
            return None
        return info.size if info.type == pafs.FileType.File else None

    def delete_files(self, paths: Sequence[str]) -> None:
        """Delete files; one already gone is no error (a housekeeping run that died halfway is run again).

        On S3 through DeleteObjects, 1,000 keys a request: pyarrow's delete_file costs a HEAD per file (a 403 for
        a key already gone, see `list_folder`) and writes an empty "folder" object after it. Only the Dagster
        side and the CLI delete (boto3 is theirs; the Spark job never deletes exports).
        """
        if not isinstance(self.filesystem, pafs.S3FileSystem):
            for path in paths:
                try:
                    self.filesystem.delete_file(path)
                except FileNotFoundError:
                    continue
            return
        by_bucket: dict[str, list[str]] = {}
        for path in paths:
            bucket, _, key = path.partition("/")
            by_bucket.setdefault(bucket, []).append(key)
        client = (self.s3 or S3Options()).boto3_client()
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), _DELETE_BATCH):
                batch = [{"Key": key} for key in keys[start : start + _DELETE_BATCH]]
                response = client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                if response.get("Errors"):
                    first = response["Errors"][0]
                    raise OSError(
                        f"S3 refused to delete {len(response['Errors'])} of {len(batch)} objects in {bucket}, "
                        f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                    )

    def remove_empty_folders(self, path: str, subfolders: Sequence[str] = ()) -> None:
        """Remove a folder left empty, and its empty `subfolders`. On S3 that is the empty `<folder>/` objects
        that tools writing through pyarrow or the console leave (DynamoDB writes none; deleting a missing key is
        no error)."""
        if isinstance(self.filesystem, pafs.S3FileSystem):
            self.delete_files([f"{path}/{subfolder}/" for subfolder in subfolders] + [f"{path}/"])
        elif isinstance(self.filesystem, pafs.LocalFileSystem):
            for folder in [*sorted(Path(path).rglob("*"), reverse=True), Path(path)]:
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()

    def describe(self, path: str) -> str:
        """A path as a user would write it (for messages)."""
        return f"s3://{path}" if isinstance(self.filesystem, pafs.S3FileSystem) else path
