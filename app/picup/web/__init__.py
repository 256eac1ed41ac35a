"""HTTP: request lifecycle, error answers and the blueprints.

Views only translate HTTP into calls on :mod:`picup.library` and friends.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import time
from pathlib import Path

from flask import Flask, g, jsonify, request, url_for
from werkzeug.exceptions import HTTPException

from .. import db, i18n
from ..errors import PicupError
from . import auth

log = logging.getLogger("picup.http")

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def error_response(error: PicupError):
    lang = g.get("lang") or i18n.negotiate(request.headers.get("Accept-Language"))
    body = {"error": {"code": error.code, "message": i18n.translate(f"errors.{error.code}", lang, **error.params)}}
    if request.method == "HEAD":
        return "", error.status
    return jsonify(body), error.status


def _compress(response) -> None:
    """JSON and pages gzip-compressed for a slow Wi-Fi (a page of 100 photos: 70 KB → 10 KB)."""
    if (
        response.direct_passthrough
        or response.status_code < 200
        or response.status_code in (204, 206, 304)
        or response.mimetype not in ("application/json", "text/html")
        or "Content-Encoding" in response.headers
        or "gzip" not in request.headers.get("Accept-Encoding", "")
    ):
        return
    response.vary.add("Accept-Encoding")
    body = response.get_data()
    if len(body) < 1024:
        return
    response.set_data(gzip.compress(body, compresslevel=5))
    response.headers["Content-Encoding"] = "gzip"


# Pages: scripts and styles from Picup only (no inline script); pictures from Picup.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {frames}"
)
# Everything else (JSON, pictures, SVG QR codes, originals opened directly): nothing runs.
OTHER_POLICY = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox; frame-ancestors {frames}"


def init_app(app: Flask) -> None:
    from . import api_accounts, api_albums, api_media, api_slideshows, api_two_step, api_uploads, ops, pages, tv

    blueprints = (api_accounts, api_albums, api_media, api_slideshows, api_two_step, api_uploads, ops, pages, tv)
    for module in blueprints:
        app.register_blueprint(module.bp)
    from . import api_status  # the administrator's status (GET /api/v1/status)

    app.register_blueprint(api_status.bp)

    # Scripts and styles are cached for a year under a name that changes with their content.
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = 365 * 24 * 3600
    static_dir = Path(app.static_folder)

    @functools.cache
    def _version(filename: str) -> str:
        return hashlib.sha256((static_dir / filename).read_bytes()).hexdigest()[:12]

    @app.template_global()
    def asset(filename: str) -> str:
        return url_for("static", filename=filename, v=_version(filename))

    @app.before_request
    def _begin():
        g.started = time.perf_counter()
        if request.endpoint == "static":
            return  # files of the pages: no database, no session
        db.database.connect(reuse_if_open=True)
        auth.load_user()

    @app.teardown_request
    def _end(_exc):
        if not db.database.is_closed():
            db.database.close()

    @app.after_request
    def _finish(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # A slideshow may be framed (a dashboard on a wall tablet); nothing else may.
        framed = request.endpoint == "tv.show_page"
        if not framed:
            response.headers.setdefault("X-Frame-Options", "DENY")
        policy = PAGE_POLICY if response.mimetype == "text/html" else OTHER_POLICY
        response.headers.setdefault("Content-Security-Policy", policy.format(frames="*" if framed else "'none'"))
        if request.path.startswith("/api/") and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        _compress(response)
        user = g.get("user")
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 1),
                "user_id": user.id if user else None,
            },
        )
        return response

    @app.errorhandler(PicupError)
    def _picup_error(error: PicupError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if not request.path.startswith("/api/") or error.code not in _HTTP_CODES:
            return error
        body, status = error_response(PicupError(_HTTP_CODES[error.code]))
        allowed = getattr(error, "valid_methods", None)  # RFC 9110: a 405 names the methods that work
        return body, status, ({"Allow": ", ".join(allowed)} if allowed else {})

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(PicupError("internal"))
