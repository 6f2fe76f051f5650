"""Read-task planning: every byte of every file in exactly one task, about as many tasks as asked."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("ray", reason="ray is not installed (pip install 'tfrecord-s3[ray]')")

from tfrecord_s3.ray._plan import plan_tasks


def covered(tasks: list, paths: list[str], sizes: list[int]) -> dict[str, list[tuple[int, int]]]:
    spans: dict[str, list[tuple[int, int]]] = {path: [] for path in paths}
    size_of = dict(zip(paths, sizes, strict=True))
    for parts, _ in tasks:
        for part in parts:
            spans[part.path].append((part.start, size_of[part.path] if part.end is None else part.end))
    return {path: sorted(found) for path, found in spans.items()}


@given(
    st.lists(st.integers(0, 10_000), min_size=1, max_size=12),
    st.integers(1, 40),
    st.integers(1, 3_000),
    st.booleans(),
)
def test_tasks_tile_every_file_once(sizes: list[int], parallelism: int, min_range: int, gz: bool) -> None:
    paths = [f"f{i}.tfrecord" + (".gz" if gz and i % 2 else "") for i in range(len(sizes))]
    tasks = plan_tasks(paths, sizes, parallelism, compression_type="auto", min_range_bytes=min_range)
    assert len(tasks) <= max(parallelism, 1)
    for path, size in zip(paths, sizes, strict=True):
        spans = covered(tasks, paths, sizes)[path]
        assert spans[0][0] == 0
        assert spans[-1][1] == size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # no gap, no overlap
        if path.endswith(".gz") or size < 2 * min_range:
            assert len(spans) == 1
        else:
            assert all(end - start >= min_range for start, end in spans)
    assert sum(size for _, size in tasks) == sum(sizes)


def test_many_files_are_grouped_by_bytes() -> None:
    tasks = plan_tasks([f"f{i}" for i in range(10)], [100] * 10, 3, compression_type=None, min_range_bytes=1)
    assert sorted(len(parts) for parts, _ in tasks) == [3, 3, 4]
    assert [p.path for parts, _ in tasks for p in parts] == [f"f{i}" for i in range(10)]  # in order


def test_more_tasks_than_files_cut_the_biggest_file() -> None:
    tasks = plan_tasks(["big", "small"], [1000, 10], 5, compression_type=None, min_range_bytes=100)
    assert [(parts[0].path, size) for parts, size in tasks] == [
        ("big", 250),
        ("big", 250),
        ("big", 250),
        ("big", 250),
        ("small", 10),
    ]
