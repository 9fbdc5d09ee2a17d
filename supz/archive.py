"""Registry archives: one file holding a whole registry (manifest with its history and notes,
every active and parked entry's text), with a checksum. `supz registry export` writes one,
`import` and `restore` read one; the automatic backups are the same files.

The file is gzip'd JSON: `{"checksum": sha256 of the payload, "payload": {...}}`. Reading one
checks everything before anything is changed: the gzip stream is whole, the checksum matches,
the manifest is valid, and every entry's text matches the manifest's sha256 and is a valid
program file. A truncated or altered archive is refused with one line.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supz import quarantine
from supz.audit import now_iso
from supz.errors import BadArchive, RegistryCorrupt, StorageError
from supz.fsutil import atomic_write
from supz.programfile import sha256_text
from supz.sync.manifests import STATES, VersionInfo, parse_manifest

FORMAT = "supz-registry-archive"
VERSION = 1
SUFFIX = ".supz.json.gz"


@dataclass(frozen=True)
class Archive:
    """A verified archive: the registry it holds and where it came from."""

    created: str
    host: str
    manifest: VersionInfo
    texts: dict[str, str]  # name -> program file text

    @property
    def generation(self) -> int:
        return self.manifest.generation

    def state(self, name: str) -> str:
        return self.manifest.entries[name]["state"]


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")


def pack(*, host: str, manifest: dict[str, Any], texts: dict[str, str]) -> bytes:
    """The bytes of an archive of `manifest` and the entries' `texts`."""
    payload = {"format": FORMAT, "version": VERSION, "created": now_iso(), "host": host,
               "manifest": manifest, "entries": dict(sorted(texts.items()))}
    body = _canonical(payload)
    document = b'{"checksum":"' + hashlib.sha256(body).hexdigest().encode() + b'","payload":' + body + b"}"
    return gzip.compress(document, compresslevel=3, mtime=0)


def snapshot(folder: Path, host: str) -> bytes:
    """An archive of the registry version in `folder` (the caller holds the registry lock)."""
    try:
        manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        manifest = {"format": 1, "generation": 0, "entries": {}}
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {folder / 'manifest.json'}: {exc}", thing=str(folder)) from exc
    texts = {}
    for name, meta in dict(manifest.get("entries") or {}).items():
        path = folder / str(meta["state"]) / f"{name}.conf"
        try:
            texts[str(name)] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageError(f"{name}: cannot read {path}: {exc}", thing=str(name)) from exc
    return pack(host=host, manifest=manifest, texts=texts)


def write(path: Path, data: bytes) -> None:
    """Write an archive durably (temp file, fsync, rename): never half a file under its name."""
    atomic_write(path, data, mode=0o640)


def read(path: Path) -> Archive:
    """A verified archive, or BadArchive (one line naming the file and what is wrong)."""
    try:
        compressed = Path(path).read_bytes()
    except FileNotFoundError:
        raise BadArchive(f"{path}: no such archive", thing=str(path)) from None
    except OSError as exc:
        raise BadArchive(f"{path}: cannot read it: {exc.strerror}", thing=str(path)) from exc
    try:
        document = json.loads(gzip.decompress(compressed))
    except (EOFError, OSError, zlib.error):
        raise BadArchive(f"{path}: truncated or not a supz registry archive (gzip stream incomplete)",
                         thing=str(path)) from None
    except ValueError:
        raise BadArchive(f"{path}: not a supz registry archive (no valid JSON inside)", thing=str(path)) from None
    if not isinstance(document, dict) or not isinstance(document.get("payload"), dict):
        raise BadArchive(f"{path}: not a supz registry archive", thing=str(path))
    payload = document["payload"]
    if payload.get("format") != FORMAT or payload.get("version") != VERSION:
        raise BadArchive(f"{path}: not a supz registry archive of version {VERSION}", thing=str(path))
    if hashlib.sha256(_canonical(payload)).hexdigest() != document.get("checksum"):
        raise BadArchive(f"{path}: checksum mismatch: the archive was altered or damaged", thing=str(path))
    try:
        manifest = parse_manifest(payload.get("manifest"), path)
    except RegistryCorrupt as exc:
        raise BadArchive(f"{path}: its manifest is invalid: {exc}", thing=str(path)) from exc
    texts = payload.get("entries")
    if not isinstance(texts, dict) or set(texts) != set(manifest.entries):
        raise BadArchive(f"{path}: its entries do not match its manifest", thing=str(path))
    for name, text in texts.items():
        meta = manifest.entries[name]
        if not isinstance(text, str) or sha256_text(text) != meta["sha256"] or meta["state"] not in STATES:
            raise BadArchive(f"{path}: {name}: content does not match the archive's manifest", thing=name)
        why = quarantine.problem(name, text, f"{name}.conf (in {Path(path).name})")
        if why is not None:
            raise BadArchive(f"{path}: {name}: {why}", thing=name)
    return Archive(str(payload.get("created", "")), str(payload.get("host", "")), manifest, dict(texts))
