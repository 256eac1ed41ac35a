"""The worker's task queue: leases, retries with backoff, failures kept with their reason."""

import datetime as dt
import json

import pytest

from picup import db, migrations, tasks, worker
from picup.models import Task, utcnow


@pytest.fixture
def queue(tmp_path):
    path = str(tmp_path / "picup.db")
    migrations.migrate(path)
    db.open_database(path)
    seen = []
    tasks.HANDLERS["test.record"] = lambda payload: seen.append(payload)
    tasks.HANDLERS["test.explode"] = lambda payload: 1 / 0
    with db.connection():
        yield seen
    tasks.HANDLERS.pop("test.record")
    tasks.HANDLERS.pop("test.explode")


def test_a_task_runs_once(queue):
    tasks.enqueue("test.record", {"n": 1})
    assert worker.drain_tasks() == 1
    assert queue == [{"n": 1}]
    assert Task.get().status == "done"
    assert worker.drain_tasks() == 0


def test_a_task_held_by_a_killed_worker_is_taken_again_after_its_lease(queue):
    tasks.enqueue("test.record", {"n": 2})
    claimed = tasks.claim(lease=dt.timedelta(minutes=10))  # then the worker dies (kill -9)
    assert claimed.status == "running"
    assert tasks.claim() is None, "still leased"
    Task.update(lease_until=utcnow() - dt.timedelta(seconds=1)).execute()  # the lease runs out
    again = tasks.claim()
    assert again.id == claimed.id and again.attempts == 2


def test_a_task_that_kills_its_worker_every_time_is_given_up(queue):
    """A file that crashes the decoder (and the worker with it) must not crash it forever."""
    recorded = []
    tasks.GAVE_UP["test.record"] = lambda payload, error: recorded.append((payload, error))
    try:
        task = tasks.enqueue("test.record", {"n": 3}, max_attempts=2)
        other = tasks.enqueue("test.record", {"n": 4})
        for _ in range(2):  # claimed, then the worker dies with it (kill -9), twice
            assert tasks.claim().id == task.id
            Task.update(lease_until=utcnow() - dt.timedelta(seconds=1)).where(Task.id == task.id).execute()
        assert tasks.claim().id == other.id, "the poison task is not claimed a third time"
        failed = Task.get_by_id(task.id)
        assert failed.status == "failed" and "on every attempt" in failed.last_error
        assert recorded == [({"n": 3}, failed.last_error)]
    finally:
        tasks.GAVE_UP.pop("test.record", None)


def test_a_failing_task_is_retried_with_backoff_then_marked_failed(queue):
    task = tasks.enqueue("test.explode", max_attempts=3)
    for attempt in (1, 2):
        assert worker.drain_tasks() == 1
        task = Task.get_by_id(task.id)
        assert task.status == "queued" and task.attempts == attempt
        assert "ZeroDivisionError" in task.last_error
        assert task.run_after > utcnow() + tasks.backoff(attempt) - dt.timedelta(seconds=5)
        Task.update(run_after=utcnow()).execute()  # let time pass
    worker.drain_tasks()
    task = Task.get_by_id(task.id)
    assert task.status == "failed" and task.attempts == 3
    assert tasks.retry_failed() == 1
    assert Task.get_by_id(task.id).status == "queued"


def test_unknown_task_kind_fails_without_stopping_the_others(queue):
    tasks.enqueue("no.such.kind", max_attempts=1)
    tasks.enqueue("test.record", {"n": 3})
    assert worker.drain_tasks() == 2
    assert queue == [{"n": 3}]
    failed = Task.get(Task.kind == "no.such.kind")
    assert failed.status == "failed" and "no handler" in failed.last_error
    assert failed.attempts == 1, "no point in retrying what has no handler"
    assert json.loads(Task.get(Task.kind == "test.record").payload) == {"n": 3}


def test_a_task_that_gives_up_is_recorded_where_people_look(queue):
    recorded = []
    tasks.GAVE_UP["test.explode"] = lambda payload, error: recorded.append((payload, error))
    try:
        tasks.enqueue("test.explode", {"media_id": 9}, max_attempts=1)
        worker.drain_tasks()
    finally:
        tasks.GAVE_UP.pop("test.explode")
    assert recorded == [({"media_id": 9}, "ZeroDivisionError: division by zero")]


def test_permanent_errors_are_not_retried(queue):
    def unreadable(payload):
        raise tasks.PermanentError("this file cannot be read")

    tasks.HANDLERS["test.unreadable"] = unreadable
    try:
        tasks.enqueue("test.unreadable", max_attempts=5)
        worker.drain_tasks()
    finally:
        tasks.HANDLERS.pop("test.unreadable")
    task = Task.get(Task.kind == "test.unreadable")
    assert (task.status, task.attempts, task.last_error) == ("failed", 1, "this file cannot be read")


def test_backoff_grows_and_is_capped():
    assert [tasks.backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert tasks.backoff(20) == dt.timedelta(hours=1)
