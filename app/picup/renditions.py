"""The media pipeline's task: from an original, make what browsers and TVs show.

For a photo: a grid thumbnail (WebP, fits 400×400), a display size (JPEG,
fits 2048×2048), a tiny placeholder kept in the row, and what the photo says
about itself (date, camera, place). For a video: the same from a poster
frame, the video's own facts, and a web copy (H.264/AAC MP4) when the
original would not play in browsers.

Decoding happens away from the worker process: photos in a process pool,
videos in child processes with time limits, so a hostile file can neither
crash nor hang the worker. Derived files are caches, rebuilt from originals
at will; they are kept as ``derived/ab/cd/<original sha256>/<name>``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import hashlib
import json
import logging
import multiprocessing
import os
import select
import shutil
import tempfile
import threading
import time
from pathlib import Path

import peewee as pw

from . import live_photos, storage, tasks
from .db import database
from .media import motion_photo
from .media import photo as photo_media
from .media import video as video_media
from .models import Media

log = logging.getLogger(__name__)

KIND = "media.render"
MOTION_KIND = "media.motion"  # an Android motion photo's clip, after its still
_PLAIN = {Media.web_video: False, Media.motion_duration: None}  # a photo with no video to play
THUMB, PREVIEW, WEB_VIDEO = "thumb.webp", "preview.jpg", "video.mp4"
PHOTO_TIMEOUT = 120  # seconds; a 100-megapixel panorama takes a few on a Pi
_SOURCE_RANK = {"upload": 0, "file": 1, "video": 2, "exif": 3}


def derived(media: Media, name: str) -> str:
    return storage.derived_key(media.sha256, name)


# ----------------------------------------------------------------- the pool
def _start_pool_process(owner: int) -> None:
    """Pool processes yield the CPU to the web server, and end with the worker that owns them."""
    with contextlib.suppress(OSError):
        os.nice(10)
    threading.Thread(target=_exit_with, args=(owner,), name="exit-with-owner", daemon=True).start()


def _exit_with(owner: int) -> None:
    """A pool process outlives a worker killed with ``kill -9``: it holds its own copy of the
    pipe it waits on, so it never sees the end. It watches the worker instead."""
    try:
        handle = os.pidfd_open(owner)
    except OSError:  # the owner is already gone (or no pidfd on this kernel: poll)
        while _alive(owner):
            time.sleep(1)
    else:
        select.select([handle], [], [])  # readable once the owner has exited
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PhotoPool:
    """Worker processes for photo decoding; rebuilt if one dies."""

    def __init__(self, processes: int | None = None):
        self.processes = processes or os.cpu_count() or 1
        self._executor = None

    def _get(self):
        if self._executor is None:
            self._executor = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_start_pool_process,
                initargs=(os.getpid(),),
            )
        return self._executor

    def render(self, source: str, out_dir: str) -> photo_media.PhotoResult:
        future = self._get().submit(photo_media.render_photo, source, out_dir)
        try:
            return future.result(timeout=PHOTO_TIMEOUT)
        except (concurrent.futures.process.BrokenProcessPool, concurrent.futures.TimeoutError):
            self.close()  # a decoder crashed or hung: start afresh for the next photo
            raise tasks.PermanentError("the photo decoder crashed or hung on this file") from None

    def close(self) -> None:
        if self._executor is not None:
            processes = list((getattr(self._executor, "_processes", None) or {}).values())
            self._executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:  # a hung decoder does not get to finish
                if process.is_alive():
                    process.kill()
            self._executor = None


# ----------------------------------------------------------------- the task
@contextlib.contextmanager
def _original_on_disk(store, media: Media, tmp_dir: Path):
    """A path to the original: the blob itself when local, else a private download."""
    key = storage.blob_key(media.sha256)
    path = store.local_path(key)
    if path is not None:
        yield path
        return
    tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp_dir, prefix=f"original-pid{os.getpid()}-", delete=True) as out:
        with store.open(key) as stream:
            shutil.copyfileobj(stream, out, storage.CHUNK)
        out.flush()
        yield out.name


def _store_derived(store, media: Media, path: str, name: str) -> None:
    root = getattr(store, "root", None)  # a local store, usually on the database's disk
    if root is not None:
        _check_room(root, os.path.getsize(path))
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(storage.CHUNK):
            digest.update(chunk)
    store.put_file(path, sha256=digest.hexdigest(), key=derived(media, name))


def _date_fields(media: Media, taken_at, offset, source: str) -> dict:
    """A better-sourced date wins; an upload or file date never replaces a camera's."""
    if taken_at is None or _SOURCE_RANK[source] < _SOURCE_RANK.get(media.taken_at_source, 0):
        return {}
    return {Media.taken_at: taken_at, Media.taken_at_offset: offset, Media.taken_at_source: source}


def _live_id(found: str | None) -> dict:
    """The identifier a file carries; one given at import (see takeout.py), also while
    this render ran, is kept."""
    return {Media.live_id: pw.fn.COALESCE(Media.live_id, found)} if found else {}


def _photo_fields(media: Media, result: photo_media.PhotoResult) -> dict:
    return {
        Media.width: result.width,
        Media.height: result.height,
        Media.placeholder: result.placeholder,
        Media.damaged: result.damaged,
        Media.camera_make: result.camera_make,
        Media.camera_model: result.camera_model,
        Media.latitude: result.latitude,
        Media.longitude: result.longitude,
        **_live_id(result.live_id),
        **_date_fields(media, result.taken_at, result.taken_at_offset, "exif"),
    }


def render(media_id: int, *, store, settings, pool: PhotoPool) -> None:
    """Make (or remake) the renditions of one item."""
    media = Media.get_or_none(Media.id == media_id)
    if media is None or media.status != "ready":
        return  # deleted meanwhile, or still being stored (the sweep comes back)
    try:
        with _disk_full_retried(), _work_folder(settings, media) as work, \
                _original_on_disk(store, media, settings.tmp_path) as source:
            if media.kind == "photo":
                fields = _render_photo(media, source, work, store, pool)
                motion = motion_photo.find_video(source) is not None
            else:
                fields, motion = _render_video(media, source, work, store, pool), False
    except (photo_media.PhotoError, video_media.VideoError) as exc:
        mark_failed(media.id, exc.code)
        raise tasks.PermanentError(f"{exc.code}: {exc}") from None
    if motion and media.web_video and store.exists(derived(media, WEB_VIDEO)):
        motion = False  # made before (this is a re-render): kept as it is
    elif media.kind == "photo":
        fields.update(_PLAIN)  # until its clip is made, if it has one: no promise of a video not there
    with database.atomic():
        Media.update({**fields, Media.render_status: "ready", Media.render_error: None}).where(
            Media.id == media.id
        ).execute()
        live_photos.pair(media.id)  # in the same transaction: the other half cannot slip past
        if motion:  # after every photo queued before it: the still shows first, the clip follows
            enqueue_motion(media.id)
    log.info("renditions made", extra={"media_id": media.id, "kind": media.kind})


def make_motion_video(media_id: int, *, store, settings) -> None:
    """The ``media.motion`` task: an Android motion photo's clip, cut out of the photo file,
    made playable and kept as the photo's web video (see media/motion_photo.py).

    A clip no reader understands leaves an ordinary photo; one that could not be read
    this time (a busy box's time limit, a share gone for a moment) is tried again, and
    while the disk is full or the photo store is away, again an hour later, for as long
    as it takes (as renditions are)."""
    media = Media.get_or_none(Media.id == media_id)
    if media is None or media.status != "ready" or media.kind != "photo":
        return
    if media.web_video and store.exists(derived(media, WEB_VIDEO)):
        return  # made already (a task queued twice)
    try:
        try:
            with _disk_full_retried(), _work_folder(settings, media) as work, \
                    _original_on_disk(store, media, settings.tmp_path) as source:
                fields = _embedded_motion(media, source, work, store)
        except storage.BlobNotFound:
            from .library import check_store  # library imports this module

            check_store(store)  # an unmounted share (no marker) waits; a lost original is retried
            raise
    except (DiskFull, storage.StoreUnavailable) as exc:
        log.warning("motion photo video waits", extra={"media_id": media.id, "error": str(exc)})
        enqueue_motion(media.id, delay=3600, again=True)
        return
    updated = Media.update(fields).where(Media.id == media.id).execute()
    if fields[Media.web_video] and not updated and not Media.select().where(
            Media.sha256 == media.sha256).exists():
        store.delete(derived(media, WEB_VIDEO))  # deleted for good meanwhile: nothing left behind
    elif fields[Media.web_video]:
        log.info("motion photo video made", extra={"media_id": media.id})


def enqueue_motion(media_id: int, delay: float = 0, *, again: bool = False) -> None:
    """Queue the clip to be made, unless it is already on its way (``again``: the task
    running now hands over to a later one)."""
    payload = {"media_id": media_id}
    if not again and tasks.Task.select().where(
            (tasks.Task.kind == MOTION_KIND) & tasks.Task.status.in_(["queued", "running"])
            & (tasks.Task.payload == json.dumps(payload))).exists():
        return
    tasks.enqueue(MOTION_KIND, payload, delay=delay, max_attempts=4)


@contextlib.contextmanager
def _work_folder(settings, media: Media):
    # The folder names this process, so the hourly clean-up never takes a long render in progress.
    work = Path(tempfile.mkdtemp(prefix=f"render-{media.id}-pid{os.getpid()}-", dir=_tmp(settings)))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _disk_full_retried():
    try:
        yield
    except (storage.StorageFull, OSError) as exc:
        if isinstance(exc, storage.StorageFull) or exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"no room to write the renditions, the disk is full ({exc})") from exc
        raise


def _tmp(settings) -> Path:
    settings.tmp_path.mkdir(parents=True, exist_ok=True)
    return settings.tmp_path


def _render_photo(media, source, work: Path, store, pool: PhotoPool) -> dict:
    result = pool.render(source, str(work))
    _store_derived(store, media, result.thumb_path, THUMB)
    _store_derived(store, media, result.display_path, PREVIEW)
    return _photo_fields(media, result)


def _embedded_motion(media, source, work: Path, store) -> dict:
    """The fields of a photo whose motion clip has been stored, or of a plain photo when the
    clip is not there after all or no reader understands it. Raises when it is worth
    another try (VideoError "timeout"/"crashed", OSError)."""
    found = motion_photo.find_video(source)
    if found is None:
        return dict(_PLAIN)
    offset, length = found
    clip = work / "motion.mp4"
    with open(source, "rb") as src, open(clip, "wb") as out:
        src.seek(offset)
        while length and (chunk := src.read(min(length, 1024 * 1024))):
            out.write(chunk)
            length -= len(chunk)
    try:
        info = video_media.probe_video(str(clip))
        playable = clip
        if video_media.needs_web_copy(info):
            playable = work / WEB_VIDEO
            video_media.make_web_copy(str(clip), str(playable), info)
    except video_media.VideoError as exc:
        if exc.code != "unreadable":
            raise
        log.warning("motion photo video not readable", extra={"media_id": media.id, "error": exc.code})
        return dict(_PLAIN)  # the still is fine whatever became of its video
    _store_derived(store, media, str(playable), WEB_VIDEO)
    return {Media.web_video: True, Media.motion_duration: info.duration or 0.0}


def _render_video(media, source, work: Path, store, pool: PhotoPool) -> dict:
    info = video_media.probe_video(source)
    poster = work / "poster.jpg"
    video_media.make_poster(source, str(poster), info)
    frames = pool.render(str(poster), str(work))
    _store_derived(store, media, frames.thumb_path, THUMB)
    _store_derived(store, media, frames.display_path, PREVIEW)
    web_video = video_media.needs_web_copy(info)
    if web_video:
        copy = work / WEB_VIDEO
        video_media.make_web_copy(source, str(copy), info)
        _store_derived(store, media, str(copy), WEB_VIDEO)
    return {
        Media.width: info.width,
        Media.height: info.height,
        Media.duration: info.duration,
        Media.video_codec: info.video_codec,
        Media.placeholder: frames.placeholder,
        Media.web_video: web_video,
        **_live_id(info.live_id),
        **_date_fields(media, info.creation_time, info.creation_offset, "video"),
    }


def _check_room(folder, incoming: int) -> None:
    from .library import check_room  # library imports this module

    check_room(folder, incoming)


class DiskFull(Exception):
    """No room for the renditions: retried later; the photo itself is fine."""


def mark_failed(media_id: int, error: str) -> None:
    Media.update(render_status="failed", render_error=error[:200]).where(Media.id == media_id).execute()


def gave_up(payload: dict, error: str) -> None:
    """After the last retry, the item shows "could not read this file", not a spinner.

    Not when the disk was full: the file is fine, it stays waiting, and the sweep
    queues it again until there is room."""
    if error.startswith(f"{DiskFull.__name__}:"):
        return
    media = Media.get_or_none(Media.id == payload.get("media_id"))
    if media is not None and media.render_status != "failed":
        mark_failed(media.id, "render_failed")


def enqueue(media_id: int) -> None:
    tasks.enqueue(KIND, {"media_id": media_id}, max_attempts=4)


def sweep() -> int:
    """Queue items still waiting for renditions with no task on the way (e.g. after an upgrade)."""
    waiting = {
        json.loads(t.payload).get("media_id")
        for t in tasks.Task.select(tasks.Task.payload).where(
            (tasks.Task.kind == KIND) & tasks.Task.status.in_(["queued", "running"])
        )
    }
    count = 0
    # Read it all first: writing while a SELECT is still open can fail at once ("database is
    # locked", no busy wait) when another process wrote since the SELECT began.
    waiting_media = list(
        Media.select(Media.id).where((Media.status == "ready") & (Media.render_status == "pending")).tuples()
    )
    for (media_id,) in waiting_media:
        if media_id not in waiting:
            enqueue(media_id)
            count += 1
    return count


def delete_derived(store, sha256: str) -> None:
    """Remove what was made from an original whose bytes are being deleted."""
    prefix = storage.derived_key(sha256, "")
    for name in (THUMB, PREVIEW, WEB_VIDEO):
        store.delete(prefix + name)
