"""`picup import DIR`: a folder tree goes in, untouched, and a re-run carries on."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from picup import config, db, migrations
from picup.models import Album, AlbumMedia, Media
from tests import media_files

PICUP = str(Path(sys.executable).parent / "picup")
ENV = {"PATH": "/usr/bin:/bin"}


def tree_fingerprint(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def picup(*args, stdin=None):
    return subprocess.run([PICUP, *args], input=stdin, capture_output=True, text=True, env=ENV, timeout=120)


def test_import_a_folder_tree(tmp_path):
    source = tmp_path / "Photos from the old laptop"
    (source / "2009" / "Summer").mkdir(parents=True)
    (source / ".thumbnails").mkdir()
    (source / "2009" / "Summer" / "beach.jpg").write_bytes(media_files.jpeg("yellow", taken="2009:07:01 10:00:00"))
    (source / "2009" / "kids.png").write_bytes(media_files.image("PNG", "green"))
    (source / "birthday.mp4").write_bytes(media_files.video("mp4"))
    (source / "copy of beach.jpg").write_bytes(media_files.jpeg("yellow", taken="2009:07:01 10:00:00"))
    (source / "notes.txt").write_text("grandpa's notes")
    (source / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (source / ".thumbnails" / "x.jpg").write_bytes(media_files.jpeg("black"))
    scanned = source / "scan.jpg"
    scanned.write_bytes(media_files.jpeg("gray"))  # no EXIF: its file date is the best we know
    os.utime(scanned, (946_684_800, 946_684_800))  # 2000-01-01
    before = tree_fingerprint(source)
    data = tmp_path / "data"
    assert picup("user", "add", "mom", "--password-stdin", "--data", str(data), stdin="long enough\n").returncode == 0

    first = picup("import", str(source), "--user", "mom", "--album", "Old laptop", "--data", str(data))
    assert first.returncode == 0, first.stderr
    assert "Added 4, already there 1, could not be added 1." in first.stdout
    assert "notes.txt: \"notes.txt\" is not a photo or video Picup can keep." in first.stdout
    assert tree_fingerprint(source) == before, "the source folder is never changed"

    again = picup("import", str(source), "--user", "mom", "--album", "Old laptop", "--data", str(data))
    assert "Added 0, already there 5, could not be added 1." in again.stdout

    settings = config.load({"data_dir": str(data)}, environ={})
    migrations.migrate(settings.database_path)
    db.open_database(settings.database_path)
    with db.connection():
        assert Media.select().count() == 4
        album = Album.get(Album.title == "Old laptop")
        assert AlbumMedia.select().where(AlbumMedia.album == album).count() == 4
        scan = Media.get(Media.original_filename == "scan.jpg")
        assert (str(scan.taken_at), scan.taken_at_source) == ("2000-01-01 00:00:00", "file")
        beach = Media.get(Media.original_filename.in_(["beach.jpg", "copy of beach.jpg"]))
        assert (str(beach.taken_at), beach.taken_at_source) == ("2009-07-01 10:00:00", "exif")
    assert not list(settings.tmp_path.glob("*")), "no temporary files left"


def test_import_for_an_unknown_user_says_so(tmp_path):
    (tmp_path / "in").mkdir()
    result = picup("import", str(tmp_path / "in"), "--user", "nobody", "--data", str(tmp_path / "data"))
    assert result.returncode == 1 and "There is no user called 'nobody'" in result.stderr


def test_import_leaves_out_camera_previews_sidecars_and_nas_folders(tmp_path):
    """A camera card, a Google Takeout and a Synology share: only the photos and videos go in.

    GoPro's .LRV is a real MP4 and .THM a real JPEG: taken, every clip would show three times."""
    source = tmp_path / "From the NAS"
    gopro = source / "DCIM" / "100GOPRO"
    iphone = source / "DCIM" / "100APPLE"
    takeout = source / "Takeout" / "Google Photos" / "Photos from 2019"
    for folder in (gopro, iphone, takeout, takeout / "@eaDir" / "IMG_1.jpg", source / "#recycle"):
        folder.mkdir(parents=True)
    (gopro / "GX010001.MP4").write_bytes(media_files.video("mp4", frames=24, size=(128, 96)))
    (gopro / "GL010001.LRV").write_bytes(media_files.video("mp4", frames=12))
    (gopro / "GX010001.THM").write_bytes(media_files.jpeg("black", size=(32, 24)))
    (iphone / "IMG_0002.JPG").write_bytes(media_files.jpeg("red"))
    (iphone / "IMG_0002.AAE").write_text('<?xml version="1.0"?><plist version="1.0"><dict/></plist>')
    (takeout / "IMG_1.jpg").write_bytes(media_files.jpeg("blue", taken="2019:05:05 12:00:00"))
    (takeout / "IMG_1.jpg.json").write_text('{"title": "IMG_1.jpg", "photoTakenTime": {"timestamp": "1557057600"}}')
    (takeout / "metadata.json").write_text('{"title": "Photos from 2019"}')
    (takeout / "@eaDir" / "IMG_1.jpg" / "SYNOPHOTO_THUMB_M.jpg").write_bytes(media_files.jpeg("gray"))
    (source / "#recycle" / "deleted long ago.jpg").write_bytes(media_files.jpeg("white"))
    (source / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    (source / "desktop.ini").write_text("[.ShellClassInfo]\n")
    data = tmp_path / "data"
    assert picup("user", "add", "dad", "--password-stdin", "--data", str(data), stdin="long enough\n").returncode == 0

    result = picup("import", str(source), "--user", "dad", "--data", str(data))
    assert result.returncode == 0, result.stderr
    assert "Added 3, already there 0, could not be added 0." in result.stdout
    assert "Left out 7 files that only go with a photo or video (edits, details, camera previews) or with " \
           "the system." in result.stdout

    settings = config.load({"data_dir": str(data)}, environ={})
    migrations.migrate(settings.database_path)
    db.open_database(settings.database_path)
    with db.connection():
        assert sorted(m.original_filename for m in Media.select()) == ["GX010001.MP4", "IMG_0002.JPG", "IMG_1.jpg"]


def test_a_google_takeout_dates_photos_without_a_camera_date_from_its_sidecars(tmp_path):
    """Takeout dates every file the day of the export; the date Google Photos showed is in a JSON beside it."""
    import json
    import unicodedata

    folder = tmp_path / "Takeout" / "Google Photos" / "Photos from 2011"
    folder.mkdir(parents=True)
    export_day = 1_790_000_000  # 2026-09-21, when the family downloaded the export

    def photo(name: str, content: bytes, sidecar_name: str | None, taken: int | None, title: str | None = None):
        (folder / name).write_bytes(content)
        os.utime(folder / name, (export_day, export_day))
        if sidecar_name:
            (folder / sidecar_name).write_text(json.dumps({
                "title": title or name, "photoTakenTime": {"timestamp": str(taken), "formatted": "…"}}))

    # A scan: no camera date. The 2024+ sidecar name.
    photo("scan.jpg", media_files.jpeg("gray"), "scan.jpg.supplemental-metadata.json", 1_300_000_000)
    # A chat picture with a long name: Takeout cut the sidecar's name short; its title is whole.
    long_name = "IMG-20110402-WA0007-from-the-family-group-chat.jpg"
    photo(long_name, media_files.jpeg("olive"), "IMG-20110402-WA0007-from-the-family-group-c.json", 1_301_700_000)
    # A name the Mac unzipped decomposed; the title is composed.
    decomposed = unicodedata.normalize("NFD", "할머니.jpg")
    photo(decomposed, media_files.jpeg("navy"), "grandma.json", 1_302_000_000, title="할머니.jpg")
    # A camera date wins over the sidecar.
    photo("camera.jpg", media_files.jpeg("teal", taken="2011:06:01 09:30:00"), "camera.jpg.json", 1_000_000_000)
    # Two phones' IMG_0001.jpg in one folder: which sidecar is whose is unknown, so neither is used.
    photo("IMG_0001.jpg", media_files.jpeg("maroon"), "IMG_0001.jpg.json", 1_303_000_000)
    photo("IMG_0001(1).jpg", media_files.jpeg("purple"), "IMG_0001.jpg(1).json", 1_304_000_000,
          title="IMG_0001.jpg")
    # No sidecar: the file's date, as before.
    photo("orphan.jpg", media_files.jpeg("lime"), None, None)

    data = tmp_path / "data"
    assert picup("user", "add", "mom", "--password-stdin", "--data", str(data), stdin="long enough\n").returncode == 0
    result = picup("import", str(tmp_path / "Takeout"), "--user", "mom", "--data", str(data))
    assert result.returncode == 0, result.stderr
    assert "Added 7, already there 0, could not be added 0." in result.stdout

    settings = config.load({"data_dir": str(data)}, environ={})
    migrations.migrate(settings.database_path)
    db.open_database(settings.database_path)
    with db.connection():
        dated = {unicodedata.normalize("NFC", m.original_filename): (str(m.taken_at), m.taken_at_source)
                 for m in Media.select()}
    assert dated == {
        "scan.jpg": ("2011-03-13 07:06:40", "file"),
        long_name: ("2011-04-01 23:20:00", "file"),
        "할머니.jpg": ("2011-04-05 10:40:00", "file"),
        "camera.jpg": ("2011-06-01 09:30:00", "exif"),
        "IMG_0001.jpg": ("2026-09-21 14:13:20", "file"),
        "IMG_0001(1).jpg": ("2026-09-21 14:13:20", "file"),
        "orphan.jpg": ("2026-09-21 14:13:20", "file"),
    }
