"""Where the bytes live: a small blob store interface and its two backends.

Blobs are content-addressed: ``put`` hashes what it stores and files it under
``<namespace>/ab/cd/<sha256>``. Every backend passes the same contract suite
(``tests/test_storage_contract.py``).

A *marker* object at the root of the store proves that the store we see is the
one the database describes. An NFS share that failed to mount looks like an
empty folder; without the marker Picup refuses to start and refuses to delete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO, Iterator, Protocol

CHUNK = 1024 * 1024
MARKER_NAME = ".picup-store"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class StorageError(Exception):
    """Base class for blob store failures."""


class StorageFull(StorageError):
    """The disk or bucket has no room left."""


class BlobNotFound(StorageError):
    """No blob under that key."""


class StoreUnavailable(StorageError):
    """The store cannot be reached, or its marker is missing."""


class IntegrityError(StorageError):
    """What was read back is not what was written."""


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


def derived_key(original_sha256: str, name: str) -> str:
    """Where a file made from an original is kept, e.g. ``derived/ab/cd/<sha256>/thumb.webp``."""
    return f"{blob_key(original_sha256, 'derived')}/{name}"


def blob_key(sha256: str, namespace: str = "originals") -> str:
    """The key of a blob with this hash: ``originals/ab/cd/<sha256>``."""
    if not _SHA256.match(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return f"{namespace}/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class BlobStore(Protocol):
    def put(self, stream: BinaryIO, *, namespace: str = "originals") -> StoredBlob:
        """Store everything ``stream`` yields; return its key, size and SHA-256.

        The blob appears whole or not at all, and is read back and checked
        before this returns (:class:`IntegrityError` otherwise).
        """

    def put_file(
        self, path: str, *, sha256: str, namespace: str = "originals", key: str | None = None
    ) -> StoredBlob:
        """Store the file at ``path``, whose SHA-256 the caller already knows.

        The file is consumed: moved into the store where the backend can, or
        copied and then removed. ``sha256`` is verified, never trusted.
        ``key`` files a derived blob (a thumbnail, a web video) under a name of
        the caller's choosing instead of its content address.
        """

    def local_path(self, key: str) -> str | None:
        """A filesystem path to read the blob from directly, if the backend has one."""

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        """A readable stream of the blob, optionally a byte range of it."""

    def size(self, key: str) -> int:
        """The blob's size in bytes (:class:`BlobNotFound` if absent)."""

    def exists(self, key: str) -> bool:
        """Whether a blob is stored under ``key``."""

    def delete(self, key: str) -> None:
        """Remove the blob; removing an absent blob is not an error."""

    def iter_keys(self, namespace: str = "originals") -> Iterator[str]:
        """Every key under ``namespace``, in no particular order."""

    def read_marker(self) -> str | None:
        """The store id written in the marker, or None when there is none."""

    def write_marker(self, store_id: str) -> None:
        """Write the marker (first start only)."""

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` if the store cannot be reached."""


def open_store(settings) -> BlobStore:
    """The blob store the settings name."""
    if settings.storage_backend == "s3":
        from .s3 import S3BlobStore

        return S3BlobStore(
            endpoint=settings.storage_endpoint,
            bucket=settings.storage_bucket,
            prefix=settings.storage_prefix,
            access_key=settings.storage_access_key,
            secret_key=settings.storage_secret_key,
            secure=settings.storage_secure,
            region=settings.storage_region or None,
        )
    from .local import LocalBlobStore

    return LocalBlobStore(settings.storage_root)
