"""OpenStack Swift (Debian's 2.30) all-in-one: proxy with ``s3api`` + ``tempauth``, one
account, container and object server, one replica, memcached, every config, ring and disk
under one temp dir, every daemon on a free port of 127.0.0.1.

Swift reads ``/etc/swift/swift.conf`` for its hash prefix whatever ``swift_dir`` says: when
that file is absent (the packages' own is normally there) it is written, with the same
content as ours. ``s3api`` verifies SigV4 through ``tempauth``; the S3 access key is
``account:user``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import urllib.request
from pathlib import Path

from tests.servers.base import (
    Processes,
    S3Server,
    ServerUnavailable,
    free_port,
    port_open,
    require_commands,
    run,
    wait_for,
)

PACKAGES = "swift swift-proxy swift-account swift-container swift-object memcached"
KEY_ID = "test:tester"
# tempauth splits its user lines on whitespace: no space in the secret.
SECRET = "testing+secret/=~"
SYSTEM_SWIFT_CONF = Path("/etc/swift/swift.conf")

_SWIFT_CONF = """\
[swift-hash]
swift_hash_path_suffix = tfrecord-s3-tests
swift_hash_path_prefix = tfrecord-s3-tests

[storage-policy:0]
name = Policy-0
default = yes
"""

_RINGS = ("account", "container", "object")
# argv: swift_dir, then the port of each ring's server; 2**4 partitions, 1 replica.
_RING_SCRIPT = """\
import sys
from swift.common.ring import RingBuilder
for kind, port in zip(("account", "container", "object"), sys.argv[2:]):
    builder = RingBuilder(4, 1, 1)
    builder.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port), "device": "d1", "weight": 100})
    builder.rebalance()
    builder.get_ring().save(f"{sys.argv[1]}/{kind}.ring.gz")
"""

_STORAGE_CONF = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
devices = {devices}
mount_check = false
swift_dir = {swift_dir}
user = {user}
workers = 0
disable_fallocate = true
log_level = WARNING

[pipeline:main]
pipeline = {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}
"""

# s3api must come before the auth middleware, and multipart uploads need slo after it.
_PROXY_CONF = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
swift_dir = {swift_dir}
user = {user}
workers = 1
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth \
bulk copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = {region}

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = {secret} .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcached_port}

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
"""


def version() -> str:
    """The installed Swift's version, e.g. ``2.30.1``."""
    out = run(["/usr/bin/python3", "-c", "import swift; print(swift.__version__)"], "swift")
    return out.strip()


def start(root: Path, region: str = "us-east-1") -> S3Server:
    """Start Swift under ``root``; raises ServerUnavailable with the reason when it cannot."""
    cmds = require_commands(
        "swift",
        ["swift-proxy-server", "swift-account-server", "swift-container-server", "swift-object-server", "memcached"],
        PACKAGES,
    )
    swift_dir = root / "etc"
    devices = root / "srv"
    (devices / "d1").mkdir(parents=True)
    swift_dir.mkdir()
    (swift_dir / "swift.conf").write_text(_SWIFT_CONF)
    if not SYSTEM_SWIFT_CONF.exists():
        try:
            SYSTEM_SWIFT_CONF.parent.mkdir(parents=True, exist_ok=True)
            SYSTEM_SWIFT_CONF.write_text(_SWIFT_CONF)
        except OSError as exc:
            raise ServerUnavailable(f"swift: cannot write {SYSTEM_SWIFT_CONF}: {exc}") from exc
    # Daemons drop privileges to ``user`` (default "swift", who cannot read a 0700 temp dir).
    user = pwd.getpwuid(os.getuid()).pw_name
    ports = {kind: free_port() for kind in ("account", "container", "object", "proxy", "memcached")}
    # One interpreter builds the three rings (swift-ring-builder costs a start-up per step).
    run(["/usr/bin/python3", "-c", _RING_SCRIPT, str(swift_dir), *(str(ports[k]) for k in _RINGS)], "swift rings")
    for kind in _RINGS:
        conf = _STORAGE_CONF.format(port=ports[kind], devices=devices, swift_dir=swift_dir, kind=kind, user=user)
        (swift_dir / f"{kind}-server.conf").write_text(conf)
    (swift_dir / "proxy-server.conf").write_text(
        _PROXY_CONF.format(
            port=ports["proxy"],
            swift_dir=swift_dir,
            user=user,
            region=region,
            secret=SECRET,
            memcached_port=ports["memcached"],
        )
    )
    processes = Processes(root)
    try:
        processes.start(
            "memcached",
            [cmds["memcached"], "-l", "127.0.0.1", "-p", str(ports["memcached"]), "-U", "0", "-u", "nobody",
             "-m", "32"],
        )
        for kind in _RINGS:
            processes.start(kind, [cmds[f"swift-{kind}-server"], str(swift_dir / f"{kind}-server.conf"), "-v"])
        processes.start("proxy", [cmds["swift-proxy-server"], str(swift_dir / "proxy-server.conf"), "-v"])
        wait_for(
            lambda: all(port_open(p) for p in ports.values()) and _healthy(ports["proxy"]),
            60,
            "swift",
            alive=processes.dead,
        )
    except BaseException:
        processes.stop()
        raise
    return S3Server(
        name="swift",
        version=f"Swift {version()}",
        endpoint_url=f"http://127.0.0.1:{ports['proxy']}",
        key_id=KEY_ID,
        secret=SECRET,
        region=region,
        stop=processes.stop,
        restart=lambda pause: _restart_proxy(processes, ports["proxy"], pause),
    )


def _restart_proxy(processes: Processes, port: int, pause: float) -> None:
    """Crash the proxy, keep it down ``pause`` seconds, start it and wait until it serves."""
    processes.restart("proxy", pause)
    wait_for(lambda: _healthy(port), 60, "swift proxy restart", alive=processes.dead)


def _healthy(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/healthcheck"
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as reply:
        return bool(reply.status == 200)
    return False
