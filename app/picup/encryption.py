"""Encryption of what a backup sends off the box, as a stream.

AES-256-GCM in the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár
2015, as used by age and Tink): the plaintext is cut into 1 MiB chunks, each
sealed with a nonce made of a random per-object prefix, the chunk's number and
a flag for the last chunk. Reordering, dropping, truncating or appending
chunks therefore fails to decrypt, and so does any flipped bit.

    object = MAGIC (8) | version (1) | nonce prefix (7) | sealed chunks
    sealed chunk = AES-GCM(key, prefix | counter (4, big-endian) | last (1), chunk, aad=header)

The key is 32 random bytes, written in the config as URL-safe base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import os
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"PICUPENC"
VERSION = 1
HEADER = len(MAGIC) + 1 + 7
CHUNK = 1024 * 1024
TAG = 16


class BadKey(ValueError):
    """The configured key is not a usable key."""


class DecryptError(Exception):
    """The data is not what was encrypted with this key (wrong key, damaged or cut short)."""


def new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def parse_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (ValueError, TypeError):
        key = b""
    if len(key) != 32:
        raise BadKey("backup.encryption_key must be 32 bytes in URL-safe base64 (make one with "
                        "`picup backup --new-key`)")
    return key


def key_check(key: bytes) -> str:
    """A fingerprint that tells whether a backup was made with this key, without revealing it."""
    return hmac.new(key, b"picup backup key check", hashlib.sha256).hexdigest()[:32]


def object_id(key: bytes, sha256: str) -> str:
    """The name an original gets in an encrypted backup: its hash is not shown to the bucket."""
    return hmac.new(key, b"picup original " + sha256.encode(), hashlib.sha256).hexdigest()


def sealed_size(size: int) -> int:
    """How many bytes ``size`` bytes of plaintext become."""
    chunks = max(1, -(-size // CHUNK))
    return HEADER + size + chunks * TAG


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class Encrypting(io.RawIOBase):
    """Reads ``source`` and yields it sealed."""

    def __init__(self, source: BinaryIO, key: bytes):
        self._source = source
        self._aead = AESGCM(key)
        prefix = os.urandom(7)
        self._header = MAGIC + bytes([VERSION]) + prefix
        self._prefix = prefix
        self._counter = 0
        self._buffer = bytearray(self._header)
        self._next = _read_exactly(source, CHUNK)  # a short read is the end, whatever the stream
        self._done = False

    def readable(self) -> bool:
        return True

    def _seal_next(self) -> None:
        chunk = self._next
        self._next = _read_exactly(self._source, CHUNK) if len(chunk) == CHUNK else b""
        last = not self._next
        self._buffer += self._aead.encrypt(_nonce(self._prefix, self._counter, last), chunk, self._header)
        self._counter += 1
        self._done = last

    def readinto(self, buffer) -> int:
        while len(self._buffer) < len(buffer) and not self._done:
            self._seal_next()
        count = min(len(buffer), len(self._buffer))
        buffer[:count] = self._buffer[:count]
        del self._buffer[:count]
        return count


class Decrypting(io.RawIOBase):
    """Reads sealed bytes from ``source`` and yields the plaintext; :class:`DecryptError` on any tampering."""

    def __init__(self, source: BinaryIO, key: bytes):
        self._source = source
        self._aead = AESGCM(key)
        header = _read_exactly(source, HEADER)
        if len(header) != HEADER or header[: len(MAGIC)] != MAGIC or header[len(MAGIC)] != VERSION:
            raise DecryptError("not an encrypted Picup backup object")
        self._header = header
        self._prefix = header[len(MAGIC) + 1 :]
        self._counter = 0
        self._buffer = bytearray()
        self._next = _read_exactly(source, CHUNK + TAG)
        self._done = False

    def readable(self) -> bool:
        return True

    def _open_next(self) -> None:
        sealed = self._next
        if len(sealed) < TAG:
            raise DecryptError("the encrypted object is cut short")
        self._next = _read_exactly(self._source, CHUNK + TAG) if len(sealed) == CHUNK + TAG else b""
        last = not self._next
        try:
            self._buffer += self._aead.decrypt(_nonce(self._prefix, self._counter, last), sealed, self._header)
        except InvalidTag:
            raise DecryptError("the encrypted object is damaged, cut short, or the key is wrong") from None
        self._counter += 1
        self._done = last

    def readinto(self, buffer) -> int:
        while len(self._buffer) < len(buffer) and not self._done:
            self._open_next()
        count = min(len(buffer), len(self._buffer))
        buffer[:count] = self._buffer[:count]
        del self._buffer[:count]
        return count


def _read_exactly(source: BinaryIO, size: int) -> bytes:
    parts = []
    while size > 0:
        chunk = source.read(size)
        if not chunk:
            break
        parts.append(chunk)
        size -= len(chunk)
    return b"".join(parts)
