"""Two-step sign-in: a 6-digit code from a phone app (TOTP, RFC 6238) after the password.

Setting it up: :func:`begin` makes a secret (shown as a QR code and as text), and
:func:`confirm` switches it on once the person types a code from their app; it answers
ten recovery codes, shown once, for the day the phone is lost.

Signing in: :func:`verify` takes a code or a recovery code. A code is accepted once:
the last accepted 30-second step is kept per person, and that step and any older one
are refused afterwards (pyotp alone would accept the same code twice). One step either
side of now is allowed for a phone whose clock drifts. A recovery code works once.
Recovery codes are kept as SHA-256 only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pyotp

from .db import database
from .errors import PicupError
from .models import RecoveryCode, User, utcnow

ISSUER = "Picup"
STEP = 30
DRIFT = 1  # steps either side of now
RECOVERY_CODES = 10
_LETTERS = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to mix up


def enabled(user: User) -> bool:
    return user.totp_secret is not None


def begin(user: User) -> tuple[str, str]:
    """A new secret waiting for confirmation; returns it and its ``otpauth://`` URI."""
    secret = pyotp.random_base32()
    User.update(totp_pending=secret).where(User.id == user.id).execute()
    return secret, uri(user, secret)


def uri(user: User, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)


def _digits(code) -> str | None:
    text = "".join(str(code or "").split())
    return text if len(text) == 6 and text.isdigit() else None


def _step_of(secret: str, code: str, after: int | None) -> int | None:
    """The time step ``code`` belongs to (now ± DRIFT), if it is newer than ``after``."""
    totp = pyotp.TOTP(secret)
    now = int(time.time()) // STEP
    for step in range(now - DRIFT, now + DRIFT + 1):
        if after is not None and step <= after:
            continue
        if hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def confirm(user: User, code) -> list[str]:
    """Switch two-step sign-in on with a code from the new secret; returns recovery codes."""
    user = User.get_by_id(user.id)
    if user.totp_pending is None:
        raise PicupError("two_step_not_started")
    digits = _digits(code)
    step = _step_of(user.totp_pending, digits, None) if digits else None
    if step is None:
        raise PicupError("wrong_code")
    with database.atomic():
        User.update(totp_secret=user.totp_pending, totp_pending=None, totp_last_step=step).where(
            User.id == user.id
        ).execute()
        return _new_recovery_codes(user)


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _normal(code) -> str:
    return "".join(ch for ch in str(code or "").lower() if ch.isalnum())


def _new_recovery_codes(user: User) -> list[str]:
    RecoveryCode.delete().where(RecoveryCode.user == user).execute()
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_LETTERS) for _ in range(10))  # ~50 bits each
        codes.append(f"{raw[:5]}-{raw[5:]}")
        RecoveryCode.create(user=user, code_hash=_hash(raw))
    return codes


def new_recovery_codes(user: User) -> list[str]:
    """Ten fresh codes; the old ones stop working."""
    if not enabled(user):
        raise PicupError("two_step_not_started")
    with database.atomic():
        return _new_recovery_codes(user)


def recovery_codes_left(user: User) -> int:
    return RecoveryCode.select().where((RecoveryCode.user == user) & RecoveryCode.used_at.is_null()).count()


def verify(user: User, given) -> bool:
    """True for a fresh code from the app or an unused recovery code (each is then used up)."""
    user = User.get_by_id(user.id)
    if user.totp_secret is None:
        return False
    digits = _digits(given)
    if digits:
        step = _step_of(user.totp_secret, digits, user.totp_last_step)
        if step is None:
            return False
        # only one request may use this step, even two at the same moment
        used = (
            User.update(totp_last_step=step)
            .where((User.id == user.id) & (User.totp_last_step.is_null() | (User.totp_last_step < step)))
            .execute()
        )
        return used == 1
    code = _normal(given)
    if len(code) != 10:
        return False
    used = (
        RecoveryCode.update(used_at=utcnow())
        .where(
            (RecoveryCode.user == user) & (RecoveryCode.code_hash == _hash(code)) & RecoveryCode.used_at.is_null()
        )
        .execute()
    )
    return used == 1


def turn_off(user: User) -> None:
    """Back to the password alone (the person themselves, or an admin for a lost phone)."""
    with database.atomic():
        User.update(totp_secret=None, totp_pending=None, totp_last_step=None).where(User.id == user.id).execute()
        RecoveryCode.delete().where(RecoveryCode.user == user).execute()
