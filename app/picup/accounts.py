"""Users, passwords, browser sessions and API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets

from .db import DiskFull, database
from .errors import PicupError
from .models import ApiToken, Session, User, utcnow

# scrypt with N=2**14, r=8 uses 16 MiB per check: strong, and kind to a 1 GB box.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_USERNAME = re.compile(r"^[\w.@-]{1,64}$")
MIN_PASSWORD = 8

log = logging.getLogger(__name__)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(key) // 2
    )
    return hmac.compare_digest(candidate.hex(), key)


_DUMMY_HASH = hash_password(secrets.token_hex(8))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_password(password, field: str = "password") -> str:
    """The one strength rule for every new password: at least ``MIN_PASSWORD`` characters."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise PicupError("invalid_value", field=field)
    return password


def _check_display_name(display_name) -> str:
    name = display_name.strip() if isinstance(display_name, str) else ""
    if not name or len(name) > 100:
        raise PicupError("invalid_value", field="display_name")
    return name


def _check_new_user(username: str, password: str) -> str:
    username = (username or "").strip()
    if not username:
        raise PicupError("missing_field", field="username")
    if not _USERNAME.match(username):
        raise PicupError("invalid_value", field="username")
    _check_password(password or "")
    if User.select().where(User.username == username).exists():
        raise PicupError("username_taken", username=username)
    return username


def create_user(
    username: str,
    password: str,
    *,
    display_name: str | None = None,
    is_admin: bool = False,
    language: str | None = None,
) -> User:
    with database.atomic():
        username = _check_new_user(username, password)
        return User.create(
            username=username,
            display_name=(display_name or "").strip() or username,
            password_hash=hash_password(password),
            is_admin=is_admin,
            language=language if language in ("en", "ko") else None,
        )


def set_up_first_user(username: str, password: str, **fields) -> User:
    """Create the first account, the admin; refused once anyone exists."""
    with database.atomic():
        if User.select().exists():
            raise PicupError("already_set_up")
        return create_user(username, password, is_admin=True, **fields)


def needs_setup() -> bool:
    return not User.select().exists()


def authenticate(username: str, password: str) -> User:
    user = User.get_or_none(User.username == (username or "").strip())
    # Hash even for an unknown name, so timing does not tell who exists.
    ok = verify_password(password or "", user.password_hash if user else _DUMMY_HASH)
    if not (user and ok):
        raise PicupError("wrong_credentials")
    return user


def start_session(user: User, *, remember: bool, settings, user_agent: str = "") -> tuple[str, Session]:
    """Sign ``user`` in; return the cookie value (shown once) and the session row."""
    value = secrets.token_urlsafe(32)
    lifetime = (
        dt.timedelta(days=settings.remember_days) if remember else dt.timedelta(hours=settings.session_hours)
    )
    session = Session.create(
        id=digest(value),
        user=user,
        csrf_token=secrets.token_urlsafe(32),
        remember=remember,
        expires_at=utcnow() + lifetime,
        user_agent=user_agent[:300],
    )
    return value, session


def session_for(cookie_value: str | None, settings) -> Session | None:
    """The live session behind a cookie; sliding expiry for unremembered ones."""
    if not cookie_value:
        return None
    session = Session.select(Session, User).join(User).where(Session.id == digest(cookie_value)).first()
    if session is None:
        return None
    now = utcnow()
    if session.expires_at <= now:
        _best_effort(Session.delete().where(Session.id == session.id))
        return None
    if now - session.last_seen_at > dt.timedelta(minutes=5):
        changes = {Session.last_seen_at: now}
        if not session.remember:
            changes[Session.expires_at] = now + dt.timedelta(hours=settings.session_hours)
        _best_effort(Session.update(changes).where(Session.id == session.id))
    return session


def _best_effort(query) -> None:
    """Bookkeeping of a sign-in (last seen, sliding expiry) is not worth an error: with the disk
    full to the last byte, the family can still look at their photos."""
    try:
        query.execute()
    except DiskFull:
        log.warning("the disk is full: a session's last-seen time was not updated")


def end_session(session: Session) -> None:
    Session.delete().where(Session.id == session.id).execute()


def create_token(user: User, name: str) -> tuple[str, ApiToken]:
    name = (name or "").strip()
    if not name:
        raise PicupError("missing_field", field="name")
    value = "picup_" + secrets.token_urlsafe(32)
    return value, ApiToken.create(user=user, name=name[:100], token_hash=digest(value))


def user_for_token(value: str) -> User | None:
    token = ApiToken.select(ApiToken, User).join(User).where(ApiToken.token_hash == digest(value)).first()
    if token is None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=5):
        _best_effort(ApiToken.update(last_used_at=now).where(ApiToken.id == token.id))
    return token.user


def update_profile(user: User, *, display_name=None, language=None, clear_language=False) -> User:
    """What a person may change about themselves: the name shown and the language."""
    changes = {}
    if display_name is not None:
        changes[User.display_name] = _check_display_name(display_name)
    if clear_language:
        changes[User.language] = None
    elif language is not None:
        if language not in ("en", "ko"):
            raise PicupError("invalid_value", field="language")
        changes[User.language] = language
    if changes:
        User.update(changes).where(User.id == user.id).execute()
    return User.get_by_id(user.id)


def change_password(user: User, current: str, new: str, *, keep_session: Session | None) -> None:
    """Change the password after checking the current one; every other sign-in ends."""
    if not verify_password(current or "", user.password_hash):
        raise PicupError("wrong_credentials")
    _check_password(new or "", field="new_password")
    with database.atomic():
        User.update(password_hash=hash_password(new)).where(User.id == user.id).execute()
        _end_sessions(user, keep=keep_session)


def _end_sessions(user: User, *, keep: Session | None = None) -> None:
    """Sign ``user`` out everywhere (but ``keep``, when it is theirs). API tokens stay."""
    query = Session.delete().where(Session.user == user)
    if keep is not None:
        query = query.where(Session.id != keep.id)
    query.execute()


def family() -> list[User]:
    """Everyone in the family by the name shown: all any member may learn is id and name."""
    return list(User.select(User.id, User.display_name).order_by(User.display_name.collate("NOCASE"), User.id))


def reset_password(user: User, new: str, *, keep_session: Session | None = None) -> None:
    """An admin sets a new password without the old one. Every sign-in of ``user``
    ends (except ``keep_session``, an admin's own browser); API tokens stay."""
    update_user(user, by=None, password=new, keep_session=keep_session)


def update_user(
    user: User,
    *,
    by: User | None,
    password=None,
    display_name=None,
    is_admin=None,
    keep_session: Session | None = None,
) -> User:
    """What an admin (``by``) may change about a family member: a new password,
    the name shown, the admin flag. Every value is checked before anything changes.

    Nobody removes their own admin flag, and the family always keeps an admin.
    A new password ends every sign-in of ``user`` but ``keep_session``; API tokens stay.
    """
    changes = {}
    if display_name is not None:
        changes[User.display_name] = _check_display_name(display_name)
    if is_admin is not None:
        if not isinstance(is_admin, bool):
            raise PicupError("invalid_value", field="is_admin")
        if not is_admin and by is not None and by.id == user.id:
            raise PicupError("invalid_value", field="is_admin")
        changes[User.is_admin] = is_admin
    if password is not None:
        changes[User.password_hash] = hash_password(_check_password(password))
    with database.atomic():
        if is_admin is False:
            others = User.select().where(User.is_admin & (User.id != user.id))
            if not others.exists():
                raise PicupError("invalid_value", field="is_admin")
        if changes:
            User.update(changes).where(User.id == user.id).execute()
        if password is not None:
            _end_sessions(user, keep=keep_session)
    return User.get_by_id(user.id)
