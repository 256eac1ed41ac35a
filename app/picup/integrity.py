"""The integrity check: read originals back and compare them with the database.

Each night a share of the library is read, the longest-unchecked first, so
every original is read at least once every ``check_days`` days without a
nightly spike; ``picup check --all`` reads everything now. The check finds

* damaged, unreadable or missing originals: restored from the backup when
  there is one (and read back), otherwise reported loudly and read again on
  every run until they are fixed;
* files in the photo store no photo refers to: reported, and removed only
  after ``stray_grace_days`` and only while the store's marker is in place;
* photos whose thumbnail or display size is gone: queued to be made again.

Each run is kept as a :class:`~picup.models.JobRun` for the status page and
``/metrics``. A killed check leaves nothing wrong: progress is committed as it
goes, a lock the kernel releases keeps two checks apart, and the next run
marks the killed one "interrupted" and carries on (``--all`` resumes where it
stopped).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

import peewee as pw

from . import jobs, library, renditions, storage
from .db import database
from .models import JobRun, Media, StrayBlob, User, utcnow

log = logging.getLogger(__name__)

KIND = "check"
PAGE = 500  # rows read from the database at a time
FLUSH_ITEMS = 200  # progress is committed after this many originals...
FLUSH_SECONDS = 1.0  # ...or this many seconds, whichever comes first
MAX_LISTED = 100  # problems listed in a run's detail (the counts are always whole)
INTERRUPTED = "interrupted (stopped by Ctrl+C or a signal); the next run carries on"

_WORDS = {renditions.THUMB: "thumbnail", renditions.PREVIEW: "display size",
          renditions.WEB_VIDEO: "web copy of the video"}

Progress = Callable[[int, int], None]  # (bytes read so far, bytes planned)


@dataclass
class Problem:
    """One thing found wrong, in words a person can act on."""

    kind: str  # corrupt | unreadable | missing | renditions | stray
    what: str
    outcome: str = ""
    repaired: bool = False
    sha256: str | None = None
    key: str | None = None
    media: list[dict] = field(default_factory=list)  # [{id, owner, filename}], a few at most

    def json(self) -> dict:
        first = self.media[0] if self.media else {}
        return {
            "kind": self.kind,
            "media_id": first.get("id"),
            "owner": first.get("owner"),
            "filename": first.get("filename"),
            "also": self.media[1:],
            "sha256": self.sha256,
            "key": self.key,
            "problem": self.what,
            "outcome": self.outcome,
            "repaired": self.repaired,
            "text": self.text(),
        }

    def text(self) -> str:
        if self.media:
            first = self.media[0]
            who = f"{first['filename']} (photo {first['id']}, {first['owner']})"
            if len(self.media) > 1:
                who += f" and {len(self.media) - 1} more"
        else:
            who = self.key or self.sha256 or "?"
        return f"{who}: {self.what}; {self.outcome}" if self.outcome else f"{who}: {self.what}"


# --------------------------------------------------------------- reading back
def _hash_path(path: str) -> tuple[str, int]:
    """SHA-256 and size of a file as the disk holds it: cached pages are dropped first,
    and again afterwards so the check does not push thumbnails out of the page cache."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(storage.CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        _advise(fh.fileno(), "POSIX_FADV_DONTNEED", "POSIX_FADV_SEQUENTIAL")
        while count := fh.readinto(buffer):
            digest.update(view[:count])
            size += count
        _advise(fh.fileno(), "POSIX_FADV_DONTNEED")
    return digest.hexdigest(), size


def _advise(fd: int, *advice: str) -> None:
    for name in advice:
        if hasattr(os, name):  # Linux has them all; elsewhere they are only a speed-up
            os.posix_fadvise(fd, 0, 0, getattr(os, name))


def read_blob(store, key: str) -> tuple[str, int]:
    """SHA-256 and size of a stored blob, streamed (:class:`storage.BlobNotFound` if absent)."""
    path = store.local_path(key)
    if path is not None:
        try:
            return _hash_path(path)
        except FileNotFoundError:
            raise storage.BlobNotFound(key) from None
    digest = hashlib.sha256()
    size = 0
    with store.open(key) as stream:
        while chunk := stream.read(storage.CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _cutoff(previous: JobRun | None, check_all: bool, now: dt.datetime) -> dt.datetime:
    """Originals read since the cutoff are not read again in this run. For ``--all`` right
    after an interrupted ``--all`` it is where the interrupted one started: it carries on."""
    interrupted = previous is not None and (
        previous.status == "running"
        or (previous.status == "failed" and (previous.error or "").startswith("interrupted"))
    )
    if check_all and interrupted:
        detail = json.loads(previous.detail or "{}")
        if detail.get("all") and detail.get("cutoff"):
            return dt.datetime.fromisoformat(detail["cutoff"])
    return now


# -------------------------------------------------------------------- the check
class _Check:
    def __init__(self, settings, store, job: JobRun, progress: Progress | None):
        self.settings = settings
        self.store = store
        self.job = job
        self.progress = progress
        self.items = 0
        self.bytes = 0
        self.planned = 0
        self.sound_items = 0  # originals read back fine (or repaired): what the night's share counts
        self.sound_bytes = 0
        self.found = 0
        self.repaired = 0
        self.listed: list[Problem] = []
        self.marks: list[int] = []  # rows read back fine, to stamp at the next flush
        self.requeued = 0
        self.unfixed: set[str] = set()  # originals left with a problem: not stamped, not read twice
        self.flushed_at = time.monotonic()
        self._target = None
        self._target_error = None

    # ------------------------------------------------------------ bookkeeping
    def problem(self, problem: Problem) -> None:
        self.found += 1
        self.repaired += problem.repaired
        if len(self.listed) < MAX_LISTED:
            self.listed.append(problem)
        extra = {"kind": problem.kind, "sha256": problem.sha256, "key": problem.key,
                 "media_id": problem.media[0]["id"] if problem.media else None}
        if problem.repaired:
            log.warning("integrity check repaired a problem: %s", problem.text(), extra=extra)
        elif self.found - self.repaired <= MAX_LISTED:
            log.error("integrity check found a problem: %s", problem.text(), extra=extra)

    def flush(self, force: bool = False) -> None:
        """Commit progress: the rows read back fine, and the run's counts."""
        if not force and len(self.marks) < FLUSH_ITEMS and time.monotonic() - self.flushed_at < FLUSH_SECONDS:
            return
        with database.atomic():
            for start in range(0, len(self.marks), PAGE):
                Media.update(checked_at=utcnow()).where(Media.id.in_(self.marks[start:start + PAGE])).execute()
            JobRun.update(items=self.items, bytes=self.bytes, problems=self.found, repaired=self.repaired).where(
                JobRun.id == self.job.id
            ).execute()
        self.marks.clear()
        self.flushed_at = time.monotonic()

    # --------------------------------------------------------------- originals
    def plan(self, check_all: bool, cutoff: dt.datetime) -> tuple[int, int]:
        """How many originals and bytes this run reads at least (the whole library for ``--all``)."""
        if check_all:
            sql = ("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM (SELECT MAX(size) AS size FROM media "
                   "WHERE status = 'ready' GROUP BY sha256 "
                   "HAVING SUM(checked_at IS NULL) > 0 OR MIN(checked_at) < ?)")
            return database.execute_sql(sql, (cutoff,)).fetchone()
        sql = ("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM (SELECT MAX(size) AS size FROM media "
               "WHERE status = 'ready' GROUP BY sha256)")
        count, total = database.execute_sql(sql).fetchone()
        days = max(self.settings.check_days, 1)
        return math.ceil(count / days), math.ceil(total / days)

    def pages(self, cutoff: dt.datetime):
        """Pages of rows to read, never-checked first, then the longest-unchecked. Each page is
        read after the last one's progress is committed, so rows stamped meanwhile drop out."""
        fields = (Media.id, Media.sha256, Media.size, Media.checked_at)
        ready = Media.status == "ready"
        last_id = 0
        while True:
            self.flush(force=True)
            page = list(Media.select(*fields).where(ready & Media.checked_at.is_null() & (Media.id > last_id))
                        .order_by(Media.id).limit(PAGE))
            if not page:
                break
            yield page
            last_id = page[-1].id
        last = None
        while True:
            self.flush(force=True)
            query = Media.select(*fields).where(ready & (Media.checked_at < cutoff))
            if last is not None:
                query = query.where(pw.Tuple(Media.checked_at, Media.id) > pw.Tuple(*last))
            page = list(query.order_by(Media.checked_at, Media.id).limit(PAGE))
            if not page:
                break
            yield page
            last = (page[-1].checked_at, page[-1].id)

    def originals(self, check_all: bool, cutoff: dt.datetime) -> None:
        want_items, want_bytes = self.plan(check_all, cutoff)
        self.planned = want_bytes
        for page in self.pages(cutoff):
            # Every row of each blob on the page: a blob may back several (one per family member).
            rows: dict[str, list[Media]] = {}
            for row in (Media.select(Media.id, Media.sha256, Media.size, Media.render_status, Media.web_video)
                        .where(Media.sha256.in_({row.sha256 for row in page}) & (Media.status == "ready"))):
                rows.setdefault(row.sha256, []).append(row)
            for row in page:
                # Originals left with a problem come first (never stamped) and do not count
                # towards the night's share: each run reports them all again.
                if not check_all and self.sound_items >= want_items and self.sound_bytes >= want_bytes:
                    return
                if row.sha256 not in rows or row.sha256 in self.unfixed:
                    continue
                self.one(row.sha256, rows.pop(row.sha256))
                if self.progress is not None:
                    self.progress(self.bytes, max(self.planned, self.bytes))
                self.flush()

    def one(self, sha256: str, rows: list[Media]) -> None:
        """Read one original back, repair it if it needs it, and check its renditions."""
        key = storage.blob_key(sha256)
        size = max(row.size for row in rows)
        try:
            actual, read = read_blob(self.store, key)
            state, what = ("ok", "") if actual == sha256 else (
                "corrupt", "the stored original is damaged: its bytes differ from the ones uploaded")
        except (storage.BlobNotFound, FileNotFoundError):
            state, what, read = "missing", "the stored original is missing", 0
        except (storage.StorageError, OSError) as exc:
            state, what, read = "unreadable", f"the stored original could not be read ({exc})", 0
        self.items += 1
        self.bytes += read
        if state != "ok":
            library.check_store(self.store)  # a store that went away is an outage, not lost photos
            if not Media.select().where((Media.sha256 == sha256) & (Media.status == "ready")).exists():
                return  # purged meanwhile, bytes and all
            repaired, outcome = self.restore(sha256, size)
            self.problem(Problem(state, what, outcome, repaired, sha256=sha256, key=key, media=_people(sha256)))
            if not repaired:
                self.unfixed.add(sha256)
                return  # not stamped: read (and reported) again on the next run, until fixed
        self.renditions(sha256, rows)
        self.marks.extend(row.id for row in rows)
        self.sound_items += 1
        self.sound_bytes += size

    # ------------------------------------------------------------------ repair
    def target(self):
        """The backup target, opened once per run when first needed; None without one."""
        if self._target is None and self._target_error is None:
            from . import backup

            if not self.settings.backup_enabled:
                self._target_error = "no backup is set up"
            else:
                try:
                    self._target = backup.open_target(self.settings)
                except backup.BackupError as exc:
                    self._target_error = f"the backup could not be opened ({exc})"
                if self._target is None and self._target_error is None:
                    self._target_error = "no backup is set up"
        return self._target

    def restore(self, sha256: str, size: int) -> tuple[bool, str]:
        """Put the original back from the backup, then read it back; (repaired, what happened)."""
        from . import backup

        target = self.target()
        if target is None:
            return False, f"not repaired: {self._target_error}"
        self.settings.tmp_path.mkdir(parents=True, exist_ok=True)
        # Named for this process, so the hourly clean-up of temporary files leaves it alone.
        tmp = self.settings.tmp_path / f"check-restore-pid{os.getpid()}-{sha256[:16]}-{secrets.token_hex(4)}"
        try:
            target.fetch_original(sha256, tmp)
            library.check_store(self.store)  # never write into a store we cannot vouch for
            self.store.put_file(str(tmp), sha256=sha256)
        except backup.NotInBackup:
            return False, "not repaired: the backup has no copy of it"
        except backup.BackupError as exc:
            return False, f"not repaired: the backup could not be read ({exc})"
        except storage.StoreUnavailable:
            raise
        except (storage.StorageError, OSError) as exc:
            return False, f"not repaired: the copy from the backup could not be stored ({exc})"
        finally:
            tmp.unlink(missing_ok=True)
        try:
            actual, _read = read_blob(self.store, storage.blob_key(sha256))
        except (storage.StorageError, OSError) as exc:
            return False, f"not repaired: the restored copy could not be read back ({exc})"
        if actual != sha256:
            return False, "not repaired: the restored copy did not read back correctly"
        return True, "restored from the backup and read back correctly"

    def renditions(self, sha256: str, rows: list[Media]) -> None:
        """Queue renditions again when a finished item's thumbnail or display size is gone."""
        ready = [row for row in rows if row.render_status == "ready"]
        if not ready:
            return  # waiting for its renditions, or the file could not be read: nothing to rebuild
        names = [renditions.THUMB, renditions.PREVIEW] + ([renditions.WEB_VIDEO] if any(
            row.web_video for row in ready) else [])
        gone = [name for name in names if not self.store.exists(storage.derived_key(sha256, name))]
        if not gone:
            return
        with database.atomic():
            Media.update(render_status="pending", render_error=None).where(
                Media.id.in_([row.id for row in ready])).execute()
        self.requeued += len(ready)
        what = "its " + " and ".join(_WORDS[name] for name in gone) + (" is" if len(gone) == 1 else " are") + " missing"
        self.problem(Problem("renditions", what, "queued to be made again", True, sha256=sha256,
                             media=_people(sha256)))

    # ------------------------------------------------------------------ strays
    def strays(self) -> None:
        """Blobs under ``originals/`` no row refers to: reported, removed after the grace period."""
        known = {sha for (sha,) in Media.select(Media.sha256).distinct().tuples()}
        found = set()
        for key in self.store.iter_keys("originals"):
            sha256 = key.rsplit("/", 1)[-1]
            if sha256 in known:
                continue
            try:
                if storage.blob_key(sha256) != key:
                    continue  # not a blob of ours; never touched
            except ValueError:
                continue
            found.add(key)
        now = utcnow()
        seen = {stray.key: stray.first_seen_at for stray in StrayBlob.select()}
        with database.atomic():
            gone = [key for key in seen if key not in found]
            for start in range(0, len(gone), PAGE):
                StrayBlob.delete().where(StrayBlob.key.in_(gone[start:start + PAGE])).execute()
            new = [{"key": key, "first_seen_at": now} for key in found if key not in seen]
            for start in range(0, len(new), PAGE):
                StrayBlob.insert_many(new[start:start + PAGE]).execute()
        grace = dt.timedelta(days=self.settings.stray_grace_days)
        due = sorted(key for key in found if seen.get(key, now) <= now - grace)
        if due:
            library.check_store(self.store)  # the marker first: an empty mount deletes nothing
        for key in sorted(found):
            first_seen = seen.get(key, now)
            what = f"a stored file no photo refers to (first seen {first_seen:%Y-%m-%d})"
            if key in due:
                sha256 = key.rsplit("/", 1)[-1]
                with database.atomic():
                    removed = library.delete_blob_if_unused(self.store, sha256)
                    StrayBlob.delete().where(StrayBlob.key == key).execute()
                outcome = (f"removed after {self.settings.stray_grace_days} days" if removed
                           else "a photo refers to it again: kept")
                self.problem(Problem("stray", what, outcome, True, sha256=sha256, key=key))
            else:
                until = first_seen + grace
                self.problem(Problem("stray", what, f"kept until {until:%Y-%m-%d}, then removed",
                                     False, key=key))

    # ----------------------------------------------------------------- the end
    def end(self, status: str, error: str | None = None, cutoff: dt.datetime | None = None,
            check_all: bool = False) -> JobRun:
        with database.atomic():
            self.flush(force=True)  # first: what this run read back is not "not read yet"
            detail = {
                "all": check_all,
                "cutoff": cutoff.isoformat() if cutoff else None,
                "problems": [problem.json() for problem in self.listed],
                "not_listed": self.found - len(self.listed),
                "renditions_queued": self.requeued,
                **coverage(),
            }
            unfixed = sorted(self.unfixed)
            for start in range(0, len(unfixed), PAGE):  # those are listed above, not "not read yet"
                detail["never_checked"] -= Media.select().where(
                    Media.checked_at.is_null() & Media.sha256.in_(unfixed[start:start + PAGE])).count()
            return jobs.finish(self.job, status, error=error, items=self.items, bytes=self.bytes,
                               problems=self.found, repaired=self.repaired, detail=detail)


def _people(sha256: str, limit: int = 5) -> list[dict]:
    """Whose photo this is, for the report: id, owner and file name."""
    rows = (Media.select(Media.id, Media.original_filename, User.username).join(User)
            .where(Media.sha256 == sha256).order_by(Media.id).limit(limit))
    return [{"id": row.id, "owner": row.owner.username, "filename": row.original_filename} for row in rows]


def coverage() -> dict:
    """How fresh the checks are: originals in the library, never read back, and the oldest read."""
    items, never, oldest = Media.select(
        pw.fn.COUNT(Media.id), pw.fn.SUM(Media.checked_at.is_null().cast("INTEGER")), pw.fn.MIN(Media.checked_at)
    ).where(Media.status == "ready").scalar(as_tuple=True)
    return {"library_items": items, "never_checked": never or 0, "oldest_check": oldest and str(oldest)}


# ------------------------------------------------------------------------ run
def run(settings, store, *, all: bool = False, progress: Progress | None = None) -> JobRun:
    """Check tonight's share of the library (or ``all`` of it now); return the finished run.

    Raises :class:`jobs.JobBusy` when another check is running. Needs an open database
    connection (``db.connection()``). ``progress(done, planned)`` is called in bytes.
    """
    with jobs.exclusive(settings, KIND):
        previous = jobs.last(KIND)
        job = jobs.start(KIND)  # marks a run a killed check left "running" as failed
        cutoff = _cutoff(previous, all, job.started_at)
        JobRun.update(detail=json.dumps({"all": all, "cutoff": cutoff.isoformat()})).where(
            JobRun.id == job.id).execute()
        check = _Check(settings, store, job, progress)
        log.info("integrity check started", extra={"run_id": job.id, "all": all})
        try:
            library.check_store(store)
            check.originals(all, cutoff)
            check.strays()
            renditions.sweep()  # queues the items whose renditions went missing
        except storage.StoreUnavailable as exc:
            error = f"stopped, as the photo store cannot be vouched for (is it mounted?): {exc}"
            log.error("integrity check failed: %s", error, extra={"run_id": job.id})
            return check.end("failed", error, cutoff, all)
        except Exception as exc:
            log.exception("integrity check failed", extra={"run_id": job.id})
            return check.end("failed", f"{type(exc).__name__}: {exc}", cutoff, all)
        except BaseException:  # Ctrl+C or SystemExit: keep what was done, let the next --all carry on
            check.end("failed", INTERRUPTED, cutoff, all)
            raise
        finished = check.end("problems" if check.found else "ok", None, cutoff, all)
    extra = {"run_id": job.id, "items": finished.items, "bytes": finished.bytes, "problems": finished.problems,
             "repaired": finished.repaired}
    if finished.problems > finished.repaired:
        log.error("integrity check finished with problems that need a person", extra=extra)
    else:
        log.info("integrity check finished", extra=extra)
    return finished


def unrepaired(job: JobRun) -> int:
    """Problems a run found and could not repair (0 for a clean run)."""
    return max(job.problems - job.repaired, 0)


# ------------------------------------------------------------------ reporting
def summary(job: JobRun) -> str:
    """The run in plain words, for the command line."""
    seconds = ((job.finished_at or utcnow()) - job.started_at).total_seconds()
    took = f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {int(seconds % 60)} s"
    lines = [f"Checked {job.items:,} original{'s' if job.items != 1 else ''} "
             f"({library.human_size(job.bytes)} read back) in {took}."]
    if job.status == "failed":
        lines.append(f"The check did not finish: {job.error}")
    detail = json.loads(job.detail or "{}")
    problems = detail.get("problems", [])
    if not job.problems:
        if job.status != "failed":
            lines.append("Everything is intact.")
    else:
        left = job.problems - job.repaired
        lines.append(f"Found {job.problems} problem{'s' if job.problems != 1 else ''}: "
                     f"{job.repaired} repaired, {left} need{'s' if left == 1 else ''} a person.")
        for problem in problems:
            lines.append(f"  - {problem['text']}")
        if detail.get("not_listed"):
            lines.append(f"  … and {detail['not_listed']} more")
    never = detail.get("never_checked") or 0
    if never and not detail.get("all"):
        lines.append(f"{never:,} original{' has' if never == 1 else 's have'} not been read back yet; "
                     f"the nightly check gets to {'it' if never == 1 else 'them'}.")
    return "\n".join(lines)
