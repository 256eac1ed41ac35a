"""The worker: drains the task queue and runs the scheduled jobs.

``picup worker`` runs it alone (under systemd, at a lower CPU weight);
``picup run`` runs it beside the web server in one process.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from apscheduler.schedulers.background import BackgroundScheduler

from . import db, library, renditions, tasks, uploads

log = logging.getLogger(__name__)

# A nightly or hourly job missed while the box was rebooting still runs when
# it comes back, as long as it is less than a day late (APScheduler's default is 1 s).
MISFIRE_GRACE = 24 * 3600
DRAIN_JOB = "tasks"


class _DrainStillBusy(logging.Filter):
    """APScheduler warns whenever it skips a run because the previous ones have not ended.
    The task drain is started every second and may run for minutes (a long video on a Pi):
    skipping is how it is meant to work, and a warning a second would fill the journal
    (and wear an SD card). Overlapping runs of every other job still warn."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not (str(record.msg).startswith('Execution of job "%s" skipped')
                    and getattr(job, "id", None) == DRAIN_JOB)


logging.getLogger("apscheduler.scheduler").addFilter(_DrainStillBusy())


def sweep_renditions() -> int:
    with db.connection():
        queued = renditions.sweep()
    if queued:
        log.info("renditions queued", extra={"items": queued})
    return queued


def drain_tasks(max_tasks: int = 100, stopping: threading.Event | None = None) -> int:
    """Run due tasks until none is left, ``max_tasks`` ran, or the worker is stopping."""
    ran = 0
    with db.connection():
        while ran < max_tasks and not (stopping and stopping.is_set()) and tasks.run_next():
            ran += 1
    return ran


def purge_trash(store, settings) -> int:
    with db.connection():
        purged = library.purge_trash(store, settings.trash_days)
        purged += library.clear_stale_pending(store)
    if purged:
        log.info("trash purged", extra={"items": purged})
    return purged


def expire_uploads(settings) -> int:
    with db.connection():
        gone = uploads.expire(settings)
    if gone:
        log.info("abandoned uploads removed", extra={"items": gone})
    return gone


def backup_if_due(store, settings) -> None:
    from . import backup, jobs

    with db.connection():
        if not backup.due(settings):
            return
        try:
            backup.run(settings, store)
        except (backup.BackupError, jobs.JobBusy) as exc:
            log.error("backup did not run to the end; it is tried again in an hour", extra={"error": str(exc)})


def check_integrity(store, settings) -> None:
    """Tonight's share of the integrity check (:mod:`picup.integrity`), once a night, caught up
    after a night the box was off; it logs what it finds."""
    from . import integrity, jobs

    with db.connection():
        if not jobs.nightly_due("check", settings.nightly_hour, finished=("ok", "problems")):
            return
        try:
            integrity.run(settings, store)
        except jobs.JobBusy:
            log.warning("integrity check skipped: another check is running")


class Worker:
    def __init__(self, settings, store, processes: int | None = None):
        self.settings = settings
        self.store = store
        self.pool = renditions.PhotoPool(processes or settings.worker_processes or None)
        self.stopping = threading.Event()
        self.scheduler = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE},
        )

    def register(self) -> None:
        """Give the task handlers what they need: the store, the settings, the pool."""

        def render(payload: dict) -> None:
            renditions.render(payload["media_id"], store=self.store, settings=self.settings, pool=self.pool)

        def motion(payload: dict) -> None:
            renditions.make_motion_video(payload["media_id"], store=self.store, settings=self.settings)

        tasks.handler(renditions.KIND, gave_up=renditions.gave_up)(render)
        tasks.handler(renditions.MOTION_KIND)(motion)

    def start(self) -> None:
        self.register()
        add = self.scheduler.add_job
        # One drain per core may run at once: each claims its own tasks, and the
        # photo decoding itself happens in the pool's processes.
        add(drain_tasks, "interval", seconds=1, id=DRAIN_JOB, replace_existing=True, misfire_grace_time=30,
            max_instances=self.pool.processes, kwargs={"stopping": self.stopping})
        add(sweep_renditions, "interval", minutes=10, id="sweep-renditions", replace_existing=True,
            next_run_time=dt.datetime.now(dt.UTC))
        add(purge_trash, "interval", hours=1, args=[self.store, self.settings], id="purge-trash",
            replace_existing=True)
        add(expire_uploads, "interval", hours=1, args=[self.settings], id="expire-uploads",
            replace_existing=True)
        # Both ask every hour whether they are due (nightly at maintenance.nightly_hour, local time).
        add(check_integrity, "cron", minute=0, args=[self.store, self.settings], id="integrity-check",
            replace_existing=True)
        if self.settings.backup_enabled:
            add(backup_if_due, "cron", minute=5, args=[self.store, self.settings], id="backup",
                replace_existing=True)
        self.scheduler.start()
        log.info("worker started", extra={"jobs": ",".join(j.id for j in self.scheduler.get_jobs())})

    def stop(self) -> None:
        """Finish the task at hand (not the whole queue), then stop."""
        self.stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
            log.info("worker stopped")
        self.pool.close()

    def run_forever(self) -> None:
        """For ``picup worker``: run until SIGTERM/SIGINT, then finish the job at hand."""
        import signal

        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        signal.signal(signal.SIGINT, lambda *_: stopping.set())
        self.start()
        stopping.wait()
        self.stop()
