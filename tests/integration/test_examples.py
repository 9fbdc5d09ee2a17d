"""The examples an operator copies (etc/, keepalived/) are true: parsed by supz's own loaders,
equal to what supz renders (comments aside), accepted by keepalived -t and logrotate -d."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from supz.config import load_config, read_config
from supz.failover.keepalived import render_keepalived
from supz.failover.settings import load_failover_settings
from supz.paths import HostPaths
from supz.programfile import read_program_file
from supz.sync.settings import load_sync_settings
from tests.conftest import BIN, REPO, SupzHost, destroy_host, make_host

EXAMPLE_CONF = REPO / "etc" / "supz.conf"
VENV_BIN = str(Path(sys.executable).parent)


def _significant(text: str, comment: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith(comment)]


def rendered_rsyncd_conf(tmp_path: Path) -> str:
    """`supz sync rsyncd-conf` for a root holding the example supz.conf, its paths moved to /."""
    root = tmp_path / "root"
    (root / "etc" / "supz").mkdir(parents=True)
    shutil.copy(EXAMPLE_CONF, root / "etc" / "supz" / "supz.conf")
    result = subprocess.run([str(BIN / "supz"), "--root", str(root), "sync", "rsyncd-conf"], capture_output=True,
                            text=True, check=True)
    return (result.stdout.replace(f"{root}/", "/").replace(str(root), "/")
            .replace(sys.executable, "/usr/bin/python3").replace(f"uid = {os.getenv('USER', 'root')}", "uid = root"))


def test_example_supz_conf_loads_with_every_section_loader() -> None:
    config = read_config(EXAMPLE_CONF)
    assert load_config(config).host == "a"
    assert load_config(config).ha_enabled if hasattr(load_config(config), "ha_enabled") else True
    sync = load_sync_settings(config)
    assert [str(peer) for peer in sync.peers] and "-i /root/.ssh/supz" in " ".join(sync.ssh_options)
    failover = load_failover_settings(config)
    assert (failover.vip, failover.interface, failover.peers) == ("10.0.0.100/24", "eth1", ("10.0.0.2",))
    assert config.section("metrics") is not None and config.section("metrics")["listen"] == "127.0.0.1:9810"


def test_example_program_file_is_a_valid_entry(tmp_path: Path) -> None:
    entry = tmp_path / "web.conf"
    (tmp_path / "apps").mkdir()  # /var/log/supz/apps/ on a host after `supz init`
    entry.write_text((REPO / "etc" / "program.conf").read_text().replace("/var/log/supz/apps/", f"{tmp_path}/apps/"))
    assert read_program_file(entry, "web").name == "web"


def test_example_rsyncd_conf_is_what_supz_renders(tmp_path: Path) -> None:
    example = (REPO / "etc" / "rsyncd.conf").read_text()
    assert _significant(example, "#") == _significant(rendered_rsyncd_conf(tmp_path), "#")


@pytest.mark.parametrize(("example", "peers"), [("keepalived-pair.conf", ("10.0.0.2",)),
                                                ("keepalived-three.conf", ("10.0.0.2", "10.0.0.3"))])
def test_keepalived_examples_are_what_render_writes(example: str, peers: tuple[str, ...]) -> None:
    settings = dataclasses.replace(load_failover_settings(read_config(EXAMPLE_CONF)), peers=peers)
    rendered = render_keepalived(HostPaths(Path("/")), settings, "a").replace(VENV_BIN, "/usr/bin")
    text = (REPO / "keepalived" / example).read_text()
    assert _significant(text, "!") == _significant(rendered, "!")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("keepalived") is None or shutil.which("unshare") is None,
                    reason="needs root, keepalived and unshare (a network namespace with eth1)")
@pytest.mark.parametrize("example", ["keepalived-pair.conf", "keepalived-three.conf"])
def test_keepalived_accepts_the_examples(example: str, tmp_path: Path) -> None:
    """keepalived -t in a network namespace of its own that has an eth1; the scripts are this
    checkout's (the package's /usr/bin ones are not installed here)."""
    conf = tmp_path / example
    conf.write_text((REPO / "keepalived" / example).read_text().replace("/usr/bin/", f"{VENV_BIN}/"))
    script = f"ip link add eth1 type veth peer name eth1peer && keepalived -t -f {conf}"
    result = subprocess.run(["unshare", "--net", "sh", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate is not installed (./bin/bootstrap)")
def test_logrotate_accepts_the_example(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = subprocess.run(["logrotate", "-d", "-s", str(state), str(REPO / "etc" / "logrotate" / "supz")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr


def test_keepalived_wrappers_run_supz(tmp_path: Path) -> None:
    host: SupzHost = make_host()
    try:
        env = dict(host.env, SUPZ_BIN=str(BIN / "supz"), SUPZ_CHECK_BIN=str(BIN / "supz-check"))
        check = subprocess.run([str(REPO / "keepalived" / "supz-check")], env=env, capture_output=True, text=True,
                               timeout=30, check=False)
        assert check.returncode == 0, check.stderr
        notify = subprocess.run([str(REPO / "keepalived" / "supz-notify"), "INSTANCE", "supz", "BACKUP", "100"],
                                env=env, capture_output=True, text=True, timeout=30, check=False)
        assert notify.returncode == 0, notify.stderr
        host.wait_for(lambda: host.paths.role_file.exists() and host.paths.role_file.read_text().strip() == "BACKUP",
                      what="role BACKUP")
        host.supz("down", check=True)
        down = subprocess.run([str(REPO / "keepalived" / "supz-check")], env=env, capture_output=True, text=True,
                              timeout=30, check=False)
        assert down.returncode != 0
    finally:
        destroy_host(host)


if __name__ == "__main__":  # regenerate etc/rsyncd.conf: python -m tests.integration.test_examples
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        header = ("# An example rsync daemon config for the receiving side of rsync:// peers: what\n"
                  "# `supz --root / sync rsyncd-conf --write` renders from etc/supz.conf (a test compares every\n"
                  "# line but the comments). ssh peers need none of this.\n")
        (REPO / "etc" / "rsyncd.conf").write_text(header + rendered_rsyncd_conf(Path(work)))
