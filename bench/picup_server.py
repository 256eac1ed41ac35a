"""`picup run` as a subprocess on a free loopback port, for the benchmarks."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def picup_command() -> list[str]:
    """`.venv/bin/picup` next to the interpreter running this script, else `python -m picup.cli`."""
    script = Path(sys.executable).parent / "picup"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "picup.cli"]


class Server:
    """A real Picup (web and worker) with a clean environment; ``env`` adds variables."""

    def __init__(self, data_dir: Path, log_path: Path, env: dict | None = None):
        self.port = free_port()
        self.log_path = log_path
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PICUP_")}
        environ.update({"PICUP_LOG_LEVEL": "WARNING", **(env or {})})
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen(
            [*picup_command(), "run", "--host", "127.0.0.1", "--port", str(self.port), "--data", str(data_dir)],
            cwd=REPO, env=environ, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                try:
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer /healthz in {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=45)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
