"""The few server-rendered pages of the core: first-run setup, sign-in, home.

They call the same JSON API as scripts do (``static/app.js``).
"""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template

from .. import accounts, i18n
from .auth import public, state

bp = Blueprint("pages", __name__)


def _render(template: str, **context):
    lang = g.get("lang", "en")
    t = lambda key, **p: i18n.translate(f"pages.{key}", lang, **p)  # noqa: E731
    return render_template(template, lang=lang, t=t, strings=i18n.catalogue(lang)["pages"], **context)


@bp.get("/")
@public
def home():
    """The family's photos, or the way to them."""
    if accounts.needs_setup():
        return redirect("/setup")
    if g.user is None:
        return redirect("/signin")
    return _render("home.html", user=g.user)


@bp.get("/trash")
@public
def trash():
    """What was deleted, and when it goes for good; put things back."""
    if g.user is None:
        return redirect("/signin")
    return _render("trash.html", user=g.user, trash_days=state().settings.trash_days)


@bp.get("/setup")
@public
def setup():
    """First run: create the first account."""
    if not accounts.needs_setup():
        return redirect("/signin")
    return _render("setup.html")


@bp.get("/signin")
@public
def signin():
    """The sign-in page."""
    if accounts.needs_setup():
        return redirect("/setup")
    return _render("signin.html")
