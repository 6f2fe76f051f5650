"""S3 settings: TensorFlow's environment variables, as one frozen, validated object.

TensorFlow's S3 variables are the contract (read only by :meth:`S3Config.from_env`, never at
import time)::

    AWS_REGION                 region (default us-east-1)
    S3_ENDPOINT                HOST:PORT, or a full http(s):// URL; implies path-style addressing
    S3_USE_HTTPS               1/0 (default 1): scheme for a HOST:PORT endpoint
    S3_VERIFY_SSL              1/0 (default 1); a warning is issued once when off
    S3_CONNECT_TIMEOUT_MSEC    connect timeout in milliseconds
    S3_REQUEST_TIMEOUT_MSEC    socket read timeout in milliseconds (a stall longer than this
                               is a fault: the stream resumes from the next byte)
    S3_STALL_BUDGET_MSEC       (ours) how long a read may go without a byte over all its
                               tries before it raises (default: twice the read timeout)
    S3_HEDGE_AFTER_MSEC        (ours) least wait without a byte before a slow GET is raced by
                               a second one for its rest (default 500; 0: never)
    S3_CA_FILE                 CA bundle to verify the server with (else AWS_CA_BUNDLE, as
                               boto3 reads it)
    S3_TRANSPORT               (ours) what carries the ranged GETs of a stream: urllib3
                               (boto3's stack, the default) or crt (the AWS Common Runtime,
                               ``pip install "tfrecord-s3[crt]"``)

Credentials are never part of this object: boto3's own chain finds them (AWS_PROFILE,
~/.aws/credentials, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, instance roles), so a config's
repr and its pickles hold no secret, and refreshable credentials refresh.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError

__all__ = ["MIN_PART_SIZE", "TRANSPORTS", "ClientSettings", "S3Config", "check_profile"]

MiB = 1024 * 1024
# S3 rejects multipart parts under 5 MiB (except the last one).
MIN_PART_SIZE = 5 * MiB
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
#: Data paths for ranged GETs (:attr:`S3Config.transport`); the first is the default.
TRANSPORTS = ("urllib3", "crt")


@dataclass(frozen=True)
class ClientSettings:
    """What a boto3 client is built from, and so the key of the per-process client cache:
    configs that differ only in stream policy (blocks, windows, retry budgets) share clients."""

    region: str
    endpoint_url: str | None
    verify_ssl: bool
    ca_file: str | None
    connect_timeout: float
    read_timeout: float
    max_pool_connections: int
    #: botocore's tries for HEAD/LIST/PUT (see :attr:`S3Config.control_attempts`).
    control_attempts: int
    path_style: bool


@dataclass(frozen=True)
class S3Config:
    """Everything needed to talk to S3, validated on construction.

    Build it with :meth:`from_env` (TensorFlow's variables, overridable by keyword) or
    directly; derive variants with :func:`dataclasses.replace` (or :meth:`replace`).
    An explicit config always wins: nothing reads the environment once you pass one.

    Raises :class:`~tfrecord_s3.errors.ConfigError` naming the bad field.
    """

    region: str = "us-east-1"
    #: Full URL of an S3-compatible server (None: AWS). Setting it implies path-style.
    endpoint_url: str | None = None
    verify_ssl: bool = True
    ca_file: str | None = None
    connect_timeout: float = 10.0
    #: Seconds without a byte before a read counts as stalled.
    read_timeout: float = 60.0
    #: Seconds a block may go without a byte (or a reply) over all its tries before
    #: RetriesExhaustedError; None: twice ``read_timeout`` (see :attr:`effective_stall_budget`).
    stall_budget: float | None = None
    #: Adaptive mode: a GET that goes this many seconds without a byte (headers or body), and
    #: 4x the process's median wait, is raced by a second GET for the bytes it still owes, on
    #: another connection; the first to finish wins, the other is dropped. A GET no other GET
    #: overtook while it waited waits twice as long. Waits past ``read_timeout`` are left to
    #: the read timeout. None: never.
    hedge_after: float | None = 0.5
    #: Bytes per ranged GET (the largest; see ``first_block_size``).
    block_size: int = 16 * MiB
    #: None (default): adaptive. The process's transfer scheduler keeps as many ranged GETs in
    #: flight across all open streams as the network needs (up to ``max_pool_connections``,
    #: within ``max_bytes_in_flight``), and each stream's GETs grow from ``first_block_size``
    #: to ``block_size``. An integer N: a fixed window of N blocks of ``block_size`` fetched
    #: ahead per stream, on N threads (0: none), as before the scheduler.
    read_ahead: int | None = None
    #: Adaptive mode: the first GET of a stream (and after a seek), so the first record comes
    #: after one small round trip; later GETs double up to ``block_size``.
    first_block_size: int = 1 * MiB
    #: Adaptive mode: bytes of blocks in flight or fetched and not yet read, all streams of
    #: the process together.
    max_bytes_in_flight: int = 256 * MiB
    #: Tries per block (the first one included) before RetriesExhaustedError.
    max_attempts: int = 8
    #: Retries allowed over the life of one stream, across all blocks.
    retry_budget: int = 64
    #: Full-jitter exponential backoff: delay <= min(backoff_max, backoff_base * 2**retry).
    backoff_base: float = 0.1
    backoff_max: float = 10.0
    #: Base delay after 503 SlowDown (S3 asks clients to slow down markedly).
    throttle_backoff_base: float = 0.5
    #: botocore's own tries for non-streaming calls (HEAD, LIST, PUT); its retries end when
    #: headers arrive, so body faults are always ours.
    botocore_max_attempts: int = 3
    #: Multipart upload part size (>= 5 MiB); smaller files go up in one PutObject.
    part_size: int = 8 * MiB
    #: Keys per LIST page (S3's maximum is 1000).
    list_page_size: int = 1000
    max_pool_connections: int = 16
    #: Force path-style addressing (always on with a custom endpoint).
    path_style: bool = False
    #: What carries a stream's ranged GETs: "urllib3" (boto3's stack) or "crt" (the AWS Common
    #: Runtime, the ``crt`` extra). HEAD, LIST and uploads always go through boto3.
    transport: str = TRANSPORTS[0]

    def __post_init__(self) -> None:
        _check(bool(self.region) and isinstance(self.region, str), "region", self.region, "a non-empty string")
        if self.endpoint_url is not None:
            parts = urlsplit(self.endpoint_url)
            _check(
                parts.scheme in ("http", "https") and bool(parts.netloc),
                "endpoint_url",
                self.endpoint_url,
                "an http:// or https:// URL",
            )
        for name in ("connect_timeout", "read_timeout", "backoff_max"):
            value = getattr(self, name)
            _check(_is_number(value) and value > 0, name, value, "a number > 0")
        budget = self.stall_budget
        _check(budget is None or (_is_number(budget) and budget > 0), "stall_budget", budget, "a number > 0 or None")
        hedge = self.hedge_after
        _check(hedge is None or (_is_number(hedge) and hedge > 0), "hedge_after", hedge, "a number > 0 or None")
        for name in ("backoff_base", "throttle_backoff_base"):
            value = getattr(self, name)
            _check(_is_number(value) and value >= 0, name, value, "a number >= 0")
        if self.read_ahead is not None:
            _check(
                _is_int(self.read_ahead) and self.read_ahead >= 0,
                "read_ahead",
                self.read_ahead,
                "None or an integer >= 0",
            )
        for name, low in (
            ("block_size", 1),
            ("first_block_size", 1),
            ("max_bytes_in_flight", 1),
            ("max_attempts", 1),
            ("retry_budget", 0),
            ("botocore_max_attempts", 1),
            ("part_size", MIN_PART_SIZE),
            ("max_pool_connections", 1),
        ):
            value = getattr(self, name)
            _check(_is_int(value) and value >= low, name, value, f"an integer >= {low}")
        _check(self.transport in TRANSPORTS, "transport", self.transport, " or ".join(map(repr, TRANSPORTS)))
        _check(
            _is_int(self.list_page_size) and 1 <= self.list_page_size <= 1000,
            "list_page_size",
            self.list_page_size,
            "an integer in 1..1000",
        )

    @property
    def effective_stall_budget(self) -> float:
        """Seconds without progress after which a read gives up (two read timeouts by default:
        a frozen server gets one retry on a fresh connection)."""
        return self.stall_budget if self.stall_budget is not None else 2 * self.read_timeout

    @property
    def control_attempts(self) -> int:
        """botocore's tries for HEAD/LIST/PUT: at most as many read timeouts as fit in the
        stall budget, so a server frozen before its first byte is given up on in time too."""
        fit = int(self.effective_stall_budget // self.read_timeout)
        return max(1, min(self.botocore_max_attempts, fit))

    @property
    def uses_path_style(self) -> bool:
        return self.path_style or self.endpoint_url is not None

    @property
    def client_settings(self) -> ClientSettings:
        """The part of this config a boto3 client is built from."""
        return ClientSettings(
            region=self.region,
            endpoint_url=self.endpoint_url,
            verify_ssl=self.verify_ssl,
            ca_file=self.ca_file,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=self.max_pool_connections,
            control_attempts=self.control_attempts,
            path_style=self.uses_path_style,
        )

    def replace(self, **changes: Any) -> S3Config:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> S3Config:
        """Read TensorFlow's S3 variables from ``environ`` (default ``os.environ``).

        Keyword ``overrides`` are explicit settings and beat the environment. Raises
        ConfigError naming the variable when a value cannot be parsed.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        region = env.get("AWS_REGION", "").strip()
        if region:
            values["region"] = region
        use_https = _env_bool(env, "S3_USE_HTTPS", True)
        values["verify_ssl"] = _env_bool(env, "S3_VERIFY_SSL", True)
        endpoint = env.get("S3_ENDPOINT", "").strip()
        if endpoint:
            values["endpoint_url"] = _endpoint_url(endpoint, use_https)
        for var, field in (
            ("S3_CONNECT_TIMEOUT_MSEC", "connect_timeout"),
            ("S3_REQUEST_TIMEOUT_MSEC", "read_timeout"),
            ("S3_STALL_BUDGET_MSEC", "stall_budget"),
        ):
            msec = _env_msec(env, var)
            if msec is not None:
                values[field] = msec / 1000.0
        if env.get("S3_HEDGE_AFTER_MSEC", "").strip() == "0":
            values["hedge_after"] = None  # 0 switches hedging off
        else:
            msec = _env_msec(env, "S3_HEDGE_AFTER_MSEC")
            if msec is not None:
                values["hedge_after"] = msec / 1000.0
        for var in ("S3_CA_FILE", "AWS_CA_BUNDLE"):
            ca_file = env.get(var, "").strip()
            if ca_file:
                if not os.path.isfile(ca_file):
                    raise ConfigError(f"{var}={ca_file!r}: no such file")
                values["ca_file"] = ca_file
                break
        transport = env.get("S3_TRANSPORT", "").strip().lower()
        if transport:
            if transport not in TRANSPORTS:
                raise ConfigError(f"S3_TRANSPORT={env['S3_TRANSPORT']!r}: expected {' or '.join(TRANSPORTS)}")
            values["transport"] = transport
        values.update(overrides)
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"S3Config: {exc}") from exc


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(ok: bool, name: str, value: object, wanted: str) -> None:
    if not ok:
        raise ConfigError(f"S3Config.{name}={value!r}: expected {wanted}")


def _env_bool(env: Mapping[str, str], var: str, default: bool) -> bool:
    raw = env.get(var, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{var}={env[var]!r}: expected 1 or 0")


def _env_msec(env: Mapping[str, str], var: str) -> int | None:
    raw = env.get(var, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r}: expected a whole number of milliseconds") from None
    if value <= 0:
        raise ConfigError(f"{var}={raw!r}: expected a number of milliseconds > 0")
    return value


def _endpoint_url(endpoint: str, use_https: bool) -> str:
    """TensorFlow's S3_ENDPOINT is HOST:PORT with S3_USE_HTTPS choosing the scheme; a full
    URL is accepted too (its scheme wins, as tensorflow-io users write it that way)."""
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"S3_ENDPOINT={endpoint!r}: expected HOST:PORT or an http(s):// URL")
        return endpoint.rstrip("/")
    if "/" in endpoint or " " in endpoint:
        raise ConfigError(f"S3_ENDPOINT={endpoint!r}: expected HOST:PORT or an http(s):// URL")
    host, _, port = endpoint.rpartition(":") if ":" in endpoint else (endpoint, "", "")
    if ":" in endpoint and not port.isdigit():
        raise ConfigError(f"S3_ENDPOINT={endpoint!r}: port must be a number")
    if not host:
        raise ConfigError(f"S3_ENDPOINT={endpoint!r}: missing host")
    return f"{'https' if use_https else 'http'}://{endpoint}"


def check_profile(session: Any, environ: Mapping[str, str] | None = None) -> None:
    """ConfigError naming the profile when AWS_PROFILE (or AWS_DEFAULT_PROFILE) names one
    that neither AWS file defines; ``session`` is the botocore session that would use it.
    (Left to botocore, it surfaces as ``ProfileNotFound`` from the first request.)"""
    profile = session.profile
    if profile is None or profile in session.available_profiles:
        return
    env = os.environ if environ is None else environ
    var = "AWS_PROFILE" if env.get("AWS_PROFILE") else "AWS_DEFAULT_PROFILE"
    files = " or ".join(str(session.get_config_variable(name)) for name in ("config_file", "credentials_file"))
    found = ", ".join(sorted(session.available_profiles)) or "none"
    raise ConfigError(
        f"{var}={profile!r}: no such profile in {files} (profiles found: {found}); "
        f"create it (aws configure --profile {profile}) or set {var} to one that exists"
    )
