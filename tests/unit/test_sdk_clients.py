"""The pinned SDK clients' setup (dev/devstack/clients.py), without the network: versions read from
the committed locks, an install made once and reused, made again when its lock changes, once for
workers asking at once, and a registry that cannot be reached said in one sentence."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from devstack import clients
from devstack.clients import ClientInstallError, PinnedClient


@pytest.mark.parametrize(
    ("client", "major"),
    [
        (clients.PYTHON_MCP_1, "1"),
        (clients.TYPESCRIPT_SDK_1, "1"),
        (clients.TYPESCRIPT_CLIENT_2, "2"),
        (clients.EXT_APPS, "2"),
    ],
)
def test_each_committed_lock_pins_one_exact_version_of_its_generation(client: PinnedClient, major: str):
    version = client.version
    assert version.split(".")[0] == major
    assert clients.install_dir(client).name == f"{client.name}-{version}"
    if client.registry == "npm":
        lock = json.loads((client.lock_dir / "package-lock.json").read_text())
        assert lock["packages"]["node_modules/" + client.package]["version"] == version
        assert lock["packages"][""]["dependencies"] == {client.package: version}
    else:
        pins = [line for line in client.lock_files[0].read_text().splitlines() if line and line[0] != "#"]
        assert all("==" in line for line in pins), "every requirement is pinned"


def npm_client(locks: Path, version: str = "1.2.3") -> PinnedClient:
    folder = locks / "some-client"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps({"dependencies": {"some-sdk": version}}))
    (folder / "package-lock.json").write_text(json.dumps({"lockfileVersion": 3, "v": version}))
    return PinnedClient("some-client", "npm", "some-sdk", locks=locks)


class FakeInstaller:
    """Stands in for pip/npm: makes the install usable, slowly, and counts."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.calls = 0

    def __call__(self, client: PinnedClient, target: Path) -> None:
        self.calls += 1
        time.sleep(self.seconds)
        package = target / "node_modules" / client.package
        package.mkdir(parents=True)
        (package / "package.json").write_text("{}")


def test_an_install_is_made_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    installer = FakeInstaller()
    monkeypatch.setattr(clients, "_install", installer)
    client = npm_client(tmp_path / "locks")
    first = clients.ensure(client, root=tmp_path / "clients")
    again = clients.ensure(client, root=tmp_path / "clients")
    assert first == again == tmp_path / "clients" / "some-client-1.2.3"
    assert installer.calls == 1


def test_a_changed_lock_or_a_broken_install_is_installed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    installer = FakeInstaller()
    monkeypatch.setattr(clients, "_install", installer)
    client = npm_client(tmp_path / "locks")
    target = clients.ensure(client, root=tmp_path / "clients")
    (client.lock_dir / "package-lock.json").write_text('{"lockfileVersion": 3, "changed": true}')
    assert clients.ensure(client, root=tmp_path / "clients") == target
    assert installer.calls == 2
    (target / "node_modules" / "some-sdk" / "package.json").unlink()
    clients.ensure(client, root=tmp_path / "clients")
    assert installer.calls == 3
    # another version is another folder
    newer = npm_client(tmp_path / "locks", version="1.2.4")
    assert clients.ensure(newer, root=tmp_path / "clients").name == "some-client-1.2.4"


def test_workers_asking_at_once_install_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    installer = FakeInstaller(seconds=0.3)
    monkeypatch.setattr(clients, "_install", installer)
    client = npm_client(tmp_path / "locks")
    found: list[Path] = []
    workers = [
        threading.Thread(target=lambda: found.append(clients.ensure(client, root=tmp_path / "clients")))
        for _ in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert installer.calls == 1
    assert len(set(found)) == 1 and len(found) == 4


def test_an_unreachable_registry_is_one_sentence_and_nothing_is_left_half_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    npm_output = (
        "npm error code ENOTFOUND\n"
        "npm error network request to https://registry.npmjs.org/some-sdk failed, reason: getaddrinfo\n"
    )

    def offline(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", npm_output)

    monkeypatch.setattr(clients.subprocess, "run", offline)
    monkeypatch.setattr(clients.toolchain, "ensure_node", lambda: None)
    client = npm_client(tmp_path / "locks")
    with pytest.raises(ClientInstallError) as raised:
        clients.ensure(client, root=tmp_path / "clients")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("installing some-sdk 1.2.3 from npm into ")
    assert "(npm error code ENOTFOUND)" in message
    assert not (tmp_path / "clients" / "some-client-1.2.3" / clients.STAMP).exists()


def test_a_lock_without_an_exact_pin_is_refused(tmp_path: Path):
    client = npm_client(tmp_path / "locks", version="^1.2.3")
    with pytest.raises(ClientInstallError, match="pins no exact version of some-sdk"):
        _ = client.version
    python = PinnedClient("py", "PyPI", "mcp", locks=tmp_path)
    (tmp_path / "py").mkdir()
    (tmp_path / "py" / "requirements.txt").write_text("mcp>=1\n")
    with pytest.raises(ClientInstallError, match="pins no version of mcp"):
        _ = python.version
