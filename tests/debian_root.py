"""A throwaway Debian 12 root for the appliance tests, and Picup wheels to install into it.

`build_root` makes the root with debootstrap. Locally the result is cached as a
tarball under ~/.cache/picup-test (keyed by what goes into it); with CI set it
is built fresh once per test session and shared by the modules that need one.
`PICUP_TEST_DISTRO=ubuntu2404` makes an Ubuntu 24.04 root instead, for trying
the playbook there by hand (docs: appliance/ansible/README.md); the normal run
uses Debian 12.
`prepare_root` makes it usable as a chroot on this host's network.
`build_wheel` builds this checkout as a wheel, optionally renumbered and with
its source changed (a future release, a broken release).

Needs root (debootstrap, chroot, mounts), as CI has.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Distro:
    name: str
    suite: str
    mirror: str
    components: str = "main"
    script: str = ""  # debootstrap's script for the suite, when this host's debootstrap has none by its name
    keyring_deb: tuple[str, str] = ("", "")  # the archive's keyring package (path in the mirror, SHA-256), when this host lacks it
    more_sources: tuple[str, ...] = ()  # apt lines a real box of this kind has beside the release


DISTROS = {
    "debian12": Distro("debian12", "bookworm", "http://deb.debian.org/debian"),
    # Debian's debootstrap makes Ubuntu roots with its 'gutsy' script (every release since uses it).
    # The keyring package is pinned by hash: it is what the rest of the root is checked against.
    "ubuntu2404": Distro(
        "ubuntu2404", "noble", "http://archive.ubuntu.com/ubuntu", "main,universe", "gutsy",
        ("pool/main/u/ubuntu-keyring/ubuntu-keyring_2023.11.28.1_all.deb",
         "36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8"),
        ("deb http://archive.ubuntu.com/ubuntu noble-updates main universe",
         "deb http://security.ubuntu.com/ubuntu noble-security main universe")),
}
_ASKED = os.environ.get("PICUP_TEST_DISTRO", "debian12")
if _ASKED not in DISTROS:
    raise ValueError(f"PICUP_TEST_DISTRO={_ASKED!r} is not a root these tests can make; "
                     f"choose one of: {', '.join(DISTROS)}")
DISTRO = DISTROS[_ASKED]
# What debootstrap puts in: Python for Ansible's modules, systemd for
# `systemctl enable`, systemd-analyze and booting, and what a real box always has.
ROOT_PACKAGES = ["python3", "systemd", "systemd-sysv", "ca-certificates", "iproute2"]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "picup-test"
_built_this_session: list[Path] = []  # with CI set: the root made fresh for this run, as a tarball


def run(*argv, check=True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], check=check, text=True, capture_output=True, **kwargs)


def build_root(root: Path) -> None:
    key = hashlib.sha256(" ".join([repr(DISTRO), "minbase", *ROOT_PACKAGES]).encode()).hexdigest()[:16]
    fresh = bool(os.environ.get("CI"))
    tarball = _built_this_session[0] if fresh and _built_this_session else CACHE / f"{DISTRO.name}-root-{key}.tar"
    root.mkdir()
    if tarball.exists() and (not fresh or _built_this_session):
        run("tar", "-C", root, "-xpf", tarball)
        return
    if not shutil.which("debootstrap"):
        run("apt-get", "install", "-y", "-q", "debootstrap")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as keys:
        options = [f"--components={DISTRO.components}"]
        if DISTRO.keyring_deb[0]:
            options.append(f"--keyring={archive_keyring(Path(keys))}")
        script = [f"/usr/share/debootstrap/scripts/{DISTRO.script}"] if DISTRO.script else []
        run("debootstrap", "--variant=minbase", f"--include={','.join(ROOT_PACKAGES)}", *options,
            DISTRO.suite, root, DISTRO.mirror, *script)
    if DISTRO.more_sources:
        with open(root / "etc/apt/sources.list", "a") as sources:
            sources.write("".join(f"{line}\n" for line in DISTRO.more_sources))
    print(f"debootstrap of {DISTRO.name} took {time.monotonic() - started:.0f} s")
    if fresh:
        tarball = root.parent / f"{DISTRO.name}-root.tar"
        _built_this_session.append(tarball)
    else:
        CACHE.mkdir(parents=True, exist_ok=True)
    run("tar", "-C", root, "-cpf", f"{tarball}.part", ".")
    os.replace(f"{tarball}.part", tarball)


def archive_keyring(workdir: Path) -> Path:
    """The distribution's archive keyring, from its pinned keyring package in the mirror."""
    path, sha256 = DISTRO.keyring_deb
    deb = workdir / Path(path).name
    with urllib.request.urlopen(f"{DISTRO.mirror}/{path}", timeout=60) as answer:
        deb.write_bytes(answer.read())
    got = hashlib.sha256(deb.read_bytes()).hexdigest()
    assert got == sha256, f"{deb.name} from {DISTRO.mirror} is not the pinned package (SHA-256 {got})"
    run("dpkg-deb", "-x", deb, workdir / "deb")
    (keyring,) = (workdir / "deb/usr/share/keyrings").glob("*-archive-keyring.gpg")
    return keyring


def prepare_root(root: Path) -> list[Path]:
    """Make the chroot usable like a box on this network; returns the mounts to undo."""
    # Package scripts must not start services on the host (they share its network).
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    # Trust what this host trusts (a network that inspects TLS has its own CA here).
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(cert, root / "usr/local/share/ca-certificates" / cert.name)
    run("chroot", root, "update-ca-certificates")
    mounts = []
    for kind, source, target in [("proc", "proc", "proc"), ("sysfs", "sys", "sys"), ("bind", "/dev", "dev")]:
        args = ["--rbind", source] if kind == "bind" else ["-t", kind, source]
        run("mount", *args, root / target)
        mounts.append(root / target)
    # pip's downloads are kept between runs.
    pip_cache = CACHE / "pip"
    pip_cache.mkdir(parents=True, exist_ok=True)
    (root / "root/.cache/pip").mkdir(parents=True, exist_ok=True)
    run("mount", "--bind", pip_cache, root / "root/.cache/pip")
    mounts.append(root / "root/.cache/pip")
    return mounts


def unmount(mounts: list[Path]) -> None:
    for mount in reversed(mounts):
        subprocess.run(["umount", "-R", "-l", str(mount)], check=False)


def build_wheel(workdir: Path, version: str | None = None, change: Callable[[Path], None] | None = None) -> Path:
    """This checkout as a wheel: numbered `version` (else as it is), its source tree first passed to `change`."""
    listed = run("git", "ls-files", "-co", "--exclude-standard", "-z", cwd=REPO).stdout.split("\0")
    wheels = workdir / "wheels"
    tree = workdir / f"src-{version or 'current'}"
    for name in filter(None, listed):
        if (REPO / name).is_file() and not name.startswith(("appliance/", "tests/", "bench/")):
            (tree / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, tree / name)
    if version:
        cfg = tree / "setup.cfg"
        cfg.write_text(re.sub(r"(?m)^version = .*$", f"version = {version}", cfg.read_text()))
    if change:
        change(tree)
    before = set(wheels.glob("*.whl")) if wheels.exists() else set()
    run(BIN / "pip", "wheel", "-q", "--no-deps", "-w", wheels, tree)
    (built,) = set(wheels.glob("*.whl")) - before
    return built


def replace_once(path: Path, old: str, new: str) -> None:
    """Change a source file of a wheel-to-be; fails loudly when the code it expects has moved."""
    text = path.read_text()
    assert text.count(old) == 1, f"{path.name} no longer has the code this test changes: {old!r}"
    path.write_text(text.replace(old, new))
