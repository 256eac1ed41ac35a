"""The one family of errors a person can meet.

Raise ``PicupError("code", **params)``; the web layer answers
``{"error": {"code", "message"}}`` with the HTTP status below and the message
from ``translations/<lang>.json`` in the reader's language.
"""

from __future__ import annotations

STATUS = {
    "bad_request": 400,
    "bad_cursor": 400,
    "invalid_json": 400,
    "missing_field": 400,
    "invalid_value": 400,
    "empty_file": 400,
    "incomplete_body": 400,
    "not_signed_in": 401,
    "wrong_credentials": 401,
    "otp_required": 401,
    "wrong_code": 401,
    "csrf_failed": 403,
    "forbidden": 403,
    "admin_only": 403,
    "two_step_required": 403,
    "not_found": 404,
    "not_ready": 404,
    "unreadable_file": 404,
    "method_not_allowed": 405,
    "already_set_up": 409,
    "username_taken": 409,
    "offset_mismatch": 409,
    "two_step_not_started": 409,
    "upload_gone": 410,
    "length_required": 411,
    "tus_version": 412,
    "too_large": 413,
    "unsupported_type": 415,
    "range_not_satisfiable": 416,
    "too_many_attempts": 429,
    "checksum_mismatch": 460,
    "internal": 500,
    "storage_full": 507,
    "storage_unavailable": 503,
}


class PicupError(Exception):
    def __init__(self, code: str, **params):
        if code not in STATUS:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(code)
        self.code = code
        self.params = params

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def __str__(self) -> str:
        from .i18n import translate

        return translate(f"errors.{self.code}", "en", **self.params)
