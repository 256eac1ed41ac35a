"""The blob store contract: what every backend must do, checked with real bytes.

One suite, run against each backend:

* ``local``: :class:`LocalBlobStore` in a temporary folder;
* ``s3``: :class:`S3BlobStore` over real HTTP against moto's S3 server on
  127.0.0.1, in a bucket of its own;
* ``s3-prefixed``: the same, under the prefix ``family/``, so that every key,
  temporary object and the marker must honour the prefix.

Each test asserts what a user of the store would check: the key is the
content address, the bytes read back are the bytes put in, and nothing else
is left in the store (no temporary files or objects) after a success or a
failure.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from minio import Minio

from picup.storage import (
    MARKER_NAME,
    BlobNotFound,
    BlobStore,
    IntegrityError,
    StorageError,
    StoreUnavailable,
    blob_key,
    derived_key,
)
from picup.storage.local import LocalBlobStore
from picup.storage.s3 import MIN_PART_SIZE, S3BlobStore
from tests.http_faults import FaultyS3
from tests.moto_server import ACCESS_KEY, REGION, SECRET_KEY, moto_s3_server

MiB = 1024 * 1024
# S3 stores under test use the smallest part S3 allows, so that a stream of
# a few tens of MiB already takes the multipart path several times over.
PART = MIN_PART_SIZE


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_all(store: BlobStore, key: str, start: int = 0, length: int | None = None) -> bytes:
    fh = store.open(key, start, length)
    try:
        return fh.read()
    finally:
        fh.close()


# ------------------------------------------------------------------ backends
@dataclass
class Backend:
    name: str
    store: BlobStore
    # Every file or object under the store's root, relative to it, including
    # temporaries. For S3, objects outside the prefix show up as "../name".
    listing: Callable[[], set[str]]
    # Another store sharing the same folder or bucket, under its own root.
    sibling: Callable[[str], BlobStore]
    # Stores that cannot be reached, built with the same (test) credentials.
    unreachable: Callable[[], list[BlobStore]]


@pytest.fixture(scope="session")
def s3_endpoint():
    with moto_s3_server() as endpoint:
        yield endpoint


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def local_backend(tmp_path: Path) -> Backend:
    container = tmp_path / "blobs"
    root = container / "main"
    root.mkdir(parents=True)

    def listing() -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir()}

    return Backend(
        name="local",
        store=LocalBlobStore(root),
        listing=listing,
        sibling=lambda name: LocalBlobStore(container / name),
        # A share that failed to mount: the folder is not there.
        unreachable=lambda: [LocalBlobStore(tmp_path / "not-mounted")],
    )


def s3_store(endpoint: str, bucket: str, prefix: str) -> S3BlobStore:
    return S3BlobStore(
        endpoint=endpoint,
        bucket=bucket,
        prefix=prefix,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        secure=False,
        region=REGION,
        part_size=PART,
    )


def s3_backend(endpoint: str, bucket: str, prefix: str) -> Backend:
    admin = Minio(
        endpoint=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION
    )

    def listing() -> set[str]:
        names = set()
        for obj in admin.list_objects(bucket_name=bucket, recursive=True):
            name = obj.object_name
            names.add(name[len(prefix) :] if name.startswith(prefix) else "../" + name)
        return names

    return Backend(
        name="s3",
        store=s3_store(endpoint, bucket, prefix),
        listing=listing,
        sibling=lambda name: s3_store(endpoint, bucket, name + "/"),
        unreachable=lambda: [
            s3_store(f"127.0.0.1:{closed_port()}", bucket, prefix),
            s3_store(endpoint, f"{bucket}-gone", prefix),  # the bucket is not there
        ],
    )


@pytest.fixture(params=["local", "s3", "s3-prefixed"])
def backend(request, tmp_path):
    if request.param == "local":
        yield local_backend(tmp_path)
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    admin = Minio(
        endpoint=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION
    )
    bucket = f"contract-{secrets.token_hex(6)}"
    admin.make_bucket(bucket_name=bucket)
    prefix = "family/" if request.param == "s3-prefixed" else ""
    yield s3_backend(endpoint, bucket, prefix)
    # moto keeps objects in memory for the whole session: empty the bucket.
    for obj in admin.list_objects(bucket_name=bucket, recursive=True):
        admin.remove_object(bucket_name=bucket, object_name=obj.object_name)
    admin.remove_bucket(bucket_name=bucket)


@pytest.fixture
def store(backend) -> BlobStore:
    return backend.store


@pytest.fixture
def uploads(tmp_path) -> Path:
    """Where files to hand to put_file wait (outside the store)."""
    folder = tmp_path / "uploads"
    folder.mkdir()
    return folder


# ----------------------------------------------------------- test streams
class Pattern:
    """``size`` bytes of random-looking content, generated on the fly.

    Segment ``i`` (1 MiB) is one random block with ``i`` written over its
    first bytes, so no two parts of an upload are alike, yet any byte range
    can be recomputed for comparison without holding the whole thing.
    """

    SEGMENT = MiB

    def __init__(self, size: int):
        self.size = size
        self._block = os.urandom(self.SEGMENT)

    def _segment(self, index: int) -> bytes:
        return index.to_bytes(8, "big") + self._block[8:]

    def slice(self, start: int, end: int) -> bytes:
        end = min(end, self.size)
        out, pos = [], start
        while pos < end:
            index, offset = divmod(pos, self.SEGMENT)
            take = min(self.SEGMENT - offset, end - pos)
            out.append(self._segment(index)[offset : offset + take])
            pos += take
        return b"".join(out)

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for start in range(0, self.size, self.SEGMENT):
            digest.update(self.slice(start, start + self.SEGMENT))
        return digest.hexdigest()

    def stream(self, fail_after: int | None = None) -> "PatternStream":
        return PatternStream(self, fail_after)


class PatternStream:
    """Reads a :class:`Pattern` in short, odd-sized pieces, like a socket.

    With ``fail_after``, raises OSError once that many bytes have been read,
    like a browser that goes away in the middle of an upload.
    """

    MAX_READ = 100_003

    def __init__(self, pattern: Pattern, fail_after: int | None):
        self._pattern = pattern
        self._pos = 0
        self._fail_after = fail_after

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise OSError("the client went away")
        if size is None or size < 0:
            size = self.MAX_READ
        size = min(size, self.MAX_READ)
        data = self._pattern.slice(self._pos, self._pos + size)
        self._pos += len(data)
        return data


# ---------------------------------------------------------------- put/open
def test_put_stream_files_it_under_its_content_address(backend, store):
    data = os.urandom(300_000)
    digest = sha(data)

    blob = store.put(io.BytesIO(data))

    assert blob.key == f"originals/{digest[:2]}/{digest[2:4]}/{digest}"
    assert blob.size == len(data)
    assert blob.sha256 == digest
    assert backend.listing() == {blob.key}  # no temporary left behind


def test_read_back_gives_identical_bytes(store):
    data = os.urandom(2 * MiB + 17)
    blob = store.put(io.BytesIO(data))

    assert read_all(store, blob.key) == data
    with store.open(blob.key) as fh:  # usable as a context manager, reads fill
        assert fh.read(10) == data[:10]
        assert fh.read(10) == data[10:20]
        assert fh.read() == data[20:]
        assert fh.read(10) == b""


def test_ranged_reads(store):
    data = os.urandom(100_000)
    key = store.put(io.BytesIO(data)).key

    assert read_all(store, key, start=1000) == data[1000:]
    assert read_all(store, key, start=1000, length=500) == data[1000:1500]
    assert read_all(store, key, start=0, length=1) == data[:1]
    assert read_all(store, key, start=len(data) - 1) == data[-1:]
    assert read_all(store, key, start=len(data) - 1, length=1) == data[-1:]
    assert read_all(store, key, start=99_000, length=5_000) == data[99_000:]  # past the end
    assert read_all(store, key, start=len(data)) == b""  # at the end
    assert read_all(store, key, start=10, length=0) == b""


def test_same_bytes_twice_give_one_blob(backend, store):
    data = os.urandom(50_000)

    first = store.put(io.BytesIO(data))
    second = store.put(io.BytesIO(data))

    assert first == second
    assert backend.listing() == {first.key}
    assert read_all(store, first.key) == data


def test_put_empty_stream(backend, store):
    blob = store.put(io.BytesIO(b""))

    assert blob.key == blob_key(sha(b""))
    assert blob.size == 0
    assert store.exists(blob.key)
    assert store.size(blob.key) == 0
    assert read_all(store, blob.key) == b""
    assert read_all(store, blob.key, start=0, length=5) == b""
    assert backend.listing() == {blob.key}


def test_put_into_another_namespace(backend, store):
    data = b"a thumbnail, say"

    blob = store.put(io.BytesIO(data), namespace="thumbs")

    assert blob.key == blob_key(sha(data), "thumbs")
    assert blob.key.startswith("thumbs/")
    assert read_all(store, blob.key) == data
    assert backend.listing() == {blob.key}


def test_multipart_stream_round_trips(backend, store):
    # Over 40 MiB, not a whole number of parts, read in odd-sized pieces.
    pattern = Pattern(40 * MiB + 12_345)

    blob = store.put(pattern.stream())

    assert blob.sha256 == pattern.sha256()
    assert blob.size == pattern.size
    assert store.size(blob.key) == pattern.size
    assert backend.listing() == {blob.key}
    digest, size = hashlib.sha256(), 0
    with store.open(blob.key) as fh:
        while chunk := fh.read(MiB):
            digest.update(chunk)
            size += len(chunk)
    assert (digest.hexdigest(), size) == (blob.sha256, blob.size)
    # A range across the boundary between the first two parts, and the tail.
    assert read_all(store, blob.key, start=PART - 10, length=20) == pattern.slice(PART - 10, PART + 10)
    assert read_all(store, blob.key, start=pattern.size - 100) == pattern.slice(pattern.size - 100, pattern.size)


@pytest.mark.parametrize("fail_after", [1000, 6 * MiB], ids=["small", "after-a-part"])
def test_failed_stream_leaves_nothing_behind(backend, store, fail_after):
    pattern = Pattern(8 * MiB)

    with pytest.raises((OSError, StorageError)):
        store.put(pattern.stream(fail_after=fail_after))

    assert backend.listing() == set()
    assert list(store.iter_keys()) == []


# ---------------------------------------------------------------- put_file
def test_put_file_consumes_the_file(backend, store, uploads):
    data = os.urandom(1 * MiB + 3)
    path = uploads / "IMG_0001.JPG"
    path.write_bytes(data)

    blob = store.put_file(str(path), sha256=sha(data))

    assert blob.key == blob_key(sha(data))
    assert blob.size == len(data)
    assert blob.sha256 == sha(data)
    assert not path.exists()
    assert read_all(store, blob.key) == data
    assert backend.listing() == {blob.key}


def test_put_file_of_a_stored_blob_gives_the_same_blob(backend, store, uploads):
    data = os.urandom(70_000)
    first = store.put(io.BytesIO(data))
    path = uploads / "again.jpg"
    path.write_bytes(data)

    second = store.put_file(str(path), sha256=sha(data), namespace="originals")

    assert second == first
    assert not path.exists()
    assert backend.listing() == {first.key}


def test_put_file_with_a_wrong_hash_is_refused(backend, store, uploads):
    data = os.urandom(200_000)
    wrong = sha(b"something else entirely")
    path = uploads / "IMG_0002.JPG"
    path.write_bytes(data)

    with pytest.raises(IntegrityError):
        store.put_file(str(path), sha256=wrong)

    assert not store.exists(blob_key(wrong))
    assert not store.exists(blob_key(sha(data)))
    assert backend.listing() == set()  # no blob, no temporary file or object


def test_put_file_with_a_wrong_hash_does_not_touch_the_stored_blob(backend, store, uploads):
    # The announced hash names a blob that is already stored: a liar must
    # neither overwrite it nor remove it, and must hear about it.
    kept = os.urandom(10_000)
    blob = store.put(io.BytesIO(kept))
    path = uploads / "impostor.jpg"
    path.write_bytes(os.urandom(10_000))

    with pytest.raises(IntegrityError):
        store.put_file(str(path), sha256=blob.sha256)

    assert read_all(store, blob.key) == kept
    assert backend.listing() == {blob.key}


def test_put_file_keeps_the_file_when_refused(backend, store, uploads):
    # Consumed on success only: a refused file stays where it was, so the
    # caller can report it or try again.
    data = os.urandom(20_000)
    path = uploads / "IMG_0004.JPG"
    path.write_bytes(data)

    with pytest.raises(IntegrityError):
        store.put_file(str(path), sha256=sha(b"not these bytes"))
    assert path.read_bytes() == data

    with pytest.raises(ValueError):
        store.put_file(str(path), sha256="not-a-sha")
    assert path.read_bytes() == data
    assert backend.listing() == set()


def test_put_file_with_a_malformed_hash_is_refused(backend, store, uploads):
    path = uploads / "IMG_0003.JPG"
    path.write_bytes(b"jpeg bytes")

    with pytest.raises(ValueError):
        store.put_file(str(path), sha256="not-a-sha")

    assert backend.listing() == set()


# ------------------------------------------------- exists / size / delete
def test_exists_size_delete(store):
    data = os.urandom(4321)
    key = store.put(io.BytesIO(data)).key

    assert store.exists(key)
    assert store.size(key) == 4321

    store.delete(key)

    assert not store.exists(key)
    with pytest.raises(BlobNotFound):
        store.size(key)
    store.delete(key)  # deleting again is fine


def test_absent_blob(store):
    key = blob_key(sha(b"never stored"))

    assert not store.exists(key)
    with pytest.raises(BlobNotFound):
        store.open(key)
    with pytest.raises(BlobNotFound):
        store.open(key, start=10, length=10)
    with pytest.raises(BlobNotFound):
        store.open(key, start=10, length=0)
    with pytest.raises(BlobNotFound):
        store.size(key)
    store.delete(key)


def test_iter_keys_lists_exactly_what_was_stored(store):
    originals = {store.put(io.BytesIO(os.urandom(1000))).key for _ in range(3)}
    thumbs = {store.put(io.BytesIO(os.urandom(500)), namespace="thumbs").key for _ in range(2)}
    store.write_marker("store-1")

    assert set(store.iter_keys()) == originals
    assert set(store.iter_keys("originals")) == originals
    assert set(store.iter_keys("thumbs")) == thumbs
    assert list(store.iter_keys("nothing-here")) == []


# ------------------------------------------------------------------ marker
def test_marker(backend, store):
    assert store.read_marker() is None

    store.write_marker("7f3c2a9e-store")

    assert store.read_marker() == "7f3c2a9e-store"
    assert backend.listing() == {MARKER_NAME}  # at the root of the store
    assert list(store.iter_keys()) == []


# -------------------------------------------------------- reachability
def test_ping_a_reachable_store(store):
    store.ping()


def test_unreachable_store(backend):
    for bad in backend.unreachable():
        with pytest.raises(StoreUnavailable) as caught:
            bad.ping()
        # No marker can be seen in a store that is not there.
        try:
            assert bad.read_marker() is None
        except StoreUnavailable:
            pass
        # Credentials never end up in what gets logged.
        assert SECRET_KEY not in str(caught.value)
        assert SECRET_KEY not in repr(bad)


# ---------------------------------------------------------------- prefixes
def test_stores_side_by_side_do_not_see_each_other(store, backend):
    other = backend.sibling("other")
    shared = os.urandom(2000)
    mine = store.put(io.BytesIO(shared))
    theirs = other.put(io.BytesIO(shared))
    only_theirs = other.put(io.BytesIO(os.urandom(3000)))
    other.write_marker("their-store")

    assert mine.key == theirs.key  # same content, same key, separate stores
    assert set(store.iter_keys()) == {mine.key}
    assert set(other.iter_keys()) == {theirs.key, only_theirs.key}
    assert not store.exists(only_theirs.key)
    assert store.read_marker() is None

    store.delete(mine.key)

    assert other.exists(theirs.key)
    assert read_all(other, theirs.key) == shared


def test_put_file_under_a_derived_key(backend, store, uploads):
    original = sha(b"the original photo")
    data = os.urandom(64 * 1024)
    path = uploads / "thumb.webp"
    path.write_bytes(data)

    blob = store.put_file(str(path), sha256=sha(data), key=derived_key(original, "thumb.webp"))

    assert blob.key == f"derived/{original[:2]}/{original[2:4]}/{original}/thumb.webp"
    assert read_all(store, blob.key) == data and not path.exists()
    assert backend.listing() == {blob.key}
    # made again (same bytes or not), it simply replaces the old one
    path.write_bytes(data[::-1])
    store.put_file(str(path), sha256=sha(data[::-1]), key=blob.key)
    assert read_all(store, blob.key) == data[::-1]
    assert set(store.iter_keys("derived")) == {blob.key}


def test_put_file_under_a_derived_key_still_checks_the_hash(backend, store, uploads):
    path = uploads / "thumb.webp"
    path.write_bytes(b"thumbnail bytes")
    with pytest.raises(IntegrityError):
        store.put_file(str(path), sha256=sha(b"other bytes"), key=derived_key(sha(b"x"), "thumb.webp"))
    assert path.read_bytes() == b"thumbnail bytes"
    assert backend.listing() == set()


def test_local_path_reads_the_same_bytes_or_is_absent(backend, store):
    blob = store.put(io.BytesIO(b"local or remote"))
    path = store.local_path(blob.key)
    if backend.name == "local":
        assert open(path, "rb").read() == b"local or remote"
        assert store.local_path(blob_key(sha(b"absent"))) is None
    else:
        assert path is None


def test_s3_busy_answers_are_tried_again(s3_endpoint):
    """A family keeping its originals on B2 or AWS: a busy answer (503, "SlowDown") to the POST
    that starts or ends a big video's upload no longer fails the upload."""
    host, port = s3_endpoint.split(":")
    admin = Minio(endpoint=s3_endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False, region=REGION)
    bucket = f"contract-{secrets.token_hex(6)}"
    admin.make_bucket(bucket_name=bucket)
    pattern = Pattern(2 * PART + 100)
    with FaultyS3(int(port)) as s3:
        store = s3_store(s3.address, bucket, "")
        s3.fail("POST", "uploads", code="SlowDown")
        s3.fail("POST", "uploadId")
        blob = store.put(pattern.stream())
        assert [method for method, _path in s3.answered] == ["POST", "POST"], "both faults were met"
        assert (blob.sha256, blob.size) == (pattern.sha256(), pattern.size)
        assert read_all(store, blob.key, start=pattern.size - 100) == pattern.slice(pattern.size - 100, pattern.size)
    admin.remove_object(bucket_name=bucket, object_name=blob.key)
    admin.remove_bucket(bucket_name=bucket)
