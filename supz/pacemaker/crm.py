"""What Pacemaker says about the cluster, for `supz status --cluster` on a host it manages.

One `crm_mon --output-as=xml` (nodes, quorum, where each ocf:supz:registry resource runs) and one
`cibadmin --query --scope resources` (each resource's `root`, to tell which one is this root's).
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from typing import Any

from supz.paths import HostPaths

AGENT = "ocf:supz:registry"
TIMEOUT = 10.0


def _query(argv: list[str]) -> ET.Element:
    if shutil.which(argv[0]) is None:
        raise LookupError(f"{argv[0]} not found (Pacemaker's command line tools are not installed)")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise LookupError(f"{argv[0]} did not answer within {TIMEOUT:g}s") from exc
    try:
        return ET.fromstring(done.stdout)
    except ET.ParseError as exc:
        why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise LookupError(f"{' '.join(argv)}: {why}") from exc


def _roots(resources: ET.Element) -> dict[str, str]:
    """Resource id -> its `root` parameter, for every ocf:supz:registry primitive."""
    roots = {}
    for primitive in resources.iter("primitive"):
        if (primitive.get("class"), primitive.get("provider"), primitive.get("type")) != ("ocf", "supz", "registry"):
            continue
        value = "/"
        for pair in primitive.iterfind("instance_attributes/nvpair"):
            if pair.get("name") == "root":
                value = pair.get("value", "/")
        roots[primitive.get("id", "")] = value
    return roots


def pacemaker_view(paths: HostPaths) -> dict[str, Any]:
    """{"quorum", "dc", "nodes": [{"name", "online"}], "resources": [{"id", "root", "nodes", "ours",
    "failed"}]} or {"error": why}."""
    try:
        mon = _query(["crm_mon", "--output-as=xml", "-1"])
        roots = _roots(_query(["cibadmin", "--query", "--scope", "resources"]))
    except LookupError as exc:
        return {"error": str(exc)}
    dc = mon.find("summary/current_dc")
    view: dict[str, Any] = {
        "quorum": dc is not None and dc.get("with_quorum") == "true",
        "dc": dc.get("name", "") if dc is not None and dc.get("present") == "true" else "",
        "nodes": [{"name": node.get("name", ""), "online": node.get("online") == "true"}
                  for node in mon.iterfind("nodes/node")],
        "resources": [],
    }
    for item in mon.iter("resource"):
        rid = item.get("id", "")
        if item.get("resource_agent") != AGENT:
            continue
        view["resources"].append({
            "id": rid, "root": roots.get(rid, ""), "ours": roots.get(rid) == str(paths.root),
            "nodes": sorted(node.get("name", "") for node in item.iterfind("node")) if item.get("active") == "true" else [],
            "failed": item.get("failed") == "true",
        })
    return view


def pacemaker_problems(view: dict[str, Any]) -> list[str]:
    """What `supz status --cluster` reports as errors: no quorum here, a supz resource active on
    more than one node, or failed; this root's resource running nowhere."""
    if "error" in view:
        return [f"pacemaker: {view['error']}"]
    problems = [] if view["quorum"] else ["pacemaker: this node's partition has no quorum"]
    for item in view["resources"]:
        if len(item["nodes"]) > 1:
            problems.append(f"pacemaker: {item['id']} is active on {len(item['nodes'])} nodes ({', '.join(item['nodes'])})")
        if item["failed"]:
            problems.append(f"pacemaker: {item['id']} failed")
        if item["ours"] and not item["nodes"]:
            problems.append(f"pacemaker: {item['id']} (this root) runs on no node")
    return problems


def pacemaker_lines(view: dict[str, Any]) -> list[str]:
    """The view in a few lines of text, under the hosts' table."""
    if "error" in view:
        return []
    online = " ".join(n["name"] for n in view["nodes"] if n["online"]) or "-"
    offline = " ".join(n["name"] for n in view["nodes"] if not n["online"])
    lines = [f"pacemaker: quorum {'yes' if view['quorum'] else 'NO'}, DC {view['dc'] or '-'}, online {online}"
             + (f", OFFLINE {offline}" if offline else "")]
    for item in view["resources"]:
        where = ", ".join(item["nodes"]) or "stopped"
        lines.append(f"  {item['id']:<16} {where:<12} {item['root']}" + ("  (this root)" if item["ours"] else ""))
    return lines
