"""The administrator's status: storage, integrity check, backup, failed tasks, version."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from .. import status
from .auth import admin_required, state

bp = Blueprint("api_status", __name__, url_prefix="/api/v1")


@bp.get("/status")
@admin_required
def get_status():
    """Each part green, amber or red, with a sentence in the person's language (see docs/api.md)."""
    picup = state()
    return jsonify(status.report(picup.settings, picup.store, g.get("lang", "en")))
