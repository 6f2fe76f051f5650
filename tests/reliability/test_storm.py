"""The seeded fault storm: identical record sequence with and without faults.

The small storm runs in the normal suite; the big one (more files, records and seeds) is
marked ``slow``: run it with ``pytest -m slow tests/reliability/test_storm.py``."""

from __future__ import annotations

import os

import pytest

from tests.reliability.harness import Outcome
from tests.reliability.scenarios_storm import storm
from tests.reliability.world import World

FAST_SEED = int(os.environ.get("TFR_STORM_SEED", "1"))


def check(result: Outcome) -> None:
    assert result.problems == [], result.describe()
    assert result.tally.clean
    assert result.tally.lost == 0


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_storm_interleaved_dataset(world: World, compression: str) -> None:
    result = storm(world, compression, "dataset", files=8, records=40, seed=FAST_SEED)
    check(result)
    assert result.injected >= 2


def test_storm_through_dataloader_workers(world: World) -> None:
    pytest.importorskip("torch")
    result = storm(world, "", "torch", files=8, records=40, seed=FAST_SEED)
    check(result)
    assert result.injected >= 2


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_big_storm_interleaved_dataset(world: World, compression: str, seed: int) -> None:
    result = storm(world, compression, "dataset", files=8, records=200, seed=seed)
    check(result)
    assert result.injected >= 10


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_big_storm_through_dataloader_workers(world: World, seed: int) -> None:
    pytest.importorskip("torch")
    result = storm(world, "GZIP" if seed == 2 else "", "torch", files=8, records=200, seed=seed)
    check(result)
    assert result.injected >= 10
