"""ProcessLocal: one object per process, a fresh one in a forked child."""

from __future__ import annotations

import os

import pytest

from tfrecord_s3.storage.process_local import ProcessLocal


def test_the_object_is_made_once_and_a_later_factory_changes_nothing() -> None:
    made: list[int] = []
    local = ProcessLocal(lambda: made.append(1) or len(made))
    assert local.get() == 1
    assert local.get(lambda: 99) == 1
    assert made == [1]


def test_the_first_caller_may_make_it_with_its_own_factory() -> None:
    local: ProcessLocal[str] = ProcessLocal(lambda: "default")
    assert local.get(lambda: "mine") == "mine"
    assert local.get() == "mine"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_makes_its_own() -> None:
    local: ProcessLocal[object] = ProcessLocal(object)
    parent = local.get()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, b"1" if local.get() is not parent else b"0")
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert local.get() is parent
