"""Timeline benchmark: the first page and a page 90,000 items deep of a 100,000-item library.

Builds a real SQLite library through Picup's own code (``config.load``,
``picup.prepare``: the same schema, pragmas and store marker as a real
install), signs in through ``POST /api/v1/setup``, then inserts the media
rows directly with peewee ``insert_many`` (fast; no files are stored, the
timeline never reads them). ``taken_at`` is spread over 20 years, with bursts
of photos sharing the same second, and the rows are inserted in random
``taken_at`` order, the way a family's uploads arrive. A second family member
owns another 10% so the owner filter has work to do.

It then walks the whole timeline once (checking every item comes exactly
once, in order) and times, server-side and in-process:

- ``GET /api/v1/media?limit=200[&cursor=...]`` through the Flask app
  (``test_client``: request parsing, session lookup, the query, JSON), and
- the bare ``picup.library.timeline()`` call,

for the first page and for the page that starts after item 90,000, each
repeated (50 runs by default, interleaved), and prints the median and p95,
the deep/first ratio, and SQLite's ``EXPLAIN QUERY PLAN`` for the query the
app really ran (captured from peewee), which must use the ``media_timeline``
index with no OFFSET and no sort step.

    .venv/bin/python bench/timeline.py
    .venv/bin/python bench/timeline.py --rows 20000 --runs 20

Nothing is asserted: it prints figures and PASS/MISS per target, and exits
non-zero only when the benchmark cannot run or the walk finds the timeline
wrong (missing, repeated or misordered items: a bug, not a slow machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import math
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 20.0  # each page, server-side, median
TARGET_RATIO = 1.5  # deep page / first page
PAGE = 200
EPOCH = dt.datetime(2006, 1, 1)
SPAN_SECONDS = 20 * 365 * 86400


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def media_rows(owner_id: int, count: int, rng: random.Random, *, start_index: int):
    """``count`` rows for one owner: 20 years of photos, ~10% sharing a timestamp with the previous one."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    taken = EPOCH
    for n in range(start_index, start_index + count):
        if n == start_index or rng.random() >= 0.10:  # burst shots: same second as the previous photo
            taken = EPOCH + dt.timedelta(seconds=rng.randrange(SPAN_SECONDS))
        yield (
            owner_id,
            hashlib.sha256(n.to_bytes(8, "little")).hexdigest(),
            rng.randrange(200_000, 8_000_000),
            "image/jpeg",
            "photo",
            f"IMG_{n:06d}.jpg",
            taken,
            "exif",
            4032,
            3024,
            "ready",
            now,
        )


def insert_library(Media, database, owner_id: int, other_id: int, rows: int, seed: int) -> tuple[int, float]:
    fields = [
        Media.owner, Media.sha256, Media.size, Media.media_type, Media.kind, Media.original_filename,
        Media.taken_at, Media.taken_at_source, Media.width, Media.height, Media.status, Media.created_at,
    ]
    # SQLite >= 3.32 allows 32766 bound variables per statement; older ones 999.
    batch = (32766 if sqlite3.sqlite_version_info >= (3, 32) else 999) // len(fields)
    rng = random.Random(seed)
    mine = list(media_rows(owner_id, rows, rng, start_index=0))
    theirs = list(media_rows(other_id, max(1, rows // 10), rng, start_index=rows))
    everything = mine + theirs
    rng.shuffle(everything)  # uploads arrive in any order: ids do not follow taken_at
    started = time.perf_counter()
    with database.atomic():
        for first in range(0, len(everything), batch):
            Media.insert_many(everything[first : first + batch], fields=fields).execute()
    return len(everything), time.perf_counter() - started


class CaptureSql(logging.Handler):
    """Collects the (sql, params) peewee logs at DEBUG level."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.queries: list[tuple[str, tuple]] = []

    def emit(self, record):
        if isinstance(record.msg, tuple) and len(record.msg) == 2:
            self.queries.append(record.msg)

    def __enter__(self):
        self._logger = logging.getLogger("peewee")
        self._saved = (self._logger.level, self._logger.propagate)
        self._logger.setLevel(logging.DEBUG)
        self._logger.propagate = False
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc):
        self._logger.removeHandler(self)
        self._logger.setLevel(self._saved[0])
        self._logger.propagate = self._saved[1]


def timeline_sql(library, user, cursor) -> tuple[str, tuple]:
    """The SELECT that ``library.timeline`` really runs for this page."""
    with CaptureSql() as capture:
        library.timeline(user, limit=PAGE, cursor=cursor)
    selects = [q for q in capture.queries if q[0].lstrip().upper().startswith("SELECT") and '"media"' in q[0]]
    if not selects:
        raise RuntimeError("could not capture the timeline query")
    return selects[-1]


def run(args) -> int:
    import peewee as pw

    import picup
    from picup import config, db, library
    from picup.models import Media, User

    workdir = Path(tempfile.mkdtemp(prefix="picup-bench-timeline-", dir=args.dir))
    try:
        settings = config.load({"data_dir": str(workdir / "data")}, environ={})
        picup.prepare(settings)  # schema (migrations), pragmas, store marker: as a real install
        app = picup.create_app(settings)
        client = app.test_client()
        answer = client.post("/api/v1/setup", json={"username": "mum", "password": "bench-password-123"})
        if answer.status_code != 201:
            raise RuntimeError(f"setup answered {answer.status_code}: {answer.get_data(as_text=True)[:300]}")

        print(f"Picup timeline benchmark: {args.rows:,} items, pages of {PAGE}, {args.runs} runs each "
              f"(SQLite {sqlite3.sqlite_version}, peewee {pw.__version__})")
        with db.connection() as database:
            owner = User.get(User.username == "mum")
            other = User.create(username="dad", display_name="Dad", password_hash="!", created_at=owner.created_at)
            inserted, insert_s = insert_library(Media, database, owner.id, other.id, args.rows, args.seed)
        size_mib = Path(settings.database_path).stat().st_size / 1024**2
        print(f"  inserted {inserted:,} media rows ({args.rows:,} for the signed-in user) in {insert_s:.1f} s; "
              f"picup.db is {size_mib:.0f} MiB")

        # -- walk every page once: correctness, and the cursor of the deep page
        deep_at = min(args.deep, args.rows - PAGE)
        deep_at -= deep_at % PAGE
        with db.connection():
            user = User.get_by_id(owner.id)
            started = time.perf_counter()
            seen, previous, cursor, cursors, pages = set(), None, None, {0: None}, 0
            ordered_ok = True
            tied_boundaries = 0  # page breaks that fall between two photos of the same second
            while True:
                items, cursor = library.timeline(user, limit=PAGE, cursor=cursor)
                pages += 1
                if previous is not None and items and items[0].taken_at == previous[0]:
                    tied_boundaries += 1
                for item in items:
                    key = (item.taken_at, item.id)
                    if previous is not None and not key < previous:
                        ordered_ok = False
                    previous = key
                    seen.add(item.id)
                if cursor is None:
                    break
                cursors[pages * PAGE] = cursor
            walk_s = time.perf_counter() - started
            expected_ids = {m.id for m in Media.select(Media.id).where(Media.owner == owner.id)}
            deep_cursor = cursors.get(deep_at)
            in_order = list(
                Media.select(Media.id, Media.taken_at).where(Media.owner == owner.id)
                .order_by(Media.taken_at.desc(), Media.id.desc()).offset(deep_at - 1).limit(1)
            )
            encoded = library._encode_cursor(in_order[0]) if deep_at else None
            duplicates_in_timestamps = (
                Media.select(Media.taken_at).where(Media.owner == owner.id)
                .group_by(Media.taken_at).having(pw.fn.COUNT(Media.id) > 1).count()
            )
        walk_ok = ordered_ok and seen == expected_ids and deep_cursor == encoded
        print(f"  walked the whole timeline: {pages} pages in {walk_s:.1f} s, {len(seen):,} distinct items "
              f"of {len(expected_ids):,}, strictly ordered by (taken_at, id): {'yes' if ordered_ok else 'NO'}; "
              f"{duplicates_in_timestamps:,} timestamps are shared by several photos, {tied_boundaries} page "
              f"breaks fall inside such a burst")
        print(f"  deep page: after item {deep_at:,}; its cursor from the walk "
              f"{'equals' if deep_cursor == encoded else 'DIFFERS FROM'} _encode_cursor(row {deep_at:,})")

        # -- timings
        pages_to_time = {"first": None, "deep": deep_cursor}
        http_ms = {name: [] for name in pages_to_time}
        bare_ms = {name: [] for name in pages_to_time}
        with db.connection():
            user = User.get_by_id(owner.id)
            for round_ in range(args.warmup + args.runs):
                for name, cursor in pages_to_time.items():
                    started = time.perf_counter()
                    items, _next = library.timeline(user, limit=PAGE, cursor=cursor)
                    elapsed = (time.perf_counter() - started) * 1000
                    if len(items) != PAGE:
                        raise RuntimeError(f"{name} page has {len(items)} items")
                    if round_ >= args.warmup:
                        bare_ms[name].append(elapsed)
        for round_ in range(args.warmup + args.runs):
            for name, cursor in pages_to_time.items():
                url = f"/api/v1/media?limit={PAGE}" + (f"&cursor={cursor}" if cursor else "")
                started = time.perf_counter()
                answer = client.get(url)
                elapsed = (time.perf_counter() - started) * 1000
                if answer.status_code != 200 or len(answer.get_json()["items"]) != PAGE:
                    raise RuntimeError(f"GET {url} answered {answer.status_code}")
                if round_ >= args.warmup:
                    http_ms[name].append(elapsed)

        # -- the query plan of what the app really ran
        with db.connection() as database:
            user = User.get_by_id(owner.id)
            plans = {}
            for name, cursor in pages_to_time.items():
                sql, params = timeline_sql(library, user, cursor)
                plan = database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                plans[name] = (sql, params, [row[-1] for row in plan])

        # -- report
        print()
        print(f"  {'server-side, ms':<50}{'median':>8}{'p95':>8}{'min':>8}")
        for label, table in (("GET /api/v1/media (Flask app)", http_ms), ("library.timeline() (bare)", bare_ms)):
            for name in pages_to_time:
                values = table[name]
                where = "first page" if name == "first" else f"page after {deep_at:,}"
                print(f"  {label + ', ' + where:<50}{statistics.median(values):8.2f}"
                      f"{percentile(values, 0.95):8.2f}{min(values):8.2f}")
        print()
        for name, (sql, params, details) in plans.items():
            print(f"  EXPLAIN QUERY PLAN, {'first page' if name == 'first' else 'deep page'}:")
            print(f"    {sql}")
            print(f"    params {params}")
            for detail in details:
                print(f"    → {detail}")
        uses_index = all(any("media_timeline" in d for d in plan[2]) for plan in plans.values())
        no_offset = all("OFFSET" not in plan[0].upper() for plan in plans.values())
        no_sort = all(not any("TEMP B-TREE" in d for d in plan[2]) for plan in plans.values())

        http_first, http_deep = (statistics.median(http_ms[n]) for n in ("first", "deep"))
        bare_first, bare_deep = (statistics.median(bare_ms[n]) for n in ("first", "deep"))
        verdict = lambda ok: "PASS" if ok else "MISS"  # noqa: E731
        print()
        print("Targets (medians)")
        print(f"  {'first page < 20 ms (Flask app)':<44}{http_first:7.2f} ms  {verdict(http_first < TARGET_MS)}")
        print(f"  {'deep page < 20 ms (Flask app)':<44}{http_deep:7.2f} ms  {verdict(http_deep < TARGET_MS)}")
        print(f"  {'first page < 20 ms (bare timeline())':<44}{bare_first:7.2f} ms  {verdict(bare_first < TARGET_MS)}")
        print(f"  {'deep page < 20 ms (bare timeline())':<44}{bare_deep:7.2f} ms  {verdict(bare_deep < TARGET_MS)}")
        print(f"  {'deep/first < 1.5 (Flask app)':<44}{http_deep / http_first:7.2f}     "
              f"{verdict(http_deep / http_first < TARGET_RATIO)}")
        print(f"  {'deep/first < 1.5 (bare timeline())':<44}{bare_deep / bare_first:7.2f}     "
              f"{verdict(bare_deep / bare_first < TARGET_RATIO)}")
        plan_ok = uses_index and no_offset and no_sort
        print(f"  {'plan: media_timeline, no OFFSET, no sort':<44}{'yes' if plan_ok else 'no':>7}     "
              f"{verdict(plan_ok)}")
        print(f"  {'walk: every item once, in order':<44}{'yes' if walk_ok else 'no':>7}     "
              f"{'PASS' if walk_ok else 'FAIL'}")
        return 0 if walk_ok else 1
    finally:
        try:
            if not db.database.is_closed():
                db.database.close()
        except Exception:  # the proxy may never have been initialised
            pass
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="media rows of the signed-in user (default 100000)")
    parser.add_argument("--deep", type=int, default=90_000, help="how deep the deep page starts (default 90000)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per page (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first (default 5)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the made-up library")
    parser.add_argument("--dir", default=None, help="make the temporary library here (default: system temp folder)")
    args = parser.parse_args(argv)
    if args.rows < 2 * PAGE or args.runs < 1 or args.warmup < 0:
        parser.error(f"--rows must be at least {2 * PAGE}, --runs at least 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
