"""The [sync] section and peer specs: every bad value is a one-line ConfigError naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from supz.config import read_config
from supz.errors import ConfigError
from supz.paths import HostPaths
from supz.sync.settings import DAEMON, LOCAL, SSH, load_sync_settings, parse_peer


@pytest.mark.parametrize(
    ("spec", "transport", "host", "user", "root", "port", "module"),
    [
        ("standby", SSH, "standby", "", "/", None, ""),
        ("root@10.0.0.2", SSH, "10.0.0.2", "root", "/", None, ""),
        ("sync@db-2.example.com:/srv/supz", SSH, "db-2.example.com", "sync", "/srv/supz", None, ""),
        ("rsync://10.0.0.2/supz", DAEMON, "10.0.0.2", "", "/", None, "supz"),
        ("rsync://supz@standby:8873/supz-a/", DAEMON, "standby", "supz", "/", 8873, "supz-a"),
        ("/tmp/other-root/", LOCAL, "", "", "/tmp/other-root", None, ""),
    ],
)
def test_peer_specs(spec: str, transport: str, host: str, user: str, root: str, port: int | None, module: str) -> None:
    peer = parse_peer(spec)
    assert (peer.transport, peer.host, peer.user, peer.root, peer.port, peer.module) == (
        transport, host, user, root, port, module)


@pytest.mark.parametrize(
    "spec",
    ["", "host name", "host;rm -rf /", "user@host:relative/path", "root@host:/a/../b", "rsync://host",
     "rsync://host:99999/supz", "/tmp/../etc", "$(reboot)", "-oProxyCommand=x", "host:/path with space"],
)
def test_bad_peer_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_peer(spec)
    assert "peer" in str(caught.value) and "\n" not in str(caught.value)


def write_config(root: Path, text: str) -> HostPaths:
    paths = HostPaths(root)
    paths.etc.mkdir(parents=True)
    paths.config_file.write_text(text)
    return paths


def test_settings_read_from_the_sync_section(tmp_path: Path) -> None:
    paths = write_config(tmp_path, "[sync]\npeers = root@10.0.0.2:/srv, rsync://supz@10.0.0.3/supz\n"
                                   "  /tmp/third\nfull_resync_interval = 600\nssh_options = -p 2222 -i /k\n"
                                   "password_file = /etc/supz/rsync.pass\n")
    settings = load_sync_settings(read_config(paths.config_file))
    assert [p.transport for p in settings.peers] == [SSH, DAEMON, LOCAL]
    assert settings.full_resync_interval == 600
    assert settings.ssh_options == ("-p", "2222", "-i", "/k")
    assert settings.password_file == Path("/etc/supz/rsync.pass")


def test_no_section_means_no_peers(tmp_path: Path) -> None:
    assert load_sync_settings(read_config(write_config(tmp_path, "[supz]\nhost = a\n").config_file)).peers == ()


@pytest.mark.parametrize(
    "text",
    ["[sync]\npeers = a, a\n", "[sync]\nfull_resync_interval = soon\n", "[sync]\ntimeout = 0\n",
     "[sync]\npeers = bad peer\n", "[sync]\nrsyncd_module = sup z\n", "[sync\npeers = a\n"],
)
def test_bad_settings_name_the_file(tmp_path: Path, text: str) -> None:
    paths = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_sync_settings(read_config(paths.config_file))
    assert str(paths.config_file) in str(caught.value)
