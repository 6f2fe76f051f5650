"""Fault injection between an S3 client and a local S3 server: ``FaultProxy`` and its schedule."""

from __future__ import annotations

from tests.faults.proxy import FaultProxy
from tests.faults.schedule import Fault, FaultKind, RequestLog, Rule, Storm, default_storm_faults

__all__ = ["Fault", "FaultKind", "FaultProxy", "RequestLog", "Rule", "Storm", "default_storm_faults"]
