"""Bookkeeping for the long maintenance jobs (integrity check, backup).

Each run is a :class:`~picup.models.JobRun` row the status page reads. A job
runs once at a time across processes (``picup backup`` typed by hand while
the worker's nightly run is going): an ``flock`` on a file under
``<data>/locks``, which the kernel releases even after ``kill -9``. A run
left "running" by a killed process is marked failed on the next start.
"""

from __future__ import annotations

import contextlib
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
