"""The hashing thread beside an upload's writes must hash exactly the bytes, in order."""

import hashlib
import os
import random

import pytest

from picup.hashing import HashingBeside


def test_hashes_every_chunk_in_order_for_every_hasher():
    rng = random.Random(7)
    # Chunk sizes across hashlib's GIL threshold (2 KiB) and up to the upload CHUNK (1 MiB).
    chunks = [os.urandom(rng.choice([0, 1, 100, 2047, 2048, 65536, 1024 * 1024])) for _ in range(200)]
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with HashingBeside(sha256, md5) as hashing:
        for chunk in chunks:
            hashing.update(chunk)
    whole = b"".join(chunks)
    assert sha256.hexdigest() == hashlib.sha256(whole).hexdigest()
    assert md5.hexdigest() == hashlib.md5(whole).hexdigest()


def test_a_hasher_carried_on_from_an_earlier_chunk_continues_where_it_was():
    """A tus upload resumes the SHA-256 state of its earlier PATCHes."""
    first, second = os.urandom(3 * 1024 * 1024), os.urandom(1024 * 1024 + 5)
    carried = hashlib.sha256(first)
    with HashingBeside(carried) as hashing:
        hashing.update(second)
    assert carried.hexdigest() == hashlib.sha256(first + second).hexdigest()


def test_closing_twice_is_harmless_and_updating_after_close_is_refused():
    digest = hashlib.sha256()
    hashing = HashingBeside(digest)
    hashing.update(b"photo")
    hashing.close()
    hashing.close()
    assert digest.hexdigest() == hashlib.sha256(b"photo").hexdigest()
    with pytest.raises(RuntimeError):
        hashing.update(b"more")


def test_a_buffer_refilled_after_update_is_hashed_as_it_was_given():
    """A reader that fills the same bytearray again must not change what was hashed."""
    digest = hashlib.sha256()
    buffer = bytearray(b"a" * 1024 * 1024)
    with HashingBeside(digest) as hashing:
        hashing.update(buffer)
        buffer[:] = b"b" * len(buffer)
        hashing.update(memoryview(buffer))
    assert digest.hexdigest() == hashlib.sha256(b"a" * 1024 * 1024 + b"b" * 1024 * 1024).hexdigest()
