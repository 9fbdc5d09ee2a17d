"""`supz pacemaker render`: the CIB snippet that makes one supz root a Pacemaker resource with its VIP.

Two primitives (`ocf:supz:registry` for the root, `ocf:heartbeat:IPaddr2` for the VIP), the VIP
colocated with the applications and started after them (stopped before them), operations with the
timeouts derived from the host's program count, and a stickiness that keeps a running group where it
is when a node comes back (keepalived's nopreempt).
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from supz.errors import ConfigError
from supz.names import name_problem
from supz.pacemaker.agent import AgentTiming

PARTS = ("all", "resources", "constraints")
STICKINESS = 100


@dataclass(frozen=True)
class Snippet:
    """What to render: the resource id (its VIP is `ID-vip`), the root, the VIP and where it goes."""

    rid: str
    root: str
    supz: str
    vip: str  # address/prefix, or "" for no VIP
    nic: str
    timing: AgentTiming


def _op(parent: ET.Element, rid: str, name: str, timeout: int, interval: int = 0) -> None:
    ET.SubElement(parent, "op", id=f"{rid}-{name}-{interval}", name=name, interval=f"{interval}s", timeout=f"{timeout}s")


def _attrs(parent: ET.Element, rid: str, kind: str, values: dict[str, str]) -> None:
    block = ET.SubElement(parent, kind, id=f"{rid}-{'ia' if kind == 'instance_attributes' else 'meta'}")
    for key, value in values.items():
        ET.SubElement(block, "nvpair", id=f"{rid}-{kind[:4]}-{key}", name=key, value=value)


def resources(snippet: Snippet) -> ET.Element:
    t = snippet.timing
    out = ET.Element("resources")
    apps = ET.SubElement(out, "primitive", id=snippet.rid, attrib={"class": "ocf", "provider": "supz", "type": "registry"})
    _attrs(apps, snippet.rid, "instance_attributes", {"root": snippet.root, "supz": snippet.supz})
    _attrs(apps, snippet.rid, "meta_attributes", {"resource-stickiness": str(STICKINESS)})
    ops = ET.SubElement(apps, "operations")
    _op(ops, snippet.rid, "start", t.start)
    _op(ops, snippet.rid, "stop", t.stop)
    _op(ops, snippet.rid, "monitor", t.monitor, t.monitor_interval)
    if snippet.vip:
        vid = f"{snippet.rid}-vip"
        address = ipaddress.ip_interface(snippet.vip)
        vip = ET.SubElement(out, "primitive", id=vid, attrib={"class": "ocf", "provider": "heartbeat", "type": "IPaddr2"})
        values = {"ip": str(address.ip), "cidr_netmask": str(address.network.prefixlen)}
        if snippet.nic:
            values["nic"] = snippet.nic
        _attrs(vip, vid, "instance_attributes", values)
        ops = ET.SubElement(vip, "operations")
        _op(ops, vid, "monitor", 20, 10)
    return out


def constraints(snippet: Snippet) -> ET.Element:
    out = ET.Element("constraints")
    if snippet.vip:
        vid = f"{snippet.rid}-vip"
        ET.SubElement(out, "rsc_colocation", id=f"{vid}-with-{snippet.rid}", rsc=vid, attrib={"with-rsc": snippet.rid},
                      score="INFINITY")
        ET.SubElement(out, "rsc_order", id=f"{snippet.rid}-before-{vid}", first=snippet.rid, then=vid, kind="Mandatory")
    return out


def render_cib(snippet: Snippet, part: str = "all") -> str:
    """The snippet as XML: `resources` and `constraints` for `cibadmin --modify --allow-create
    --scope ...`, or both in one `configuration` element."""
    problem = name_problem(snippet.rid)
    if problem is not None:
        raise ConfigError(f"invalid resource id {snippet.rid!r}: it {problem}", thing=snippet.rid)
    if snippet.vip:
        try:
            ipaddress.ip_interface(snippet.vip)
        except ValueError as exc:
            raise ConfigError(f"VIP {snippet.vip!r} is not an address/prefix: {exc}", thing=snippet.vip) from exc
    if part == "resources":
        root = resources(snippet)
    elif part == "constraints":
        root = constraints(snippet)
    else:
        root = ET.Element("configuration")
        root.append(resources(snippet))
        root.append(constraints(snippet))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"
