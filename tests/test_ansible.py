"""The Ansible appliance (appliance/ansible), linted and applied for real.

The playbook is applied with Ansible's chroot connection to a throwaway
Debian 12 root made with debootstrap (tests/debian_root.py), with wheels
built from this checkout as the package source. Then Picup is started inside that root as the `picup`
user, with the command and environment of the installed systemd units, and
a photo is uploaded and rendered.

What a chroot cannot do, and what is checked instead: no systemd runs there,
so the role does not start services, mount the NFS share, load the firewall
rule, run Avahi or do its /readyz health check (it looks for
/run/systemd/system, as systemd itself does). These tests check the unit files
and their enable links, the storage drop-in, the fstab line, the nftables
file (parsed by `nft --check`), the Avahi service file, nginx's configuration
(`nginx -t`) and the certificate chain; they start Picup themselves.

The same playbook on a booted box (systemd running: services, HTTPS, the
firewall, health-checked upgrades and their rollback) is tested in
test_appliance_booted.py.

Needs root (debootstrap, chroot, mounts), as CI has.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.debian_root import BIN, REPO, build_root, build_wheel, prepare_root, run, unmount
from tests.test_systemd_units import EXPOSURE_TARGET, overall_exposure

PLAYBOOK_DIR = REPO / "appliance" / "ansible"
ADMIN, PASSWORD = "grandpa", "correct horse battery staple"
OLD_VERSION = "0.0.9"


# --- Lint ---------------------------------------------------------------------


def test_yamllint_is_clean():
    result = run(BIN / "yamllint", "--strict", ".", check=False, cwd=PLAYBOOK_DIR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint_production_profile_is_clean():
    result = run(BIN / "ansible-lint", "--profile", "production", "--offline", check=False, cwd=PLAYBOOK_DIR,
                 env={**os.environ, "ANSIBLE_CONFIG": str(PLAYBOOK_DIR / "ansible.cfg")})
    assert result.returncode == 0, result.stdout + result.stderr


# --- The throwaway Debian root ------------------------------------------------


def build_wheels(workdir: Path) -> tuple[Path, Path]:
    """The same code numbered as an older release, and the checkout as a wheel."""
    return build_wheel(workdir, OLD_VERSION), build_wheel(workdir)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Appliance:
    """The root, the playbook runs against it, and Picup started inside it."""

    def __init__(self, root: Path, workdir: Path):
        self.root, self.workdir = root, workdir
        self.port = free_port()
        self.inventory = workdir / "inventory.ini"
        self.inventory.write_text(
            "[picup]\n"
            f"testroot ansible_connection=community.general.chroot ansible_host={root} "
            "ansible_python_interpreter=/usr/bin/python3\n")
        self.logs: list[str] = []

    def apply(self, wheel: Path) -> dict[str, int]:
        extra = self.workdir / "vars.yml"
        extra.write_text(
            "picup_package_source: wheel\n"
            f"picup_wheel: {wheel}\n"
            f"picup_admin_user: {ADMIN}\n"
            f"picup_admin_password: {PASSWORD!r}\n"
            f"picup_port: {self.port}\n"
            "picup_worker_processes: 1\n"
            "reverse_proxy_enabled: true\n"
            f"reverse_proxy_ca_fetch_dest: {self.workdir / 'picup-ca.crt'}\n"
            "nfs_client_enabled: true\n"
            "nfs_client_server: nas.lan\n"
            "nfs_client_export: /volume1/photos\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_FIND_LINKS")}
        env.update(ANSIBLE_CONFIG=str(PLAYBOOK_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        started = time.monotonic()
        result = run(BIN / "ansible-playbook", "-i", self.inventory, "-e", f"@{extra}", "site.yml",
                     check=False, cwd=PLAYBOOK_DIR, env=env)
        log = result.stdout + result.stderr
        self.logs.append(log)
        print(f"apply of {wheel.name}: {time.monotonic() - started:.0f} s")
        assert result.returncode == 0, log[-6000:]
        recap = re.search(r"testroot\s*:\s*(.*)", log.split("PLAY RECAP")[-1]).group(1)
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap)}

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def unit(self, name: str) -> dict[str, list[str]]:
        """Keys of a unit as installed, its drop-ins applied after it (as systemd reads them)."""
        files = [self.path(f"/etc/systemd/system/{name}")]
        files += sorted(self.path(f"/etc/systemd/system/{name}.d").glob("*.conf"))
        keys: dict[str, list[str]] = {}
        for file in files:
            for line in file.read_text().splitlines():
                if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
                    key, value = line.split("=", 1)
                    keys.setdefault(key.strip(), []).append(value.strip())
        return keys

    def start(self, name: str) -> subprocess.Popen:
        """Start a unit's ExecStart inside the root, as its User=, with its Environment=."""
        unit = self.unit(name)
        env = dict(pair.split("=", 1) for pair in unit["Environment"])
        user = unit["User"][-1]
        command = f"cd {unit['WorkingDirectory'][-1]} && exec {unit['ExecStart'][-1]}"
        argv = ["chroot", str(self.root), "runuser", "-u", user, "--",
                "env", "-i", *[f"{k}={v}" for k, v in env.items()], "/bin/sh", "-c", command]
        log = open(self.workdir / f"{name}.log", "ab")
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def stop(process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def running(self):
        return Running(self)


class Running:
    """Picup's web and worker units running in the root, and a signed-in session."""

    def __init__(self, appliance: Appliance):
        self.appliance = appliance
        self.url = f"http://127.0.0.1:{appliance.port}"
        self.processes: list[subprocess.Popen] = []
        self.http = requests.Session()

    def __enter__(self):
        self.processes.append(self.appliance.start("picup-web.service"))
        self.wait(lambda: self.http.get(f"{self.url}/healthz", timeout=2).status_code == 200, "/healthz")
        self.processes.append(self.appliance.start("picup-worker.service"))
        signed_in = self.http.post(f"{self.url}/api/v1/session", json={"username": ADMIN, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        self.http.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
        return self

    def __exit__(self, *exc):
        for process in reversed(self.processes):
            Appliance.stop(process)

    def wait(self, predicate, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    logs = "".join(p.read_text()[-3000:] for p in self.appliance.workdir.glob("*.service.log"))
                    pytest.fail(f"Picup exited ({process.returncode}) while waiting for {what}:\n{logs}")
            try:
                if predicate():
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        pytest.fail(f"no {what} within {timeout} s")

    def upload(self, name: str, data: bytes) -> int:
        answer = self.http.post(f"{self.url}/api/v1/media", params={"filename": name}, data=data,
                                headers={"Content-Type": "application/octet-stream"})
        assert answer.status_code == 201, answer.text
        return answer.json()["media"]["id"]

    def thumbnail(self, media_id: int) -> bytes:
        thumb = f"{self.url}/api/v1/media/{media_id}/thumb"
        self.wait(lambda: self.http.get(thumb, timeout=5).status_code == 200, f"the thumbnail of {media_id}")
        answer = self.http.get(thumb)
        assert answer.headers["Content-Type"].startswith("image/")
        return answer.content


def photo(color) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), color).save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture(scope="module")
def appliance(tmp_path_factory):
    """Install the older release, add a photo, upgrade to the checkout, apply again.

    Each step's figures are kept for the tests below."""
    assert os.geteuid() == 0, "the appliance test needs root (debootstrap, chroot, mount), as CI has"
    workdir = tmp_path_factory.mktemp("appliance")
    root = workdir / "root"
    started = time.monotonic()
    build_root(root)
    print(f"root ready in {time.monotonic() - started:.0f} s")
    mounts = prepare_root(root)
    try:
        old_wheel, new_wheel = build_wheels(workdir)
        box = Appliance(root, workdir)
        box.first = box.apply(old_wheel)
        box.first_link = os.readlink(box.path("/opt/picup/venv"))
        box.old_photo = photo((200, 30, 30))
        with box.running() as picup:
            box.old_id = picup.upload("before-upgrade.jpg", box.old_photo)
            box.old_thumb = picup.thumbnail(box.old_id)
        box.upgrade = box.apply(new_wheel)
        box.again = box.apply(new_wheel)
        box.new_version = new_wheel.name.split("-")[1]
        yield box
    finally:
        unmount(mounts)


# --- Applied to the root ------------------------------------------------------


def test_the_first_apply_installs_the_older_release(appliance):
    assert appliance.first["failed"] == 0 and appliance.first["changed"] > 0
    assert appliance.first_link == f"/opt/picup/venv-{OLD_VERSION}"
    assert appliance.old_thumb[:3] == b"\xff\xd8\xff" or appliance.old_thumb[:4] == b"RIFF"


def test_a_second_apply_changes_nothing(appliance):
    assert appliance.upgrade["changed"] > 0
    assert appliance.again["changed"] == 0, appliance.logs[-1][-4000:]
    assert appliance.again["failed"] == 0


def test_the_upgrade_switches_versions_and_keeps_the_older_one_for_a_rollback(appliance):
    assert os.readlink(appliance.path("/opt/picup/venv")) == f"/opt/picup/venv-{appliance.new_version}"
    assert appliance.path(f"/opt/picup/venv-{OLD_VERSION}/bin/picup").exists()
    version = run("chroot", appliance.root, "/opt/picup/venv/bin/picup", "--version").stdout
    assert appliance.new_version in version


def test_picup_runs_as_installed_keeps_the_photo_and_renders_new_ones(appliance):
    with appliance.running() as picup:
        assert picup.http.get(f"{picup.url}/readyz").status_code == 200
        kept = picup.http.get(f"{picup.url}/api/v1/media/{appliance.old_id}/original")
        assert kept.status_code == 200 and kept.content == appliance.old_photo
        new_id = picup.upload("after-upgrade.jpg", photo((30, 30, 200)))
        assert picup.thumbnail(new_id)
    # The database is on the local disk, the photos under the share's mount point.
    assert appliance.path("/var/lib/picup/picup.db").exists()
    originals = list(appliance.path("/srv/picup-photos/library/originals").rglob("*"))
    assert hashlib.sha256(appliance.old_photo).hexdigest() in {p.name for p in originals}
    users = run("chroot", appliance.root, "runuser", "-u", "picup", "--",
                "/opt/picup/venv/bin/picup", "user", "list").stdout
    assert re.search(rf"^\s*\d+\s+{ADMIN}\s.*admin$", users, re.M)


def test_settings_are_private_and_nothing_secret_is_logged(appliance):
    config = appliance.path("/etc/picup/picup.toml")
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    text = config.read_text()
    assert f'port = {appliance.port}' in text and 'host = "127.0.0.1"' in text
    assert 'trusted_proxy = "127.0.0.1"' in text
    assert all(PASSWORD not in log for log in appliance.logs)


def test_the_units_are_installed_enabled_and_wait_for_the_photo_share(appliance):
    wants = appliance.path("/etc/systemd/system/multi-user.target.wants")
    for unit in ("picup-web.service", "picup-worker.service", "picup-firewall.service",
                 "picup-avahi-alias.service", "nginx.service"):
        assert (wants / unit).is_symlink(), unit
    # With the photos on the NAS: the watch that starts Picup when the share comes back.
    assert appliance.path("/etc/systemd/system/timers.target.wants/picup-share-watch.timer").is_symlink()
    assert (appliance.path("/etc/systemd/system/picup-web.service").read_text()
            == (REPO / "systemd/picup-web.service").read_text())
    for unit in ("picup-web.service", "picup-worker.service"):
        keys = appliance.unit(unit)
        assert keys["RequiresMountsFor"] == ["/srv/picup-photos"]
        assert keys["ReadWritePaths"] == ["/srv/picup-photos"]
    analyze = run("chroot", appliance.root, "systemd-analyze", "verify",
                  "/etc/systemd/system/picup-web.service", "/etc/systemd/system/picup-worker.service",
                  "/etc/systemd/system/picup-firewall.service", "/etc/systemd/system/picup-share-watch.service",
                  "/etc/systemd/system/picup-share-watch.timer", check=False)
    assert analyze.returncode == 0 and not (analyze.stdout + analyze.stderr).strip(), \
        f"systemd-analyze verify warns:\n{analyze.stdout}{analyze.stderr}"
    for unit in ("picup-web.service", "picup-worker.service"):  # as installed, with the NFS drop-in
        rated = run("systemd-analyze", "security", "--offline=true", f"--root={appliance.root}", "--no-pager",
                    unit, check=False)
        exposure, rating = overall_exposure(rated, unit)
        assert exposure <= EXPOSURE_TARGET, f"{unit}: exposure {exposure} {rating}"


def test_the_nfs_share_is_in_fstab_with_safe_options(appliance):
    lines = [line.split() for line in appliance.path("/etc/fstab").read_text().splitlines()
             if "/srv/picup-photos" in line]
    assert len(lines) == 1
    source, point, kind, options, *_ = lines[0]
    assert (source, point, kind) == ("nas.lan:/volume1/photos", "/srv/picup-photos", "nfs")
    assert {"hard", "_netdev", "nofail"} <= set(options.split(","))


def test_the_firewall_rule_lets_in_the_home_network_only(appliance):
    rules = appliance.path("/etc/picup/firewall.nft").read_text()
    assert "tcp dport { 80, 443 } ip saddr @home4 accept" in rules
    assert "tcp dport { 80, 443 } drop" in rules
    assert f"tcp dport {appliance.port} drop" in rules
    assert "192.168.0.0/16" in rules
    checked = run("chroot", appliance.root, "nft", "--check", "-f", "/etc/picup/firewall.nft", check=False)
    assert checked.returncode == 0, checked.stderr


def test_avahi_announces_picup_local(appliance):
    service = ET.parse(appliance.path("/etc/avahi/services/picup.service")).getroot()
    assert service.findtext("service/type") == "_https._tcp"
    assert service.findtext("service/host-name") == "picup.local"
    alias = appliance.path("/etc/systemd/system/picup-avahi-alias.service").read_text()
    assert "avahi-publish --address --no-reverse picup.local" in alias


def test_nginx_serves_https_with_a_certificate_from_the_local_ca(appliance):
    checked = run("chroot", appliance.root, "nginx", "-t", check=False)
    assert checked.returncode == 0, checked.stderr
    site = appliance.path("/etc/nginx/sites-available/picup").read_text()
    assert f"server 127.0.0.1:{appliance.port};" in site
    assert "client_max_body_size 0;" in site and "proxy_request_buffering off;" in site
    verified = run("openssl", "verify", "-CAfile", appliance.workdir / "picup-ca.crt",
                   appliance.path("/etc/picup/tls/picup.crt"), check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    names = run("openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                appliance.path("/etc/picup/tls/picup.crt")).stdout
    assert "DNS:picup.local" in names
