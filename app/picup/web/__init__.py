"""HTTP: request lifecycle, error answers and the blueprints.

Views only translate HTTP into calls on :mod:`picup.library` and friends.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, g, jsonify, request
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


def init_app(app: Flask) -> None:
    from . import api_accounts, api_albums, api_media, api_uploads, ops, pages

    for module in (api_accounts, api_albums, api_media, api_uploads, ops, pages):
        app.register_blueprint(module.bp)

    @app.before_request
    def _begin():
        g.started = time.perf_counter()
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
        response.headers.setdefault("X-Frame-Options", "DENY")
        if response.mimetype == "text/html":
            response.headers.setdefault(
                "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
                "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
            )
        if request.path.startswith("/api/") and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
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
        return error_response(PicupError(_HTTP_CODES[error.code]))

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(PicupError("internal"))
