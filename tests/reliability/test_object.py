"""Object changes (C1-C3) and credentials (A1-A3) through the fault proxy, raw and gzip."""

from __future__ import annotations

import pytest

from tests.reliability import scenarios_object as obj
from tests.reliability.harness import Outcome
from tests.reliability.world import World


def check(result: Outcome) -> None:
    assert result.problems == [], result.describe()


@pytest.mark.parametrize(("compression", "variant"), [("", "same_size"), ("", "other_size"), ("GZIP", "other_size")])
def test_c1_overwritten_mid_read_is_object_changed(world: World, compression: str, variant: str) -> None:
    result = obj.c1(world, compression, variant)
    check(result)
    assert result.tally.corrupt == 0  # no byte of the new version came out


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_c2_deleted_mid_read_is_not_found_without_retrying(world: World, compression: str) -> None:
    check(obj.c2(world, compression))


@pytest.mark.parametrize("variant", ["empty", "small"])
@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_c3_empty_and_sub_block_objects(world: World, compression: str, variant: str) -> None:
    check(obj.c3(world, compression, variant))


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_a1_expired_token_refreshes_and_resumes(world: World, compression: str) -> None:
    check(obj.a1(world, compression))


def test_a1_clean_read_with_refreshable_credentials(world: World) -> None:
    # The credential_process set-up itself works: without the fault everything is read.
    check(obj.a1(world, "", inject=False))


@pytest.mark.parametrize("variant", ["get", "head"])
@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_a2_access_denied_fails_at_once_naming_bucket_and_key(world: World, compression: str, variant: str) -> None:
    check(obj.a2(world, compression, variant))


@pytest.mark.parametrize("compression", ["", "GZIP"])
def test_a3_no_secret_in_logs_errors_reprs_or_pickles(world: World, compression: str) -> None:
    check(obj.a3(world, compression))
