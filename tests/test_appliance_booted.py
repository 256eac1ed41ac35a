"""The appliance on a booted Debian 12: what a chroot cannot show.

A debootstrap root gets the playbook once over the chroot connection (the
packages need the network), then boots under systemd-nspawn with its own
network namespace and a veth link to this host, like a box on a home network.
From then on Ansible reaches it through nsenter (the chroot connection with
`ansible_chroot_exe` pointing at a small nsenter script), so the role sees
systemd running and does what it does on a real box: starts the units, waits
for /readyz, and rolls an upgrade back when the check fails.

On that box, for real: Picup, nginx, the firewall rule and the Avahi name come
up at boot; photos go in and come out over HTTPS through nginx with the local
CA's certificate; the firewall drops the web ports from outside the home
network; an upgrade that migrates the schema and then does not start is
rolled back (previous version, previous database) and the photo is still
there; an upgrade across a real schema change (a release with one more
migration) keeps the photo.

Nothing is installed from the internet after the boot: the box's network is
the veth link only, so pip installs from a wheelhouse downloaded beforehand
(`picup_pip_extra_args`, as an installer with a local index would).

Needs root (debootstrap, mounts, systemd-nspawn, veth), as CI has.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.debian_root import BIN, REPO, build_root, build_wheel, prepare_root, replace_once, run, unmount

PLAYBOOK_DIR = REPO / "appliance" / "ansible"
ADMIN, PASSWORD = "grandma", "correct horse battery staple"
MACHINE = "picupbox"  # this host's end of the link is ve-picupbox, the box's is host0
# Units that fail in the box because it shares this host's kernel, not because of the playbook:
# nfs-common mounts the kernel's rpc_pipefs, which a kernel without SUNRPC (this VM's) does not
# have and a container cannot load. On a real box the kernel brings it.
CONTAINER_ONLY_FAILURES = {"run-rpc_pipefs.mount"}
LAN_HOST, LAN_BOX = "10.251.77.1", "10.251.77.2"  # a home network (10.0.0.0/8 is in the firewall's list)
OUT_HOST, OUT_BOX = "198.51.100.1", "198.51.100.2"  # TEST-NET-2: not a home network
BROKEN, FUTURE = "99.0.0", "99.0.1"
HEALTH_TIMEOUT = 30
PROBE_TABLE = "appliance_upgrade_probe"
SHARE = "/srv/picup-photos"  # nfs_client_mount_point's default
NFS_PORT = 2049

# This host's kernel has no NFS at all (no nfs or nfsd filesystem, no modules to load), so
# the box's NAS is a stand-in: mount.nfs is replaced (dpkg-divert) by this script, which
# mounts the folder this host shares with the box (/run/fake-nas, bound in by nspawn) only
# while the "NAS" answers on port 2049, and fails as mount.nfs does when it is off. What is
# real: the role's fstab line, systemd mounting it at boot and on demand, the units'
# RequiresMountsFor=, and the watch that starts Picup when the share comes back.
FAKE_MOUNT_NFS = """#!/bin/sh
# The booted appliance test's stand-in for mount.nfs (this kernel has no NFS): "$1" is
# server:/export, "$2" the mount point.
server=${1%%:*}
if ! timeout 5 bash -c "exec 3<>/dev/tcp/$server/2049" 2>/dev/null; then
    echo "mount.nfs: Connection refused by $server (the test's NAS is off)" >&2
    exit 32
fi
exec mount --bind /run/fake-nas "$2"
"""


class FakeNas:
    """Port 2049 of this host, answering while the NAS is on (see FAKE_MOUNT_NFS)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.listener: socket.socket | None = None

    def on(self) -> None:
        self.listener = socket.create_server(("0.0.0.0", NFS_PORT))
        threading.Thread(target=self._answer, args=(self.listener,), daemon=True).start()

    def off(self) -> None:
        if self.listener is not None:
            # close() alone leaves the port listening while accept() waits in the other thread.
            self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            self.listener = None

    @staticmethod
    def _answer(listener: socket.socket) -> None:
        try:
            while True:
                listener.accept()[0].close()
        except OSError:  # closed: the NAS is off
            pass


def photo(color) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), color).save(out, "JPEG", quality=90)
    return out.getvalue()


def with_one_more_migration(tree: Path) -> None:
    """A future release: its schema has one more step."""
    replace_once(tree / "app/picup/migrations.py", "\n]\n\nLATEST = len(STEPS)",
                 f'\n    ("appliance test: one more step", "CREATE TABLE {PROBE_TABLE} (id INTEGER PRIMARY KEY)"),'
                 "\n]\n\nLATEST = len(STEPS)")


def broken_after_migrating(tree: Path) -> None:
    """A bad release: it migrates the database, then its web server will not start."""
    with_one_more_migration(tree)
    replace_once(tree / "app/picup/cli.py", "    settings = _settings(host=host, port=port, data_dir=data_dir)\n    try:",
                 "    settings = _settings(host=host, port=port, data_dir=data_dir)\n"
                 "    raise click.ClickException('this release is broken on purpose (appliance test)')\n    try:")


class PicupLocal(requests.adapters.HTTPAdapter):
    """Connects to the box's address and checks its certificate for picup.local, as a browser that
    found picup.local over mDNS does."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = "picup.local"
        super().init_poolmanager(*args, **kwargs)


class Box:
    def __init__(self, root: Path, workdir: Path, wheelhouse: Path):
        self.root, self.workdir, self.wheelhouse = root, workdir, wheelhouse
        self.ca = workdir / "picup-ca.crt"
        self.logs: list[str] = []
        self.nspawn: subprocess.Popen | None = None
        self.leader = 0
        self.inventory = workdir / "inventory.ini"
        self.enter = workdir / "nsenter-box"
        self.nas = FakeNas(workdir / "nas")
        self.nas.folder.mkdir()
        self.settings: dict[str, str] = {}  # variables of every later run (group_vars on a real laptop)

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    # --- Ansible -------------------------------------------------------------

    def apply(self, wheel: Path, playbook: str = "site.yml", **more) -> tuple[int, str, dict[str, int]]:
        extra = self.workdir / "vars.yml"
        extra.write_text(
            "picup_package_source: wheel\n"
            f"picup_wheel: {wheel}\n"
            "picup_pip_extra_args: --no-index --find-links /opt/wheelhouse\n"
            f"picup_admin_user: {ADMIN}\n"
            f"picup_admin_password: {PASSWORD!r}\n"
            "picup_worker_processes: 1\n"
            f"picup_health_timeout: {HEALTH_TIMEOUT}\n"
            "reverse_proxy_enabled: true\n"
            f"reverse_proxy_ip_addresses: [{LAN_BOX}]\n"  # the box's fixed address (else: the facts')
            f"reverse_proxy_ca_fetch_dest: {self.ca}\n"
            + "".join(f"{key}: {value}\n" for key, value in {**self.settings, **more}.items()))
        connection = f"{MACHINE} ansible_connection=community.general.chroot ansible_host={self.root} " \
                     "ansible_python_interpreter=/usr/bin/python3"
        if self.leader:
            connection += f" ansible_chroot_exe={self.enter}"
        self.inventory.write_text(f"[picup]\n{connection}\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_FIND_LINKS")}
        env.update(ANSIBLE_CONFIG=str(PLAYBOOK_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
        # Before the boot, the playbook runs in a UTS namespace named like the box, so the facts (the
        # certificate's names) are the box's own, as when it runs against the booted box.
        named = [] if self.leader else ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', MACHINE]
        started = time.monotonic()
        result = run(*named, BIN / "ansible-playbook", "-i", self.inventory, "-e", f"@{extra}", playbook,
                     check=False, cwd=PLAYBOOK_DIR, env=env)
        log = result.stdout + result.stderr
        self.logs.append(log)
        print(f"{playbook} with {wheel.name} ({'booted' if self.leader else 'chroot'}): "
              f"{time.monotonic() - started:.0f} s")
        recap = log.split("PLAY RECAP")[-1]
        counts = {}
        for line in recap.splitlines():
            if line.startswith(MACHINE):
                counts = {k: int(v) for k, v in (pair.split("=") for pair in line.split(":", 1)[1].split())}
        return result.returncode, log, counts

    # --- The booted box -------------------------------------------------------

    def boot(self) -> None:
        # The box's end of the link, set up by systemd-networkd at boot as on a real box.
        network = self.path("/etc/systemd/network/10-host0.network")  # before systemd's 80-container-host0
        network.write_text(f"[Match]\nName=host0\n\n[Network]\nAddress={LAN_BOX}/24\nAddress={OUT_BOX}/24\n"
                           f"Gateway={LAN_HOST}\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n")
        wants = self.path("/etc/systemd/system/multi-user.target.wants")
        wants.mkdir(parents=True, exist_ok=True)
        link = wants / "systemd-networkd.service"
        if not link.is_symlink():
            link.symlink_to("/lib/systemd/system/systemd-networkd.service")
        (self.path("/usr/sbin/policy-rc.d")).unlink(missing_ok=True)  # services may start now: they are in the box
        log = open(self.workdir / "boot.log", "ab")
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "--quiet", f"--directory={self.root}", "--boot", "--register=no", "--keep-unit",
             f"--machine={MACHINE}", "--network-veth", "--console=passive",
             f"--bind-ro={self.wheelhouse}:/opt/wheelhouse", f"--bind={self.nas.folder}:/run/fake-nas"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.leader = self._wait_for_init()
        self.enter.write_text("#!/bin/sh\n# Ansible's chroot connection, into the booted box: $1 is the root folder.\n"
                              f"shift\nexec nsenter --target {self.leader} --mount --uts --ipc --net --pid -- \"$@\"\n")
        self.enter.chmod(0o755)
        host_end = f"ve-{MACHINE}"
        self._wait(lambda: run("ip", "link", "show", host_end, check=False).returncode == 0, f"the link {host_end}")
        for address in (LAN_HOST, OUT_HOST):
            run("ip", "addr", "add", f"{address}/24", "dev", host_end)
        run("ip", "link", "set", host_end, "up")
        # Right after its start, the box's systemd may not answer yet ("Failed to connect to bus"): no state.
        asked = self._wait(lambda: (answer := self.inside("systemctl", "is-system-running", "--wait", check=False,
                                                          timeout=240)).stdout.strip() and answer,
                           "the box's systemd to say how its boot went", 240)
        state = self.boot_state = asked.stdout.strip()
        listed = self.inside("systemctl", "--failed", "--plain", "--no-legend", check=False).stdout
        self.failed_at_boot = {line.split()[0] for line in listed.splitlines() if line.strip()}
        if state not in ("running", "degraded"):
            pytest.fail(f"the box did not boot ({state}):\n{asked.stderr}\n{self.journal()}")

    def _wait_for_init(self) -> int:
        """The box's PID 1 on this host: the first systemd below nspawn (which forks a child of its own)."""
        def init():
            level = [self.nspawn.pid]
            while level:
                below = []
                for pid in level:
                    for child in map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()):
                        if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                            return child
                        below.append(child)
                level = below
            return 0
        return self._wait(init, "systemd to start in the box")

    def _wait(self, predicate, what: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.nspawn and self.nspawn.poll() is not None:
                pytest.fail(f"the box stopped while waiting for {what}:\n"
                            f"{(self.workdir / 'boot.log').read_text(errors='replace')[-3000:]}")
            try:
                found = predicate()
            except (OSError, ValueError):
                found = None
            if found:
                return found
            time.sleep(0.2)
        pytest.fail(f"no {what} within {timeout} s")

    def inside(self, *argv, check=True, timeout=120) -> subprocess.CompletedProcess:
        return run("nsenter", "--target", self.leader, "--mount", "--uts", "--ipc", "--net", "--pid", "--",
                   *argv, check=check, timeout=timeout)

    def active(self, *units) -> dict[str, str]:
        states = self.inside("systemctl", "is-active", *units, check=False).stdout.split()
        return dict(zip(units, states))

    def journal(self, *units) -> str:
        argv = ["journalctl", "--no-pager", "-n", "80"] + [f"--unit={u}" for u in units]
        return self.inside(*argv, check=False).stdout

    def poweroff(self) -> None:
        if self.nspawn and self.nspawn.poll() is None:
            self.nspawn.send_signal(signal.SIGTERM)  # nspawn shuts the box down in order
            try:
                self.nspawn.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.nspawn.pid, signal.SIGKILL)
                self.nspawn.wait()

    # --- What a family's browser does -------------------------------------------

    def browser(self) -> requests.Session:
        http = requests.Session()
        http.trust_env = False  # no proxy, and no CA bundle from the environment: this CA only
        http.verify = str(self.ca)
        http.mount("https://", PicupLocal())
        return http

    def sign_in(self) -> requests.Session:
        http = self.browser()
        answer = http.post(f"https://{LAN_BOX}/api/v1/session", json={"username": ADMIN, "password": PASSWORD},
                           timeout=30)
        assert answer.status_code == 200, answer.text
        http.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        http.cookie_flags = answer.headers.get("Set-Cookie", "")
        return http

    def upload(self, http: requests.Session, name: str, data: bytes) -> int:
        answer = http.post(f"https://{LAN_BOX}/api/v1/media", params={"filename": name}, data=data,
                           headers={"Content-Type": "application/octet-stream"}, timeout=60)
        assert answer.status_code == 201, answer.text
        return answer.json()["media"]["id"]

    def thumbnail(self, http: requests.Session, media_id: int) -> bytes:
        url = f"https://{LAN_BOX}/api/v1/media/{media_id}/thumb"
        self._wait(lambda: http.get(url, timeout=10).status_code == 200, f"the thumbnail of {media_id}", 120)
        return http.get(url, timeout=10).content

    def original(self, http: requests.Session, media_id: int) -> bytes:
        answer = http.get(f"https://{LAN_BOX}/api/v1/media/{media_id}/original", timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.content

    def ready(self) -> int:
        try:
            return self.browser().get(f"https://{LAN_BOX}/readyz", timeout=10).status_code
        except requests.ConnectionError:
            return 0

    def schema(self) -> tuple[int, set[str]]:
        with sqlite3.connect(f"file:{self.path('/var/lib/picup/picup.db')}?mode=ro", uri=True) as db:
            tables = {name for name, in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            return db.execute("PRAGMA user_version").fetchone()[0], tables

    def leftovers(self) -> dict:
        """What is left of Picup on the box, and whether the photo still is."""
        units = ("picup-web.service", "picup-worker.service", "picup-firewall.service", "picup-avahi-alias.service",
                 "picup-share-watch.timer")
        known = self.inside("systemctl", "list-unit-files", "--no-legend", *units, check=False).stdout
        originals = self.nas.folder / "library/originals"  # the photos moved to the NAS (on_the_nas)
        return {
            "units": [unit for unit in units if unit in known],
            "running": [unit for unit, state in self.active(*units).items() if state != "inactive"],
            "firewall": self.inside("nft", "list", "table", "inet", "picup", check=False).returncode == 0,
            "https": curl("--insecure", f"https://{LAN_BOX}/readyz"),
            "files": [name for name in ("/opt/picup", "/etc/nginx/sites-enabled/picup",
                                        "/etc/avahi/services/picup.service", "/var/lib/picup/picup.db",
                                        "/etc/picup/picup.toml") if self.path(name).exists()],
            "photo": any(hashlib.sha256(f.read_bytes()).hexdigest() == f.name == hashlib.sha256(self.photo).hexdigest()
                         for f in originals.rglob("*") if f.is_file()) if originals.exists() else False,
            "user": any(line.startswith("picup:") for line in self.path("/etc/passwd").read_text().splitlines()),
            "on_the_nas": sorted(path.name for path in self.nas.folder.iterdir()),
            "mounted": self.inside("findmnt", "--mountpoint", SHARE, check=False).returncode == 0,
        }

    def venv(self) -> str:
        return os.readlink(self.path("/opt/picup/venv"))


def curl(*argv, timeout=4) -> int:
    """curl's exit status: 0 answered, 7 refused, 28 no answer in time (dropped)."""
    return subprocess.run(["curl", "--silent", "--noproxy", "*", "--output", "/dev/null", "--max-time", str(timeout),
                           *argv],
                          check=False).returncode


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    """Install, boot, then a broken upgrade and a good one; each step's figures are kept for the tests.

    The tests run in this file's order: the box is running when they look at it, until `uninstalled`."""
    assert os.geteuid() == 0, "the booted appliance test needs root (debootstrap, nspawn, veth), as CI has"
    assert shutil.which("systemd-nspawn"), "systemd-nspawn is missing: `make test-tools` installs it"
    workdir = tmp_path_factory.mktemp("booted")
    root = workdir / "root"
    build_root(root)
    current = build_wheel(workdir)
    broken = build_wheel(workdir, BROKEN, broken_after_migrating)
    future = build_wheel(workdir, FUTURE, with_one_more_migration)
    wheelhouse = workdir / "wheelhouse"
    # What the box's pip may use: wheels for the box's Python (Ubuntu 24.04 has 3.12), which may not be ours.
    box_python = os.readlink(root / "usr/bin/python3").removeprefix("python")
    run(BIN / "pip", "download", "-q", "--only-binary=:all:", "--python-version", box_python,
        "--dest", wheelhouse, current)
    box = Box(root, workdir, wheelhouse)
    box.path("/etc/hostname").write_text(f"{MACHINE}\n")
    mounts = prepare_root(root)
    (root / "opt/wheelhouse").mkdir(parents=True)
    run("mount", "--bind", wheelhouse, root / "opt/wheelhouse")
    mounts.append(root / "opt/wheelhouse")
    try:
        box.installed = box.apply(current)  # the packages come from Debian's mirror: before the boot
        # What the nfs_client role installs, too: after the boot the box has no mirror to get it from.
        run("chroot", root, "apt-get", "-q", "update")
        run("chroot", root, "apt-get", "-q", "install", "-y", "--no-install-recommends", "nfs-common", "netbase")
        run("chroot", root, "dpkg-divert", "--local", "--rename", "--divert", "/sbin/mount.nfs.distrib",
            "--add", "/sbin/mount.nfs")
        box.path("/sbin/mount.nfs").write_text(FAKE_MOUNT_NFS)
        box.path("/sbin/mount.nfs").chmod(0o755)
        unmount(mounts)
        mounts = []
        started = time.monotonic()
        box.boot()
        print(f"booted in {time.monotonic() - started:.0f} s ({box.boot_state})")
        box.current_version = box.venv()
        units = ("picup-web.service", "picup-worker.service", "nginx.service", "picup-firewall.service",
                 "avahi-daemon.service", "picup-avahi-alias.service")
        try:  # a unit may still be starting (or waiting to retry: "activating") when the boot is done
            box._wait(lambda: set(box.active(*units).values()) == {"active"}, "every unit to be active", 60)
        except pytest.fail.Exception:
            pass
        box.at_boot = box.active(*units)
        box.restarts = {unit: box.inside("systemctl", "show", "--value", "--property=NRestarts", unit).stdout.strip()
                        for unit in units}  # "active" for a moment between the retries of a failing unit
        box.at_boot_journal = box.journal(*[u for u, state in box.at_boot.items() if state != "active"])
        box.reapplied = box.apply(current)

        http = box.sign_in()
        box.cookie_flags = http.cookie_flags
        box.photo = photo((40, 160, 90))
        box.photo_id = box.upload(http, "grandchildren.jpg", box.photo)
        box.photo_thumb = box.thumbnail(http, box.photo_id)
        box.schema_before = box.schema()

        box.broken = box.apply(broken)
        box._wait(lambda: box.ready() == 200, "the previous version to answer /readyz again", 90)
        box.after_broken = {
            "venv": box.venv(), "schema": box.schema(),
            "active": box.active("picup-web.service", "picup-worker.service"),
            "original": box.original(box.sign_in(), box.photo_id),
            "snapshots": sorted(p.name for p in box.path("/var/lib/picup/snapshots").iterdir()),
        }

        box.upgraded = box.apply(future)
        http = box.sign_in()
        box.after_upgrade = {
            "venv": box.venv(), "schema": box.schema(),
            "active": box.active("picup-web.service", "picup-worker.service"),
            "original": box.original(http, box.photo_id),
            "new_thumb": box.thumbnail(http, box.upload(http, "after-upgrade.jpg", photo((200, 120, 30)))),
        }

        box.future = future
        yield box
    except BaseException:
        if box.leader:
            print(box.journal("picup-web.service", "picup-worker.service", "nginx.service"))
        raise
    finally:
        box.poweroff()
        box.nas.off()
        unmount(mounts)


def test_picup_nginx_the_firewall_and_avahi_come_up_at_boot(box):
    assert box.installed[0] == 0, box.logs[0][-6000:]
    assert set(box.at_boot.values()) == {"active"}, f"{box.at_boot}\n{box.at_boot_journal}"
    assert set(box.restarts.values()) == {"0"}, f"{box.restarts}\n{box.journal(*box.restarts)}"
    # "degraded", not "running": nothing of ours, only what a container cannot do.
    unexpected = box.failed_at_boot - CONTAINER_ONLY_FAILURES
    assert not unexpected, f"{sorted(unexpected)} failed at boot\n{box.journal(*unexpected)}"


def test_applying_again_to_the_running_box_changes_nothing(box):
    code, log, counts = box.reapplied
    assert code == 0 and counts["failed"] == 0, log[-6000:]
    assert counts["changed"] == 0, log[-6000:]


def test_photos_go_in_and_out_over_https_with_the_local_ca(box):
    assert box.ready() == 200
    http = box.sign_in()
    assert "Secure" in http.cookie_flags and "HttpOnly" in http.cookie_flags
    assert box.original(http, box.photo_id) == box.photo
    assert box.photo_thumb[:4] == b"RIFF" or box.photo_thumb[:3] == b"\xff\xd8\xff"
    # Plain HTTP is sent to HTTPS.
    plain = box.browser().get(f"http://{LAN_BOX}/photos", allow_redirects=False, timeout=10)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")
    # A certificate from another authority is refused (the CA file is what makes it trusted).
    stranger = box.browser()
    stranger.verify = True  # the system's authorities only
    with pytest.raises(requests.exceptions.SSLError):
        stranger.get(f"https://{LAN_BOX}/readyz", timeout=10)


def test_the_firewall_drops_the_web_ports_from_outside_the_home_network(box):
    ca = ["--cacert", str(box.ca), "--resolve", f"picup.local:443:{LAN_BOX}"]
    assert curl(*ca, "--interface", LAN_HOST, "https://picup.local/readyz") == 0  # the home network
    outside = ["--cacert", str(box.ca), "--resolve", f"picup.local:443:{OUT_BOX}", "--interface", OUT_HOST]
    assert curl(*outside, "https://picup.local/readyz") == 28  # dropped: no answer at all
    assert curl("--interface", OUT_HOST, f"http://{OUT_BOX}/") == 28
    # Only the web ports are dropped: a closed port still answers "refused" to the same address.
    assert curl("--interface", OUT_HOST, f"http://{OUT_BOX}:9/") == 7
    # Picup's own port is for nginx on the box only, never for the network.
    assert curl("--interface", LAN_HOST, f"http://{LAN_BOX}:8080/readyz") == 28


def test_avahi_answers_for_picup_local(box):
    resolved = box.inside("avahi-resolve", "-4", "--name", "picup.local", check=False, timeout=30)
    assert resolved.stdout.split() == ["picup.local", LAN_BOX], resolved.stdout + resolved.stderr


def test_an_upgrade_that_fails_its_health_check_is_rolled_back_with_its_database(box):
    code, log, counts = box.broken
    assert code != 0 and counts["failed"] == 1, log[-6000:]
    assert f"Picup {BROKEN} did not start or did not answer /readyz" in log
    assert f"The previous version ({box.current_version}) and its database are back and running" in log
    after = box.after_broken
    assert after["venv"] == box.current_version
    assert after["schema"] == box.schema_before and PROBE_TABLE not in after["schema"][1]
    assert set(after["active"].values()) == {"active"}, after
    assert after["original"] == box.photo
    # The snapshot the migration took, and the database as the broken release left it.
    assert any(name.startswith(f"picup.db.v{box.schema_before[0]}-") for name in after["snapshots"])
    assert any(name.startswith("before-rollback-") for name in after["snapshots"])


def test_an_upgrade_across_a_schema_change_keeps_the_photos(box):
    code, log, counts = box.upgraded
    assert code == 0 and counts["failed"] == 0, log[-6000:]
    after = box.after_upgrade
    assert after["venv"] == f"/opt/picup/venv-{FUTURE}"
    version, tables = after["schema"]
    assert version == box.schema_before[0] + 1 and PROBE_TABLE in tables
    assert set(after["active"].values()) == {"active"}, after
    assert after["original"] == box.photo
    assert after["new_thumb"][:4] == b"RIFF" or after["new_thumb"][:3] == b"\xff\xd8\xff"


@pytest.fixture(scope="module")
def on_the_nas(box):
    """After the upgrades: the photos move to a NAS share as docs/install.md says; the NAS goes off
    and comes back; then a power cut, after which the box starts before the NAS."""
    picup = ("picup-web.service", "picup-worker.service")
    found = {}

    # Moving the photos: Picup stopped, the library copied to the share, the share's variables, site.yml.
    box.inside("systemctl", "stop", *picup)
    run("cp", "-a", box.path("/var/lib/picup/library"), box.nas.folder / "library")
    box.nas.on()
    box.settings.update(nfs_client_enabled="true", nfs_client_server=LAN_HOST, nfs_client_export="/volume1/photos")
    box.moved = box.apply(box.future)
    http = box.sign_in()
    found["moved"] = {
        "mounted": box.inside("findmnt", "--mountpoint", SHARE, check=False).returncode == 0,
        "active": box.active(*picup, "picup-share-watch.timer"),
        "needs": {unit: box.inside("systemctl", "show", "--value", "--property=RequiresMountsFor", unit).stdout.split()
                  for unit in picup},
        "original": box.original(http, box.photo_id),
    }
    shutil.rmtree(box.path("/var/lib/picup/library"))  # the old copy, once the photos show from the NAS
    box.moved_again = box.apply(box.future)
    new = photo((20, 60, 220))
    found["new_thumb"] = box.thumbnail(http, box.upload(http, "on-the-nas.jpg", new))
    sha = hashlib.sha256(new).hexdigest()
    found["new_on_the_nas"] = (box.nas.folder / "library/originals" / sha[:2] / sha[2:4] / sha).read_bytes() == new

    # The NAS goes off and its share is unmounted: Picup stops with it and does not start without it.
    box.nas.off()
    box.inside("systemctl", "stop", box.inside("systemd-escape", "--path", "--suffix=mount", SHARE).stdout.strip())
    stopped = box.active(*picup)
    start = box.inside("systemctl", "start", "picup-web.service", check=False, timeout=180)
    found["without_the_share"] = {"after_stop": stopped, "start": start.returncode, "why": start.stderr,
                                  "active": box.active(*picup), "ready": box.ready()}
    # Back on: the watch mounts it and starts Picup within a minute or so, with nobody at the box.
    box.nas.on()
    started = time.monotonic()
    box._wait(lambda: box.ready() == 200, "Picup to start again once the NAS is back", 150)
    found["back_after"] = time.monotonic() - started

    # A power cut: the box is up again before the NAS. It boots; Picup waits; the NAS comes up; Picup starts.
    box.nas.off()
    box.poweroff()
    box.boot()
    found["booted_without_the_nas"] = {"active": box.active(*picup), "ready": box.ready(),
                                       "mounted": box.inside("findmnt", "--mountpoint", SHARE,
                                                             check=False).returncode == 0}
    box.nas.on()
    started = time.monotonic()
    box._wait(lambda: box.ready() == 200, "Picup to start once the NAS is up after the power cut", 150)
    found["up_after_the_nas"] = time.monotonic() - started
    found["after_power_cut"] = box.original(box.sign_in(), box.photo_id)
    print(f"Picup was back {found['back_after']:.0f} s after the NAS, {found['up_after_the_nas']:.0f} s after "
          "the power cut")
    box.on_the_nas = found
    return box


def test_photos_move_to_a_nas_share_that_picup_needs(on_the_nas):
    box, found = on_the_nas, on_the_nas.on_the_nas
    code, log, counts = box.moved
    assert code == 0 and counts["failed"] == 0, log[-6000:]
    moved = found["moved"]
    assert moved["mounted"] and set(moved["active"].values()) == {"active"}, moved
    assert all(SHARE in paths for paths in moved["needs"].values()), moved  # both, through the storage drop-in
    assert moved["original"] == box.photo
    code, log, counts = box.moved_again
    assert code == 0 and counts["failed"] == 0 and counts["changed"] == 0, log[-6000:]
    assert found["new_on_the_nas"]
    assert found["new_thumb"][:4] == b"RIFF" or found["new_thumb"][:3] == b"\xff\xd8\xff"


def test_picup_does_not_start_without_its_share_and_starts_when_it_is_back(on_the_nas):
    found = on_the_nas.on_the_nas
    without = found["without_the_share"]
    assert set(without["after_stop"].values()) == {"inactive"}, without
    assert without["start"] != 0 and "dependency" in without["why"].lower(), without
    assert set(without["active"].values()) == {"inactive"} and without["ready"] == 502, without
    assert found["back_after"] < 150


def test_after_a_power_cut_picup_waits_for_the_nas_then_starts_by_itself(on_the_nas):
    found = on_the_nas.on_the_nas
    booted = found["booted_without_the_nas"]
    assert not booted["mounted"] and booted["ready"] == 502, booted
    assert set(booted["active"].values()) == {"inactive"}, booted
    assert found["after_power_cut"] == on_the_nas.photo


@pytest.fixture(scope="module")
def off_the_nas(on_the_nas):
    """The photos move back from the NAS to the box's disk as docs/install.md says; then, for the
    uninstall tests, onto the NAS again."""
    box = on_the_nas
    picup = ("picup-web.service", "picup-worker.service")
    watch = ("picup-share-watch.timer", "picup-share-watch.service")
    found = {}
    box.inside("systemctl", "stop", "picup-share-watch.timer", *picup)
    box.inside("cp", "-a", f"{SHARE}/library", "/var/lib/picup/library")
    box.settings.update(nfs_client_enabled="false")
    box.back_home = box.apply(box.future)
    http = box.sign_in()
    new = photo((230, 200, 40))
    new_thumb = box.thumbnail(http, box.upload(http, "back-home.jpg", new))
    sha = hashlib.sha256(new).hexdigest()
    found["home"] = {
        "active": box.active(*picup), "watch": box.active(*watch),
        "watch_files": [unit for unit in watch if box.path(f"/etc/systemd/system/{unit}").exists()],
        "needs": {unit: box.inside("systemctl", "show", "--value", "--property=RequiresMountsFor", unit).stdout.split()
                  for unit in picup},
        "original": box.original(http, box.photo_id),
        "new_thumb": new_thumb,
        "new_on_the_box": box.path(f"/var/lib/picup/library/originals/{sha[:2]}/{sha[2:4]}/{sha}").read_bytes() == new,
    }
    # Onto the NAS again (the new photo copied there too), as in docs/install.md.
    box.inside("systemctl", "stop", *picup)
    run("cp", "-a", f"{box.path('/var/lib/picup/library')}/.", box.nas.folder / "library")
    box.settings.update(nfs_client_enabled="true")
    box.back_to_the_nas = box.apply(box.future)
    shutil.rmtree(box.path("/var/lib/picup/library"))
    found["nas_again"] = {"active": box.active(*picup, "picup-share-watch.timer"),
                          "original": box.original(box.sign_in(), box.photo_id)}
    box.off_the_nas = found
    return box


def test_photos_move_back_from_the_nas_and_the_share_watch_goes(off_the_nas):
    box, found = off_the_nas, off_the_nas.off_the_nas
    code, log, counts = box.back_home
    assert code == 0 and counts["failed"] == 0, log[-6000:]
    home = found["home"]
    assert set(home["active"].values()) == {"active"}, home
    assert set(home["watch"].values()) == {"inactive"} and home["watch_files"] == [], home
    assert all(SHARE not in paths for paths in home["needs"].values()), home
    assert home["original"] == box.photo and home["new_on_the_box"], home
    assert home["new_thumb"][:4] == b"RIFF" or home["new_thumb"][:3] == b"\xff\xd8\xff"
    code, log, counts = box.back_to_the_nas
    assert code == 0 and counts["failed"] == 0, log[-6000:]
    assert set(found["nas_again"]["active"].values()) == {"active"}, found["nas_again"]
    assert found["nas_again"]["original"] == box.photo


@pytest.fixture(scope="module")
def uninstalled(off_the_nas):
    """After the tests above (the photos on the NAS): uninstall, install again, uninstall with the data."""
    box = off_the_nas
    box.uninstalled = box.apply(box.future, "uninstall.yml")
    box.after_uninstall = box.leftovers()
    box.reinstalled = box.apply(box.future)
    box.after_reinstall = box.original(box.sign_in(), box.photo_id)
    box.removed = box.apply(box.future, "uninstall.yml", picup_uninstall_remove_data="true")
    box.after_removal = box.leftovers()
    return box


def test_uninstall_keeps_the_photos_and_a_new_install_brings_them_back(uninstalled):
    box = uninstalled
    code, log, counts = box.uninstalled
    assert code == 0 and counts["failed"] == 0, log[-6000:]
    left = box.after_uninstall
    assert left["units"] == [] and left["running"] == [] and not left["firewall"], left
    assert left["https"] == 7, left  # nothing answers on 443 any more
    assert left["files"] == ["/var/lib/picup/picup.db", "/etc/picup/picup.toml"], left
    assert left["photo"] and left["user"], left
    assert left["on_the_nas"] == ["library", "tmp"] and not left["mounted"], left  # unmounted, kept on the NAS
    code, log, counts = box.reinstalled
    assert code == 0 and counts["failed"] == 0, log[-6000:]
    assert box.after_reinstall == box.photo


def test_uninstall_asked_to_remove_the_data_leaves_nothing_of_picup(uninstalled):
    code, log, counts = uninstalled.removed
    assert code == 0 and counts["failed"] == 0, log[-6000:]
    left = uninstalled.after_removal
    assert left == {"units": [], "running": [], "firewall": False, "https": 7, "files": [], "photo": False,
                    "user": False, "on_the_nas": [], "mounted": False}, left
