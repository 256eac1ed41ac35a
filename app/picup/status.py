"""How Picup is doing, for the administrator: storage, integrity check, backup, tasks, version.

:func:`report` reads the figures (``JobRun`` rows written by the check and the backup,
failed tasks, the disks) and gives each part a level, ``green``, ``amber`` or ``red``,
and one plain sentence. The whole is as bad as its worst part. The status page,
``GET /api/v1/status`` and ``/metrics`` all show this one report.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
from importlib import metadata

import peewee as pw

from . import __version__, i18n
from .library import iso
from .models import JobRun, Media, Task, utcnow

LEVELS = ("green", "amber", "red")
PARTS = ("storage", "integrity", "backup", "tasks", "version")
GIB = 1024**3
BACKUP_MAX_AGE = dt.timedelta(hours=48)
FINISHED = ("ok", "problems", "failed")


def report(settings, store, lang: str = "en", now: dt.datetime | None = None) -> dict:
    """The status of every part, and of the whole, with sentences in ``lang``."""
    now = now or utcnow()
    say = _sayer(lang, now)
    parts = {
        "storage": _storage(settings, store, say),
        "integrity": _integrity(settings, now, say),
        "backup": _backup(settings, now, say),
        "tasks": _tasks(say),
        "version": _version(say),
    }
    level = worst(part["level"] for part in parts.values())
    return {
        "level": level,
        "message": say(f"overall_{level}"),
        "generated_at": iso(now),
        "version": parts["version"]["version"],
        "parts": parts,
    }


def worst(levels) -> str:
    return max(levels, key=LEVELS.index, default="green")


def space_level(free: int, total: int) -> str:
    """Red under 5 % or 1 GiB free, amber under 15 %, else green."""
    if free < GIB or free < total * 0.05:
        return "red"
    if free < total * 0.15:
        return "amber"
    return "green"


# ---------------------------------------------------------------- parts


def _part(level: str, code: str, message: str, **figures) -> dict:
    return {"level": level, "code": code, "message": message, **figures}


def _disk(path) -> dict | None:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return {"free_bytes": usage.free, "total_bytes": usage.total, "free_percent": _percent(usage.free, usage.total)}


def _percent(free: int, total: int) -> float:
    return round(100 * free / total, 1) if total else 0.0


def used_bytes() -> int:
    """Bytes of originals kept (library and trash), each stored file counted once."""
    per_file = Media.select(Media.sha256, pw.fn.MAX(Media.size).alias("size")).group_by(Media.sha256)
    return int(Media.select(pw.fn.COALESCE(pw.fn.SUM(per_file.c.size), 0)).from_(per_file).scalar() or 0)


def _storage(settings, store, say) -> dict:
    used = used_bytes()
    figures = {"backend": settings.storage_backend, "used_bytes": used, "free_bytes": None, "total_bytes": None,
               "free_percent": None, "database": None}
    root = getattr(store, "root", None)
    if root is not None and hasattr(store, "free_bytes"):
        try:
            total, free = shutil.disk_usage(root).total, store.free_bytes()
        except OSError:
            return _part("red", "storage_unreachable", say("storage_unreachable", path=str(root)), **figures)
        figures.update(free_bytes=free, total_bytes=total, free_percent=_percent(free, total))
    database = _database_disk(settings, root)
    figures["database"] = database
    known = figures["free_bytes"] is not None
    level = space_level(figures["free_bytes"], figures["total_bytes"]) if known else "green"
    if database is not None:
        database_level = space_level(database["free_bytes"], database["total_bytes"])
        if LEVELS.index(database_level) > LEVELS.index(level):
            code = "database_full" if database_level == "red" else "database_low"
            return _part(database_level, code, say(code, **_space_words(database)), **figures)
    if not known:
        return _part("green", "storage_unknown", say("storage_unknown", used=_bytes(used)), **figures)
    code = {"green": "storage_ok", "amber": "storage_low", "red": "storage_full"}[level]
    return _part(level, code, say(code, **_space_words(figures), used=_bytes(used)), **figures)


def _database_disk(settings, store_root) -> dict | None:
    """The database's disk, when it is not the photo store's."""
    if settings.database_path == ":memory:":
        return None
    folder = os.path.dirname(settings.database_path)
    try:
        if store_root is not None and os.stat(folder).st_dev == os.stat(store_root).st_dev:
            return None
    except OSError:
        return None
    return _disk(folder)


def _space_words(disk: dict) -> dict:
    return {"free": _bytes(disk["free_bytes"]), "total": _bytes(disk["total_bytes"]),
            "percent": f"{disk['free_percent']:g}"}


def _run(row: JobRun | None) -> dict | None:
    if row is None:
        return None
    return {"status": row.status, "started_at": iso(row.started_at), "finished_at": iso(row.finished_at),
            "items": row.items, "bytes": row.bytes, "problems": row.problems, "repaired": row.repaired,
            "error": row.error}


def _detail(row: JobRun | None) -> dict:
    try:
        detail = json.loads(row.detail) if row is not None and row.detail else {}
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}


def _last(kind: str, statuses=FINISHED) -> JobRun | None:
    return (JobRun.select().where((JobRun.kind == kind) & JobRun.status.in_(statuses))
            .order_by(JobRun.started_at.desc(), JobRun.id.desc()).first())


def _integrity(settings, now, say) -> dict:
    last = _last("check")
    running = _last("check", ("running",)) is not None
    too_old = now - dt.timedelta(days=2 * settings.check_days)
    behind = (Media.select().where(
        (Media.status == "ready")
        & ((Media.checked_at < too_old) | (Media.checked_at.is_null() & (Media.created_at < too_old)))
    ).count())
    found = []
    for item in _detail(last).get("problems") or []:
        if isinstance(item, dict):
            found.append({key: item.get(key) for key in ("media_id", "filename", "problem", "repaired")})
    figures = {"check_days": settings.check_days, "last_run": _run(last), "running": running,
               "behind": behind, "found": found[:50]}
    if last is None:
        return _part("amber", "check_none", say("check_none"), **figures)
    when = last.finished_at or last.started_at
    ago = say.ago(when)
    unrepaired = max(last.problems - last.repaired, 0)
    if last.status == "failed":
        return _part("amber", "check_failed", say("check_failed", ago=ago, error=_short(last.error)), **figures)
    if unrepaired:
        return _part("red", "check_problems", say("check_problems", ago=ago, items=_count(last.items),
                                                  count=unrepaired, problems=_count(last.problems)), **figures)
    if when < too_old:
        return _part("amber", "check_old", say("check_old", ago=ago), **figures)
    if behind:
        return _part("amber", "check_behind", say("check_behind", count=behind, days=2 * settings.check_days),
                     **figures)
    if last.problems:
        return _part("green", "check_repaired", say("check_repaired", ago=ago, items=_count(last.items),
                                                    count=last.problems), **figures)
    return _part("green", "check_ok", say("check_ok", ago=ago, count=last.items), **figures)


def _backup(settings, now, say) -> dict:
    last = _last("backup")
    good = _last("backup", ("ok",))
    detail = _detail(good)
    figures = {
        "enabled": settings.backup_enabled,
        "last_success_at": iso(good.finished_at or good.started_at) if good else None,
        "lag_seconds": int((now - good.started_at).total_seconds()) if good else None,
        "objects_sent": _int(detail.get("objects_sent")),
        "bytes_sent": _int(detail.get("bytes_sent")),
        "objects_total": _int(detail.get("objects_total")),
        "bytes_total": _int(detail.get("bytes_total")),
        "snapshot": detail.get("snapshot") if isinstance(detail.get("snapshot"), str) else None,
        "last_run": _run(last),
    }
    if not settings.backup_enabled:
        return _part("amber", "backup_off", say("backup_off"), **figures)
    if good is None and last is None:
        return _part("amber", "backup_first", say("backup_first"), **figures)
    if good is None:
        return _part("red", "backup_never", say("backup_never", ago=say.ago(last.started_at),
                                                error=_short(last.error)), **figures)
    good_ago = say.ago(good.started_at)
    if now - good.started_at > BACKUP_MAX_AGE:
        return _part("red", "backup_old", say("backup_old", ago=good_ago), **figures)
    if last.id != good.id:
        return _part("amber", "backup_failed", say("backup_failed", ago=say.ago(last.started_at),
                                                   error=_short(last.error), good_ago=good_ago), **figures)
    return _part("green", "backup_ok", say("backup_ok", ago=good_ago, count=figures["objects_sent"],
                                           bytes=_bytes(figures["bytes_sent"]),
                                           total=_count(figures["objects_total"]),
                                           total_bytes=_bytes(figures["bytes_total"])), **figures)


def _tasks(say) -> dict:
    counts = dict(Task.select(Task.status, pw.fn.COUNT(Task.id)).group_by(Task.status).tuples())
    failed = counts.get("failed", 0)
    recent = (Task.select().where(Task.status == "failed").order_by(Task.updated_at.desc(), Task.id.desc()).limit(5))
    figures = {"failed": failed, "queued": counts.get("queued", 0),
               "recent_failures": [{"id": t.id, "kind": t.kind, "error": _short(t.last_error),
                                    "failed_at": iso(t.updated_at)} for t in recent]}
    if failed:
        newest = figures["recent_failures"][0]
        return _part("amber", "tasks_failed", say("tasks_failed", count=failed, kind=newest["kind"],
                                                  error=newest["error"]), **figures)
    return _part("green", "tasks_ok", say("tasks_ok"), **figures)


def version() -> str:
    try:
        return metadata.version("picup")
    except metadata.PackageNotFoundError:
        return __version__


def _version(say) -> dict:
    number, python = version(), platform.python_version()
    return _part("green", "version", say("version", version=number, python=python), version=number, python=python)


# ---------------------------------------------------------------- words


def _sayer(lang: str, now: dt.datetime):
    """``say(code, **params)``: the sentence ``pages.status_<code>``; a count of 1 takes the ``_one`` wording."""
    pages = i18n.catalogue(lang)["pages"]

    def say(code: str, **params) -> str:
        key = f"status_{code}"
        if params.get("count") == 1 and f"{key}_one" in pages:
            key += "_one"
        if isinstance(params.get("count"), int):
            params["count"] = _count(params["count"])
        return i18n.translate(f"pages.{key}", lang, **params)

    def ago(moment: dt.datetime) -> str:
        seconds = max((now - moment).total_seconds(), 0)
        if seconds < 60:
            return say("just_now")
        for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
            if seconds >= size:
                return say(f"ago_{unit}", count=int(seconds // size))
        return say("just_now")

    say.ago = ago
    return say


def _bytes(size: int | None) -> str:
    """A size in words: 512 B, 3.4 MB, 1.2 GB."""
    size = float(size or 0)
    if size < 1000:
        return f"{size:.0f} B"
    for unit in ("KB", "MB", "GB", "TB"):
        size /= 1000
        if size < 1000 or unit == "TB":
            break
    return f"{size:,.1f} {unit}"


def _count(number: int) -> str:
    return f"{number:,}"


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _short(text: str | None, limit: int = 300) -> str:
    text = " ".join((text or "").split()) or "?"
    return text if len(text) <= limit else text[: limit - 1] + "…"
