"""Web benchmark: the first screen of thumbnails of a 10,000-photo library, in headless Chromium.

Measures, at a laptop viewport (1440x900) and a phone viewport (390x844),
the time from navigation start of ``/`` until every thumbnail whose tile
intersects the window has loaded and been painted, and the bytes transferred
for that first screen. Beside it, a peer measured in the same run: a static
HTML page holding only the same first-screen ``<img>`` tags (same positions
and sizes), pointing at the same thumbnail URLs on the same Picup server
(the page itself comes from ``http.server`` on another loopback port: Picup
has no place for it; cookies ignore the port, so the session goes along).

The library is a real one, made with Picup's own code in a temporary folder:
``config.load``, ``create_app`` (schema, pragmas, store marker), the first
account through ``POST /api/v1/setup``, then ``--photos`` distinct
photo-like JPEGs (default 36; 2000x1500 or 1500x2000, EXIF camera, date and
GPS, gradients, shapes and multi-scale texture so their WebP thumbnails
weigh what a real photo's do, ~15-35 KB) uploaded through
``POST /api/v1/media`` (``library.ingest``) and rendered by the worker's own
render task (``worker.Worker``: the photo pool, ``renditions.render``),
which makes each real ``thumb.webp``, ``preview.jpg`` and ThumbHash
placeholder.

The shortcut: rendering 10,000 photos would take far longer than the
benchmark should, so the other rows are replicas. Each copies a rendered
row (size, dimensions, placeholder, camera, place) in SQL with its own
SHA-256 (made up: ``sha256("picup-bench-web-<n>")``), its own file name and
a ``taken_at`` spread at random over the last ~10 years (the real rows are
re-dated the same way), and gets its source's ``thumb.webp`` and
``preview.jpg`` hard-linked (copied if linking fails) at its own
``storage.derived_key(<sha256>, name)``. So every thumbnail URL on the page
is served by the real route from a real file, and every placeholder is a
real ThumbHash; there are only ``--photos`` distinct pictures. Replicas have
no original blob (the first screen never asks for one).

Then ``picup run`` serves it on 127.0.0.1 (waitress, with the worker, as
``make run`` does), the benchmark signs in through ``POST /api/v1/session``
and gives the session cookie to each new Chromium context. Each run is a
fresh context (cold HTTP cache, new connections). An init script in the page
watches for the moment when (a) the list reaches past the bottom of the
window (``#more`` below it), and (b) every ``img`` in a tile whose box
intersects the window is ``complete`` with ``naturalWidth > 0``; then it
waits one ``requestAnimationFrame`` and takes ``performance.now()`` (ms since
navigation start). The bytes are the navigation entry's ``transferSize``
plus that of every Resource Timing entry that ended by then (headers and
bodies as sent on the wire; loopback, no throttling). One warm-up run per
viewport finds the first screen's tiles (their URLs and boxes, which make
the static page) and, after it, the page is left to settle and revisited
in the same context (warm cache), for information.

    .venv/bin/python bench/web.py                    # ~1 min
    .venv/bin/python bench/web.py --runs 9 --items 20000

Nothing is asserted: it prints figures and PASS/MISS per target, and exits
non-zero only when the benchmark cannot run (no Chromium or Playwright: 2)
or finds wrong results (a first-screen thumbnail that does not load: 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path

from picup_server import Server  # bench/, on the path when run as a script

TARGET_S = 1.0  # navigation start -> first screen of thumbnails painted, median
TARGET_BYTES = 1_500_000  # transferred for that first screen (1.5 MB), median
VIEWPORTS = [("laptop", 1440, 900), ("phone", 390, 844)]
CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright never downloads its own (as tests/browser.py)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
USERNAME, PASSWORD = "mum", "bench-password-123"
YEARS = 10
KB, MB, MiB = 1000, 1000 * 1000, 1024 * 1024

line = lambda label, text: print(f"  {label:<46}{text}")
verdict = lambda ok: "PASS" if ok else "MISS"


def kb(nbytes: float) -> str:
    return f"{nbytes / KB:.1f} KB" if nbytes < MB else f"{nbytes / MB:.2f} MB"


# ------------------------------------------------------------ photo making
def photo_like(size: tuple[int, int], seed: int):
    """A photo-like RGB picture: a sky-to-ground gradient, soft shapes and texture at three scales.

    The texture (value noise at 1/48, 1/12 and 1/3 of the size) is what makes
    a 400 px WebP of it weigh what a real photo's does (~15-35 KB at Q 80);
    a clean gradient gives ~5 KB, white noise ~60 KB.
    """
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    rnd = random.Random(seed)
    width, height = size
    colour = lambda: tuple(rnd.randrange(256) for _ in range(3))
    ramp = Image.linear_gradient("L").resize(size)
    picture = Image.composite(Image.new("RGB", size, colour()), Image.new("RGB", size, colour()), ramp)
    draw = ImageDraw.Draw(picture)
    for _ in range(60):
        x, y, s = rnd.randrange(width), rnd.randrange(height), rnd.randrange(width // 40, width // 5)
        shape = rnd.choice([draw.ellipse, draw.rectangle])
        shape((x, y, x + s, y + int(s * rnd.uniform(0.3, 1.5))), fill=colour())
    picture = picture.filter(ImageFilter.GaussianBlur(width / 400))
    detail = rnd.uniform(0.4, 1.2)  # some photos are busier than others
    texture = None
    for scale, sigma in ((48, 34), (12, 22), (3, 10)):
        layer = Image.effect_noise((max(2, width // scale), max(2, height // scale)), sigma * detail)
        layer = layer.resize(size, Image.Resampling.BICUBIC)
        texture = layer if texture is None else ImageChops.add(texture, layer, 1, -128)
    tinted = texture.point(lambda v: 128 + int((v - 128) * 0.8))
    return ImageChops.add(picture, Image.merge("RGB", (texture, tinted, texture)), 1, -128)


def photo_jpeg(index: int, seed: int) -> bytes:
    """A distinct photo-like JPEG (every 4th portrait) with camera EXIF: make, model, date, GPS."""
    from PIL import Image

    size = (1500, 2000) if index % 4 == 3 else (2000, 1500)
    exif = Image.Exif()
    stamp = time.strftime("%Y:%m:%d %H:%M:%S", time.gmtime(1_500_000_000 + index * 86_461))
    exif[0x010F], exif[0x0110], exif[0x0132] = "BenchCam", "PX-1", stamp
    exif.get_ifd(0x8769).update({0x9003: stamp, 0x9011: "+09:00"})
    exif.get_ifd(0x8825).update({1: "N", 2: (37.0, 33.0, 59.5), 3: "E", 4: (126.0, 58.0, 40.2)})
    out = io.BytesIO()
    photo_like(size, seed * 1000 + index).save(out, "JPEG", quality=92, exif=exif.tobytes())
    return out.getvalue()


# ------------------------------------------------------------ the library
def build_library(data_dir: Path, args) -> dict:
    """The real app's library: the first account, real renders, then SQL replicas; returns facts to print."""
    import picup
    from picup import config, db, storage, worker
    from picup.models import Media

    facts = {}
    settings = config.load({"data_dir": str(data_dir)}, environ={})
    app = picup.create_app(settings)  # schema (migrations), pragmas, store marker: as a real install
    store = app.extensions["picup"].store
    client = app.test_client()
    answer = client.post("/api/v1/setup", json={"username": USERNAME, "password": PASSWORD, "display_name": "Mum"})
    if answer.status_code != 201:
        raise RuntimeError(f"setup answered {answer.status_code}: {answer.get_data(as_text=True)[:300]}")
    csrf = answer.get_json()["csrf_token"]

    # -- distinct real photos, through the upload API (library.ingest)
    started = time.perf_counter()
    photos = [photo_jpeg(index, args.seed) for index in range(args.photos)]
    facts["make_s"] = time.perf_counter() - started
    facts["photo_bytes"] = statistics.median(len(p) for p in photos)
    started = time.perf_counter()
    for index, content in enumerate(photos):
        answer = client.post(f"/api/v1/media?filename=IMG_{index:04d}.jpg", data=content,
                             headers={"Content-Type": "application/octet-stream", "X-CSRF-Token": csrf})
        if answer.status_code != 201:
            raise RuntimeError(f"upload answered {answer.status_code}: {answer.get_data(as_text=True)[:300]}")

    # -- the render task, as the worker runs it: one drain per core, decoding in the photo pool
    cores = os.cpu_count() or 1
    renderer = worker.Worker(settings, store, processes=cores)
    renderer.register()
    drains = [threading.Thread(target=worker.drain_tasks, kwargs={"max_tasks": args.photos}) for _ in range(cores)]
    try:
        for thread in drains:
            thread.start()
        for thread in drains:
            thread.join()
    finally:
        renderer.pool.close()
    facts["render_s"] = time.perf_counter() - started

    # -- replicas in SQL, with the derived files linked at their own keys
    started = time.perf_counter()
    root = settings.storage_root
    rng = random.Random(args.seed)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    span = YEARS * 365 * 86400
    fields = [f for f in Media._meta.sorted_fields if f.name != "id"]
    with db.connection() as database:
        sources = list(Media.select().order_by(Media.id))
        not_ready = [m.original_filename for m in sources if m.render_status != "ready"]
        if len(sources) != args.photos or not_ready:
            raise RuntimeError(f"{len(sources)} of {args.photos} photos stored; not rendered: {not_ready[:5]}")
        thumbs = [root / storage.derived_key(m.sha256, "thumb.webp") for m in sources]
        facts["thumb_sizes"] = sorted(p.stat().st_size for p in thumbs)
        facts["placeholder_chars"] = statistics.median(len(m.placeholder or "") for m in sources)
        links = copies = 0
        rows = []
        for n in range(args.items - len(sources)):
            source = sources[n % len(sources)]
            data = dict(source.__data__)
            data.pop("id")
            data["sha256"] = hashlib.sha256(f"picup-bench-web-{n}".encode()).hexdigest()
            data["original_filename"] = f"IMG_{n + len(sources):05d}.jpg"
            data["taken_at"] = now - dt.timedelta(seconds=rng.randrange(span))
            rows.append(tuple(data[f.name] for f in fields))
            for name in ("thumb.webp", "preview.jpg"):
                target = root / storage.derived_key(data["sha256"], name)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(root / storage.derived_key(source.sha256, name), target)
                    links += 1
                except OSError:
                    shutil.copyfile(root / storage.derived_key(source.sha256, name), target)
                    copies += 1
        batch = (32766 if sqlite3.sqlite_version_info >= (3, 32) else 999) // len(fields)
        with database.atomic():
            for source in sources:  # the real ones are spread over the years too
                Media.update(taken_at=now - dt.timedelta(seconds=rng.randrange(span))).where(
                    Media.id == source.id).execute()
            for first in range(0, len(rows), batch):
                Media.insert_many(rows[first : first + batch], fields=fields).execute()
        facts["rows"] = Media.select().where(Media.render_status == "ready").count()
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.database.close()
    facts["replicate_s"] = time.perf_counter() - started
    facts["links"], facts["copies"] = links, copies
    facts["db_mib"] = Path(settings.database_path).stat().st_size / MiB
    return facts


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 30) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def per_request_ms(port: int, paths: list[str], headers: dict) -> float:
    """Median ms of GETs sent one after another on one keep-alive connection (body read in full)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times = []
    try:
        for path in paths:
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            times.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}")
    finally:
        conn.close()
    return statistics.median(times)


def sign_in(port: int) -> str:
    """The session cookie's value, from ``POST /api/v1/session`` on the live server."""
    body = json.dumps({"username": USERNAME, "password": PASSWORD, "remember": True}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/api/v1/session", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"sign-in answered {response.status}: {data[:300]!r}")
        jar = SimpleCookie()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                jar.load(value)
    finally:
        conn.close()
    if "picup_session" not in jar:
        raise RuntimeError("sign-in set no picup_session cookie")
    return jar["picup_session"].value


class StaticPages(threading.Thread):
    """The peer's page, served from memory by http.server on its own loopback port."""

    def __init__(self):
        super().__init__(daemon=True)
        self.pages: dict[str, bytes] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                body = pages.get(self.path)
                self.send_response(200 if body is not None else 404)
                body = body if body is not None else b"not found"
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]

    def run(self):
        self.httpd.serve_forever(poll_interval=0.2)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def static_page(tiles: list[dict]) -> bytes:
    """The first screen's ``<img>`` tags, nothing else: same URLs, same boxes, eager loading."""
    imgs = "\n".join(
        f'<img class="tile" alt="" src="{t["src"]}" style="left:{t["x"]:.1f}px;top:{t["y"]:.1f}px;'
        f'width:{t["w"]:.1f}px;height:{t["h"]:.1f}px">'
        for t in tiles
    )
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>first screen</title>"
            "<style>body{margin:0} img{position:absolute;object-fit:cover}</style></head>\n<body>\n"
            f"{imgs}\n</body></html>\n").encode()


# --------------------------------------------------------- in the browser
# Runs at the start of every document (Playwright init script). Tiles are
# Picup's `.tile` buttons, or the static page's `img.tile`.
PROBE = r"""
(() => {
  if (!/^https?:$/.test(location.protocol)) return;
  performance.setResourceTimingBufferSize(10000);
  const state = window.__bench = { done: false, firstTileAt: null };
  const longTasks = [];  // main-thread tasks over 50 ms (Long Tasks API)
  try {
    new PerformanceObserver((list) => list.getEntries().forEach((e) => longTasks.push([e.startTime, e.duration])))
      .observe({ type: "longtask", buffered: true });
  } catch (e) { /* not supported: no long-task figures */ }
  let armed = false;
  const onScreen = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
  };
  const imgOf = (tile) => tile.tagName === "IMG" ? tile : tile.querySelector("img");
  const screenFull = () => {
    const more = document.getElementById("more");  // Picup: the end of the list is below the window
    if (more) return more.getBoundingClientRect().top >= innerHeight;
    return document.readyState !== "loading";     // the static page: every tile is in the HTML
  };
  function check() {
    if (armed) return;
    const tiles = Array.from(document.querySelectorAll(".tile"));
    if (tiles.length && state.firstTileAt === null) state.firstTileAt = performance.now();
    if (!tiles.length || !screenFull()) return;
    const shown = tiles.filter(onScreen);
    const imgs = shown.map(imgOf).filter(Boolean);
    // an image waiting for its turn (no src yet: Picup sets it when the tile nears the screen) is not done
    if (imgs.some((img) => !img.getAttribute("src") || !img.complete)) return;
    armed = true;
    const readyAt = performance.now();
    requestAnimationFrame(() => finish(readyAt, shown));
  }
  function finish(readyAt, shown) {
    const at = performance.now();
    const nav = performance.getEntriesByType("navigation")[0];
    const entries = performance.getEntriesByType("resource").map((e) => ({
      name: e.name, start: e.startTime, end: e.responseEnd, transfer: e.transferSize, body: e.encodedBodySize,
      type: e.initiatorType }));
    state.tiles = shown.map((tile) => {
      const r = tile.getBoundingClientRect(), img = imgOf(tile);
      return { x: r.left, y: r.top, w: r.width, h: r.height, src: img ? img.currentSrc || img.src : null,
               loaded: !!(img && img.complete && img.naturalWidth > 0) };
    });
    state.tilesInDom = document.querySelectorAll(".tile").length;
    state.readyAt = readyAt;
    state.at = at;
    state.nav = { end: nav.responseEnd, transfer: nav.transferSize, body: nav.encodedBodySize };
    state.entries = entries;
    state.longTasks = longTasks.filter(([start]) => start < at);
    state.done = true;
  }
  document.addEventListener("load", check, true);   // images, stylesheets and scripts (capture: load does not bubble)
  document.addEventListener("error", check, true);
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
})();
"""


def new_context(browser, viewport, port: int, cookie: str):
    _name, width, height = viewport
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    context.add_cookies([{"name": "picup_session", "value": cookie, "domain": "127.0.0.1", "path": "/",
                          "httpOnly": True, "sameSite": "Lax"}])
    context.add_init_script(PROBE)
    return context


def measure(page, url: str, *, count_wire: bool = False, timeout_ms: int = 30_000) -> dict:
    """One navigation; ``count_wire`` sums Playwright's request sizes too (for the cross-origin static page)."""
    finished = []
    if count_wire:
        page.on("requestfinished", lambda req: finished.append(req))
    page.goto(url, wait_until="commit", timeout=timeout_ms)
    # Polled from here: Picup's CSP (no 'unsafe-eval') refuses wait_for_function's predicate.
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate("!!(window.__bench && window.__bench.done)"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}: the first screen was not painted within {timeout_ms / 1000:.0f} s")
        time.sleep(0.05)
    result = summarise(page.evaluate("window.__bench"))
    if count_wire:  # every request of the static page is for its first screen: the HTML and the tiles
        wanted = 1 + sum(1 for t in result["tiles"] if t["src"])
        deadline = time.monotonic() + 5
        while len([r for r in finished if r.resource_type in ("document", "image")]) < wanted:
            if time.monotonic() > deadline:
                break
            page.wait_for_timeout(20)
        wire = 0
        for req in finished:
            if req.resource_type in ("document", "image"):
                sizes = req.sizes()
                wire += sizes["responseHeadersSize"] + sizes["responseBodySize"]
        result["bytes"] = wire
    return result


def summarise(state: dict) -> dict:
    """Time, bytes by kind, and milestones, from what the probe saw (bytes: ended by the painted moment)."""
    at = state["at"]
    visible = {t["src"] for t in state["tiles"] if t["src"]}
    done = [e for e in state["entries"] if e["end"] <= at and e["end"] > 0]
    kinds = {"html": [state["nav"]["transfer"], 1], "static": [0, 0], "json": [0, 0],
             "thumbs on screen": [0, 0], "thumbs off screen": [0, 0], "other": [0, 0]}
    milestones = {"html": state["nav"]["end"], "firstTile": state["firstTileAt"], "ready": state["readyAt"],
                  "painted": at}
    for e in done:
        path = e["name"].split("/", 3)[-1]
        if path.endswith("/thumb"):
            kind = "thumbs on screen" if e["name"] in visible else "thumbs off screen"
        elif path.startswith("api/v1/media?"):
            kind = "json"
            milestones.setdefault("json", e["end"])
            milestones.setdefault("jsonStart", e["start"])
        elif path.startswith("api/"):
            kind = "other"
            if path.startswith("api/v1/session"):
                milestones.setdefault("session", e["end"])
        elif path.startswith("static/"):
            kind = "static"
            milestones["static"] = max(milestones.get("static", 0), e["end"])
        else:
            kind = "other"
        kinds[kind][0] += e["transfer"]
        kinds[kind][1] += 1
    on_screen = [e["end"] for e in done if e["name"] in visible]
    if on_screen:
        milestones["firstThumb"], milestones["lastThumb"] = min(on_screen), max(on_screen)
    asked = [e["start"] for e in state["entries"] if e["name"].endswith("/thumb")]
    if asked:
        milestones["thumbAsked"] = min(asked)
    json_bodies = [e["body"] for e in state["entries"] if "/api/v1/media?" in e["name"]]
    return {
        "s": at / 1000,
        "bytes": sum(v[0] for v in kinds.values()),
        "kinds": kinds,
        "milestones": milestones,
        "tiles": state["tiles"],
        "on_screen": len(state["tiles"]),
        "broken": [t["src"] for t in state["tiles"] if t["src"] and not t["loaded"]],
        "in_dom": state.get("tilesInDom", 0),
        "json_body": json_bodies[0] if json_bodies else 0,
        "json_pages": len(json_bodies),
        "all_entries": state["entries"],
        "long_ms": sum(d for _s, d in state.get("longTasks", [])),
        "long_max": max([(d, s_) for s_, d in state.get("longTasks", [])], default=(0, 0)),
        "long_n": len(state.get("longTasks", [])),
    }


def settle_and_revisit(page, url: str) -> tuple[dict, dict]:
    """After the warm-up run: everything the page fetches once idle, then a revisit with a warm cache."""
    page.wait_for_load_state("networkidle", timeout=30_000)
    entries = page.evaluate("performance.getEntriesByType('resource').map(e => [e.name, e.transferSize])")
    nav = page.evaluate("performance.getEntriesByType('navigation')[0].transferSize")
    thumbs = [size for name, size in entries if name.endswith("/thumb")]
    pages = [name for name, _ in entries if "/api/v1/media?" in name]
    settled = {"bytes": nav + sum(size for _n, size in entries), "thumbs": len(thumbs),
               "thumb_bytes": sum(thumbs), "json_pages": len(pages)}
    again = measure(page, url)
    return settled, again


# --------------------------------------------------------------- the bench
def run(args) -> int:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("Playwright for Python is not installed: .venv/bin/pip install -e '.[test]' (make test does it)")
        return 2
    if not os.access(CHROMIUM, os.X_OK):
        print(f"{CHROMIUM} is missing: sudo apt-get install chromium (make test does it)")
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="picup-bench-web-", dir=args.dir))
    server = peer = None
    try:
        data_dir = workdir / "data"
        print(f"Picup web benchmark: {args.items:,} photos, first screen of thumbnails in headless Chromium, "
              f"{args.runs} cold runs per viewport, loopback through waitress")
        facts = build_library(data_dir, args)
        sizes = facts["thumb_sizes"]
        line("library", f"{args.photos} photo-like JPEGs (2000x1500, every 4th portrait; median "
             f"{kb(facts['photo_bytes'])}) made in {facts['make_s']:.1f} s, uploaded and rendered by the "
             f"worker's pipeline in {facts['render_s']:.1f} s")
        line("", f"their thumb.webp: median {kb(statistics.median(sizes))} (min {kb(sizes[0])}, max "
             f"{kb(sizes[-1])}); ThumbHash placeholders of ~{facts['placeholder_chars']:.0f} characters")
        line("", f"replicated to {facts['rows']:,} rows over {YEARS} years in {facts['replicate_s']:.1f} s "
             f"({facts['links']:,} hard links, {facts['copies']} copies); picup.db is {facts['db_mib']:.1f} MiB")

        server = Server(data_dir, workdir / "server.log")
        server.wait_ready()
        cookie = sign_in(server.port)
        base = f"http://127.0.0.1:{server.port}"
        auth = {"Cookie": f"picup_session={cookie}"}
        # What the page will ask for, seen from here: JSON size, caching headers.
        for _ in range(3):  # warm the route (imports, SQLite cache)
            request(server.port, "GET", "/api/v1/media?limit=100", headers=auth)
        started = time.perf_counter()
        status, headers, body = request(server.port, "GET", "/api/v1/media?limit=100", headers=auth)
        json_ms = (time.perf_counter() - started) * 1000
        items = json.loads(body)["items"] if status == 200 else []
        if len(items) != 100:
            raise RuntimeError(f"GET /api/v1/media?limit=100 answered {status} with {len(items)} items")
        _s, thumb_headers, _b = request(server.port, "GET", items[0]["urls"]["thumb"], headers=auth)
        _s, page_headers, page_body = request(server.port, "GET", "/", headers=auth)
        _s, js_headers, _b = request(server.port, "GET", "/static/app.js", headers=auth)
        line("server", f"picup run on 127.0.0.1:{server.port} (waitress + worker); signed in through "
             "POST /api/v1/session")
        line("GET /api/v1/media?limit=100 (the page's call)",
             f"{kb(len(body))} of JSON, {len(body) / 100:.0f} bytes per item, Content-Encoding "
             f"{headers.get('content-encoding', 'none')} (gzip would make it {kb(len(gzip.compress(body)))}); "
             f"{json_ms:.0f} ms from here")
        thumb_ms = per_request_ms(server.port, [m["urls"]["thumb"] for m in items[:60]], auth)
        static_ms = per_request_ms(server.port, ["/static/picup.css"] * 30, auth)
        health_ms = per_request_ms(server.port, ["/healthz"] * 30, {})
        line("one request at a time, from here (median)", f"GET …/thumb {thumb_ms:.1f} ms · GET /static/picup.css "
             f"{static_ms:.1f} ms · GET /healthz {health_ms:.1f} ms (keep-alive, no browser running)")
        line("caching", f"thumb: {thumb_headers.get('cache-control')!r}; /static/app.js: "
             f"{js_headers.get('cache-control', '(none)')!r}; / is {kb(len(page_body))}, "
             f"{page_headers.get('cache-control', '(no Cache-Control)')!r}")

        peer = StaticPages()
        peer.start()
        results = {}
        bad = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            line("browser", f"Chromium {browser.version}, headless, device scale 1, no throttling")
            try:
                for viewport in VIEWPORTS:
                    name, width, height = viewport
                    # Warm-up: finds the first screen (the static page's tiles), warms the server.
                    context = new_context(browser, viewport, server.port, cookie)
                    page = context.new_page()
                    warm = measure(page, base + "/")
                    if not warm["tiles"]:
                        raise RuntimeError(f"{name}: no tile on the first screen")
                    settled, revisit = settle_and_revisit(page, base + "/")
                    context.close()
                    peer_path = f"/first-screen-{name}.html"
                    peer.pages[peer_path] = static_page(warm["tiles"])
                    peer_url = f"http://127.0.0.1:{peer.port}{peer_path}"

                    picup_runs, peer_runs = [], []
                    for _ in range(args.runs):  # interleaved: a noisy moment hits both
                        for runs, url in ((picup_runs, base + "/"), (peer_runs, peer_url)):
                            context = new_context(browser, viewport, server.port, cookie)
                            try:
                                runs.append(measure(context.new_page(), url, count_wire=url == peer_url))
                            finally:
                                context.close()
                    for result in picup_runs + peer_runs:
                        bad += [f"{name}: {src}" for src in result["broken"]]
                    results[name] = (width, height, picup_runs, peer_runs, settled, revisit, warm)
            finally:
                browser.close()

        # -- report
        print()
        summary = {}
        for name, (width, height, picup_runs, peer_runs, settled, revisit, warm) in results.items():
            t = statistics.median(r["s"] for r in picup_runs)
            b = statistics.median(r["bytes"] for r in picup_runs)
            t_peer = statistics.median(r["s"] for r in peer_runs)
            b_peer = statistics.median(r["bytes"] for r in peer_runs)
            summary[name] = (width, height, t, b, t_peer)
            mid = sorted(picup_runs, key=lambda r: r["s"])[len(picup_runs) // 2]  # the median run
            print(f"{name} {width}x{height}")
            line("Picup /, navigation → first screen painted",
                 f"{t:6.3f} s median   runs: " + " ".join(f"{r['s']:.3f}" for r in picup_runs))
            line("static page with the same <img> tags",
                 f"{t_peer:6.3f} s median   runs: " + " ".join(f"{r['s']:.3f}" for r in peer_runs))
            line("ratio vs static page", f"{t / t_peer:6.2f}x")
            line("thumbnails on the first screen", f"{mid['on_screen']:6d}     (of {mid['in_dom']} tiles in the "
                 f"page then; {mid['json_pages']} JSON page(s) of 100 asked for by then)")
            line("bytes transferred by then", f"{kb(b):>9} median   runs: " + " ".join(
                f"{r['bytes'] / MB:.2f}" for r in picup_runs) + f" MB   (static page: {kb(b_peer)})")
            kinds = mid["kinds"]
            line(f"  the median-time run's {kb(mid['bytes'])}", ", ".join(
                f"{kind} {kb(size)} ({count})" for kind, (size, count) in kinds.items() if count))
            ms = {k: statistics.median(r["milestones"].get(k, float("nan")) for r in picup_runs)
                  for k in ("html", "static", "session", "jsonStart", "json", "firstTile", "thumbAsked",
                            "firstThumb", "lastThumb", "ready", "painted")}
            line("where the time goes (median ms since nav.)",
                 f"HTML {ms['html']:.0f} · CSS+JS {ms['static']:.0f} · GET session {ms['session']:.0f} · "
                 f"GET media sent {ms['jsonStart']:.0f}, done {ms['json']:.0f}")
            line("", f"tiles in the page {ms['firstTile']:.0f} · first thumb asked {ms['thumbAsked']:.0f} · "
                 f"first on screen done {ms['firstThumb']:.0f} · last {ms['lastThumb']:.0f} · "
                 f"all complete {ms['ready']:.0f} · painted {ms['painted']:.0f}")
            line("main thread, long tasks before paint", f"{statistics.median(r['long_ms'] for r in picup_runs):6.0f} ms "
                 f"median (static page {statistics.median(r['long_ms'] for r in peer_runs):.0f} ms); median-time run: "
                 f"{mid['long_n']} task(s), longest {mid['long_max'][0]:.0f} ms at {mid['long_max'][1]:.0f} ms")
            peer_ms = {k: statistics.median(r["milestones"].get(k, float("nan")) for r in peer_runs)
                       for k in ("html", "firstThumb", "lastThumb", "ready", "painted")}
            line("  static page (median ms)", f"HTML {peer_ms['html']:.0f} · first thumb done "
                 f"{peer_ms['firstThumb']:.0f} · last {peer_ms['lastThumb']:.0f} · all complete "
                 f"{peer_ms['ready']:.0f} · painted {peer_ms['painted']:.0f}")
            line("after the page settles (warm-up run)", f"{settled['thumbs']} thumbnails, "
                 f"{kb(settled['bytes'])} in all ({settled['json_pages']} JSON page(s))")
            fetched = sum(1 for t_ in revisit["tiles"]
                          if any(e["name"] == t_["src"] and e["transfer"] > 0 for e in revisit["all_entries"]))
            line("revisit, same context (warm cache)", f"{revisit['s']:.3f} s, {kb(revisit['bytes'])} over the "
                 f"network; {fetched} of {revisit['on_screen']} first-screen thumbs fetched again")
            print()

        print("Targets (medians)")
        for name, (width, height, t, b, _tp) in summary.items():
            line(f"{name}: first screen painted < {TARGET_S:.0f} s", f"{t:7.3f} s   {verdict(t < TARGET_S)}")
            line(f"{name}: bytes for it < {TARGET_BYTES / MB:.1f} MB",
                 f"{b / MB:7.3f} MB  {verdict(b < TARGET_BYTES)}")
        ok = not bad
        line("every first-screen thumbnail loads", f"{'yes' if ok else 'NO':>7}       {'PASS' if ok else 'FAIL'}")
        for src in bad[:10]:
            print(f"    did not load: {src}")
        return 0 if ok else 1
    finally:
        if peer is not None:
            peer.stop()
        if server is not None:
            server.stop()
        if args.keep:
            print(f"  (kept {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000, help="photos in the library (default 10000)")
    parser.add_argument("--photos", type=int, default=36,
                        help="distinct photos really rendered; the rest are replicas (default 36)")
    parser.add_argument("--runs", type=int, default=5, help="cold runs per viewport, each page (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the made-up photos and dates")
    parser.add_argument("--dir", default=None, help="make the temporary library here (default: system temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (data, server log) and print it")
    args = parser.parse_args(argv)
    if args.photos < 1 or args.items < max(args.photos, 200) or args.runs < 1:
        parser.error("--photos at least 1, --items at least 200 and at least --photos, --runs at least 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
