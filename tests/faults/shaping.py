"""What a fault does to one response: the plan the body pump follows, header values,
and the S3 error answers the proxy makes up."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from tests.faults.schedule import Fault, FaultKind, RequestInfo
from tests.faults.wire import parse_content_range

REASONS = {
    200: "OK",
    206: "Partial Content",
    403: "Forbidden",
    404: "Not Found",
    412: "Precondition Failed",
    500: "Internal Server Error",
    503: "Slow Down",
}


@dataclass
class BodyPlan:
    """Positions (body-relative) where the body pump acts."""

    cut_at: int | None = None
    cut_reset: bool = False
    stall_at: int | None = None
    stall_seconds: float = 0.0
    drip_from: int | None = None
    drip_chunk: int = 1
    drip_interval: float = 0.0
    flip_at: int | None = None
    flip_mask: int = 0


def plan_body(fault: Fault | None, body_start: int, body_len: int) -> tuple[BodyPlan, bool]:
    """The pump plan for ``fault``, and whether the fault does not apply to this body."""
    plan = BodyPlan()
    if fault is None:
        return plan, False
    known_len = body_len if body_len >= 0 else 1 << 62
    pos = fault.body_position(body_start, known_len)
    kind = fault.kind
    positional = kind in (FaultKind.RESET_AFTER, FaultKind.CLOSE_AFTER, FaultKind.FLIP_BIT) or (
        kind is FaultKind.STALL and fault.at is not None
    )
    if positional and (pos is None or (kind is FaultKind.FLIP_BIT and pos >= known_len)):
        return plan, True
    if kind in (FaultKind.RESET_AFTER, FaultKind.CLOSE_AFTER):
        plan.cut_at, plan.cut_reset = pos, kind is FaultKind.RESET_AFTER
    elif kind is FaultKind.STALL and fault.at is not None:
        plan.stall_at, plan.stall_seconds = pos, fault.seconds
    elif kind is FaultKind.DRIP:
        plan.drip_from, plan.drip_chunk, plan.drip_interval = fault.at or 0, fault.chunk, fault.interval
    elif kind is FaultKind.FLIP_BIT:
        plan.flip_at, plan.flip_mask = pos, 1 << fault.bit
    return plan, False


def shifted_range(actual: str | None, body_len: int, shift: int) -> str:
    parsed = parse_content_range(actual)
    if parsed is None:
        n = max(body_len, 1)
        return f"bytes {shift}-{shift + n - 1}/{n}"
    first, last, total = parsed
    return f"bytes {first + shift}-{last + shift}/{'*' if total is None else total}"


def error_response(fault: Fault, info: RequestInfo, request_id: str) -> tuple[bytes, bytes]:
    """(head, body) of an S3 XML error answer; no body for HEAD."""
    body = (
        b""
        if info.method == "HEAD"
        else (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(fault.code)}</Code><Message>{escape(fault.message)}</Message>"
            f"<Resource>{escape(info.path)}</Resource><RequestId>{request_id}</RequestId></Error>"
        ).encode()
    )
    reason = REASONS.get(fault.status, "Error")
    head = (
        f"HTTP/1.1 {fault.status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nx-amz-request-id: {request_id}\r\n"
        f"Server: FaultProxy\r\n\r\n"
    ).encode()
    return head, body
