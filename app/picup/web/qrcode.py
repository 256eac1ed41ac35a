"""QR codes as SVG (segno), for a tablet's or a phone's camera."""

from __future__ import annotations

import io

import segno
from flask import Response


def qr_response(text: str) -> Response:
    """``text`` as a QR code: black on white with the quiet zone, sized by the page's CSS."""
    out = io.BytesIO()
    segno.make(text, error="m").save(
        out, kind="svg", scale=1, border=4, omitsize=True, xmldecl=False, title="QR code", dark="#000", light="#fff"
    )
    response = Response(out.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, no-store"
    return response
