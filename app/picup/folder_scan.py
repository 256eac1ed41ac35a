"""Which files under a folder ``picup import`` takes, and which it leaves out on purpose.

A folder copied from a phone, a camera card, a NAS or an old laptop holds more than
photos: a camera's small preview beside each clip (GoPro ``.LRV`` is a real MP4, ``.THM``
a real JPEG: taken, they would show every video twice), edit and metadata files that only
go with a photo, a NAS's own thumbnail folders, the system's files. Hidden files and
folders (a leading dot) are left out too.
"""

from __future__ import annotations

import os
from pathlib import Path

# Compared in lower case.
SKIPPED_FOLDERS = frozenset({
    "@eadir",                     # Synology's thumbnails, one in every photo folder
    "#recycle", "#snapshot",      # Synology's recycle bin and snapshots
    "$recycle.bin", "system volume information",  # Windows, on every USB disk
    "lost+found",                 # what a disk check found
})
COMPANION_SUFFIXES = frozenset({
    ".aae",                       # iPhone: how a photo was edited
    ".xmp",                       # Lightroom, darktable…: a photo's edits and tags
    ".json",                      # Google Takeout: a photo's details
    ".thm",                       # camera thumbnail of a video (a JPEG)
    ".lrv", ".lrf",               # GoPro / DJI low-resolution copy of a video (an MP4)
})
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})
# For the "Add photos" page, which leaves out the same files when a whole folder is dropped.
LEFT_OUT_NAMES = " ".join(sorted(COMPANION_SUFFIXES | SYSTEM_FILES))
SKIPPED_FOLDER_NAMES = "/".join(sorted(SKIPPED_FOLDERS))  # "/" is never in a folder's name


def left_out(path: Path) -> bool:
    """A file that goes with a photo or with the system, never a photo of its own."""
    return path.suffix.lower() in COMPANION_SUFFIXES or path.name.lower() in SYSTEM_FILES


def scan(folder: Path) -> tuple[list[Path], int]:
    """The files to try, in a stable order, and how many were left out on purpose."""
    files, skipped = [], 0
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d.lower() not in SKIPPED_FOLDERS)
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(root) / name
            if left_out(path):
                skipped += 1
            else:
                files.append(path)
    return files, skipped
