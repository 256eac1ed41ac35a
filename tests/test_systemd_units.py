"""The systemd units in systemd/, checked as they will be installed.

- ``systemd-analyze verify`` and ``systemd-analyze security --offline=true``
  run on a throwaway root that holds the unit files byte for byte at
  /etc/systemd/system (where the Ansible role puts them), this machine's own
  systemd units beside them, and a program at /opt/picup/venv/bin/picup. The
  units are loaded by name, so systemd finds them, and the storage drop-in
  from systemd/README.md, the way it will on the server. Any line of output
  from ``verify`` fails, and so does an exposure above 4.0.
- The web and worker units' command lines and environments, read from the
  unit files with their paths moved into a temporary folder, run as real
  processes: the web answers, spools request bodies to TMPDIR, lets a
  download in flight finish after SIGTERM and exits within TimeoutStopSec;
  the worker renders what the web received.

systemd-analyze comes with Debian's systemd package; when it is missing it is
installed with apt-get (the tests run as root, as CI does).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from picup.config import Settings
from tests import media_files
from tests.conftest import free_port
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
UNIT_DIR = REPO / "systemd"
UNITS = ("picup-web.service", "picup-worker.service")
VENV = Path(sys.executable).parent.parent
INSTALLED_VENV = "/opt/picup/venv"
EXPOSURE_TARGET = 4.0
# What a system service gets from systemd before the unit's own Environment=.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"


# ----------------------------------------------------------------- unit files
def parse_unit(*texts: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file and its drop-ins, each a list of (key, value) in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for text in texts:
        current = None
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], [])
                continue
            assert current is not None, f"a setting outside any section: {raw!r}"
            assert not line.endswith("\\"), f"continued lines are not parsed here: {raw!r}"
            key, sep, value = line.partition("=")
            assert sep, f"not a setting: {raw!r}"
            current.append((key.strip(), value.strip()))
    return sections


def values(unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def last(unit, section: str, key: str) -> str | None:
    found = values(unit, section, key)
    return found[-1] if found else None


def environment(unit) -> dict[str, str]:
    """Environment= as systemd builds it: later assignments win, an empty one clears the list."""
    env: dict[str, str] = {}
    for value in values(unit, "Service", "Environment"):
        if not value:
            env.clear()
        for assignment in shlex.split(value):
            name, _, setting = assignment.partition("=")
            env[name] = setting
    return env


def seconds(span: str) -> float:
    """A systemd time span such as "45s", "2min", "1min 30s" or "90"."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", span):
        total += float(number) * units[unit]
    return total


def unit_text(name: str) -> str:
    return (UNIT_DIR / name).read_text()


def readme_dropin() -> str:
    """The storage drop-in exactly as systemd/README.md tells installers to write it."""
    readme = (UNIT_DIR / "README.md").read_text()
    blocks = re.findall(r"```ini\n(.*?)```", readme, flags=re.S)
    found = [b for b in blocks if "storage.conf" in b]
    assert len(found) == 1, "systemd/README.md shows one storage.conf drop-in"
    return found[0]


# ------------------------------------------------------------ systemd-analyze
@pytest.fixture(scope="session")
def analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:  # Debian ships it in the systemd package
        apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=apt)
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd"], check=True, env=apt)
        path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze is needed (Debian package: systemd)"
    return path


def make_root(root: Path, *, dropin: str | None = None, program: bool = True,
              units: dict[str, str] | None = None) -> Path:
    """A throwaway root with the units where the Ansible role installs them."""
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    for name, text in (units or {name: unit_text(name) for name in UNITS}).items():
        (system / name).write_text(text)
        if dropin is not None:
            (system / f"{name}.d").mkdir()
            (system / f"{name}.d/storage.conf").write_text(dropin)
    # The units they name (network-online.target, multi-user.target, ...) are
    # this machine's own, as they will be on the server.
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    if Path("/lib").is_symlink():
        (root / "lib").symlink_to(os.readlink("/lib"))
    if program:
        # A copy, not a symlink: systemd resolves paths inside the root, where
        # a link to this checkout's .venv would point at nothing.
        target = root / INSTALLED_VENV.lstrip("/") / "bin/picup"
        target.parent.mkdir(parents=True)
        shutil.copy2(VENV / "bin/picup", target)
        target.chmod(0o755)
    return root


def verify(analyze: str, root: Path, unit: str) -> subprocess.CompletedProcess:
    return subprocess.run([analyze, "verify", f"--root={root}", "--recursive-errors=yes", unit],
                          capture_output=True, text=True, timeout=120)


def security(analyze: str, root: Path, unit: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([analyze, "security", "--offline=true", f"--root={root}",
                           f"--threshold={int(EXPOSURE_TARGET * 10)}", "--no-pager", *extra, unit],
                          capture_output=True, text=True, timeout=120)


def overall_exposure(result: subprocess.CompletedProcess, unit: str) -> tuple[float, str]:
    found = re.search(rf"Overall exposure level for {re.escape(unit)}: (\d+(?:\.\d+)?) (\w+)", result.stdout)
    assert found, f"no overall exposure in the output:\n{result.stdout}\n{result.stderr}"
    return float(found.group(1)), found.group(2)


ROOT_KINDS = {"as shipped": None, "with the storage drop-in": "README"}


@pytest.fixture(scope="module", params=list(ROOT_KINDS))
def installed_root(request, tmp_path_factory):
    dropin = readme_dropin() if ROOT_KINDS[request.param] else None
    return make_root(tmp_path_factory.mktemp(request.param.replace(" ", "-")), dropin=dropin)


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_verify_has_nothing_to_say(analyze, installed_root, unit):
    result = verify(analyze, installed_root, unit)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0 and not output, f"systemd-analyze verify {unit}:\n{output}"


@pytest.mark.parametrize("unit", UNITS)
def test_systemd_analyze_security_rates_the_unit_ok_or_better(analyze, installed_root, unit):
    result = security(analyze, installed_root, unit)
    exposure, rating = overall_exposure(result, unit)
    print(f"{unit} ({installed_root.name}): exposure {exposure} {rating}")
    assert exposure <= EXPOSURE_TARGET and rating in ("SAFE", "OK"), result.stdout
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stderr.strip(), result.stderr

    # The hardening the issue names, as systemd itself assesses it.
    checks = {c["name"]: c for c in json.loads(security(analyze, installed_root, unit, "--json=short").stdout)}
    for name in ("ProtectSystem=", "ProtectHome=", "PrivateTmp=", "NoNewPrivileges=", "User=/DynamicUser=",
                 "CapabilityBoundingSet=~CAP_SYS_ADMIN", "CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)",
                 "SystemCallFilter=~@privileged", "SystemCallFilter=~@mount", "SystemCallArchitectures=",
                 "RestrictNamespaces=~user", "PrivateDevices=", "ProtectKernelTunables=", "MemoryDenyWriteExecute="):
        assert checks[name]["set"], f"{unit}: {name} {checks[name]['description']}"


def test_verify_notices_a_program_that_is_not_installed(analyze, tmp_path):
    """The check above is live: the same units in a root without /opt/picup/venv fail it."""
    root = make_root(tmp_path / "root", program=False)
    result = verify(analyze, root, "picup-web.service")
    assert result.returncode != 0
    assert "/opt/picup/venv/bin/picup is not executable" in result.stdout + result.stderr


def test_security_fails_a_unit_without_its_hardening(analyze, tmp_path):
    """The threshold bites: the web unit cut off before its hardening rates far above 4.0."""
    text = unit_text("picup-web.service")
    cut = text.index("# Hardening.")
    bare = text[:cut] + text[text.index("[Install]"):]
    root = make_root(tmp_path / "root", units={"picup-web.service": bare})
    result = security(analyze, root, "picup-web.service")
    exposure, _rating = overall_exposure(result, "picup-web.service")
    assert exposure > EXPOSURE_TARGET and result.returncode != 0


# ------------------------------------------------------ what the units say
@pytest.mark.parametrize("name", UNITS)
def test_the_units_say_what_the_appliance_needs(name):
    unit = parse_unit(unit_text(name))
    env = environment(unit)
    command = "serve" if name == "picup-web.service" else "worker"
    assert last(unit, "Service", "ExecStart") == f"{INSTALLED_VENV}/bin/picup {command}"
    assert (last(unit, "Service", "User"), last(unit, "Service", "Group")) == ("picup", "picup")
    assert env["PICUP_CONFIG"] == "/etc/picup/picup.toml"
    assert env["PICUP_DATA_DIR"] == "/var/lib/picup"
    # Uploads and waitress's spooled request bodies go to the data disk, never /tmp.
    assert env["TMPDIR"] == env["PICUP_TMP_DIR"] == "/var/lib/picup/tmp"
    # multiprocessing's forkserver listens at TMPDIR/pymp-XXXXXXXX/listener-XXXXXXXX (at most 107 bytes).
    assert len(env["TMPDIR"] + "/pymp-12345678/listener-12345678") < 100
    state = {"/var/lib/" + d for v in values(unit, "Service", "StateDirectory") for d in v.split()}
    assert {env["PICUP_DATA_DIR"], env["TMPDIR"]} <= state, "systemd makes the folders before the start"
    assert all(f.startswith("-") for f in values(unit, "Service", "EnvironmentFile")), "optional secrets file"

    for key, wanted in {"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
                        "KillMode": "mixed", "Restart": "on-failure", "Type": "exec"}.items():
        assert last(unit, "Service", key) == wanted, f"{key}={wanted}"
    assert "@system-service" in values(unit, "Service", "SystemCallFilter")
    families = last(unit, "Service", "RestrictAddressFamilies").split()
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} == set(families), "S3 and backups need IP; the pool a Unix socket"

    # A unit that fails at start (store not mounted) is retried, but gives up:
    # the start limit can only trigger when the retries fit in its interval.
    burst = int(last(unit, "Unit", "StartLimitBurst"))
    interval = seconds(last(unit, "Unit", "StartLimitIntervalSec"))
    delay = seconds(last(unit, "Service", "RestartSec"))
    assert delay >= 5 and burst * delay < interval, (burst, delay, interval)
    assert last(unit, "Install", "WantedBy") == "multi-user.target"


def test_the_web_unit_waits_for_requests_in_flight():
    unit = parse_unit(unit_text("picup-web.service"))
    # server.serve() waits graceful_timeout + 5 s before it gives up on them.
    assert seconds(last(unit, "Service", "TimeoutStopSec")) > Settings().graceful_timeout + 5


def test_the_worker_unit_runs_below_the_web():
    web = parse_unit(unit_text("picup-web.service"))
    worker = parse_unit(unit_text("picup-worker.service"))
    for key in ("CPUWeight", "IOWeight"):
        assert int(last(worker, "Service", key)) < int(last(web, "Service", key) or 100)
    assert int(last(worker, "Service", "Nice")) > int(last(web, "Service", "Nice") or 0)


# ------------------------------------------------ the units' commands, for real
class UnitProcess:
    """A unit's ExecStart run with its Environment=, StateDirectory= and WorkingDirectory=,
    every absolute path moved under ``root`` (and /opt/picup/venv to this checkout's .venv)."""

    def __init__(self, name: str, root: Path, dropin: str | None):
        self.name = name
        self.root = root
        self.unit = parse_unit(unit_text(name), *([dropin] if dropin else []))
        self.env_in_unit = environment(self.unit)
        self.process: subprocess.Popen | None = None
        self.log = root / f"{name}.log"

    def path(self, path: str) -> Path:
        assert path.startswith("/"), path
        if path == INSTALLED_VENV or path.startswith(INSTALLED_VENV + "/"):
            return VENV / path[len(INSTALLED_VENV):].lstrip("/")
        assert path.split("/")[1] in ("etc", "var", "srv"), f"{self.name}: a path this test does not map: {path}"
        return self.root / path.lstrip("/")

    def value(self, text: str) -> str:
        return str(self.path(text)) if text.startswith("/") else text

    @property
    def stop_timeout(self) -> float:
        return seconds(last(self.unit, "Service", "TimeoutStopSec"))

    def start(self) -> "UnitProcess":
        mode = int(last(self.unit, "Service", "StateDirectoryMode") or "0755", 8)
        for entry in values(self.unit, "Service", "StateDirectory"):
            for folder in entry.split():
                path = self.path(f"/var/lib/{folder}")
                path.mkdir(parents=True, exist_ok=True)
                path.chmod(mode)
        home = self.path("/var/lib/picup")
        env = {"PATH": SYSTEMD_PATH, "HOME": str(home), "USER": "picup", "LOGNAME": "picup",
               "SHELL": "/usr/sbin/nologin"}
        env.update({key: self.value(value) for key, value in self.env_in_unit.items()})
        argv = shlex.split(last(self.unit, "Service", "ExecStart"))
        argv[0] = str(self.path(argv[0]))
        self.process = subprocess.Popen(argv, cwd=self.path(last(self.unit, "Service", "WorkingDirectory")),
                                        env=env, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        return self

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self) -> tuple[int, float]:
        """SIGTERM to the main process alone (KillMode=mixed); its exit status and how long it took."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=self.stop_timeout)
        return status, time.monotonic() - began

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()




def open_files(pid: int) -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.append(os.readlink(fd))
        except OSError:
            pass  # closed meanwhile
    return found


@pytest.fixture
def short_root():
    """A temporary root with a short name: the worker's photo pool listens on a Unix socket
    in TMPDIR, and such a path may be at most 107 bytes long (as on the server, see below)."""
    root = Path(tempfile.mkdtemp(prefix="picup-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("layout", ["as shipped", "with the storage drop-in"])
def test_the_units_commands_serve_render_and_stop_gracefully(short_root, layout):
    tmp_path = short_root
    dropin = readme_dropin() if layout != "as shipped" else None
    port = free_port()
    web = UnitProcess("picup-web.service", tmp_path, dropin)
    worker = UnitProcess("picup-worker.service", tmp_path, dropin)
    # /etc/picup/picup.toml as the installer writes it (root:picup, 0640).
    config = web.path(web.env_in_unit["PICUP_CONFIG"])
    config.parent.mkdir(parents=True)
    config.write_text(f'[server]\nhost = "127.0.0.1"\nport = {port}\n')
    config.chmod(0o640)
    env = {key: web.value(value) for key, value in web.env_in_unit.items()}
    store = Path(env.get("PICUP_STORAGE_PATH") or Path(env["PICUP_DATA_DIR"]) / "library")
    for folder in (store, Path(env["PICUP_TMP_DIR"])):
        folder.mkdir(parents=True, exist_ok=True, mode=0o750)  # what README.md says to make
    url = f"http://127.0.0.1:{port}"
    try:
        web.start()
        wait_for(lambda: requests.get(url + "/healthz", timeout=2).status_code == 200, 60, "/healthz", web)
        assert requests.get(url + "/readyz", timeout=5).json()["status"] == "ok"

        http = requests.Session()
        setup = http.post(url + "/api/v1/setup", json={"username": "mom", "password": "correct horse battery"})
        assert setup.status_code == 201, setup.text
        http.headers["X-CSRF-Token"] = setup.json()["csrf_token"]
        token = http.post(url + "/api/v1/tokens", json={"name": "unit test"}).json()["token"]

        # A raw upload, sent in two halves: in between, waitress has spooled the
        # first half to a temporary file, which must be in TMPDIR (not /tmp).
        content = media_files.jpeg() + bytes(range(256)) * (160 * 1024)  # ~40 MiB
        half = len(content) // 2
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall((f"POST /api/v1/media?filename=big.jpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                          f"Authorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\n"
                          f"Content-Length: {len(content)}\r\nConnection: close\r\n\r\n").encode() + content[:half])
            tmpdir = env["TMPDIR"]
            wait_for(lambda: any(f.startswith(tmpdir + "/") for f in open_files(web.process.pid)), 10,
                     "a spooled request body in TMPDIR", web)
            elsewhere = [f for f in open_files(web.process.pid)
                         if f.startswith("/") and not f.startswith((f"{tmp_path}/", "/dev/"))]
            assert not elsewhere, "files outside the unit's folders"
            sock.sendall(content[half:])
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 201"), answer[:500]
        media_id = json.loads(body)["media"]["id"]
        sha256 = hashlib.sha256(content).hexdigest()
        assert (store / "originals" / sha256[:2] / sha256[2:4] / sha256).stat().st_size == len(content)

        # The worker, from its own unit, finds the same database and store.
        worker.start()
        wait_for(lambda: http.get(f"{url}/api/v1/media/{media_id}").json()["media"]["render"]["status"] == "ready",
                 60, "the worker to render the photo", worker)

        # SIGTERM with a download in flight: no new connections, the download
        # finishes, and picup exits cleanly within TimeoutStopSec.
        download = http.get(f"{url}/api/v1/media/{media_id}/original", stream=True)
        chunks = download.iter_content(256 * 1024)
        received = hashlib.sha256(next(chunks))
        began = time.monotonic()
        web.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/healthz", timeout=2)
        for chunk in chunks:
            received.update(chunk)
            time.sleep(0.002)
        assert received.hexdigest() == sha256
        assert web.process.wait(timeout=web.stop_timeout) == 0
        assert time.monotonic() - began < web.stop_timeout
        assert '"msg": "stopped"' in web.output()

        status, took = worker.terminate()
        assert status == 0 and took < worker.stop_timeout, worker.output()
        assert '"msg": "worker stopped"' in worker.output()
    finally:
        web.kill()
        worker.kill()
