"""Picup installs from wheels on every box the appliance is written for.

The role installs Picup with pip into a virtualenv made by the box's own
Python, and nothing on the box can compile C: PyAV and pillow-heif must come
as wheels that carry their codecs (FFmpeg, libheif), on amd64 and arm64 alike.
This resolves Picup's runtime requirements (from setup.cfg) against PyPI, as
the box's pip would, for each box: its CPU, its Python and its C library.
`pip install --dry-run --report` reads the wheels' metadata only (PyPI serves
it beside each wheel), so nothing is downloaded or installed.

Needs PyPI, as `make test` does.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess

import pytest

from tests.debian_root import BIN, REPO

# (box, CPU, Python of the system, glibc of the system)
BOXES = [
    ("Debian 12", "x86_64", "3.11", 36),
    ("Debian 12 / Raspberry Pi OS (bookworm)", "aarch64", "3.11", 36),
    ("Ubuntu 24.04", "x86_64", "3.12", 39),
    ("Ubuntu 24.04", "aarch64", "3.12", 39),
]
WITH_CODECS = {"av": "FFmpeg", "pillow-heif": "libheif"}


def runtime_requirements() -> list[str]:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    return [line.strip() for line in config["options"]["install_requires"].splitlines() if line.strip()]


@pytest.mark.parametrize(("box", "cpu", "python", "glibc"), BOXES, ids=[f"{b[0]}-{b[1]}" for b in BOXES])
def test_picup_installs_from_wheels_only(box, cpu, python, glibc, tmp_path):
    platforms = [arg for minor in range(17, glibc + 1) for arg in ("--platform", f"manylinux_2_{minor}_{cpu}")]
    report = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if k != "PIP_FIND_LINKS"}  # PyPI, as the box sees it
    result = subprocess.run(
        [BIN / "pip", "install", "--dry-run", "--ignore-installed", "--target", tmp_path / "venv",
         "--only-binary=:all:", *platforms, "--python-version", python, "--implementation", "cp",
         "--report", report, *runtime_requirements()],
        capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"{box} ({cpu}, Python {python}) cannot install Picup from wheels:\n" \
                                   f"{result.stderr[-3000:]}"
    chosen = {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item["download_info"]["url"].rsplit("/", 1)[1]
              for item in json.loads(report.read_text())["install"]}
    for name, codec in WITH_CODECS.items():
        wheel = chosen[name]
        assert wheel.endswith(".whl") and f"_{cpu}" in wheel, f"{name} ({codec}) for {box}: {wheel}"
