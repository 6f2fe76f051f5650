"""A Python interpreter with TensorFlow 2.16 (and tensorflow-io) next to this clone's tfrecord_s3.

Tests that compare against TensorFlow, or check that both load in one process, run their code
in that interpreter as a subprocess: our own environment has protobuf 5+ and no TensorFlow.

Which interpreter: ``$TFR_TEST_TF_PYTHON`` when set (it must already have TensorFlow; this
clone is put first on its ``PYTHONPATH`` by :func:`subprocess_env`), else a virtualenv built
here under ``<clone>/.ci-venvs/tf216`` (gitignored) and reused while its recorded
requirements match: ``tensorflow-cpu==2.16.*``, ``tensorflow-io==0.37.1`` and our own
dependencies as pyproject.toml declares them, resolved together by pip (so the build also
proves the package installs beside TensorFlow 2.16), plus a ``.pth`` file pointing at this
clone, so it imports the code being tested without building or copying it. About 250 MB of
wheels and 1.3 GB on disk; a few minutes the first time.

``python tests/tensorflow_env.py`` builds it (``.ci/run`` does, so the test run does not pay)
and prints the interpreter's path.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_VAR = "TFR_TEST_TF_PYTHON"
VENV_DIR = ROOT / ".ci-venvs" / "tf216"
TENSORFLOW_REQUIREMENTS = ("tensorflow-cpu==2.16.*", "tensorflow-io==0.37.1")
_MARKER = "tfrecord-s3-requirements.json"  # written into the venv once it validated
_PIP_TIMEOUT_S = 1800
# What a valid interpreter must do: both packages import in one process, and the
# tfrecord_s3 it imports is this clone's.
_PROBE = (
    "import tensorflow, tfrecord_s3\n"
    "assert tensorflow.__version__.startswith('2.16.'), tensorflow.__version__\n"
    "print(tfrecord_s3.__file__)\n"
)


class TensorFlowUnavailable(Exception):
    """TensorFlow could not be installed here (pip failed or timed out); the text says why."""


def subprocess_env() -> dict[str, str]:
    """The environment to run the interpreter in: this clone first on ``PYTHONPATH``,
    TensorFlow's C++ logging quiet."""
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT) if not path else f"{ROOT}{os.pathsep}{path}",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def project_dependencies() -> list[str]:
    """``[project].dependencies`` of pyproject.toml."""
    try:
        tomllib = importlib.import_module("tomllib")
    except ModuleNotFoundError as exc:  # Python 3.10
        raise TensorFlowUnavailable("reading pyproject.toml for the venv needs Python 3.11+ (tomllib)") from exc
    with (ROOT / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["project"]["dependencies"])


def _requirements() -> list[str]:
    return [*TENSORFLOW_REQUIREMENTS, *project_dependencies()]


def _problem(python: Path) -> str | None:
    """None when ``python`` imports TensorFlow 2.16 and this clone's tfrecord_s3, else why not."""
    try:
        done = subprocess.run(
            [str(python), "-c", _PROBE], env=subprocess_env(), capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python}: {exc}"
    if done.returncode != 0:
        return f"{python} cannot import tensorflow 2.16 and tfrecord_s3: {done.stderr.strip()[-1500:]}"
    where = Path(done.stdout.strip().splitlines()[-1]).resolve()
    if not where.is_relative_to(ROOT):
        return f"{python} imports tfrecord_s3 from {where}, not from this clone {ROOT}"
    return None


def _run_pip(python: Path, args: list[str]) -> None:
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise TensorFlowUnavailable(f"pip install {' '.join(args)} took over {_PIP_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        lines = [line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("WARNING: Location")]
        tail = "\n".join(lines[-15:])
        raise TensorFlowUnavailable(f"pip install {' '.join(args)} failed ({done.returncode}):\n{tail}")


def _site_packages(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip())


def _build(venv: Path, wanted: str) -> Path:
    """(Re)make the venv: pip only adds what the recorded requirements do not already have."""
    python = venv / "bin" / "python"
    (venv / _MARKER).unlink(missing_ok=True)
    if not python.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    _run_pip(python, _requirements())
    # This clone on the path, as an editable install would put it, without building anything.
    (_site_packages(python) / "tfrecord_s3_clone.pth").write_text(f"{ROOT}\n", encoding="utf-8")
    problem = _problem(python)
    if problem is not None:
        raise RuntimeError(f"the TensorFlow venv {venv} was built but does not work: {problem}")
    (venv / _MARKER).write_text(wanted, encoding="utf-8")
    return python


def tensorflow_python() -> Path:
    """The interpreter (see the module docstring). Raises TensorFlowUnavailable when
    TensorFlow cannot be installed, RuntimeError when ``$TFR_TEST_TF_PYTHON`` is unusable."""
    named = os.environ.get(ENV_VAR)
    if named:
        python = Path(named)
        problem = _problem(python)
        if problem is not None:
            raise RuntimeError(f"${ENV_VAR} is set but unusable: {problem}")
        return python
    wanted = json.dumps({"requirements": _requirements(), "python": sys.version, "root": str(ROOT)}, indent=1)
    VENV_DIR.parent.mkdir(parents=True, exist_ok=True)
    lock_path = VENV_DIR.parent / f"{VENV_DIR.name}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (parallel runs wait)
        marker = VENV_DIR / _MARKER
        python = VENV_DIR / "bin" / "python"
        if marker.exists() and marker.read_text(encoding="utf-8") == wanted and _problem(python) is None:
            return python
        try:
            return _build(VENV_DIR, wanted)
        except RuntimeError:  # a venv changed by hand, or half-built: once more from nothing
            shutil.rmtree(VENV_DIR, ignore_errors=True)
            return _build(VENV_DIR, wanted)


def main() -> int:
    started = time.monotonic()
    try:
        python = tensorflow_python()
    except TensorFlowUnavailable as exc:
        print(f"TensorFlow venv not built (its tests will skip): {exc}", file=sys.stderr)
        return 0
    print(f"TensorFlow venv ready in {time.monotonic() - started:.0f} s: {python}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
