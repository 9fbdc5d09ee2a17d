"""`supz metrics`: scraped before and after a park, as Prometheus would (text format parsed by the
official client's parser), from stdout, a node_exporter textfile and a /metrics server on loopback."""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BIN, SupzHost, sleep_program


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _apps(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {dict(labels)["state"]: value for (name, labels), value in samples.items() if name == "supz_applications"}


def test_metrics_show_a_park_in_every_form(host: SupzHost, tmp_path: Path) -> None:
    host.add("web", sleep_program("web"))
    host.add("api", sleep_program("api"))
    server = subprocess.Popen([str(BIN / "supz"), "metrics", "--serve", "--listen", "127.0.0.1:0"], env=host.env,
                              stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert server.stderr is not None
        url = server.stderr.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")

        def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return _samples(answer.read().decode())

        before = _samples(host.supz("metrics", check=True).stdout)
        assert _apps(before) == {"active": 2, "parked": 0, "running": 2, "unhealthy": 0, "drift": 0}
        assert before[("supz_supervisord_up", ())] == 1
        assert before[("supz_role", (("role", "unknown"),))] == 1
        assert _apps(scrape()) == _apps(before)
        generation = before[("supz_registry_generation", ())]
        audited = before[("supz_audit_lines_total", ())]

        host.supzcli("stop", "web", check=True)

        after = _samples(host.supz("metrics", check=True).stdout)
        assert _apps(after) == {"active": 1, "parked": 1, "running": 1, "unhealthy": 0, "drift": 0}
        assert after[("supz_registry_generation", ())] == generation + 1
        assert after[("supz_audit_lines_total", ())] > audited
        assert after[("supz_audit_lines_per_minute", ())] >= 1
        assert _apps(scrape()) == _apps(after)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr is not None:
            server.stderr.close()
    textfile = tmp_path / "supz.prom"
    host.supz("metrics", "--textfile", str(textfile), check=True)
    assert _apps(_samples(textfile.read_text())) == _apps(after)


def test_metrics_are_served_on_loopback_only(host: SupzHost) -> None:
    refused = host.supz("metrics", "--serve", "--listen", "0.0.0.0:9810")
    assert refused.returncode == 2 and "loopback" in refused.stderr
