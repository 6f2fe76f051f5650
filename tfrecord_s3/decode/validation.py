"""Spec mappings checked as TensorFlow checks them, before any record is read.

TensorFlow sorts the keys a mapping reads into three groups: dense (``FixedLenFeature``,
``FixedLenSequenceFeature``), sparse (``VarLenFeature``, a ``SparseFeature``'s index and
value keys) and ragged (a ``RaggedFeature``'s value key and partition keys). One key in two
groups, or twice in a group with another dtype (or, for ragged keys, another
``row_splits_dtype``), is rejected; so are spec types a parser does not take. Here each is a
``ConfigError`` with TensorFlow's wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ConfigError
from .specs import (
    INT64,
    TF_NAME_OF_DTYPE,
    FeatureSpec,
    FixedLenFeature,
    FixedLenSequenceFeature,
    RaggedFeature,
    SparseFeature,
    UniformRowLength,
    VarLenFeature,
)

__all__ = ["CONTEXT_SPECS", "EXAMPLE_SPECS", "SEQUENCE_SPECS", "check_specs"]

EXAMPLE_SPECS = (FixedLenFeature, VarLenFeature, FixedLenSequenceFeature, RaggedFeature, SparseFeature)
CONTEXT_SPECS = (FixedLenFeature, VarLenFeature, RaggedFeature)
SEQUENCE_SPECS = (FixedLenSequenceFeature, VarLenFeature, RaggedFeature)


def check_specs(features: Any, allowed: tuple[type, ...], what: str = "features") -> Mapping[str, FeatureSpec]:
    """``features`` if TensorFlow's parser would take it; ``ConfigError`` naming the problem."""
    if not isinstance(features, Mapping):
        raise ConfigError(f"{what} must be a mapping of name -> spec, got {type(features).__name__}")
    dense: list[str] = []
    sparse: dict[str, str] = {}
    ragged: dict[str, tuple[str, np.dtype[Any]]] = {}
    for key in sorted(features):
        spec = features[key]
        if not isinstance(key, str):
            raise ConfigError(f"{what}: feature names must be str, got {key!r}")
        if not isinstance(spec, allowed):
            names = ", ".join(kind.__name__ for kind in allowed)
            raise ConfigError(f"{what}: {spec!r} for key {key!r} is not a feature spec this parser takes ({names})")
        if isinstance(spec, (FixedLenFeature, FixedLenSequenceFeature)):
            dense.append(key)
        elif isinstance(spec, VarLenFeature):
            _add_sparse(sparse, key, spec.dtype)
        elif isinstance(spec, SparseFeature):
            for index_key in sorted(spec.index_keys):
                _add_sparse(sparse, index_key, INT64)
            _add_sparse(sparse, spec.value_key, spec.dtype)
        elif isinstance(spec, RaggedFeature):
            _add_ragged(ragged, spec.value_key or key, spec.dtype, spec.row_splits_dtype)
            for partition in spec.partitions:
                if not isinstance(partition, UniformRowLength):
                    _add_ragged(ragged, partition.key, INT64, spec.row_splits_dtype)
    _disjoint("Dense", dense, "sparse", sparse)
    _disjoint("Dense", dense, "ragged", ragged)
    _disjoint("Ragged", ragged, "sparse", sparse)
    return features


def _add_sparse(keys: dict[str, str], key: str, dtype: str) -> None:
    known = keys.setdefault(key, dtype)
    if known != dtype:
        raise ConfigError(f"Conflicting type {TF_NAME_OF_DTYPE[known]} vs {TF_NAME_OF_DTYPE[dtype]} for feature {key}.")


def _add_ragged(keys: dict[str, tuple[str, np.dtype[Any]]], key: str, dtype: str, splits: np.dtype[Any]) -> None:
    known_dtype, known_splits = keys.setdefault(key, (dtype, splits))
    if known_dtype != dtype:
        raise ConfigError(
            f"Conflicting type {TF_NAME_OF_DTYPE[known_dtype]} vs {TF_NAME_OF_DTYPE[dtype]} for feature {key}."
        )
    if known_splits != splits:
        raise ConfigError(f"Conflicting partition type {known_splits} vs {splits} for feature {key}.")


def _disjoint(first: str, a: Any, second: str, b: Any) -> None:
    common = sorted(set(a) & set(b))
    if common:
        raise ConfigError(
            f"{first} and {second} keys must not intersect; {first.lower()}_keys: {sorted(a)}, "
            f"{second}_keys: {sorted(b)}, intersection: {common}"
        )
