"""S15/S16: the join challenge. The joiner proves it holds the cluster secret by an HMAC over
(nonce, node id, cluster id); the secret itself never leaves the node."""

from __future__ import annotations

import hashlib
import hmac

FINGERPRINT_BYTES = 8


def join_mac(secret: bytes, nonce: str, node: str, cluster_id: str) -> str:
    return hmac.new(secret, f"{nonce}|{node}|{cluster_id}".encode(), hashlib.sha256).hexdigest()


def check_mac(secret: bytes, nonce: str, node: str, cluster_id: str, mac: str) -> bool:
    return hmac.compare_digest(join_mac(secret, nonce, node, cluster_id), mac)


def fingerprint(secret: bytes) -> str:
    """What the log may hold about the secret: enough to tell two keys apart, nothing more."""
    return hashlib.blake2b(secret, digest_size=FINGERPRINT_BYTES, person=b"roster-key").hexdigest()


class NonceSource:
    """Unpredictable, never-repeating nonces from entropy the shell hands in (no `random` here)."""

    def __init__(self, entropy: bytes) -> None:
        self._entropy = entropy
        self._counter = 0

    def next(self) -> str:
        self._counter += 1
        return hashlib.blake2b(self._entropy + self._counter.to_bytes(8, "big"), digest_size=16).hexdigest()


def acquire_proof(secret: bytes, node: str, sent_at: int) -> str:
    """S8b: only a holder of the cluster secret may take the quorum (an impostor with a
    member's name but the wrong key must not lead the cluster)."""
    return hmac.new(secret, f"acquire|{node}|{sent_at}".encode(), hashlib.sha256).hexdigest()


def check_acquire(secret: bytes, node: str, sent_at: int, proof: str) -> bool:
    return hmac.compare_digest(acquire_proof(secret, node, sent_at), proof)
