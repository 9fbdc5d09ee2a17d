"""Prometheus metrics of one host, read at scrape time (`supz metrics`).

A custom collector (the official client's pattern for exporters): every scrape reads the role
file, the registry's manifest, supervisord (process states and `supz.drift()`), the syncer's
status file, the failover log and the tail of the audit trail. Nothing is kept in between, so a
textfile run and a long-lived /metrics server report the same thing.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from supz import __version__
from supz.errors import ConfigError, SupzError
from supz.health.state import read_state, unhealthy_apps
from supz.paths import HostPaths
from supz.registry import EntryState, Registry
from supz.role import ROLES, UNKNOWN, read_role
from supz.supervisord.client import SupervisorClient
from supz.sync.state import read_status

# What a scrape reads from the end of the audit trail and the failover log (they only grow).
TAIL_BYTES = 1 << 20
def _tail_lines(path: Path, limit: int = TAIL_BYTES) -> tuple[list[str], int] | None:
    """The last lines of a JSON-lines file and how many lines the whole file has (None: unreadable)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    total = data.count(b"\n")
    lines = data[-limit:].decode("utf-8", "replace").splitlines()
    if len(data) > limit and lines:
        lines = lines[1:]  # the first may be cut
    return lines, total


def _parse_time(value: Any) -> float | None:
    try:
        return _dt.datetime.fromisoformat(str(value)).timestamp()
    except (TypeError, ValueError):
        return None


@dataclass(eq=False)
class SupzCollector:
    """Collects a host's metrics at every scrape."""

    paths: HostPaths
    host: str
    timeout: float = 5.0

    def describe(self) -> list[Metric]:
        return []  # collected on demand: no describe-time scrape of supervisord

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("supz_info", "supz on this host", labels=["host", "version"])
        info.add_metric([self.host, __version__], 1)
        yield info
        role = read_role(self.paths)
        roles = GaugeMetricFamily("supz_role", "this host's role (1 for the current one)", labels=["role"])
        for name in (*ROLES, UNKNOWN):
            roles.add_metric([name], 1 if name == role else 0)
        yield roles
        yield from self._registry()
        yield from self._sync()
        yield from self._failover()
        yield from self._audit()

    def _registry(self) -> Iterator[Metric]:
        registry = Registry(self.paths, host=self.host)
        counts = {"active": 0, "parked": 0, "running": 0, "unhealthy": 0, "drift": 0}
        generation = GaugeMetricFamily("supz_registry_generation", "the registry's generation")
        try:
            entries = registry.entries()
            generation.add_metric([], registry.generation)
        except SupzError:
            entries = {}
        yield generation
        for entry in entries.values():
            counts["active" if entry.state is EntryState.ACTIVE else "parked"] += 1
        up = GaugeMetricFamily("supz_supervisord_up", "1 when supervisord answers with the supz extension")
        try:
            with SupervisorClient.for_host(self.paths) as client:
                processes = client.supervisor("getAllProcessInfo")
                drift = client.supz("drift")
        except SupzError:
            up.add_metric([], 0)
        else:
            up.add_metric([], 1)
            for process in processes:
                if process["group"] not in entries:
                    continue
                if process["statename"] == "RUNNING":
                    counts["running"] += 1
            counts["drift"] = len(drift)  # FATAL, BACKOFF, stopped around supz: see supz.drift()
        # Unhealthy as the health daemon sees it (its probes), not as supervisord does.
        counts["unhealthy"] = len(unhealthy_apps(read_state(self.paths)))
        yield up
        apps = GaugeMetricFamily("supz_applications",
                                 "registry applications: active and parked entries, running and unhealthy "
                                 "(FATAL, BACKOFF, EXITED) processes, applications in drift", labels=["state"])
        for state, count in counts.items():
            apps.add_metric([state], count)
        yield apps

    def _sync(self) -> Iterator[Metric]:
        status = read_status(self.paths)
        lag = GaugeMetricFamily("supz_sync_lag_seconds", "seconds a peer has been behind this registry",
                                labels=["peer"])
        state = GaugeMetricFamily("supz_sync_state", "the syncer's state per peer (1 for the current one)",
                                  labels=["peer", "state"])
        peer_generation = GaugeMetricFamily("supz_sync_peer_generation", "the generation a peer holds",
                                            labels=["peer"])
        updated = GaugeMetricFamily("supz_sync_status_timestamp_seconds", "when the syncer last wrote its status")
        if status is not None:
            now = time.time()
            updated.add_metric([], status.updated)
            for peer in status.peers:
                lag.add_metric([peer.peer], peer.lag(now))
                state.add_metric([peer.peer, peer.state], 1)
                if peer.peer_generation is not None:
                    peer_generation.add_metric([peer.peer], peer.peer_generation)
        yield from (lag, state, peer_generation, updated)

    def _failover(self) -> Iterator[Metric]:
        total = CounterMetricFamily("supz_failover_transitions", "transitions in the failover log")
        last = GaugeMetricFamily("supz_failover_last_duration_seconds", "how long the last transition took",
                                 labels=["to", "result"])
        when = GaugeMetricFamily("supz_failover_last_timestamp_seconds", "when the last transition ended")
        tail = _tail_lines(self.paths.failover_log)
        total.add_metric([], tail[1] if tail else 0)
        for line in reversed(tail[0] if tail else []):
            try:
                record = json.loads(line)
                last.add_metric([str(record.get("to", "")), str(record.get("result", ""))], float(record["seconds"]))
            except (ValueError, KeyError, TypeError):
                continue
            stamp = _parse_time(record.get("time"))
            if stamp is not None:
                when.add_metric([], stamp)
            break
        yield from (total, last, when)

    def _audit(self) -> Iterator[Metric]:
        tail = _tail_lines(self.paths.audit_log)
        if tail is None and self.paths.audit_log.exists():
            return  # not readable by this user: no number rather than a wrong one
        lines, total = tail if tail else ([], 0)
        cutoff = time.time() - 60
        recent = 0
        for line in reversed(lines):
            try:
                stamp = _parse_time(json.loads(line).get("time"))
            except ValueError:
                continue
            if stamp is None or stamp < cutoff:
                break
            recent += 1
        counter = CounterMetricFamily("supz_audit_lines", "lines in the audit trail")
        counter.add_metric([], total)
        yield counter
        rate = GaugeMetricFamily("supz_audit_lines_per_minute", "audit lines written in the last 60 seconds")
        rate.add_metric([], recent)
        yield rate


def registry_for(paths: HostPaths, host: str) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SupzCollector(paths, host))
    return registry


def exposition(paths: HostPaths, host: str) -> bytes:
    """The metrics in Prometheus' text format."""
    return bytes(generate_latest(registry_for(paths, host)))


def write_textfile(paths: HostPaths, host: str, target: Path) -> None:
    """Write the metrics for node_exporter's textfile collector (atomically: temp file + rename)."""
    try:
        write_to_textfile(str(target), registry_for(paths, host))
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}", thing=str(target)) from exc


def loopback(address: str) -> tuple[str, int]:
    """HOST:PORT on a loopback address: /metrics tells about the host, it is not for the network."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
        ip = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ConfigError(f"metrics address {address!r} is not IP:PORT", thing=address) from exc
    if not sep or not ip.is_loopback or not 0 <= number < 65536:
        raise ConfigError(f"metrics address {address!r}: serve on a loopback address (127.0.0.1:PORT) and let "
                          "node_exporter or a local Prometheus agent read it", thing=address)
    return host, number


def serve(paths: HostPaths, host: str, address: str, ready: Any = None) -> None:
    """Serve /metrics on a loopback address until interrupted; `ready(url)` is called once bound."""
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from prometheus_client import make_wsgi_app

    bind, port = loopback(address)

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server_class = WSGIServer
    if ":" in bind:
        import socket

        class _V6(WSGIServer):
            address_family = socket.AF_INET6

        server_class = _V6
    with make_server(bind, port, make_wsgi_app(registry_for(paths, host)), server_class=server_class,
                     handler_class=_Quiet) as server:
        if ready is not None:
            shown = f"[{bind}]" if ":" in bind else bind
            ready(f"http://{shown}:{server.server_port}/metrics")
        server.serve_forever()

