"""Sending stored bytes: ETag, long-lived caching, HTTP ranges, RFC 6266 names."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, current_app, request

from ..errors import PicupError
from ..storage import CHUNK, BlobStore
from . import error_response

IMMUTABLE = "private, max-age=31536000, immutable"  # originals never change
REBUILDABLE = "private, max-age=86400"  # renditions may be remade by a better pipeline


def content_disposition(filename: str, *, attachment: bool) -> str:
    """``inline; filename="a.jpg"; filename*=UTF-8''…`` (RFC 6266 / RFC 8187)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename) or "file"
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _wanted_range(size: int, etag: str):
    """(start, stop) for a single satisfiable range, None for the whole file."""
    if request.range is None or request.range.units != "bytes":
        return None
    if_range = request.headers.get("If-Range")
    if if_range and if_range.strip() != etag:
        return None  # the client's copy is stale: send everything
    if len(request.range.ranges) != 1:
        return None  # several ranges: answering with the whole file is allowed and simpler
    bounds = request.range.range_for_length(size)
    if bounds is None:
        raise PicupError("range_not_satisfiable")
    return bounds


def _chunks(stream):
    with stream:
        while chunk := stream.read(CHUNK):
            yield chunk


def send_blob(
    store: BlobStore, key: str, *, size: int, etag: str, mimetype: str, filename: str, cache: str = IMMUTABLE
) -> Response:
    etag = f'"{etag}"'
    headers = {
        "ETag": etag,
        "Cache-Control": cache,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(filename, attachment=request.args.get("download") == "1"),
    }
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return Response(status=304, headers=headers)
    try:
        bounds = _wanted_range(size, etag)
    except PicupError as error:
        body, status = error_response(error)  # JSON like every other error, not an empty text/html
        return current_app.make_response((body, status, {"Content-Range": f"bytes */{size}"}))
    start, stop = bounds if bounds else (0, size)
    length = stop - start
    body = [] if request.method == "HEAD" else _chunks(store.open(key, start, length if bounds else None))
    response = Response(body, mimetype=mimetype, headers=headers, direct_passthrough=True)
    response.content_length = length
    if bounds:
        response.status_code = 206
        response.headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return response
