"""Off-site backup to any S3-compatible bucket (MinIO on a NAS, Garage, AWS S3, B2...).

What the bucket holds, under the configured prefix::

    picup-backup.json                      which library this is, whether and how it is encrypted
    originals/ab/cd/<sha256>               every original, once (content-addressed)
    database/picup-<time>.db.gz[.enc]      database snapshots, kept 14 daily / 8 weekly / 12 monthly

A run:

1. takes a consistent snapshot of the database (SQLite's online backup API);
2. lists the bucket's originals once (no question per object, so a run with
   nothing new over 100,000 photos takes seconds);
3. sends every original the snapshot refers to that the bucket lacks,
   checking each upload's size and checksum (the ETag, an MD5 of what the
   server received; read back in full when the server's ETag is not an MD5);
4. sends the snapshot last, so every snapshot in the bucket has its originals;
5. notes originals whose photo was deleted, and removes them only after
   ``keep_deleted_days`` (90): a backup is never a mirror;
6. thins out old snapshots.

With an encryption key, every object is sealed before it leaves the box
(:mod:`picup.encryption`) and originals are named by an HMAC of their hash.
The bucket is tied to one library (its store id) so an empty new install can
never prune the backup of the old one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import logging
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from . import encryption, jobs, library, snapshots, storage
from .models import BackupGone, Media, Meta, utcnow
from .storage.local import hash_file
from .storage.s3 import _http_client, region_hint

log = logging.getLogger(__name__)

MANIFEST = "picup-backup.json"
FORMAT = 1
PART_SIZE = 16 * 1024 * 1024
GIVE_UP_AFTER = 3  # originals failing one after another: the server is down, not one object
SNAPSHOT_NAME = re.compile(r"^picup-(\d{8}T\d{6})(\d*)Z\.db\.gz(\.enc)?$")

Progress = Callable[[int], None]


class BackupError(Exception):
    """The backup target could not be used; the message says why, without credentials."""


class NotInBackup(BackupError):
    """The backup has no copy of that original."""


def open_target(settings) -> Target | None:
    """The configured backup target, or None when no backup is configured."""
    if not settings.backup_enabled:
        return None
    key = None
    if settings.backup_encryption_key:
        try:
            key = encryption.parse_key(settings.backup_encryption_key)
        except encryption.BadKey as exc:
            raise BackupError(str(exc)) from None
    return Target(
        endpoint=settings.backup_endpoint,
        bucket=settings.backup_bucket,
        prefix=settings.backup_prefix,
        access_key=settings.backup_access_key,
        secret_key=settings.backup_secret_key,
        secure=settings.backup_secure,
        region=settings.backup_region or None,
        key=key,
        timeout=settings.backup_timeout,
    )


class _Checked:
    """Passes a stream through, computing what the server's ETag should be and the SHA-256
    (unless ``known``: an original sent as it is, which :class:`_Original` hashes already)."""

    def __init__(self, source: BinaryIO, part_size: int, progress: Progress | None = None,
                 known: str | None = None):
        self._source = source
        self._part_size = part_size
        self._part = hashlib.md5(usedforsecurity=False)
        self._in_part = 0
        self._parts: list[bytes] = []
        self._sha = None if known else hashlib.sha256()
        self._known = known
        self._progress = progress
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        view = memoryview(data)
        while view:
            take = min(len(view), self._part_size - self._in_part)
            self._part.update(view[:take])
            self._in_part += take
            view = view[take:]
            if self._in_part == self._part_size:
                self._parts.append(self._part.digest())
                self._part, self._in_part = hashlib.md5(usedforsecurity=False), 0
        if self._sha is not None:
            self._sha.update(data)
        self.size += len(data)
        if self._progress and data:
            self._progress(len(data))
        return data

    def etag(self) -> str:
        parts = self._parts + ([self._part.digest()] if self._in_part or not self._parts else [])
        if len(parts) == 1:
            return parts[0].hex()
        return hashlib.md5(b"".join(parts), usedforsecurity=False).hexdigest() + f"-{len(parts)}"

    def sha256(self) -> str:
        return self._known or self._sha.hexdigest()


class OriginalUnusable(Exception):
    """An original on this box whose bytes no longer match its checksum: the backup cannot mend it."""


class _Original:
    """Passes an original through. A read error is this box's, not the backup server's. With
    the expected SHA-256 it hashes what goes by and, at the last expected byte (read before
    the upload completes, so before the object exists), refuses bytes that are not those: a
    damaged original never stands in the bucket under the good copy's name."""

    def __init__(self, source: BinaryIO, size: int, sha256: str | None = None):
        self._source = source
        self._left = size
        self._expected = sha256
        self._sha = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._source.read(size)
        except storage.StoreUnavailable:
            raise
        except (storage.StorageError, OSError) as exc:
            raise BackupError(f"an original could not be read on this box ({exc})") from None
        if self._expected:
            if not data and size and self._left > 0:
                raise OriginalUnusable("is shorter than when it was added (its bytes no longer match its checksum)")
            self._sha.update(data)
            self._left -= len(data)
            if self._left <= 0 and data:
                self.check()
        return data

    def check(self) -> None:
        if self._expected and self._sha.hexdigest() != self._expected:
            raise OriginalUnusable("is damaged (its bytes no longer match its checksum)")


class Target:
    def __init__(self, *, endpoint, bucket, prefix="", access_key=None, secret_key=None, secure=True,
                 region=None, key: bytes | None = None, timeout: int = 120):
        self.endpoint = endpoint
        self.bucket = bucket
        prefix = (prefix or "").strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.key = key
        self.region = region
        self.read_back = 0  # objects sent whose ETag was not their checksum, verified by reading them back
        http = _http_client(read_timeout=timeout, total=3, backoff=0.5)
        # The client holds the credentials; this object keeps no copy of them.
        self._client = Minio(endpoint=endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                             region=region, http_client=http)

    def __repr__(self) -> str:
        return f"Target({self.where()!r})"

    def where(self, name: str = "") -> str:
        """The target, or one object in it (``name`` as stored: it starts with the prefix)."""
        return f"s3://{self.bucket}/{name or self.prefix}"

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn SDK and HTTP failures into a :class:`BackupError` that says what we were doing."""
        try:
            yield
        except S3Error as exc:
            if exc.code == "NoSuchBucket":
                raise BackupError(f"the backup bucket {self.bucket!r} does not exist on {self.endpoint}; "
                                  "make it first") from None
            if hint := region_hint(exc, self.region, "region in [backup] (PICUP_BACKUP_REGION)"):
                raise BackupError(f"the backup server {self.endpoint} refused the request while {doing}: "
                                  f"{hint}") from None
            if exc.code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                raise BackupError(f"the backup server {self.endpoint} refused the keys ({exc.code}) "
                                  f"while {doing}") from None
            raise BackupError(f"the backup server {self.endpoint} answered {exc.code} while {doing}") from None
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise BackupError(f"the backup server {self.endpoint} could not be reached while {doing}: "
                              f"{type(exc).__name__}: {exc}") from None

    # ------------------------------------------------------------ naming
    def original_name(self, sha256: str) -> str:
        storage.blob_key(sha256)  # a well-formed hash or ValueError
        node = encryption.object_id(self.key, sha256) if self.key else sha256
        return f"{self.prefix}originals/{node[:2]}/{node[2:4]}/{node}"

    def stored_size(self, size: int) -> int:
        return encryption.sealed_size(size) if self.key else size

    # ------------------------------------------------------------ manifest
    def manifest(self) -> dict | None:
        with self._errors("reading the backup's description"):
            try:
                response = self._client.get_object(bucket_name=self.bucket, object_name=self.prefix + MANIFEST)
            except S3Error as exc:
                if exc.code == "NoSuchKey":
                    return None
                raise
            try:
                return json.loads(response.read())
            finally:
                response.close()
                response.release_conn()

    def claim(self, store_id: str) -> None:
        """Tie the bucket to this library, or refuse if it holds another library's backup or another key."""
        found = self.manifest()
        if found is None:
            document = {"format": FORMAT, "store_id": store_id, "created_at": utcnow().isoformat() + "Z",
                        "encrypted": bool(self.key),
                        "key_check": encryption.key_check(self.key) if self.key else None}
            data = json.dumps(document, indent=2).encode()
            with self._errors("writing the backup's description"):
                self._client.put_object(bucket_name=self.bucket, object_name=self.prefix + MANIFEST,
                                        data=io.BytesIO(data), length=len(data), content_type="application/json")
            return
        self.check_manifest(found)
        if found.get("store_id") != store_id:
            raise BackupError(
                f"{self.where()} holds the backup of another Picup library (made {found.get('created_at')}). "
                "To bring that library back use `picup restore`; to back up this one, choose another "
                "bucket or prefix."
            )

    def check_manifest(self, found: dict) -> None:
        if found.get("format") != FORMAT:
            raise BackupError(f"{self.where()} was written by a newer Picup (format {found.get('format')})")
        if found.get("encrypted") and not self.key:
            raise BackupError(f"{self.where()} is encrypted: set backup.encryption_key to the key it was made with")
        if not found.get("encrypted") and self.key:
            raise BackupError(f"{self.where()} is not encrypted, but an encryption key is set: use another "
                              "bucket or prefix for an encrypted backup")
        if self.key and found.get("key_check") != encryption.key_check(self.key):
            raise BackupError(f"the encryption key is not the one {self.where()} was made with")

    # ------------------------------------------------------------ listing
    def list_sizes(self, folder: str) -> dict[str, int]:
        """Every object under ``folder`` with its size: one listing, 1,000 names per request."""
        with self._errors("listing the backup"):
            return {
                obj.object_name: obj.size
                for obj in self._client.list_objects(bucket_name=self.bucket, prefix=self.prefix + folder,
                                                     recursive=True)
            }

    def remove(self, name: str) -> None:
        with self._errors("removing an old object"):
            self._client.remove_object(bucket_name=self.bucket, object_name=name)

    # ------------------------------------------------------------ sending
    def send(self, name: str, source: BinaryIO, size: int, progress: Progress | None = None,
             sha256: str | None = None) -> int:
        """Upload ``size`` bytes of ``source`` (sealed when encrypting) to ``name`` and verify it;
        with ``sha256``, also that ``source`` was those bytes (a damaged original is not sent)."""
        original = _Original(source, size, sha256)
        stream = encryption.Encrypting(original, self.key) if self.key else original
        length = self.stored_size(size)
        checked = _Checked(stream, PART_SIZE, progress, known=None if self.key else sha256)
        try:
            with self._errors(f"sending {name.rsplit('/', 1)[-1][:16]}"):
                result = self._client.put_object(bucket_name=self.bucket, object_name=name, data=checked,
                                                 length=length, part_size=PART_SIZE, num_parallel_uploads=1)
                stat = self._client.stat_object(bucket_name=self.bucket, object_name=name)
            if checked.size != length:
                raise BackupError(f"{name}: the file changed while it was sent ({checked.size} of {length} bytes)")
            original.check()
            etag = (result.etag or stat.etag or "").strip('"')
            if stat.size != length:
                raise BackupError(f"{self.where(name)}: the server holds {stat.size} bytes, {length} were sent")
            if etag != checked.etag():
                # Not always damage: with SSE-KMS or SSE-C (AWS, MinIO) the ETag is 32 hex digits that
                # are not the MD5 of the bytes. Reading the object back decides.
                self._verify_by_reading(name, checked.sha256(), length)
                self.read_back += 1
        except BaseException:
            # Never leave an object that was not verified: the next listing would count it as done.
            with contextlib.suppress(BackupError):
                self._errors_quiet_remove(name)
            raise
        return length

    def _errors_quiet_remove(self, name: str) -> None:
        with contextlib.suppress(MinioException, urllib3.exceptions.HTTPError, OSError):
            self._client.remove_object(bucket_name=self.bucket, object_name=name)

    def _verify_by_reading(self, name: str, sha256: str, length: int) -> None:
        digest, size = hashlib.sha256(), 0
        with self._errors("reading back what was sent"):
            response = self._client.get_object(bucket_name=self.bucket, object_name=name)
            try:
                for chunk in response.stream(1024 * 1024):
                    digest.update(chunk)
                    size += len(chunk)
            finally:
                response.close()
                response.release_conn()
        if (digest.hexdigest(), size) != (sha256, length):
            raise BackupError(f"{self.where(name)}: what the server holds is not what was sent")

    def send_original(self, store: storage.BlobStore, sha256: str, size: int, progress: Progress | None = None) -> int:
        """Send one original, read once and checked on the way (see :class:`_Original`)."""
        with store.open(storage.blob_key(sha256)) as source:
            return self.send(self.original_name(sha256), source, size, progress, sha256=sha256)

    # ------------------------------------------------------------ fetching
    def fetch(self, name: str, dest: Path) -> None:
        """Download ``name`` to ``dest``, decrypted; ``dest`` is absent after a failure."""
        try:
            with self._errors(f"fetching {name.rsplit('/', 1)[-1][:16]}"):
                try:
                    response = self._client.get_object(bucket_name=self.bucket, object_name=name)
                except S3Error as exc:
                    if exc.code == "NoSuchKey":
                        raise NotInBackup(f"{self.where(name)} is not in the backup") from None
                    raise
                try:
                    raw = _ResponseReader(response)
                    source = encryption.Decrypting(raw, self.key) if self.key else raw
                    with open(dest, "wb") as out:
                        while chunk := source.read(1024 * 1024):
                            out.write(chunk)
                finally:
                    response.close()
                    response.release_conn()
        except encryption.DecryptError as exc:
            dest.unlink(missing_ok=True)
            raise BackupError(f"{self.where(name)}: {exc}") from None
        except BaseException:
            dest.unlink(missing_ok=True)
            raise

    def fetch_original(self, sha256: str, dest: Path) -> None:
        """Write the original with this SHA-256 from the backup to ``dest`` (decrypted), and
        verify its hash. Raises :class:`NotInBackup` or :class:`BackupError`; ``dest`` is left
        absent on failure."""
        self.fetch(self.original_name(sha256), dest)
        if hash_file(dest) != sha256:
            dest.unlink(missing_ok=True)
            raise BackupError(f"the backup's copy of {sha256[:12]}… is damaged (its SHA-256 differs)")

    # ------------------------------------------------------------ snapshots
    def snapshot_names(self) -> list[str]:
        """Database snapshots in the backup, newest first (names without the prefix)."""
        names = [n.removeprefix(self.prefix + "database/") for n in self.list_sizes("database/")]
        return sorted((n for n in names if SNAPSHOT_NAME.match(n)), reverse=True)

    def snapshot_object(self, name: str) -> str:
        return f"{self.prefix}database/{name}"


class _ResponseReader:
    """A file-like ``read(n)`` over a urllib3 response."""

    def __init__(self, response):
        self._response = response

    def read(self, size: int = -1) -> bytes:
        return self._response.read(size if size and size > 0 else None)


# ---------------------------------------------------------------- retention
def snapshots_to_keep(names: list[str], daily: int, weekly: int, monthly: int) -> set[str]:
    """The newest snapshot of each of the last ``daily`` days, ``weekly`` weeks and ``monthly`` months."""
    dated = []
    for name in names:
        match = SNAPSHOT_NAME.match(name)
        if match:
            dated.append((dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S"), name))
    dated.sort(reverse=True)
    keep = {dated[0][1]} if dated else set()
    for count, period in ((daily, lambda d: d.date()), (weekly, lambda d: d.isocalendar()[:2]),
                          (monthly, lambda d: (d.year, d.month))):
        seen: list = []
        for when, name in dated:
            bucket = period(when)
            if bucket not in seen:
                if len(seen) >= count:
                    break
                seen.append(bucket)
                keep.add(name)
    return keep


# ---------------------------------------------------------------- when
def due(settings, local_now: dt.datetime | None = None) -> bool:
    """Whether the worker should back up now: nightly, catching up, and an hour after a failure."""
    return settings.backup_enabled and jobs.nightly_due("backup", settings.nightly_hour, local_now)


# ---------------------------------------------------------------- a run
def run(settings, store: storage.BlobStore, *, progress: Callable[[int, int], None] | None = None):
    """One backup run; returns the finished :class:`JobRun`. Raises :class:`BackupError` when it failed
    (the run is recorded as failed first) and :class:`jobs.JobBusy` when another one is going."""
    target = open_target(settings)
    if target is None:
        raise BackupError("no backup is set up: fill in the [backup] section of the configuration")
    with jobs.exclusive(settings, "backup"):
        record = jobs.start("backup")
        log.info("backup started", extra={"target": target.where()})
        try:
            figures = _run(settings, store, target, progress)
        except Exception as exc:
            message = str(exc) if isinstance(exc, (BackupError, storage.StorageError, snapshots.SnapshotError)) \
                else f"{type(exc).__name__}: {exc}"
            jobs.finish(record, "failed", error=message)
            log.error("backup failed", extra={"error": message})
            if isinstance(exc, BackupError):
                raise
            raise BackupError(message) from exc
        done = jobs.finish(record, "ok", items=figures["objects_sent"], bytes=figures["bytes_sent"], detail=figures)
        log.info("backup finished", extra={k: v for k, v in figures.items() if isinstance(v, (int, str))})
        return done


def _run(settings, store, target: Target, progress) -> dict:
    library.check_store(store)  # a backup of an unmounted share would be a backup of nothing
    store_id = Meta.get(Meta.key == "store_id").value
    target.claim(store_id)
    with tempfile.TemporaryDirectory(dir=settings.tmp_path, prefix="backup-") as folder:
        snapshot = snapshots.take(settings.database_path, Path(folder) / "picup.db")
        wanted = _originals_in(snapshot)
        present = target.list_sizes("originals/")
        names = {target.original_name(sha): (sha, size) for sha, size in wanted.items()}
        missing = [(sha, size) for name, (sha, size) in names.items() if present.get(name) != target.stored_size(size)]
        total = sum(size for _sha, size in missing)
        sent_objects = sent_bytes = 0
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            if progress:
                progress(done, total)

        failed: list[str] = []
        left_out: set[str] = set()  # not in the backup and not counted as in it
        unusable: list[dict] = []
        in_a_row = 0
        for sha, size in missing:
            try:
                sent_bytes += target.send_original(store, sha, size, advance if progress else None)
            except storage.BlobNotFound:
                log.error("original missing from the photo store; not backed up", extra={"sha256": sha})
                left_out.add(sha)
                continue
            except storage.StoreUnavailable:
                raise  # the share went away: stop, never back up "nothing"
            except OriginalUnusable as exc:
                # Nothing the backup can mend, and no reason to hold back the database: the
                # integrity check reads these first tonight and reports them on the status page.
                unusable.append({"sha256": sha, "problem": str(exc)})
                left_out.add(sha)
                log.error("original not backed up", extra={"sha256": sha, "error": str(exc)})
                Media.update(checked_at=None).where(Media.sha256 == sha).execute()
                continue
            except (BackupError, storage.StorageError, OSError) as exc:
                # One original that cannot go (an unreadable file, an object the server keeps
                # refusing) must not hold back the others; a server that is down stops the run.
                failed.append(_why(exc))
                in_a_row += 1
                log.error("original not backed up", extra={"sha256": sha, "error": failed[-1]})
                if in_a_row >= GIVE_UP_AFTER:
                    raise BackupError(failed[-1]) from None
                continue
            in_a_row = 0
            sent_objects += 1
        if failed:
            # No snapshot: every snapshot in the bucket has all of its originals there.
            if len(missing) == 1:
                raise BackupError(failed[0])
            sent = f"; the other {sent_objects} were sent and are kept" if sent_objects else ""
            raise BackupError(f"{len(failed)} of {len(missing)} originals could not be sent (the first: "
                              f"{failed[0]}){sent}")
        pruned = _note_and_prune_gone(settings, target, present, names)
        # The snapshot goes last: every snapshot in the bucket has all of its originals there.
        stamp = snapshots.stamp()
        name = f"picup-{stamp}.db.gz" + (".enc" if target.key else "")
        packed = snapshots.compress(snapshot, Path(folder) / "picup.db.gz")
        with open(packed, "rb") as fh:
            sent_bytes += target.send(target.snapshot_object(name), fh, packed.stat().st_size)
        sent_objects += 1
    kept = snapshots_to_keep(target.snapshot_names(), settings.backup_keep_daily, settings.backup_keep_weekly,
                             settings.backup_keep_monthly)
    thinned = 0
    for old in target.snapshot_names():
        if old not in kept:
            target.remove(target.snapshot_object(old))
            thinned += 1
    return {
        "objects_sent": sent_objects,
        "bytes_sent": sent_bytes,
        "objects_total": len(wanted) - len(left_out),  # the originals now in the backup
        "bytes_total": sum(size for sha, size in wanted.items() if sha not in left_out),
        "snapshot": name,
        "snapshots_kept": len(kept),
        "snapshots_removed": thinned,
        "originals_waiting_removal": BackupGone.select().count(),
        "originals_removed": pruned,
        "objects_read_back": target.read_back,
        "originals_not_sent": unusable[:100],  # damaged here: see the integrity check
        "encrypted": bool(target.key),
        "target": target.where(),
    }


def _why(exc: Exception) -> str:
    return str(exc) if isinstance(exc, (BackupError, storage.StorageError)) else f"{type(exc).__name__}: {exc}"


def _originals_in(snapshot: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT sha256, MAX(size) FROM media WHERE status = 'ready' GROUP BY sha256")
        return dict(rows.fetchall())
    finally:
        conn.close()


def _note_and_prune_gone(settings, target: Target, present: dict[str, int], names: dict) -> int:
    """Originals in the bucket no photo refers to: note when first seen, remove after the retention period."""
    now = utcnow()
    gone = [name for name in present if name not in names]
    known = {row.key: row.gone_since for row in BackupGone.select()}
    for name in [name for name in known if name in names]:  # the photo came back (uploaded again)
        BackupGone.delete().where(BackupGone.key == name).execute()
        del known[name]
    fresh = [{"key": name, "gone_since": now} for name in gone if name not in known]
    for start in range(0, len(fresh), 500):
        BackupGone.insert_many(fresh[start:start + 500]).on_conflict_ignore().execute()
    cutoff = now - dt.timedelta(days=settings.backup_keep_deleted_days)
    removed = 0
    for name, since in known.items():
        if since < cutoff and name in present:
            target.remove(name)
            BackupGone.delete().where(BackupGone.key == name).execute()
            removed += 1
            log.info("original removed from the backup after the retention period", extra={"object": name})
        elif name not in present:
            BackupGone.delete().where(BackupGone.key == name).execute()
    return removed
