"""TFRecordDatasource: Ray Data's ``Datasource`` over our reader and decoder.

Planning (on the driver) lists the files and their sizes and cuts them into read tasks
(:mod:`._plan`); each task is a module-level function bound to its parts and the dataset's
:class:`TaskOptions`, so a task pickles to a few hundred bytes and captures no client, no
stream and no datasource.
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from ray.data import Datasource, ReadTask
from ray.data.block import BlockMetadata

from ..arrow import arrow_schema
from ..decode.specs import FeatureSpec
from ..errors import ConfigError
from ._plan import Task, plan_tasks
from ._read import ROW_COUNT_COLUMN, TaskOptions, read_parts

if TYPE_CHECKING:
    from ray.data.context import DataContext

__all__ = ["TFRecordDatasource"]

_READ_TASK_PARAMETERS = frozenset(inspect.signature(ReadTask.__init__).parameters)


class TFRecordDatasource(Datasource):
    """TFRecord files of ``tf.train.Example`` as blocks of pyarrow Tables.

    Built by :func:`tfrecord_s3.ray.read_tfrecords`, which lists the files and settles the
    features; supports Ray's projection pushdown (``ds.select_columns``), so only the columns
    still needed are decoded, and none at all for ``ds.count()``.
    """

    def __init__(
        self,
        paths: list[str],
        sizes: list[int],
        options: TaskOptions,
        *,
        min_range_bytes: int,
        rows: list[int | None] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if len(paths) != len(sizes):
            raise ConfigError("TFRecordDatasource: one size per path")
        self._paths = paths
        self._sizes = sizes
        self._options = options
        self._min_range_bytes = min_range_bytes
        # Records per file where metadata says (TFDS's dataset_info.json), so Ray plans and
        # counts without reading.
        self._rows = dict(zip(paths, rows or [None] * len(paths), strict=True))
        self._projection_map: dict[str, str] | None = None

    @property
    def features(self) -> dict[str, FeatureSpec]:
        """The features decoded, after any projection."""
        wanted = self._projection_map
        features = self._options.features
        if wanted is None:
            return dict(features)
        return {key: spec for key, spec in features.items() if key in wanted}

    def get_name(self) -> str:
        return "TFRecords"

    def supports_projection_pushdown(self) -> bool:
        return True

    def estimate_inmemory_data_size(self) -> int | None:
        # Decoded columns take about what their records take on disk (numbers and bytes as
        # they are, minus framing); compressed files are counted at their stored size.
        return sum(self._sizes) if self.features else 0

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: DataContext | None = None
    ) -> list[ReadTask]:
        """About ``parallelism`` tasks covering every record once, without reading any."""
        features = self.features
        options = TaskOptions(
            self._options.read,
            features,
            self._options.batch_rows,
            self._options.batch_bytes,
            self._options.inferred_from,
        )
        schema = arrow_schema(features) if features else pa.schema([(ROW_COUNT_COLUMN, pa.null())])
        tasks = plan_tasks(
            self._paths,
            self._sizes,
            parallelism,
            compression_type=options.read.compression_type,
            min_range_bytes=self._min_range_bytes,
        )
        return [
            _read_task(parts, size, self._known_rows(parts), options, schema, per_task_row_limit)
            for parts, size in tasks
        ]

    def _known_rows(self, parts: Task) -> int | None:
        counts = [self._rows.get(part.path) if part.whole else None for part in parts]
        return None if None in counts else sum(c for c in counts if c is not None)


def _read_task(
    parts: Task, size: int, rows: int | None, options: TaskOptions, schema: pa.Schema, per_task_row_limit: int | None
) -> ReadTask:
    files = tuple(dict.fromkeys(part.path for part in parts))
    read_fn = functools.partial(read_parts, parts, options)
    extra: dict[str, Any] = {}
    if "schema" in _READ_TASK_PARAMETERS:  # newer Ray; older releases keep it in the block metadata
        metadata = BlockMetadata(num_rows=rows, size_bytes=size, input_files=files, exec_stats=None)
        extra["schema"] = schema
    else:
        legacy: dict[str, Any] = {"schema": schema}
        metadata = BlockMetadata(num_rows=rows, size_bytes=size, input_files=files, exec_stats=None, **legacy)
    if "per_task_row_limit" in _READ_TASK_PARAMETERS:
        extra["per_task_row_limit"] = per_task_row_limit
    return ReadTask(read_fn, metadata, **extra)
