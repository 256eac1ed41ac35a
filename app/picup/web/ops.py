"""For the installer's monitoring: alive, ready, and Prometheus metrics."""

from __future__ import annotations

import datetime as dt

import peewee as pw
from flask import Blueprint, Response, jsonify

from .. import library, storage
from .. import status as picup_status
from ..db import database
from ..models import Media, Task, Upload, User
from .auth import public, state

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
@public
def healthz():
    """The process is alive."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@public
def readyz():
    """The database and the photo store (with its marker) are reachable."""
    checks = {}
    try:
        database.execute_sql("SELECT 1").fetchone()
        checks["database"] = "ok"
    except pw.PeeweeException as exc:
        checks["database"] = f"error: {exc}"
    try:
        library.check_store(state().store)
        checks["store"] = "ok"
    except (storage.StorageError, OSError, pw.PeeweeException) as exc:
        checks["store"] = f"error: {exc}"
    ready = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), 200 if ready else 503


@bp.get("/metrics")
@public
def metrics():
    """Counts in the Prometheus text format (no personal data)."""
    lines = [
        "# HELP picup_users Family members with an account.",
        "# TYPE picup_users gauge",
        f"picup_users {User.select().count()}",
        "# HELP picup_media Photos and videos by state.",
        "# TYPE picup_media gauge",
    ]
    live = Media.select().where(Media.trashed_at.is_null() & (Media.status == "ready"))
    lines.append(f'picup_media{{state="library"}} {live.count()}')
    lines.append(f'picup_media{{state="trash"}} {Media.select().where(Media.trashed_at.is_null(False)).count()}')
    lines += [
        "# HELP picup_media_bytes Bytes of originals in the library and the trash.",
        "# TYPE picup_media_bytes gauge",
        f"picup_media_bytes {Media.select(pw.fn.COALESCE(pw.fn.SUM(Media.size), 0)).scalar()}",
        "# HELP picup_tasks Worker tasks by status.",
        "# TYPE picup_tasks gauge",
    ]
    counts = dict(Task.select(Task.status, pw.fn.COUNT(Task.id)).group_by(Task.status).tuples())
    for status in ("queued", "running", "done", "failed"):
        lines.append(f'picup_tasks{{status="{status}"}} {counts.get(status, 0)}')
    lines += [
        "# HELP picup_uploads_in_progress Resumable uploads not yet complete.",
        "# TYPE picup_uploads_in_progress gauge",
        f"picup_uploads_in_progress {Upload.select().where(Upload.media.is_null()).count()}",
    ]
    lines += _status_lines()
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


def _status_lines() -> list[str]:
    """The administrator's status (:mod:`picup.status`) as gauges; a figure nobody knows is left out."""
    report = picup_status.report(state().settings, state().store)
    parts = report["parts"]
    check, backup, store = parts["integrity"]["last_run"] or {}, parts["backup"], parts["storage"]
    lag = backup["lag_seconds"]
    gauges = [
        ("picup_check_last_run_timestamp_seconds", "When the last integrity check ended (0: none yet).",
         _timestamp(check.get("finished_at") or check.get("started_at"))),
        ("picup_check_items", "Originals read back by the last integrity check.", check.get("items", 0)),
        ("picup_check_problems", "Problems the last integrity check found.", check.get("problems", 0)),
        ("picup_check_repaired", "Problems the last integrity check repaired.", check.get("repaired", 0)),
        ("picup_backup_last_success_timestamp_seconds", "When the last successful backup ended (0: none yet).",
         _timestamp(backup["last_success_at"])),
        ("picup_backup_lag_seconds", "Seconds since the last successful backup started (+Inf: none yet).",
         "+Inf" if lag is None else lag),
        ("picup_backup_objects_sent", "Files the last successful backup sent.", backup["objects_sent"]),
        ("picup_backup_bytes_sent", "Bytes the last successful backup sent.", backup["bytes_sent"]),
        ("picup_storage_free_bytes", "Free bytes on the photo store's disk (absent for S3).", store["free_bytes"]),
        ("picup_storage_used_bytes", "Bytes of originals kept, each stored file once.", store["used_bytes"]),
        ("picup_status_level", "The administrator's status: 0 green, 1 amber, 2 red.",
         picup_status.LEVELS.index(report["level"])),
    ]
    lines = []
    for name, help_text, value in gauges:
        if value is not None:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]
    lines += ["# HELP picup_status_part_level Each part of the status: 0 green, 1 amber, 2 red.",
              "# TYPE picup_status_part_level gauge"]
    lines += [f'picup_status_part_level{{part="{name}"}} {picup_status.LEVELS.index(parts[name]["level"])}'
              for name in picup_status.PARTS]
    lines += ["# HELP picup_info The running version of Picup.", "# TYPE picup_info gauge",
              f'picup_info{{version="{_label(report["version"])}"}} 1']
    return lines


def _timestamp(moment: str | None) -> int:
    return int(dt.datetime.fromisoformat(moment).timestamp()) if moment else 0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
