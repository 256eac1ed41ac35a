"""For the installer's monitoring: alive, ready, and Prometheus metrics."""

from __future__ import annotations

import peewee as pw
from flask import Blueprint, Response, jsonify

from .. import library, storage
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
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
