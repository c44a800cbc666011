"""The per-card hash chain: each entry's hash covers its canonical JSON and the
previous entry's hash, so editing, removing or reordering history is detectable."""

from __future__ import annotations

import hashlib
import json

GENESIS = "0" * 64


def canonical_json(data: object) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def link(prev_hash: str, body_json: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{body_json}".encode()).hexdigest()


def fingerprint(data: object) -> str:
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()
