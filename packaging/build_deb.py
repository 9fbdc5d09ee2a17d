"""Build supz's Debian package from the checkout: `./bin/package` (see README "The Debian package").

An `Architecture: all` python3 package: supz goes into Debian's dist-packages, so Debian's own
supervisord (/usr/bin/python3) imports the extension whichever way it is started, and supz runs on
Debian's supervisor, click, jinja2, pyinotify and prometheus-client (installing it downloads nothing but
those Debian packages). Only the standard library and dpkg-deb are used here.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from supz.pacemaker.script import agent_script  # noqa: E402 - the checkout's, standard library only

SITE = Path("usr/lib/python3/dist-packages")
SCRIPTS = {
    "supz": ("supz.cli.main", "main"),
    "supzcli": ("supz.shell.main", "main"),
    "supz-check": ("supz.failover.check", "_entry"),
}
DEPENDS = [
    "python3 (>= 3.9)",
    "supervisor (>= 4.2)",
    "python3-click (>= 8.0)",
    "python3-jinja2 (>= 3.0)",
    "python3-pyinotify (>= 0.9.6)",
    "python3-prometheus-client (>= 0.16)",
    "python3-aiohttp (>= 3.8)",
    "rsync",
]
RECOMMENDS = ["keepalived", "openssh-client", "logrotate"]
SUGGESTS = ["pacemaker", "resource-agents"]
DROPIN = """\
# supz's package: `systemctl reload supervisor` would run `supervisorctl reload` as root, a restart
# of every program around supz's refusal of reload. It rereads the config and applies changes to
# host-local programs instead (supz keeps registry applications out of `update`). `supz init`
# writes the same file under /etc/systemd/system, which takes precedence.
[Service]
ExecReload=
ExecReload=/usr/bin/supervisorctl -c /etc/supervisor/supervisord.conf update
"""


def version() -> str:
    text = (REPO / "supz" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SystemExit("package: no __version__ in supz/__init__.py")
    return match.group(1)


def _copy_tree(source: Path, target: Path, suffixes: tuple[str, ...]) -> None:
    for path in sorted(source.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file() or path.suffix not in suffixes:
            continue
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
        os.chmod(dest, 0o644)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def stage(tree: Path, ver: str, extras: Path | None) -> None:
    """Lay out the package's files under `tree`."""
    site = tree / SITE
    _copy_tree(REPO / "supz", site / "supz", (".py",))
    _copy_tree(REPO / "templates", site / "supz" / "templates", (".py", ".j2"))
    info = site / f"supz-{ver}.dist-info"
    _write(info / "METADATA", f"Metadata-Version: 2.1\nName: supz\nVersion: {ver}\n")
    _write(info / "top_level.txt", "supz\n")
    _write(info / "INSTALLER", "dpkg\n")
    for name, (module, func) in SCRIPTS.items():
        _write(tree / "usr/bin" / name,
               f"#!/usr/bin/python3\nimport sys\nfrom {module} import {func}\nsys.exit({func}())\n", 0o755)
    _write(tree / "usr/lib/systemd/system/supervisor.service.d/supz.conf", DROPIN)
    # Where Pacemaker looks for OCF agents: ocf:supz:registry (docs/pacemaker.md).
    _write(tree / "usr/lib/ocf/resource.d/supz/registry", agent_script("/usr/bin/supz"), 0o755)
    _write(tree / "etc/logrotate.d/supz", (REPO / "etc/logrotate/supz").read_text(encoding="utf-8"))
    doc = tree / "usr/share/doc/supz"
    _write(doc / "README.md", (REPO / "README.md").read_text(encoding="utf-8"))
    _write(doc / "architecture.md", (REPO / "docs/architecture.md").read_text(encoding="utf-8"))
    if extras is not None:  # man pages and completions generated from the CLI (packaging/generate.py)
        for path in sorted(extras.rglob("*")):
            if path.is_file():
                dest = tree / path.relative_to(extras)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                os.chmod(dest, 0o644)


def control(tree: Path, ver: str) -> None:
    debian = tree / "DEBIAN"
    size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file()) // 1024
    _write(debian / "control", "\n".join([
        "Package: supz",
        f"Version: {ver}",
        "Architecture: all",
        "Maintainer: supz developers <supz@localhost>",
        "Section: admin",
        "Priority: optional",
        f"Installed-Size: {size}",
        f"Depends: {', '.join(DEPENDS)}",
        f"Recommends: {', '.join(RECOMMENDS)}",
        f"Suggests: {', '.join(SUGGESTS)}",
        "Description: active/standby application hosting on supervisor and keepalived",
        " supz turns supervisor plus keepalived into an active/standby platform: a registry",
        " of supervisor program files, a supervisord extension, the supzcli shell, a registry",
        " syncer and keepalived hooks. After installing, run `supz --root / init`.",
    ]) + "\n")
    _write(debian / "conffiles", "/etc/logrotate.d/supz\n")
    for script in ("postinst", "prerm", "postrm"):
        _write(debian / script, (REPO / "packaging/debian" / script).read_text(encoding="utf-8"), 0o755)


def build(out: Path, extras: Path | None = None) -> Path:
    """Build the .deb into `out` and return its path."""
    ver = version()
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"supz_{ver}_all.deb"
    with tempfile.TemporaryDirectory(prefix="supz-deb-") as work:
        tree = Path(work) / "tree"
        stage(tree, ver, extras)
        control(tree, ver)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(target)],
                       check=True, stdout=subprocess.DEVNULL)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="package", description=__doc__)
    parser.add_argument("--out", default=str(REPO / "build"), help="folder for the .deb [build/]")
    parser.add_argument("--extras", default=None, help="a tree of generated files to add (man pages, completions)")
    args = parser.parse_args(argv)
    path = build(Path(args.out), Path(args.extras) if args.extras else None)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
