"""The data directory: logs, the cluster secret and the admin token, the cluster's identity.

    <data-dir>/cluster.json        cluster id, name, first members (no secrets)
    <data-dir>/secret.key          the cluster secret (0600): never logged, never sent
    <data-dir>/admin.token         the bearer token for admin commands (0600)
    <data-dir>/quorum/             the quorum log and ownership.json
    <data-dir>/nodes/<id>/         each node's replica
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from roster.errors import UserError

SECRET_BYTES = 32
TOKEN_BYTES = 24
PRIVATE_FILE_MODE = 0o600


@dataclass(frozen=True)
class ClusterIdentity:
    cluster_id: str
    name: str
    members: tuple[str, ...]


def write_private(path: Path, data: bytes) -> None:
    """Create a 0600 file atomically: the secret is never world-readable, not even briefly."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def secret_path(data_dir: Path) -> Path:
    return data_dir / "secret.key"


def token_path(data_dir: Path) -> Path:
    return data_dir / "admin.token"


def read_secret(path: Path) -> bytes:
    try:
        raw = path.read_bytes().strip()
    except OSError as exc:
        raise UserError(f"cannot read the cluster secret at {path}: {exc.strerror}") from None
    if len(raw) < 16:
        raise UserError(f"the cluster secret at {path} is too short")
    return raw


def read_token(data_dir: Path) -> str:
    env = os.environ.get("ROSTER_TOKEN")
    if env:
        return env.strip()
    try:
        return token_path(data_dir).read_text().strip()
    except OSError:
        raise UserError(f"no admin token: set ROSTER_TOKEN or create {token_path(data_dir)}") from None


def load_identity(data_dir: Path) -> ClusterIdentity | None:
    path = data_dir / "cluster.json"
    if not path.exists():
        return None
    try:
        d = json.loads(path.read_text())
        return ClusterIdentity(d["cluster_id"], d["name"], tuple(d["members"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is unreadable ({exc}); it names this data dir's cluster") from None


def init_data_dir(data_dir: Path, name: str, members: tuple[str, ...]) -> tuple[ClusterIdentity, bool]:
    """The cluster identity of this data dir, creating it (and the secret and token) the first time.

    Returns (identity, created)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    existing = load_identity(data_dir)
    if existing is not None:
        return existing, False
    ident = ClusterIdentity(str(uuid.uuid4()), name, members)
    if not secret_path(data_dir).exists():
        write_private(secret_path(data_dir), secrets.token_hex(SECRET_BYTES).encode())
    if not token_path(data_dir).exists():
        write_private(token_path(data_dir), secrets.token_urlsafe(TOKEN_BYTES).encode())
    body = {"cluster_id": ident.cluster_id, "name": ident.name, "members": list(ident.members)}
    (data_dir / "cluster.json").write_text(json.dumps(body, indent=2) + "\n")
    return ident, True
