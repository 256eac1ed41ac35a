"""Peewee models. The schema itself is created by :mod:`picup.migrations`;
``tests/test_migrations.py`` checks that both agree column for column."""

from __future__ import annotations

import datetime as dt

import peewee as pw

from .db import database


def utcnow() -> dt.datetime:
    """Naive UTC, the form every timestamp is stored in."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Meta(BaseModel):
    """Key/value facts about this installation (e.g. the blob store's id)."""

    key = pw.TextField(primary_key=True)
    value = pw.TextField()


class User(BaseModel):
    username = pw.TextField(unique=True)
    display_name = pw.TextField()
    password_hash = pw.TextField()
    is_admin = pw.BooleanField(default=False)
    language = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    totp_secret = pw.TextField(null=True)  # two-step sign-in, once confirmed
    totp_pending = pw.TextField(null=True)  # while it is being set up
    totp_last_step = pw.IntegerField(null=True)  # the last 30-second step whose code was accepted

    def public(self) -> dict:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "is_admin": self.is_admin,
            "language": self.language,
            "two_step": self.totp_secret is not None,
        }


class Session(BaseModel):
    """A signed-in browser. ``id`` is the SHA-256 of the cookie value."""

    id = pw.TextField(primary_key=True)
    user = pw.ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    csrf_token = pw.TextField()
    remember = pw.BooleanField(default=False)
    created_at = pw.DateTimeField(default=utcnow)
    last_seen_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()
    user_agent = pw.TextField(default="")


class ApiToken(BaseModel):
    """A named token for scripts; only its SHA-256 is kept."""

    user = pw.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    name = pw.TextField()
    token_hash = pw.TextField(unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    last_used_at = pw.DateTimeField(null=True)


class Media(BaseModel):
    owner = pw.ForeignKeyField(User, backref="media", on_delete="RESTRICT")
    sha256 = pw.TextField()
    size = pw.BigIntegerField()
    media_type = pw.TextField()
    kind = pw.TextField()  # "photo" | "video"
    original_filename = pw.TextField()
    taken_at = pw.DateTimeField()
    taken_at_source = pw.TextField()  # "exif" | "client" | "upload"
    width = pw.IntegerField(null=True)
    height = pw.IntegerField(null=True)
    duration = pw.FloatField(null=True)
    status = pw.TextField(default="pending")  # "pending" while bytes are stored, then "ready"
    created_at = pw.DateTimeField(default=utcnow)
    trashed_at = pw.DateTimeField(null=True)
    # Filled by the worker's media pipeline.
    render_status = pw.TextField(default="pending")  # pending | ready | failed
    render_error = pw.TextField(null=True)  # why it failed, as an error code
    damaged = pw.BooleanField(default=False)  # truncated or corrupt, shown as well as we could
    placeholder = pw.TextField(null=True)  # a tiny preview (ThumbHash) pages paint at once
    taken_at_offset = pw.IntegerField(null=True)  # minutes east of UTC where it was taken, when known
    camera_make = pw.TextField(null=True)
    camera_model = pw.TextField(null=True)
    latitude = pw.FloatField(null=True)
    longitude = pw.FloatField(null=True)
    video_codec = pw.TextField(null=True)
    web_video = pw.BooleanField(default=False)  # a browser-friendly copy was made
    checked_at = pw.DateTimeField(null=True, index=True)  # when the integrity check last read it back
    live_id = pw.TextField(null=True)  # an iPhone Live Photo's identifier, on its still and its video
    # On the short video of a Live Photo: its still, which stands for both in every list.
    live_photo = pw.ForeignKeyField("self", null=True, on_delete="SET NULL", backref="motions")
    # An Android motion photo's own few seconds of video (inside the photo file), in seconds;
    # its playable copy is the photo's web video rendition.
    motion_duration = pw.FloatField(null=True)

    class Meta:
        indexes = ((("owner", "sha256"), True),)


class Album(BaseModel):
    owner = pw.ForeignKeyField(User, backref="albums", on_delete="CASCADE")
    title = pw.TextField()
    cover = pw.ForeignKeyField(Media, null=True, on_delete="SET NULL")
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)


class AlbumMedia(BaseModel):
    album = pw.ForeignKeyField(Album, backref="entries", on_delete="CASCADE")
    media = pw.ForeignKeyField(Media, backref="album_entries", on_delete="CASCADE")
    added_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    added_at = pw.DateTimeField(default=utcnow)

    class Meta:
        primary_key = pw.CompositeKey("album", "media")


class AlbumMember(BaseModel):
    """A family member an album is shared with: role "view" or "add"."""

    album = pw.ForeignKeyField(Album, backref="members", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, backref="shared_albums", on_delete="CASCADE")
    role = pw.TextField()

    class Meta:
        primary_key = pw.CompositeKey("album", "user")


class Task(BaseModel):
    """Work for the worker: claimed with a lease, retried with backoff."""

    kind = pw.TextField()
    payload = pw.TextField(default="{}")
    status = pw.TextField(default="queued")  # queued | running | done | failed
    attempts = pw.IntegerField(default=0)
    max_attempts = pw.IntegerField(default=5)
    run_after = pw.DateTimeField(default=utcnow)
    lease_until = pw.DateTimeField(null=True)
    last_error = pw.TextField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)


class Upload(BaseModel):
    """A resumable (tus) upload in progress; its bytes are in the tmp folder."""

    id = pw.TextField(primary_key=True)
    owner = pw.ForeignKeyField(User, on_delete="CASCADE")
    length = pw.BigIntegerField()
    offset = pw.BigIntegerField(default=0)
    filename = pw.TextField(default="")
    metadata = pw.TextField(default="{}")
    album = pw.ForeignKeyField(Album, null=True, on_delete="SET NULL")
    media = pw.ForeignKeyField(Media, null=True, on_delete="SET NULL")
    duplicate = pw.BooleanField(default=False)
    created_at = pw.DateTimeField(default=utcnow)
    expires_at = pw.DateTimeField()


class RecoveryCode(BaseModel):
    """A one-time code for two-step sign-in without the phone; only its SHA-256 is kept."""

    user = pw.ForeignKeyField(User, backref="recovery_codes", on_delete="CASCADE")
    code_hash = pw.TextField()
    used_at = pw.DateTimeField(null=True)

    class Meta:
        table_name = "recovery_code"


class Favorite(BaseModel):
    """A photo someone marked with a heart (per person)."""

    user = pw.ForeignKeyField(User, on_delete="CASCADE")
    media = pw.ForeignKeyField(Media, on_delete="CASCADE")
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        primary_key = pw.CompositeKey("user", "media")


class Slideshow(BaseModel):
    """A slideshow link for a TV. The token is never stored: it is an HMAC of ``nonce`` under
    the server's secret key, and ``token_hash`` (its SHA-256) finds the slideshow."""

    owner = pw.ForeignKeyField(User, on_delete="CASCADE")
    nonce = pw.TextField(unique=True)
    token_hash = pw.TextField(unique=True)
    code = pw.TextField(null=True, unique=True)  # the short code to type on a TV remote, while pairing
    code_expires_at = pw.DateTimeField(null=True)
    album = pw.ForeignKeyField(Album, null=True, on_delete="CASCADE")
    source = pw.TextField()  # album | all | favorites | recent | on_this_day
    settings = pw.TextField(default="{}")
    paused = pw.BooleanField(default=False)
    ends_at = pw.DateTimeField(null=True)
    revoked_at = pw.DateTimeField(null=True)
    created_at = pw.DateTimeField(default=utcnow)
    updated_at = pw.DateTimeField(default=utcnow)
    last_seen_at = pw.DateTimeField(null=True)


class JobRun(BaseModel):
    """One run of a maintenance job (``check`` or ``backup``), kept for the status page."""

    kind = pw.TextField()  # check | backup
    status = pw.TextField()  # running | ok | problems | failed
    started_at = pw.DateTimeField(default=utcnow)
    finished_at = pw.DateTimeField(null=True)
    items = pw.IntegerField(default=0)  # originals read (check) or sent (backup)
    bytes = pw.BigIntegerField(default=0)
    problems = pw.IntegerField(default=0)
    repaired = pw.IntegerField(default=0)
    detail = pw.TextField(default="{}")  # JSON: what was found, in words a person can act on
    error = pw.TextField(null=True)  # why the run failed, when it did

    class Meta:
        indexes = ((("kind", "started_at"), False),)


class StrayBlob(BaseModel):
    """A blob in the store that no row references, and when the check first saw it."""

    key = pw.TextField(primary_key=True)
    first_seen_at = pw.DateTimeField(default=utcnow)


class BackupGone(BaseModel):
    """An original still in the backup whose row is gone; pruned after the retention period."""

    key = pw.TextField(primary_key=True)
    gone_since = pw.DateTimeField(default=utcnow)


ALL_MODELS = [
    Meta, User, Session, ApiToken, Media, Album, AlbumMedia, AlbumMember, Task, Upload, Favorite, Slideshow,
    RecoveryCode, JobRun, StrayBlob, BackupGone,
]
