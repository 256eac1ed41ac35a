"""Blobs in a local folder, which may be an NFS mount.

Writes are atomic and durable: a temporary file on the same filesystem,
fsync, rename into place, fsync the folder. Stored originals are made
read-only; nothing rewrites them.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Iterator

from ..hashing import HashingBeside
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

INCOMING = ".incoming"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _translate(exc: OSError) -> StorageError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(str(exc))
    return StorageError(str(exc))


def hash_file(path: Path, *, from_disk: bool = False) -> str:
    """SHA-256 of a file. ``from_disk`` first drops its clean pages from the page
    cache, so a check after fsync reads what the disk (or NFS server) really holds."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh, HashingBeside(digest) as hashing:
        if from_disk and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        while chunk := fh.read(CHUNK):
            hashing.update(chunk)
    return digest.hexdigest()


class _Range(io.RawIOBase):
    """A file object limited to ``length`` bytes from its current position."""

    def __init__(self, fh: BinaryIO, length: int | None):
        self._fh = fh
        self._left = length

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._left is not None:
            size = self._left if size < 0 else min(size, self._left)
        data = self._fh.read(size)
        if self._left is not None:
            self._left -= len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()


class LocalBlobStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    # ------------------------------------------------------------ helpers
    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key outside the store: {key!r}")
        return path

    def _incoming(self) -> Path:
        folder = self.root / INCOMING
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _receive(self, stream: BinaryIO) -> tuple[Path, str]:
        """Copy ``stream`` to a fsynced temporary file; return it and the hash read back."""
        written = hashlib.sha256()
        fd, name = _mkstemp(self._incoming())
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out, HashingBeside(written) as hashing:
                while chunk := stream.read(CHUNK):
                    hashing.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if hash_file(tmp, from_disk=True) != written.hexdigest():
                raise IntegrityError("read back different bytes than were written")
            return tmp, written.hexdigest()
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _translate(exc) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _install(self, tmp: Path, sha256: str, namespace: str, key: str | None = None) -> StoredBlob:
        """Move a complete, checked ``tmp`` to its content address.

        Replacing an existing blob is harmless (same bytes) and heals one that rotted.
        """
        key = key or blob_key(sha256, namespace)
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
            _fsync_dir(tmp.parent)
            return StoredBlob(key=key, size=final.stat().st_size, sha256=sha256)
        except OSError as exc:
            raise _translate(exc) from exc
        finally:
            tmp.unlink(missing_ok=True)

    # --------------------------------------------------------- interface
    def put(self, stream: BinaryIO, *, namespace: str = "originals") -> StoredBlob:
        tmp, sha256 = self._receive(stream)
        return self._install(tmp, sha256, namespace)

    def put_file(
        self, path: str, *, sha256: str, namespace: str = "originals", key: str | None = None
    ) -> StoredBlob:
        blob_key(sha256, namespace)  # reject a malformed hash before touching anything
        if key is not None:
            self._path(key)  # and a key outside the store
        source = Path(path)
        incoming = self._incoming()
        if os.stat(source).st_dev == os.stat(incoming).st_dev:
            # Same filesystem: the file itself becomes the blob, no copy.
            tmp = incoming / f"tmp-{secrets.token_hex(8)}"
            try:
                with open(source, "rb") as fh:
                    os.fsync(fh.fileno())
                os.rename(source, tmp)
            except OSError as exc:
                # The same filesystem seen through two mounts (a bind mount, a Docker volume)
                # refuses a rename between them: then the bytes are copied below.
                if exc.errno != errno.EXDEV:
                    raise _translate(exc) from exc
            else:
                if hash_file(tmp, from_disk=True) != sha256:  # read back after the fsync: verified, not trusted
                    os.rename(tmp, source)  # give the caller its file back untouched
                    raise IntegrityError(f"{source.name}: SHA-256 is not the one announced")
                return self._install(tmp, sha256, namespace, key)
        with open(source, "rb") as fh:
            tmp, actual = self._receive(fh)
        if actual != sha256:
            tmp.unlink(missing_ok=True)
            raise IntegrityError(f"{source.name}: SHA-256 is not the one announced")
        blob = self._install(tmp, sha256, namespace, key)
        source.unlink()
        return blob

    def open(self, key: str, start: int = 0, length: int | None = None) -> BinaryIO:
        try:
            fh = open(self._path(key), "rb")
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        if start:
            fh.seek(start)
        if length is None:
            return fh
        return io.BufferedReader(_Range(fh, length), buffer_size=CHUNK)

    def local_path(self, key: str) -> str | None:
        path = self._path(key)
        return str(path) if path.is_file() else None

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        _fsync_dir(path.parent)

    def iter_keys(self, namespace: str = "originals") -> Iterator[str]:
        base = self.root / namespace
        if not base.is_dir():
            return
        for folder, _dirs, files in os.walk(base):
            for name in files:
                yield str((Path(folder) / name).relative_to(self.root))

    def read_marker(self) -> str | None:
        try:
            return (self.root / MARKER_NAME).read_text().strip() or None
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"{self.root}: {exc}") from exc

    def write_marker(self, store_id: str) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = _mkstemp(self.root)
        with os.fdopen(fd, "w") as fh:
            fh.write(store_id + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(name, 0o444)
        os.replace(name, self.root / MARKER_NAME)
        _fsync_dir(self.root)

    def ping(self) -> None:
        if not self.root.is_dir():
            raise StoreUnavailable(f"{self.root} is not a folder")
        try:
            os.statvfs(self.root)
        except OSError as exc:
            raise StoreUnavailable(f"{self.root}: {exc}") from exc

    def free_bytes(self) -> int:
        stats = os.statvfs(self.root)
        return stats.f_bavail * stats.f_frsize


def _mkstemp(folder: Path) -> tuple[int, str]:
    name = folder / f"tmp-{secrets.token_hex(8)}"
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), str(name)
