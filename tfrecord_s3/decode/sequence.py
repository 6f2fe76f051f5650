"""Decode one serialized ``tf.train.SequenceExample``: context features and feature lists."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..proto.example_pb2 import SequenceExample
from ..proto.feature_pb2 import Feature
from ._assemble import assemble
from ._columns import MISSING, WRONG_KIND, Column, decode_column
from ._gather import EMPTY_FEATURE, UnparsableRecord, parse_proto
from ._location import Location
from ._partitions import Rows, ragged_feature
from .example import Buffer, feature_values, features_to_dict
from .ragged import RaggedValues
from .specs import (
    NUMPY_DTYPE,
    TF_NAME_OF_DTYPE,
    FeatureSpec,
    FixedLenSequenceFeature,
    RaggedFeature,
)
from .validation import CONTEXT_SPECS, SEQUENCE_SPECS, check_specs

__all__ = ["parse_sequence_example"]

_serialize = Feature.SerializeToString


def parse_sequence_example(
    serialized: Buffer,
    context_features: Mapping[str, FeatureSpec] | None = None,
    sequence_features: Mapping[str, FeatureSpec] | None = None,
    *,
    path: str | None = None,
    offset: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decode one SequenceExample into ``(context, sequences)``.

    ``None`` for either spec mapping means every feature there (``{}`` means none):
    context values as in ``parse_example(features=None)``; each feature list as a list with
    one entry per step (an array or ``list[bytes]``; ``[]`` for a step with no kind set).

    Context specs: ``FixedLenFeature``, ``VarLenFeature``, ``RaggedFeature`` (results as in
    ``parse_example``). Sequence specs, one row per step:

    - ``FixedLenSequenceFeature``: ``np.ndarray [steps, *shape]``; each step must hold exactly
      ``prod(shape)`` values; a missing list is ``[0, *shape]`` if ``allow_missing``, else an error.
    - ``VarLenFeature`` / ``RaggedFeature``: :class:`RaggedValues` with one row per step
      (``dense_shape`` ``(steps, longest)`` as TensorFlow's SparseTensor). A RaggedFeature's
      ``value_key`` and partition keys name feature lists; each step is partitioned by the same
      step of the partition lists, as TensorFlow does.

    Raises ``DecodeError`` as TensorFlow would, ``ConfigError`` for an unsupported spec.
    """
    where = Location(path, None if offset is None else [offset])
    check_sequence_specs(context_features, sequence_features)
    try:
        example: Any = parse_proto(SequenceExample.FromString, serialized)
    except UnparsableRecord as exc:
        raise where.error(0, None, f"Could not parse sequence example input: {exc.reason}") from exc
    context_map = example.context.feature
    lists = example.feature_lists.feature_list

    if context_features is None:
        context: dict[str, Any] = features_to_dict(context_map)
    else:
        context = _context(context_features, context_map, where)
    if sequence_features is None:
        sequences: dict[str, Any] = {
            key: [_step_values(step) for step in feature_list.feature] for key, feature_list in lists.items()
        }
    else:
        sequences = {key: _sequence(key, spec, lists, where) for key, spec in sequence_features.items()}
    return context, sequences


def check_sequence_specs(
    context_features: Mapping[str, FeatureSpec] | None, sequence_features: Mapping[str, FeatureSpec] | None
) -> None:
    """``ConfigError`` unless ``parse_sequence_example`` takes these specs (TensorFlow's checks)."""
    if context_features is not None:
        check_specs(context_features, CONTEXT_SPECS, "context_features")
    if sequence_features is not None:
        check_specs(sequence_features, SEQUENCE_SPECS, "sequence_features")
        for key, spec in sequence_features.items():
            if isinstance(spec, FixedLenSequenceFeature) and spec.default_value is not None:
                raise ConfigError(
                    f"sequence feature {key!r}: a FixedLenSequenceFeature in a feature list takes no "
                    "default_value (TensorFlow: feature_list.dense_defaults must be None)"
                )


def _step_values(step: Feature) -> Any:
    value = feature_values(step)
    return [] if value is None else value


def _context(features: Mapping[str, FeatureSpec], context_map: Any, where: Location) -> dict[str, Any]:
    def column(key: str, dtype: str) -> Column:
        found = decode_column([_serialize(context_map.get(key, EMPTY_FEATURE))], dtype)
        if key in context_map and found.counts[0] == MISSING:
            # TensorFlow's SequenceExample parser, unlike its Example parser, takes a context
            # Feature with no kind set as present with no values (so no default applies).
            return Column(found.values, np.zeros(1, dtype=np.int64), found.tags)
        return found

    batch = assemble(features, column, 1, where)
    return {key: value.row(0) if isinstance(value, RaggedValues) else value[0] for key, value in batch.items()}


def _sequence(key: str, spec: FeatureSpec, lists: Any, where: Location) -> Any:
    if isinstance(spec, RaggedFeature):
        return ragged_feature(key, spec, _steps_of(lists), where, _STEPS)
    feature_list = lists.get(key)
    dtype_name = TF_NAME_OF_DTYPE[spec.dtype]
    if feature_list is None:
        if isinstance(spec, FixedLenSequenceFeature):
            if not spec.allow_missing:
                raise where.error(
                    0, key, f"Feature list: {key} (data type: {dtype_name}) is required but could not be found."
                )
            return np.empty((0, *spec.shape), dtype=NUMPY_DTYPE[spec.dtype])
        steps: list[bytes] = []
    else:
        steps = [_serialize(step) for step in feature_list.feature]
    column = decode_column(steps, spec.dtype)
    counts = column.counts
    wrong = np.flatnonzero(counts == WRONG_KIND)
    if len(wrong):
        step = int(wrong[0])
        raise where.error(
            0,
            key,
            f"Feature list: {key}, Index: {step}.  Data types don't match. "
            f"Expected type: {dtype_name}, Actual type: {column.found_type(step)}",
        )
    if isinstance(spec, FixedLenSequenceFeature):
        bad = np.flatnonzero((counts == MISSING) | (counts != spec.size))
        if len(bad):
            step = int(bad[0])
            raise where.error(
                0,
                key,
                f"Feature list: {key}, Index: {step}.  Number of {dtype_name} values != expected.  "
                f"Values size: {max(int(counts[step]), 0)} but output shape: [{','.join(map(str, spec.shape))}]",
            )
        values = column.values
        if isinstance(values, list):
            array = np.empty(len(values), dtype=object)
            array[:] = values
            values = array
        return values.reshape((len(steps), *spec.shape))
    return RaggedValues(column.values, np.maximum(counts, 0))


_STEPS = Rows("Feature list", steps=True)


def _steps_of(lists: Any) -> Callable[[str, str], Column]:
    """Columns over the steps of each feature list (none when the list is missing)."""
    decoded: dict[tuple[str, str], Column] = {}

    def column(key: str, dtype: str) -> Column:
        found = decoded.get((key, dtype))
        if found is None:
            feature_list = lists.get(key)
            steps = [] if feature_list is None else [_serialize(step) for step in feature_list.feature]
            found = decoded[(key, dtype)] = decode_column(steps, dtype)
        return found

    return column
