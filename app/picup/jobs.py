"""Bookkeeping for the long maintenance jobs (integrity check, backup).

Each run is a :class:`~picup.models.JobRun` row the status page reads. A job
runs once at a time across processes (``picup backup`` typed by hand while
the worker's nightly run is going): an ``flock`` on a file under
``<data>/locks``, which the kernel releases even after ``kill -9``. A run
left "running" by a killed process is marked failed on the next start.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from typing import Iterator

from .models import JobRun, utcnow


class JobBusy(Exception):
    """Another process is running the same job right now."""


@contextlib.contextmanager
def exclusive(settings, kind: str) -> Iterator[None]:
    folder = settings.data_path / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{kind}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobBusy(f"a {kind} is already running") from None
        yield
    finally:
        os.close(fd)


def start(kind: str) -> JobRun:
    """Record a new run, after marking any run of this kind a killed process left behind.

    Call while holding :func:`exclusive`, so "running" rows can only be leftovers.
    """
    JobRun.update(status="failed", finished_at=utcnow(), error="interrupted (the process stopped mid-run)").where(
        (JobRun.kind == kind) & (JobRun.status == "running")
    ).execute()
    return JobRun.create(kind=kind, status="running", started_at=utcnow())


def finish(run: JobRun, status: str, *, error: str | None = None, **figures) -> JobRun:
    detail = figures.pop("detail", None)
    changes = {"status": status, "finished_at": utcnow(), "error": error, **figures}
    if detail is not None:
        changes["detail"] = json.dumps(detail)
    JobRun.update(**changes).where(JobRun.id == run.id).execute()
    return JobRun.get_by_id(run.id)


def last(kind: str, *, status: str | None = None) -> JobRun | None:
    query = JobRun.select().where(JobRun.kind == kind)
    if status:
        query = query.where(JobRun.status == status)
    return query.order_by(JobRun.started_at.desc(), JobRun.id.desc()).first()


RETRY_AFTER = dt.timedelta(hours=1)


def nightly_due(kind: str, nightly_hour: int, local_now: dt.datetime | None = None,
                finished: tuple[str, ...] = ("ok",)) -> bool:
    """Whether a nightly job should run now (the worker asks every hour).

    At ``nightly_hour`` (the box's local time) unless it already ran in the last
    20 hours; as soon as possible when the last finished run is more than 26 hours
    old (the box was off at night); an hour after a failed run, until one finishes.
    """
    local_now = local_now or dt.datetime.now()
    now = utcnow()
    latest = last(kind)
    if latest is not None and now - latest.started_at < RETRY_AFTER:
        return False
    done = (JobRun.select().where((JobRun.kind == kind) & JobRun.status.in_(finished))
            .order_by(JobRun.started_at.desc()).first())
    if done is None:
        return True
    age = now - done.started_at
    if age < dt.timedelta(hours=20):
        return False
    return local_now.hour == nightly_hour or age > dt.timedelta(hours=26) or latest.status == "failed"
