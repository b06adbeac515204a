"""The embedded AWS: `moto_server` in a child process, for DynamoDB and KMS (and SSM, Secrets
Manager), each request handled atomically as DynamoDB would (devstack/moto_atomic.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import closing

from devstack.processes import die_with_parent


class EmulatorError(RuntimeError):
    pass


class MotoServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 5055) -> None:
        self.host = host
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        if _port_open(self.host, self.port):
            raise EmulatorError(
                f"{self.host}:{self.port} is already in use; stop what runs there, or set "
                f"AWS_ENDPOINT_URL={self.url} to use it as the emulator"
            )
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devstack.moto_atomic", self.host, str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmulatorError(f"moto_server exited with {self._process.returncode}")
            if _ready(self.url):
                return
            time.sleep(0.1)
        self.stop()
        raise EmulatorError("moto_server did not start in time")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None


def _port_open(host: str, port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310 - loopback
            return True
    except OSError:
        return False
