"""Mixing datasets as tf.data does: ``sample_from_datasets`` (at random, by weight) and
``choose_from_datasets`` (as a dataset of indices says). Both are resumable: their state
holds every input's position, the generator's state and which inputs have ended.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from ..errors import ConfigError
from .dataset import Dataset, TFRecordDataset
from .stages import Stage, check_kind, from_rng_state, to_rng_state


def sample_from_datasets(
    datasets: Sequence[Dataset],
    weights: Sequence[float] | None = None,
    seed: int | None = None,
    stop_on_empty_dataset: bool = False,
) -> Dataset:
    """Elements of ``datasets``, each drawn from ``datasets[i]`` with probability ``weights[i]``
    (normalised; uniform when None), each element once.

    ``seed``: every iteration draws the same sequence (TensorFlow's behaviour with a seed);
    without one, each iteration draws its own. ``stop_on_empty_dataset=False`` (TF's default
    here) leaves an ended input out and draws among the others until all have ended; True ends
    the mix the first time an ended input is drawn."""
    children = _check_datasets(datasets, "sample_from_datasets")
    if weights is None:
        probabilities = [1.0] * len(children)
    else:
        probabilities = [float(w) for w in weights]
        if len(probabilities) != len(children):
            raise ConfigError(
                f"sample_from_datasets: {len(probabilities)} weights for {len(children)} datasets; give one per dataset"
            )
        if any(not np.isfinite(w) or w < 0 for w in probabilities):
            raise ConfigError(f"sample_from_datasets: weights must be finite and >= 0, not {probabilities}")
    return _Mix(
        children,
        "sample",
        lambda inputs, state: _SampleStage(inputs, probabilities, seed, stop_on_empty_dataset, state),
    )


def choose_from_datasets(
    datasets: Sequence[Dataset], choice_dataset: Dataset | Sequence[int], stop_on_empty_dataset: bool = True
) -> Dataset:
    """Elements of ``datasets`` in the order ``choice_dataset`` (a dataset of ints, or a
    sequence of them) names them: the next element of ``datasets[i]`` for each ``i``.

    ``stop_on_empty_dataset=True`` (TF's default) ends when a choice names an input that has
    ended; False skips that choice. An index out of range raises ``ConfigError``."""
    children = _check_datasets(datasets, "choose_from_datasets")
    if not isinstance(choice_dataset, Dataset):
        choices = [int(c) for c in choice_dataset]
        choice_dataset = Dataset.range(len(choices)).map(choices.__getitem__)
    return _Mix(
        [*children, choice_dataset],
        "choose",
        lambda inputs, state: _ChooseStage(inputs[:-1], inputs[-1], stop_on_empty_dataset, state),
    )


def _check_datasets(datasets: Sequence[Dataset], name: str) -> list[Dataset]:
    children = list(datasets)
    if not children:
        raise ConfigError(f"{name}: datasets must be a non-empty list of datasets")
    for child in children:
        if not isinstance(child, Dataset):
            raise ConfigError(f"{name}: datasets must be tfrecord_s3 datasets, not {type(child).__name__}")
    return children


class _Mix(Dataset):
    def __init__(self, inputs: list[Dataset], kind: str, make: Any) -> None:
        super().__init__()
        self._inputs = inputs
        self._kind = kind
        self._make = make

    def _sources(self) -> list[TFRecordDataset]:
        return [source for child in self._inputs for source in child._sources()]

    def _open(self, state: dict[str, Any] | None, epoch: int) -> Stage:
        if state is not None:
            check_kind(state, self._kind)
            if len(state["inputs"]) != len(self._inputs):
                raise ConfigError(
                    f"load_state_dict: the state mixes {len(state['inputs'])} inputs, the dataset {len(self._inputs)}"
                )
        saved = [None] * len(self._inputs) if state is None else state["inputs"]
        opened: list[Stage] = []
        try:
            for child, child_state in zip(self._inputs, saved, strict=True):
                opened.append(child._open(child_state, epoch))
        except BaseException:
            for stage in opened:
                stage.close()
            raise
        mixed: Stage = self._make(opened, state)
        return mixed


class _MixStage:
    """Several input stages; an input is closed (its readers joined) as soon as it ends."""

    kind = "mix"

    def __init__(self, inputs: list[Stage], stop_on_empty: bool, state: dict[str, Any] | None) -> None:
        self._inputs = inputs
        self._stop_on_empty = stop_on_empty
        self._ended = [False] * len(inputs) if state is None else [bool(e) for e in state["ended"]]
        self._stopped = bool(state["stopped"]) if state is not None else False
        for stage, ended in zip(inputs, self._ended, strict=True):
            if ended:
                stage.close()

    def __iter__(self) -> _MixStage:
        return self

    def __next__(self) -> Any:
        while not self._stopped:
            index = self._pick()
            if index is None:
                break
            found, element = self._pull(index)
            if found:
                return element
            if self._stop_on_empty:
                break
        return self._stop()

    def _pick(self) -> int | None:
        """The input to take the next element from; None: the mix has ended."""
        raise NotImplementedError

    def _pull(self, index: int) -> tuple[bool, Any]:
        """(True, the next element of input ``index``), or (False, None) once it has ended."""
        if self._ended[index]:
            return False, None
        try:
            return True, next(self._inputs[index])
        except StopIteration:
            self._ended[index] = True
            self._inputs[index].close()
            return False, None

    def _stop(self) -> NoReturn:
        self._stopped = True
        self.close()
        raise StopIteration

    def _own_state(self) -> dict[str, Any]:
        return {}

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "inputs": [stage.state() for stage in self._inputs],
            "ended": list(self._ended),
            "stopped": self._stopped,
            **self._own_state(),
        }

    def close(self) -> None:
        for stage in self._inputs:
            stage.close()


class _SampleStage(_MixStage):
    kind = "sample"

    def __init__(
        self,
        inputs: list[Stage],
        weights: list[float],
        seed: int | None,
        stop_on_empty: bool,
        state: dict[str, Any] | None,
    ) -> None:
        super().__init__(inputs, stop_on_empty, state)
        self._weights = weights
        self._rng = random.Random(secrets.randbits(63) if seed is None else f"sample:{seed}")
        if state is not None:
            self._rng.setstate(to_rng_state(state["rng"]))

    def _pick(self) -> int | None:
        # Stopping on an empty input: ended inputs stay in the draw (drawing one ends the mix).
        live = [i for i, w in enumerate(self._weights) if w > 0 and (self._stop_on_empty or not self._ended[i])]
        if not live:
            return None
        return self._rng.choices(live, weights=[self._weights[i] for i in live])[0]

    def _own_state(self) -> dict[str, Any]:
        return {"rng": from_rng_state(self._rng.getstate())}


class _ChooseStage(_MixStage):
    kind = "choose"

    def __init__(self, inputs: list[Stage], choices: Stage, stop_on_empty: bool, state: dict[str, Any] | None) -> None:
        super().__init__([*inputs, choices], stop_on_empty, state)
        self._count = len(inputs)

    def _pick(self) -> int | None:
        if all(self._ended[: self._count]):
            return None
        found, choice = self._pull(self._count)
        return _index(choice, self._count) if found else None


def _index(choice: Any, count: int) -> int:
    if isinstance(choice, np.ndarray) and choice.ndim == 0:
        choice = choice.item()
    if isinstance(choice, bool) or not isinstance(choice, (int, np.integer)):
        raise ConfigError(f"choose_from_datasets: choice_dataset gave {choice!r}, not an integer index")
    if not 0 <= choice < count:
        raise ConfigError(f"choose_from_datasets: choice {int(choice)} is out of range for {count} datasets")
    return int(choice)
