"""The database-backed task queue the worker drains.

A task is claimed with a lease: a worker killed half-way (even ``kill -9``)
leaves a lease that runs out, and the task is claimed again. A failing task
is retried with exponential backoff, then marked failed with its reason.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Callable

from .db import database
from .models import Task, utcnow

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=10)
HANDLERS: dict[str, Callable[[dict], None]] = {}
# Called once when a task of that kind has failed for good, to record it where people look.
GAVE_UP: dict[str, Callable[[dict, str], None]] = {}


def handler(kind: str, *, gave_up: Callable[[dict, str], None] | None = None):
    """Register the function that runs tasks of ``kind`` (and what to do when they fail for good)."""

    def register(fn):
        HANDLERS[kind] = fn
        if gave_up is not None:
            GAVE_UP[kind] = gave_up
        return fn

    return register


class PermanentError(Exception):
    """A failure that trying again cannot fix (e.g. a file no decoder can read)."""


def enqueue(kind: str, payload: dict | None = None, *, delay: float = 0, max_attempts: int = 5) -> Task:
    return Task.create(
        kind=kind,
        payload=json.dumps(payload or {}),
        run_after=utcnow() + dt.timedelta(seconds=delay),
        max_attempts=max_attempts,
    )


def backoff(attempts: int) -> dt.timedelta:
    """30 s, 1 min, 2 min, … capped at one hour."""
    return dt.timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def claim(lease: dt.timedelta = LEASE) -> Task | None:
    """Take the next due task (or one whose lease ran out) for this worker."""
    now = utcnow()
    with database.atomic():
        task = (
            Task.select()
            .where(
                ((Task.status == "queued") & (Task.run_after <= now))
                | ((Task.status == "running") & (Task.lease_until < now))
            )
            .order_by(Task.run_after, Task.id)
            .first()
        )
        if task is None:
            return None
        if task.status == "running" and task.attempts >= task.max_attempts:
            # Its worker died with it, attempt after attempt (a file that kills the decoder, say):
            # give up instead of crashing the worker every time the lease runs out.
            died = "the worker stopped while running it, on every attempt"
            Task.update(status="failed", lease_until=None, last_error=died, updated_at=now).where(
                Task.id == task.id).execute()
            _gave_up(task, died)
            return claim(lease)
        Task.update(
            status="running", attempts=Task.attempts + 1, lease_until=now + lease, updated_at=now
        ).where(Task.id == task.id).execute()
    return Task.get_by_id(task.id)


def complete(task: Task) -> None:
    Task.update(status="done", lease_until=None, last_error=None, updated_at=utcnow()).where(
        Task.id == task.id
    ).execute()


def fail(task: Task, error: str, *, final: bool = False) -> None:
    """Retry later with backoff, or mark failed when attempts are used up (or ``final``)."""
    now = utcnow()
    if final or task.attempts >= task.max_attempts:
        changes = {"status": "failed", "lease_until": None}
    else:
        changes = {"status": "queued", "lease_until": None, "run_after": now + backoff(task.attempts)}
    Task.update(last_error=error[:2000], updated_at=now, **changes).where(Task.id == task.id).execute()
    if changes["status"] == "failed":
        _gave_up(task, error)


def _gave_up(task: Task, error: str) -> None:
    """Record, where people look, that a task failed for good."""
    if task.kind in GAVE_UP:
        try:
            GAVE_UP[task.kind](json.loads(task.payload), error)
        except Exception:
            log.exception("could not record a failed task", extra={"task_id": task.id})


def run_next() -> bool:
    """Run one due task; False when there was none."""
    task = claim()
    if task is None:
        return False
    fn = HANDLERS.get(task.kind)
    try:
        if fn is None:
            raise PermanentError(f"no handler for task kind {task.kind!r}")
        fn(json.loads(task.payload))
    except PermanentError as exc:
        log.warning("task failed for good", extra={"task_id": task.id, "kind": task.kind, "error": str(exc)})
        fail(task, str(exc), final=True)
    except Exception as exc:  # a bad task must never take the worker down
        log.exception("task failed", extra={"task_id": task.id, "kind": task.kind})
        fail(task, f"{type(exc).__name__}: {exc}")
    else:
        complete(task)
    return True


def failed(limit: int = 200) -> list[Task]:
    return list(Task.select().where(Task.status == "failed").order_by(Task.updated_at.desc()).limit(limit))


def retry_failed(task_ids: list[int] | None = None) -> int:
    query = Task.update(status="queued", attempts=0, run_after=utcnow(), updated_at=utcnow()).where(
        Task.status == "failed"
    )
    if task_ids:
        query = query.where(Task.id.in_(task_ids))
    return query.execute()
