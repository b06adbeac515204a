"""`make test`'s own setup (dev/devstack/toolchain.py), without the network: pinned integrity,
registry tarballs unpacked, Node.js versions read, and what is exported to the test run."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from devstack import toolchain
from devstack.toolchain import Package, ToolchainError


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            info.mode = 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


class Served:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def read(self) -> bytes:
        return self._data


def test_a_download_that_does_not_match_its_pinned_integrity_is_refused(monkeypatch):
    data = tarball({"bin/node": b"#!/bin/sh\n"})
    monkeypatch.setattr(toolchain.urllib.request, "urlopen", lambda url, timeout: Served(data))
    assert toolchain._download(Package("https://registry.example/x.tgz", integrity(data))) == data
    with pytest.raises(ToolchainError, match="pinned integrity"):
        toolchain._download(Package("https://registry.example/x.tgz", integrity(b"something else")))


def test_a_registry_tarball_is_unpacked_without_its_package_folder(tmp_path: Path):
    target = tmp_path / "node"
    target.mkdir()
    (target / "stale").write_text("from an earlier run")
    toolchain._unpack(tarball({"bin/node": b"binary", "README.md": b"readme"}), target)
    assert (target / "bin" / "node").read_bytes() == b"binary"
    assert not (target / "package").exists() and not (target / "stale").exists()


def test_a_tarball_reaching_outside_its_folder_is_refused(tmp_path: Path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("package/../../escaped")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(tarfile.OutsideDestinationError):
        toolchain._unpack(buffer.getvalue(), tmp_path / "node")
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize(
    ("printed", "version"),
    [("v22.23.5\n", (22, 23)), ("v20.0.0", (20, 0)), ("v18", None), ("node", None)],
)
def test_node_versions_are_read_from_node_itself(tmp_path: Path, printed: str, version):
    node = tmp_path / "node"
    node.write_text(f"#!/bin/sh\nprintf '{printed}'\n")
    node.chmod(0o755)
    assert toolchain.node_version(str(node)) == version


def test_what_is_on_path_is_used_and_nothing_is_fetched(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "/opt/chromium")
    monkeypatch.setattr(toolchain, "_usable_node", lambda bin_dir=None: bin_dir is None)
    monkeypatch.setattr(toolchain, "install_node", lambda: pytest.fail("nothing to fetch"))
    assert toolchain.exports() == "export CHROMIUM=/opt/chromium"


def test_a_node_fetched_earlier_is_put_first_on_path(monkeypatch):
    monkeypatch.setenv("CHROMIUM", "/opt/chromium")
    monkeypatch.setattr(toolchain, "_usable_node", lambda bin_dir=None: bin_dir is not None)
    monkeypatch.setattr(toolchain, "install_node", lambda: pytest.fail("nothing to fetch"))
    assert f'export PATH={toolchain.TOOLCHAIN / "bin"}:"$PATH"' in toolchain.exports()


def test_without_any_chromium_the_error_names_both_ways(monkeypatch):
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: None)
    monkeypatch.setattr(toolchain, "_playwright_chromium", lambda: None)
    with pytest.raises(ToolchainError, match=r"apt-get install chromium.*playwright install chromium"):
        toolchain.ensure_chromium()
