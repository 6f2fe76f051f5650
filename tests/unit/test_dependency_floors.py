"""The dependency floors in pyproject.toml are the ones constraints-min.txt pins (and .ci/run
tests), and the installed versions have what each floor is there for."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
# Extras whose floors are pinned too (dev tools are not: they never meet the floors' code).
PINNED_EXTRAS = ("torch", "demo", "test")


def _floors() -> dict[str, Version]:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in PINNED_EXTRAS:
        lines += project["optional-dependencies"][extra]
    floors: dict[str, Version] = {}
    for line in lines:
        requirement = Requirement(line)
        lows = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
        if lows:
            floors[canonicalize_name(requirement.name)] = max(lows)
    return floors


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints-min.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints-min.txt: {line!r} is not name==version"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def test_every_floor_is_pinned_in_constraints_min() -> None:
    floors, pins = _floors(), _pins()
    assert "protobuf" in floors
    assert "urllib3" in floors
    assert set(pins) == set(floors), "constraints-min.txt and pyproject.toml name different packages"
    for name, floor in floors.items():
        # A post-release of the floor counts as the floor (crc32c 2.3.post0: 2.3 re-released
        # with wheels for more Pythons).
        assert Version(pins[name].base_version) == floor, f"{name}: pinned {pins[name]}, floor {floor}"


def test_botocore_takes_the_checksum_settings_the_client_passes() -> None:
    # botocore < 1.36 raises TypeError for these Config arguments (tfrecord_s3.storage.s3_client).
    from botocore.config import Config

    config = Config(request_checksum_calculation="when_required", response_checksum_validation="when_required")
    assert config.request_checksum_calculation == "when_required"


def test_urllib3_responses_have_read1() -> None:
    # The ranged GETs read whatever has arrived with read1 (urllib3 >= 2.2; botocore excludes
    # 2.2.0); without it a read timeout drops a whole chunk already received.
    response = importlib.import_module("urllib3.response")
    assert callable(getattr(response.HTTPResponse, "read1", None))
