"""Blobs in an S3-compatible bucket (MinIO, Garage, SeaweedFS, Ceph RGW, AWS S3, B2).

The same contract as the local folder (``tests/test_storage_contract.py``),
with the same three promises:

* **Whole or not at all.** ``put`` does not know the blob's name (its SHA-256)
  until the last byte has gone by, so it uploads to a temporary key under
  ``<prefix>.incoming/`` while hashing, then copies server-side to the final
  content-addressed key and removes the temporary object. A failure at any
  step removes what this call wrote; nothing is left half-done.
* **Verified, never trusted.** Every object written is read back and its
  SHA-256 and size compared before the call returns (:class:`IntegrityError`
  otherwise, after deleting the bad object). ``put_file`` hashes the file
  before uploading it, so a wrong announced hash can never put foreign bytes
  under a content-addressed key, nor overwrite a good original.
* **Stream, never buffer.** Uploads of unknown length use multipart with a
  fixed part size and one part in flight, so memory stays around one part
  whatever the size of the video; reads are streamed from the HTTP response.

Only plain S3 calls are used (no MinIO extensions), and every SDK argument is
passed by keyword: the ``minio`` SDK has reordered positional parameters
between releases.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO, Iterator

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import ComposeSource
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from urllib3.util import Retry, Timeout

from . import (
    CHUNK,
    MARKER_NAME,
    BlobNotFound,
    IntegrityError,
    StorageError,
    StorageFull,
    StoreUnavailable,
    StoredBlob,
    blob_key,
)

INCOMING = ".incoming/"

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
DEFAULT_PART_SIZE = 16 * 1024 * 1024  # 10,000 parts of this: objects up to 156 GiB

# Error codes that mean "no room": AWS, MinIO (disk full, bucket quota) and
# servers that pass HTTP 507 through as a code.
_FULL_CODES = frozenset(
    {
        "EntityTooLarge",
        "QuotaExceeded",
        "XMinioStorageFull",
        "XMinioAdminBucketQuotaExceeded",
        "InsufficientStorage",
        "StorageFull",
    }
)
# Error codes that mean "this store is not usable right now": the bucket is
# gone, the credentials are wrong, or the server asks us to back off.
_UNAVAILABLE_CODES = frozenset(
    {
        "NoSuchBucket",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ServiceUnavailable",
        "SlowDown",
        "XMinioServerNotInitialized",
    }
)


_EXPECTED_REGION = (
    re.compile(r"expecting '([\w.-]+)'"),            # AWS, Scaleway: "the region 'us-east-1' is wrong; expecting 'fr-par'"
    re.compile(r"expected: '?\d{8}/([\w.-]+)/s3/"),  # Garage: "expected: '20261204/garage/s3/aws4_request'"
    re.compile(r"use region ([\w.-]+)"),              # the SDK, from an answer's x-amz-bucket-region
)


def region_hint(exc: S3Error, region: str | None, setting: str) -> str | None:
    """What to do when the server refuses the region requests are signed for; None for other errors.

    With no region set, requests are signed for us-east-1, which Garage (its ``s3_region``,
    "garage" unless changed) and Scaleway refuse with AuthorizationHeaderMalformed.
    """
    expected = next((m.group(1) for p in _EXPECTED_REGION if (m := p.search(exc.message or ""))), None)
    if exc.code != "AuthorizationHeaderMalformed" and not expected:
        return None
    said = f"; it expects {expected!r}" if expected else ""
    return (f"the server does not accept the region {region or 'us-east-1'!r}{said}. Set {setting} to the "
            "server's region (Garage: s3_region in its garage.toml, often 'garage'; Scaleway: fr-par, nl-ams "
            "or pl-waw; Backblaze B2: the part of the endpoint after 's3.', such as us-west-004)")


def retries(total: int, backoff: float) -> Retry:
    """How a request to an S3 server is tried again: refused connections, dropped
    answers and the busy answers (500, 502, 503, 504) that B2, AWS ("SlowDown") and a
    busy NAS give now and then. Every method, POST included: a big file's upload starts
    and ends with a POST (create and complete the multipart upload), which urllib3
    leaves alone by default; both are safe to send again."""
    return Retry(total=total, connect=2, backoff_factor=backoff, status_forcelist=[500, 502, 503, 504],
                 allowed_methods=None)


def _http_client(*, read_timeout: int = 300, total: int = 5, backoff: float = 0.2) -> urllib3.PoolManager:
    """The SDK's default HTTP client, with a short connect timeout.

    The SDK waits 5 minutes to connect, and retries that 5 times: a NAS that
    is switched off would hang ``/readyz`` and every job for half an hour.
    Reads keep the long timeout, since a server-side copy of a big video can
    take minutes before the first response byte.
    """
    return urllib3.PoolManager(
        timeout=Timeout(connect=10, read=read_timeout),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=retries(total, backoff),
    )


class _HashingReader:
    """Wraps the caller's stream: hashes and counts what the SDK reads from it.

    ``read(n)`` fills up to ``n`` bytes (short reads only at the end). The SDK
    builds each part by concatenating whatever ``read`` returns, which is
    quadratic for a stream that hands out small chunks (a socket, a tus
    chunk); one read per part keeps it to one join.
    """

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = CHUNK
        pieces = []
        want = size
        while want > 0:
            data = self._stream.read(want)
            if not data:
                break
            pieces.append(bytes(data))
            want -= len(data)
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        self._digest.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _ObjectReader(io.RawIOBase):
    """A readable stream over an S3 GET response.

    ``close`` gives the HTTP connection back to the pool; a stream that is
    read to the end but never closed would leak it.
    """

    def __init__(self, response, name: str):
        self._response = response
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._response.read(len(buffer))
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"{self._name}: reading failed: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._response.close()
                self._response.release_conn()
            finally:
                super().close()


class S3BlobStore:
    def __init__(
        self,
        endpoint: str,
        bucket: str,
        prefix: str = "",
        access_key: str | None = None,
        secret_key: str | None = None,
        secure: bool = True,
        region: str | None = None,
        *,
        part_size: int = DEFAULT_PART_SIZE,
    ):
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self.endpoint = endpoint
        self.bucket = bucket
        # "family" and "family/" mean the same folder-like prefix.
        prefix = (prefix or "").strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.part_size = part_size
        self.region = region
        # The client holds the credentials; this object keeps no copy of
        # them, so neither repr() nor a traceback's locals can show them.
        self._client = Minio(
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=_http_client(),
        )

    def __repr__(self) -> str:
        return f"S3BlobStore({self.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    # ------------------------------------------------------------ helpers
    def _name(self, key: str) -> str:
        """The object name of a store key (the prefix applied)."""
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not a store key: {key!r}")
        return self.prefix + key

    def _where(self, key: str | None = None) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        return where + key if key else where

    @contextlib.contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """Turn SDK and HTTP failures into the store's own exceptions."""
        where = self._where(key)
        try:
            yield
        except S3Error as exc:
            code = exc.code or ""
            status = getattr(exc.response, "status", None)
            if code == "NoSuchKey":
                raise BlobNotFound(key or where) from None
            if code in _FULL_CODES or status == 507:
                raise StorageFull(f"{where}: {code}: {exc.message}") from exc
            if hint := region_hint(exc, self.region, "region in [storage] (PICUP_STORAGE_REGION)"):
                raise StoreUnavailable(f"{where}: {hint}") from exc
            if code in _UNAVAILABLE_CODES:
                raise StoreUnavailable(f"{where}: {code}: {exc.message}") from exc
            raise StorageError(f"{where}: {code}: {exc.message}") from exc
        except ServerError as exc:
            if exc.status_code == 507:
                raise StorageFull(f"{where}: {exc}") from exc
            if exc.status_code >= 500:
                raise StoreUnavailable(f"{where}: {exc}") from exc
            raise StorageError(f"{where}: {exc}") from exc
        except InvalidResponseError as exc:
            # Something answers at the endpoint, but not in S3's XML (a proxy
            # error page, a login page): as good as unreachable, unless it
            # says 507 Insufficient Storage.
            if getattr(exc, "_code", None) == 507:
                raise StorageFull(f"{where}: HTTP 507 Insufficient Storage") from exc
            raise StoreUnavailable(f"{where}: not an S3 answer: {exc}") from exc
        except urllib3.exceptions.HTTPError as exc:
            # Refused, timed out, reset, or retried 5xx until giving up.
            raise StoreUnavailable(f"{where}: {exc}") from exc
        except MinioException as exc:
            raise StorageError(f"{where}: {exc}") from exc

    def _remove_quietly(self, name: str) -> None:
        """Best-effort removal while cleaning up after another failure."""
        with contextlib.suppress(MinioException, urllib3.exceptions.HTTPError):
            self._client.remove_object(bucket_name=self.bucket, object_name=name)

    def _hash_object(self, name: str) -> tuple[str, int]:
        """Read the object back, streaming: its SHA-256 and size."""
        digest = hashlib.sha256()
        size = 0
        with self._errors(name[len(self.prefix) :]):
            response = self._client.get_object(bucket_name=self.bucket, object_name=name)
            try:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
            finally:
                response.close()
                response.release_conn()
        return digest.hexdigest(), size

    def _intact(self, name: str, sha256: str, size: int) -> bool:
        """Whether ``name`` exists and holds exactly these bytes."""
        try:
            with self._errors(name[len(self.prefix) :]):
                stat = self._client.stat_object(bucket_name=self.bucket, object_name=name)
        except BlobNotFound:
            return False
        if stat.size != size:
            return False
        return self._hash_object(name) == (sha256, size)

    def _verify(self, name: str, sha256: str, size: int) -> None:
        got_sha, got_size = self._hash_object(name)
        if (got_sha, got_size) != (sha256, size):
            raise IntegrityError(
                f"{self._where(name[len(self.prefix):])}: read back {got_size} bytes "
                f"with SHA-256 {got_sha}, wrote {size} bytes with {sha256}"
            )

    def _upload(self, name: str, data, length: int) -> None:
        # One part in flight (num_parallel_uploads=1): parallel parts would
        # hold several parts in memory at once for little gain on a home link.
        with self._errors(name[len(self.prefix) :]):
            self._client.put_object(
                bucket_name=self.bucket,
                object_name=name,
                data=data,
                length=length,
                part_size=self.part_size,
                num_parallel_uploads=1,
            )

    # --------------------------------------------------------- interface
    def put(self, stream: BinaryIO, *, namespace: str = "originals") -> StoredBlob:
        incoming = f"{self.prefix}{INCOMING}tmp-{secrets.token_hex(8)}"
        reader = _HashingReader(stream)
        try:
            # Unknown length: the SDK uploads multipart, one part at a time.
            # Errors raised by the caller's stream itself pass through as
            # they are; the SDK aborts the multipart upload first.
            self._upload(incoming, reader, -1)
            sha256, size = reader.hexdigest(), reader.size
            key = blob_key(sha256, namespace)
            final = self._name(key)
            if not self._intact(final, sha256, size):
                try:
                    # compose_object, not copy_object: a single CopyObject
                    # stops at 5 GiB, compose splits bigger ones into ranged
                    # part copies (and does a plain copy for smaller ones).
                    with self._errors(key):
                        self._client.compose_object(
                            bucket_name=self.bucket,
                            object_name=final,
                            sources=[ComposeSource(bucket_name=self.bucket, object_name=incoming)],
                        )
                    self._verify(final, sha256, size)
                except BaseException:
                    # Never leave an unverified object under a content key.
                    self._remove_quietly(final)
                    raise
            return StoredBlob(key=key, size=size, sha256=sha256)
        finally:
            self._remove_quietly(incoming)

    def put_file(
        self, path: str, *, sha256: str, namespace: str = "originals", key: str | None = None
    ) -> StoredBlob:
        source = Path(path)
        content_key = blob_key(sha256, namespace)  # ValueError for a malformed hash
        key = key or content_key
        final = self._name(key)
        # Hash the file before anything is uploaded: writing straight to the
        # final key with a wrong announced hash would put foreign bytes under
        # a content address, or overwrite a good original. Reading a local
        # file once more is cheap next to the network.
        digest = hashlib.sha256()
        size = 0
        with open(source, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        if digest.hexdigest() != sha256:
            raise IntegrityError(f"{source.name}: SHA-256 is not the one announced")
        if not self._intact(final, sha256, size):
            try:
                with open(source, "rb") as fh:
                    self._upload(final, fh, size)
                # The file may have changed since it was hashed: check what
                # the server holds, not what we meant to send.
                self._verify(final, sha256, size)
            except BaseException:
                self._remove_quietly(final)
                raise
        source.unlink()  # consumed only once the blob is safely stored
        return StoredBlob(key=key, size=size, sha256=sha256)

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        if start < 0 or (length is not None and length < 0):
            raise ValueError(f"bad range: start={start} length={length}")
        name = self._name(key)
        if length == 0:
            # The SDK reads length=0 as "to the end"; an empty range of an
            # existing blob is simply empty.
            self.size(key)
            return io.BytesIO(b"")
        with self._errors(key):
            try:
                response = self._client.get_object(
                    bucket_name=self.bucket, object_name=name, offset=start, length=length or 0
                )
            except S3Error as exc:
                # S3 answers 416 InvalidRange when the range starts at or
                # past the end; a local file just reads nothing there.
                if exc.code != "InvalidRange":
                    raise
                response = None
        if response is None:
            self.size(key)  # BlobNotFound if it is really absent
            return io.BytesIO(b"")
        return io.BufferedReader(_ObjectReader(response, self._where(key)), buffer_size=CHUNK)

    def local_path(self, key: str) -> str | None:
        return None  # objects are read over HTTP

    def size(self, key: str) -> int:
        with self._errors(key):
            return self._client.stat_object(bucket_name=self.bucket, object_name=self._name(key)).size

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        # S3 answers a delete of an absent key with success already; some
        # servers say NoSuchKey, which is success too.
        try:
            with self._errors(key):
                self._client.remove_object(bucket_name=self.bucket, object_name=self._name(key))
        except BlobNotFound:
            pass

    def iter_keys(self, namespace: str = "originals") -> Iterator[str]:
        # The trailing slash keeps "originals" from matching "originals2/...".
        with self._errors():
            for obj in self._client.list_objects(
                bucket_name=self.bucket, prefix=f"{self.prefix}{namespace}/", recursive=True
            ):
                yield obj.object_name[len(self.prefix) :]

    def read_marker(self) -> str | None:
        name = self.prefix + MARKER_NAME
        try:
            with self._errors(MARKER_NAME):
                response = self._client.get_object(bucket_name=self.bucket, object_name=name)
                try:
                    # A marker is one short line; cap the read in case the
                    # key holds something else entirely.
                    text = response.read(4096)
                finally:
                    response.close()
                    response.release_conn()
        except BlobNotFound:
            return None
        except StorageError as exc:
            # Whatever stops us reading the marker stops the app from trusting
            # the store: report it as unavailable, like the local backend.
            if isinstance(exc, StoreUnavailable):
                raise
            raise StoreUnavailable(str(exc)) from exc
        return text.decode("utf-8", errors="replace").strip() or None

    def write_marker(self, store_id: str) -> None:
        data = (store_id + "\n").encode("utf-8")
        self._upload(self.prefix + MARKER_NAME, io.BytesIO(data), len(data))
        if self.read_marker() != store_id.strip():
            raise IntegrityError(f"{self._where(MARKER_NAME)}: marker reads back differently")

    def ping(self) -> None:
        try:
            with self._errors():
                found = self._client.bucket_exists(bucket_name=self.bucket)
        except StoreUnavailable:
            raise
        except StorageError as exc:
            raise StoreUnavailable(str(exc)) from exc
        if not found:
            raise StoreUnavailable(f"{self._where()}: the bucket does not exist")
