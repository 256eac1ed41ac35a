"""Resumable uploads speaking tus 1.0: core, creation, creation-with-upload,
termination, checksum and expiration. Any standard tus client works."""

from __future__ import annotations

import datetime as dt
from email.utils import format_datetime

from flask import Blueprint, current_app, g, jsonify, request

from .. import library, uploads
from ..errors import PicupError
from ..models import Upload
from .auth import login_required, public, state

bp = Blueprint("api_uploads", __name__, url_prefix="/api/v1/uploads")

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
OFFSET_TYPE = "application/offset+octet-stream"


@bp.before_request
def _check_version():
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        if request.method != "GET":  # GET is our JSON status view, not tus
            raise PicupError("tus_version")


@bp.after_request
def _tus_headers(response):
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    if response.status_code == 412:
        response.headers["Tus-Version"] = TUS_VERSION
    return response


def _expires(upload) -> str:
    return format_datetime(upload.expires_at.replace(tzinfo=dt.UTC), usegmt=True)


def _int_header(name: str) -> int:
    value = request.headers.get(name, "")
    if not (value.isascii() and value.isdigit()):  # "²".isdigit() is True, int("²") is not
        raise PicupError("invalid_value", field=name)
    return int(value)


def _done_headers(response, result) -> None:
    if result is not None:
        response.headers["Picup-Media-Id"] = str(result.media.id)
        response.headers["Picup-Duplicate"] = "true" if result.duplicate else "false"


@bp.route("", methods=["OPTIONS"])
@bp.route("/<upload_id>", methods=["OPTIONS"])
@public
def discover(upload_id=None):
    """What this server supports (tus discovery; needs no sign-in)."""
    settings = state().settings
    return "", 204, {
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Max-Size": str(settings.max_upload_size),
        "Tus-Checksum-Algorithm": ",".join(uploads.CHECKSUM_ALGORITHMS),
    }


@bp.post("")
@login_required
def create():
    """Start an upload: ``Upload-Length`` and ``Upload-Metadata`` (filename, album, lastModified)."""
    settings = state().settings
    if "Upload-Defer-Length" in request.headers or "Upload-Length" not in request.headers:
        raise PicupError("length_required")
    upload = uploads.create(
        g.user, _int_header("Upload-Length"), uploads.parse_metadata(request.headers.get("Upload-Metadata")), settings
    )
    result = None
    if request.mimetype == OFFSET_TYPE and (request.content_length or 0) > 0:
        try:
            upload, result = uploads.append(
                state().store, g.user, upload.id, 0, request.stream, settings,
                uploads.parse_checksum(request.headers.get("Upload-Checksum")),
            )
        except PicupError:
            # The client never learns this upload's address: leave nothing behind.
            if Upload.get_or_none(Upload.id == upload.id) is not None:
                uploads.terminate(g.user, upload.id, settings)
            raise
    response = jsonify({"upload": _json(upload)})
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/uploads/{upload.id}"
    response.headers["Upload-Offset"] = str(upload.offset)
    response.headers["Upload-Expires"] = _expires(upload)
    _done_headers(response, result)
    return response


@bp.route("/<upload_id>", methods=["HEAD"])
@login_required
def status(upload_id: str):
    """How much of the upload the server has."""
    upload = uploads.get(g.user, upload_id)
    return "", 200, {
        "Upload-Offset": str(upload.offset),
        "Upload-Length": str(upload.length),
        "Upload-Expires": _expires(upload),
    }


@bp.patch("/<upload_id>")
@login_required
def append(upload_id: str):
    """Send the next bytes at ``Upload-Offset``."""
    if request.mimetype != OFFSET_TYPE:
        raise PicupError("unsupported_type", name=request.mimetype or "?")
    offset = _int_header("Upload-Offset")
    upload, result = uploads.append(
        state().store, g.user, upload_id, offset, request.stream, state().settings,
        uploads.parse_checksum(request.headers.get("Upload-Checksum")),
    )
    response = current_app.response_class(status=204)
    response.headers["Upload-Offset"] = str(upload.offset)
    response.headers["Upload-Expires"] = _expires(upload)
    _done_headers(response, result)
    return response


@bp.delete("/<upload_id>")
@login_required
def terminate(upload_id: str):
    """Cancel an upload and free its space."""
    uploads.terminate(g.user, upload_id, state().settings)
    return "", 204


@bp.get("/<upload_id>")
@login_required
def describe(upload_id: str):
    """The upload as JSON, with the resulting media once it is complete."""
    return jsonify({"upload": _json(uploads.get(g.user, upload_id))})


def _json(upload) -> dict:
    media = upload.media if upload.media_id else None
    return {
        "id": upload.id,
        "filename": upload.filename,
        "length": upload.length,
        "offset": upload.offset,
        "expires_at": library.iso(upload.expires_at),
        "media": library.media_json(media) if media else None,
        "duplicate": bool(upload.duplicate),
    }
