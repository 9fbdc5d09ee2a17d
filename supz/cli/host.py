"""Host commands: init, up, down, doctor, demo."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import click

from supz import quarantine
from supz.audit import AuditLog, AuditRecord, current_who
from supz.cli.env import Env, pass_env
from supz.errors import ExitCode, SupzError
from supz.executables import supz_executable
from supz.host import daemon, distro
from supz.host.layout import InitOptions, init_host, registry_includes
from supz.programfile import read_program_file
from supz.registry import Registry
from supz.supervisord.client import SupervisorClient
from supz.sync.problems import sync_problems


@click.command()
@click.option("--host", "host_name", default=None, help="Name this host signs changes with [default: hostname].")
@click.option("--socket-group", default=None, help="Group allowed to use supervisord's socket (mode 0770).")
@click.option("--ha/--standalone", default=False, help="Run HA applications only while MASTER [default: standalone].")
@pass_env
def init(env: Env, host_name: str | None, socket_group: str | None, ha: bool) -> None:
    """Lay out a complete host under --root (or adapt this host's supervisor when root is /)."""
    options = InitOptions(host=host_name or platform.node(), socket_group=socket_group, ha=ha)
    report = init_host(env.paths, options)
    for line in report.changes:
        click.echo(line)
    for line in report.kept:
        click.echo(line, err=True)
    if not report.changes:
        click.echo(f"{env.paths.root}: already initialised, nothing changed")


@click.command()
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for supervisord to answer.")
@pass_env
def up(env: Env, timeout: float) -> None:
    """Start this host's supervisord; return once it answers."""
    click.echo(daemon.up(env.paths, timeout=timeout))


@click.command()
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for supervisord to exit.")
@pass_env
def down(env: Env, timeout: float) -> None:
    """Stop this host's supervisord and every program it runs."""
    click.echo(daemon.down(env.paths, timeout=timeout))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object: ok, problems, and every check.")
@pass_env
@click.pass_context
def doctor(ctx: click.Context, env: Env, as_json: bool) -> None:
    """Check the install, finish any interrupted registry change, validate every entry."""
    checks: list[tuple[bool, str]] = []

    def say(ok: bool, line: str) -> None:
        checks.append((ok, line))
        if not as_json:
            click.echo(f"{'ok  ' if ok else 'FAIL'} {line}")

    def finish() -> None:
        problems = sum(1 for ok, _ in checks if not ok)
        if as_json:
            click.echo(json.dumps({"ok": not problems, "problems": problems,
                                   "checks": [{"ok": ok, "check": line} for ok, line in checks]}, indent=1))
        ctx.exit(ExitCode.ERROR if problems else ExitCode.OK)

    paths = env.paths
    for folder in paths.folders():
        say(folder.is_dir(), f"folder {folder}")
    try:
        config = env.config
        say(True, f"config {paths.config_file} (host {config.host})")
    except SupzError as exc:
        say(False, str(exc))
        finish()
    registry = Registry(paths, host=config.host)
    try:
        who = current_who(config.host)
        change = registry.recover(who=who)
        if change is None:
            say(True, f"registry consistent at generation {registry.generation}")
        else:
            if change.names:
                say(True, f"registry {change.op}: now generation {change.generation_after} ({', '.join(change.names)})")
            for where, why in change.quarantined:
                AuditLog(paths.audit_log).append(AuditRecord("quarantine", [where], f"invalid: {why}", who,
                                                             change.generation_before, change.generation_after))
        for name, entry in registry.entries().items():
            try:
                read_program_file(entry.path, name)
                say(True, f"entry {name} ({entry.state.value})")
            except SupzError as exc:
                say(False, str(exc))
    except SupzError as exc:
        say(False, str(exc))
    try:
        conf_text = paths.supervisord_conf.read_text(encoding="utf-8")
    except OSError as exc:
        say(False, f"cannot read {paths.supervisord_conf}: {exc.strerror}")
    else:
        for pattern in registry_includes(paths):
            say(pattern not in conf_text,
                f"{paths.supervisord_conf} does not include the registry folder" if pattern not in conf_text else
                f"{paths.supervisord_conf} includes {pattern}: one malformed entry there stops supervisord; "
                f"run `supz --root {paths.root} init` to let the extension load the registry")
    for ok, line in distro.checks(paths) + distro.socket_checks(paths):
        say(ok, line)
    for held in quarantine.listing(paths):
        say(False, f"quarantined {held.path}: {held.why} (never loaded or synced; review it, then delete it)")
    sync = sync_problems(paths)
    for problem in sync:
        say(False, problem)
    if not sync:
        say(True, "sync: no blocked peer, nothing set aside unreviewed")
    client = SupervisorClient.for_host(paths)
    try:
        version = client.supz("getVersion")
        say(True, f"supervisord answers on {client.serverurl}, supz extension {version} loaded")
        drift = client.supz("drift")
        say(not drift, "supervisord runs exactly what the registry says" if not drift else
            f"drift: {len(drift)} application(s) differ from the registry")
        for item in drift:
            say(False, f"drift {item['name']}: {item['state']}: {item['why']}")
    except SupzError as exc:
        say(False, str(exc))
    finish()


def _demo_samples() -> Path:
    return Path(__file__).resolve().parents[2] / "etc" / "demo"


@click.command()
@click.option("--no-shell", is_flag=True, help="Set up and start, but do not open the shell.")
@click.option("--ha", is_flag=True, help="Two hosts in network namespaces with keepalived and the syncer (root).")
@click.option("--down", "tear_down", is_flag=True, help="With --ha: stop the pair and remove it.")
@pass_env
@click.pass_context
def demo(ctx: click.Context, env: Env, no_shell: bool, ha: bool, tear_down: bool) -> None:
    """A local host under --root with sample applications, supervisord started, supzcli opened.

    With --ha: a pair of hosts (a MASTER, b BACKUP) in network namespaces under --root
    (default /tmp/supz-demo-ha-HOST), and a line for each thing to try.
    """
    if ha or tear_down:
        from supz.host import hademo

        root = ctx.find_root().params.get("root")
        base = hademo.default_base() if root in (None, "/") else Path(root).absolute()
        lines = hademo.down(base) if tear_down else hademo.up(base, _demo_samples(), click.echo)
        for line in lines:
            click.echo(line)
        return
    paths = env.paths
    if paths.is_real_host:
        raise click.UsageError("the demo needs its own --root (a folder), not /")
    report = init_host(paths, InitOptions(host=platform.node()))
    for line in report.changes:
        click.echo(line)
    registry = Registry(paths, host=env.config.host)
    who = current_who(env.config.host)
    known = registry.entries()
    for sample in sorted(_demo_samples().glob("*.conf")):
        spec = read_program_file(sample)
        if spec.name not in known:
            registry.add(spec.name, spec.text, who=who, op="demo")
            click.echo(f"registered sample application {spec.name}")
    click.echo(daemon.up(paths))
    daemon.wait_settled(paths)
    click.echo(f"demo host at {paths.root}; stop it with: supz --root {paths.root} down")
    if no_shell:
        return
    supzcli = str(supz_executable("supzcli"))
    os.environ["SUPZ_ROOT"] = str(paths.root)
    os.execv(supzcli, [supzcli])


COMMANDS = [init, up, down, doctor, demo]
