"""Network faults N1-N9 through the fault proxy, raw and gzip (scenarios_network.py has
each scenario's expectations; every one of them is checked here)."""

from __future__ import annotations

import pytest

from tests.reliability import scenarios_network as net
from tests.reliability.harness import Outcome
from tests.reliability.world import World

COMPRESSIONS = ["", "GZIP"]


def check(result: Outcome) -> None:
    assert result.problems == [], result.describe()


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_n1_reset_before_headers_is_retried(world: World, compression: str) -> None:
    check(net.n1(world, compression))


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_n2_reset_mid_body_resumes_at_the_exact_byte(world: World, compression: str) -> None:
    result = net.n2(world, compression)
    check(result)
    assert result.injected == 3
    assert result.redownloaded <= 3 * 2048


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_n3_clean_close_mid_body_resumes_at_the_exact_byte(world: World, compression: str) -> None:
    result = net.n3(world, compression)
    check(result)
    assert result.injected == 3


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_n4_reset_at_every_offset_of_the_first_records(world: World, compression: str) -> None:
    result = net.n4(world, compression)
    check(result)
    assert result.injected >= 60  # one fault per offset of the object


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_n5_stall_past_the_read_timeout_resumes(world: World, compression: str) -> None:
    result = net.n5(world, compression)
    check(result)
    assert result.injected == 2


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_n6_slowdown_backs_off_and_counts_throttles(world: World, compression: str) -> None:
    check(net.n6(world, compression))


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_n7_persistent_500_exhausts_the_budget_naming_file_and_offset(world: World, compression: str) -> None:
    result = net.n7(world, compression)
    check(result)
    assert result.tally.withheld > 0


@pytest.mark.parametrize("variant", ["full_200_at_0", "full_200", "partial_200", "wrong_content_range"])
@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_n8_protocol_violations_are_never_parsed(world: World, compression: str, variant: str) -> None:
    check(net.n8(world, compression, variant))


@pytest.mark.parametrize(
    ("compression", "variant"),
    [("", "data"), ("", "length"), ("", "crc"), ("", "skip_record"), ("GZIP", "data")],
)
def test_n9_flipped_bit_is_a_corrupt_record_error(world: World, compression: str, variant: str) -> None:
    result = net.n9(world, compression, variant)
    check(result)
    assert result.tally.corrupt == 0
    assert result.injected == 1
