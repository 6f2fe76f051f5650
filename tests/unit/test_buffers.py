"""The process's pool of block buffers: reuse by size, bounds, and emptying."""

from __future__ import annotations

import os

import pytest

from tfrecord_s3.storage.buffers import BufferPool, process_buffers

KiB = 1024


def test_a_given_back_buffer_serves_the_next_block_that_fits() -> None:
    pool = BufferPool(max_bytes=1024 * KiB)
    pool.attach()
    block = pool.take(100 * KiB)
    block[:3] = b"abc"
    pool.give(block)
    again = pool.take(80 * KiB)  # smaller, within twice: the same buffer
    assert again.obj is block.obj
    assert len(again) == 80 * KiB
    assert (pool.allocated, pool.reused) == (100 * KiB, 1)


def test_the_smallest_buffer_that_holds_the_block_is_taken() -> None:
    pool = BufferPool(max_bytes=1024 * KiB)
    pool.attach()
    blocks = [pool.take(size * KiB) for size in (64, 16, 32)]
    for block in blocks:
        pool.give(block)
    assert len(pool.take(20 * KiB).obj) == 32 * KiB  # type: ignore[arg-type]
    assert len(pool.take(10 * KiB).obj) == 16 * KiB  # type: ignore[arg-type]


def test_a_buffer_more_than_twice_the_block_is_left_for_bigger_ones() -> None:
    pool = BufferPool(max_bytes=1024 * KiB)
    pool.attach()
    big = pool.take(256 * KiB)
    pool.give(big)
    small = pool.take(100 * KiB)
    assert small.obj is not big.obj
    assert pool.idle_bytes == 256 * KiB


def test_the_pool_keeps_at_most_its_bytes_preferring_large_buffers() -> None:
    pool = BufferPool(max_bytes=100 * KiB)
    pool.attach()
    small, large, huge = pool.take(30 * KiB), pool.take(60 * KiB), pool.take(200 * KiB)
    pool.give(small)
    pool.give(large)
    assert pool.idle_bytes == 90 * KiB
    pool.give(huge)  # larger than the whole pool: dropped
    assert pool.idle_bytes == 90 * KiB
    other = pool.take(50 * KiB)
    assert other.obj is large.obj
    assert pool.idle_bytes == 30 * KiB
    pool.give(pool.take(80 * KiB))  # a new 80 KiB buffer pushes the 30 KiB one out
    assert pool.idle_bytes == 80 * KiB


def test_the_last_stream_detaching_frees_the_idle_buffers() -> None:
    pool = BufferPool()
    pool.attach()
    pool.attach()
    pool.give(pool.take(64 * KiB))
    pool.detach()
    assert pool.idle_bytes == 64 * KiB
    pool.detach()
    assert pool.idle_bytes == 0
    pool.give(memoryview(bytearray(64 * KiB)))  # nobody attached: not kept
    assert pool.idle_bytes == 0


def test_only_bytearrays_are_taken_back() -> None:
    pool = BufferPool()
    pool.attach()
    pool.give(memoryview(b"read-only bytes"))
    pool.give(memoryview(bytearray()))
    assert pool.idle_bytes == 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_a_pool_of_its_own() -> None:
    parent = process_buffers()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, b"1" if process_buffers() is not parent else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert process_buffers() is parent
