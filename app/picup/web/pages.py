"""The server-rendered pages. They call the same JSON API as scripts do (``static/*.js``).

Every page is ``public`` to the route guard and decides itself: a visitor who is not
signed in is sent to the sign-in page (and back afterwards), a member who is not the
administrator gets a page that says so in words.
"""

from __future__ import annotations

import functools
from urllib.parse import quote

from flask import Blueprint, g, redirect, render_template, request

from .. import accounts, folder_scan, i18n, library
from ..errors import PicupError
from .auth import needs_two_step, public, state

bp = Blueprint("pages", __name__)


def render(template: str, status: int = 200, **context):
    lang = g.get("lang", "en")
    t = lambda key, **p: i18n.translate(f"pages.{key}", lang, **p)  # noqa: E731
    context.setdefault("user", g.get("user"))
    return render_template(template, lang=lang, t=t, strings=i18n.catalogue(lang)["pages"],
                           left_out=folder_scan.LEFT_OUT_NAMES, skipped_folders=folder_scan.SKIPPED_FOLDER_NAMES,
                           **context), status


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _page(admin: bool = False):
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if accounts.needs_setup():
                return redirect("/setup")
            if g.user is None:
                here = request.full_path.rstrip("?")
                return redirect("/signin" if here == "/" else "/signin?next=" + quote(here, safe="/?=&"))
            if needs_two_step() and request.path != "/settings":
                return redirect("/settings#two-step")
            if admin and not g.user.is_admin:
                return error_page(PicupError("admin_only"))
            return view(*args, **kwargs)

        return public(wrapper)

    return decorate


def error_page(error: PicupError):
    message = i18n.translate(f"errors.{error.code}", g.get("lang", "en"), **error.params)
    return render("error.html", status=error.status, message=message)


@bp.get("/")
@_page()
def home():
    """The family's photos, newest first. ``?add_to=ID`` chooses photos for an album."""
    adding_to = None
    if request.args.get("add_to", "").isdigit():
        try:
            adding_to = library.get_album(g.user, int(request.args["add_to"]), "add")
        except PicupError as error:
            return error_page(error)
    return render("home.html", adding_to=adding_to)


@bp.get("/albums")
@_page()
def albums():
    """Every album the person owns or that is shared with them."""
    return render("albums.html")


@bp.get("/albums/<int:album_id>")
@_page()
def album(album_id: int):
    """One album's photos, and (for its owner) rename, share, cover and delete."""
    try:
        album = library.get_album(g.user, album_id)
    except PicupError as error:
        return error_page(error)
    role = library.album_role(g.user, album)
    return render(
        "album.html",
        album=album,
        role=role,
        album_owner=role == "owner",
        album_can_add=role in ("owner", "add"),
        upload_album=album.id if role in ("owner", "add") else None,
    )


@bp.get("/slideshows")
@_page()
def slideshows():
    """The person's TV slideshow links: settings, pause, end date, turn off."""
    return render("slideshows.html")


@bp.get("/trash")
@_page()
def trash():
    """What was deleted, and when it goes for good; put things back."""
    return render("trash.html", trash_days=state().settings.trash_days)


@bp.get("/family")
@_page(admin=True)
def family():
    """The administrator's page: members, their passwords, who sees which album."""
    return render("family.html")


@bp.get("/status")
@_page(admin=True)
def status():
    """The administrator's page: storage, integrity check, backup, failed tasks and version, in words."""
    from .. import status as picup_status

    report = picup_status.report(state().settings, state().store, g.get("lang", "en"))
    return render("status.html", report=report, parts=picup_status.PARTS)


@bp.get("/settings")
@_page()
def settings():
    """Language and password."""
    return render("settings.html")


@bp.get("/setup")
@public
def setup():
    """First run: create the first account."""
    if not accounts.needs_setup():
        return redirect("/signin")
    return render("setup.html", user=None)


@bp.get("/signin")
@public
def signin():
    """The sign-in page; ``?next=/path`` goes back there afterwards (paths on this site only)."""
    if accounts.needs_setup():
        return redirect("/setup")
    target = safe_next(request.args.get("next"))
    if g.user is not None:
        return redirect(target)
    return render("signin.html", user=None, next=target)
