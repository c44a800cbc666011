"""Request signing for the terminal API: RFC 9421 with Ed25519 through
requests-http-signature, covering @method, @path and content-digest (RFC 9530), with
created, nonce and keyid (this terminal's id)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from requests_http_signature import HTTPSignatureAuth, algorithms

COVERED = ("@method", "@path", "content-digest")
PRIVATE_ONLY = 0o077  # any permission bit for the group or others


class KeyFileExposed(Exception):
    """The private key file can be read or written by users other than its owner. Anyone
    who reads it can sign as this terminal (record e-money, pay with points); anyone who
    writes it can swap in a key of their own. The agent refuses to use it."""

    def __init__(self, path: Path, mode: int) -> None:
        self.path = path
        self.mode = mode
        super().__init__(
            f"秘密鍵ファイル {path} が他のユーザーからも読み書きできる状態です（権限 {mode:04o}）。"
            f"端末の管理者が `chmod 600 {path}` を実行してから、もう一度起動してください。"
            f" / The key file {path} is readable or writable by group or others (mode {mode:04o}): "
            f"run `chmod 600 {path}` and start the agent again."
        )


def terminal_auth(private_key_pem: bytes, terminal_id: str) -> HTTPSignatureAuth:
    """A requests auth object that signs every request with a fresh nonce."""
    return HTTPSignatureAuth(
        signature_algorithm=algorithms.ED25519,
        key=private_key_pem,
        key_id=terminal_id,
        covered_component_ids=COVERED,
        use_nonce=True,
    )


def load_private_key(path: Path) -> bytes:
    """The terminal's private key (PEM), refused with KeyFileExposed unless only its owner
    may read and write it. The mode is checked on the open file, so the file read is the
    file checked."""
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & PRIVATE_ONLY:
            raise KeyFileExposed(Path(path), mode)
        return f.read()


def generate_key(path: Path) -> str:
    """Write a new Ed25519 private key (PEM, mode 0600, never overwriting) and return
    the public key in PEM, for the operator to register."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return public_key_pem(pem)


def public_key_pem(private_key_pem: bytes) -> str:
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
