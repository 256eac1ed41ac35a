"""Two-step sign-in (``/api/v1/me/totp``) and an admin's reset for a lost phone."""

from __future__ import annotations

from flask import Blueprint, g, jsonify

from .. import accounts, twostep
from ..errors import PicupError
from ..models import User
from .auth import admin_required, before_two_step, json_body, login_required, state
from .qrcode import qr_response

bp = Blueprint("api_two_step", __name__, url_prefix="/api/v1")


def _check_password(data: dict) -> None:
    """Turning it off or making new recovery codes asks for the password again."""
    if not accounts.verify_password(str(data.get("password", "")), g.user.password_hash):
        raise PicupError("wrong_credentials")


@bp.get("/me/totp")
@login_required
@before_two_step
def status():
    """Whether two-step sign-in is on, and how many recovery codes are left."""
    on = twostep.enabled(g.user)
    return jsonify({
        "enabled": on,
        "required": state().settings.admin_two_step and g.user.is_admin,
        "recovery_codes_left": twostep.recovery_codes_left(g.user) if on else 0,
    })


@bp.post("/me/totp")
@login_required
@before_two_step
def begin():
    """A new secret for the phone app: ``{"secret", "uri"}``; on only after confirm."""
    if twostep.enabled(g.user):
        raise PicupError("invalid_value", field="totp")
    secret, uri = twostep.begin(g.user)
    return jsonify({"secret": secret, "uri": uri})


@bp.get("/me/totp/qr")
@login_required
@before_two_step
def qr():
    """The secret being set up, as a QR code (SVG) for the phone's camera."""
    user = User.get_by_id(g.user.id)
    if user.totp_pending is None:
        raise PicupError("two_step_not_started")
    return qr_response(twostep.uri(user, user.totp_pending))


@bp.post("/me/totp/confirm")
@login_required
@before_two_step
def confirm():
    """``{"code"}`` from the app switches it on; answers ``{"recovery_codes": [...]}`` (shown once)."""
    return jsonify({"recovery_codes": twostep.confirm(g.user, json_body().get("code"))})


@bp.post("/me/totp/recovery-codes")
@login_required
def new_codes():
    """``{"password"}``: ten new recovery codes; the old ones stop working."""
    _check_password(json_body())
    return jsonify({"recovery_codes": twostep.new_recovery_codes(g.user)})


@bp.delete("/me/totp")
@login_required
def turn_off():
    """``{"password"}``: back to the password alone."""
    _check_password(json_body())
    twostep.turn_off(g.user)
    return "", 204


@bp.delete("/users/<int:user_id>/totp")
@admin_required
def reset(user_id: int):
    """For a member who lost their phone: two-step sign-in off; they can set it up again."""
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise PicupError("not_found")
    twostep.turn_off(user)
    return "", 204
