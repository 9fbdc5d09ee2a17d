"""supz's Debian package on a clean Debian 12 root: the real-host path, end to end.

`./bin/package` builds the .deb; tests/package/harness.sh installs it into an overlay of a
debootstrapped root (cached under /var/cache/supz-test, or $SUPZ_TEST_CACHE) in new mount, pid and
network namespaces, and tests/package/inroot.sh walks the real-host path there: Debian's
supervisor, `supz --root / init --socket-group ops`, supervisord started as Debian starts it,
park/unpark as root and as an operator, metrics, completion, a reinstall of supervisor, a purge
of supz, a reinstall of supz over the registry the purge left, and `systemd-analyze verify` of
Debian's supervisor.service with supz's drop-ins. About 1 min with the root cached, 2-4 min cold.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SUPZ_TEST_CACHE", "/var/cache/supz-test")) / "bookworm"
TOOLS = ("debootstrap", "unshare", "dpkg-deb", "chroot")


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (debootstrap, chroot, namespaces)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return f"missing {', '.join(missing)} (./bin/bootstrap installs them)" if missing else None


REASON = _unavailable()
pytestmark = [pytest.mark.root, pytest.mark.skipif(REASON is not None, reason=f"package test: {REASON or ''}")]


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run in a session of its own, so a timeout kills the whole tree (the harness's namespace too)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{argv[0]} ran past {timeout:g}s:\n{out[-4000:]}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, "")


def test_the_package_installs_and_runs_the_real_host_path_on_debian_12(tmp_path: Path) -> None:
    built = _run([str(REPO / "bin" / "package"), "--out", str(tmp_path)], timeout=300)
    assert built.returncode == 0, built.stdout
    deb = Path(built.stdout.strip().splitlines()[-1])
    assert deb.name.startswith("supz_") and deb.suffix == ".deb"
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    for installed in ("./usr/bin/supz", "./usr/bin/supzcli", "./usr/lib/python3/dist-packages/supz/supervisord/rpc.py",
                      "./usr/lib/systemd/system/supervisor.service.d/supz.conf", "./etc/logrotate.d/supz",
                      "./usr/lib/ocf/resource.d/supz/registry"):
        assert installed in listing
    result = _run([str(REPO / "tests" / "package" / "harness.sh"), str(CACHE), str(deb)], timeout=900)
    assert result.returncode == 0 and "inroot: all steps passed" in result.stdout, result.stdout[-6000:]
    assert not list(Path("/tmp").glob("supz-pkgtest.*")), "the harness removes its overlay"
