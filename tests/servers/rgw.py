"""Ceph RGW (Debian's 16.2) on the smallest cluster that serves S3: one mon, one OSD on
memstore (RAM, no disk set-up), ``auth none`` between the daemons, radosgw's beast frontend
on a free port of 127.0.0.1, and one S3 user. Everything lives under one temp dir.

radosgw cannot reach the mon unless ``ms mon client mode`` allows ``crc`` (its default is
secure-only once cephx is off). S3 requests are SigV4-checked against the user's keys.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
import uuid
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

PACKAGES = "radosgw ceph-mon ceph-osd ceph-common"
KEY_ID = "TFRECORDS3RGWTESTKEY"
SECRET = "rgw+secret/with=odd~chars0123456789"
#: RAM the OSD may use for objects (memstore allocates as it goes).
MEMSTORE_BYTES = 3 * 1024**3

_CONF = """\
[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon_port}]
mon initial members = a
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc secure
ms bind ipv6 = false
run dir = {root}/run
admin socket = {root}/run/$name.asok
log file = {root}/log/$name.log
pid file = {root}/run/$name.pid
keyring = {root}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = {memstore_bytes}
mon data = {root}/mon/$cluster-$id
osd data = {root}/osd/$cluster-$id

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {root}/rgw
rgw enable usage log = false
rgw thread pool size = 64
"""


def start(root: Path) -> S3Server:
    """Start the cluster and radosgw under ``root``; raises ServerUnavailable with the reason
    when it cannot."""
    cmds = require_commands(
        "rgw", ["ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool", "ceph-authtool"], PACKAGES
    )
    for sub in ("run", "log", "mon", "osd", "rgw"):
        (root / sub).mkdir(parents=True)
    fsid = str(uuid.uuid4())
    mon_port, rgw_port = free_port(), free_port()
    conf = root / "ceph.conf"
    conf.write_text(
        _CONF.format(fsid=fsid, mon_port=mon_port, rgw_port=rgw_port, root=root, memstore_bytes=MEMSTORE_BYTES)
    )
    c = ["-c", str(conf)]
    monmap = str(root / "monmap")
    run([cmds["ceph-authtool"], "--create-keyring", str(root / "keyring"), "--gen-key", "-n", "mon.",
         "--cap", "mon", "allow *"], "rgw keyring")
    run([cmds["monmaptool"], "--create", "--fsid", fsid, "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", monmap],
        "rgw monmap")
    run([cmds["ceph-mon"], *c, "--mkfs", "-i", "a", "--monmap", monmap], "rgw mon mkfs")
    processes = Processes(root / "log")
    try:
        processes.start("mon", [cmds["ceph-mon"], *c, "-i", "a", "-f"])
        wait_for(lambda: port_open(mon_port), 60, "rgw mon", alive=processes.dead)
        osd_uuid = str(uuid.uuid4())
        osd_id = run([cmds["ceph"], *c, "osd", "new", osd_uuid], "rgw osd new").strip()
        (root / "osd" / f"ceph-{osd_id}").mkdir()
        run([cmds["ceph-osd"], *c, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid], "rgw osd mkfs")
        processes.start("osd", [cmds["ceph-osd"], *c, "-i", osd_id, "-f"])
        wait_for(lambda: _osds_up(cmds["ceph"], c) >= 1, 90, "rgw osd", alive=processes.dead)
        processes.start("radosgw", [cmds["radosgw"], *c, "-n", "client.rgw", "-f"])
        wait_for(lambda: _answers(rgw_port), 120, "radosgw", alive=processes.dead)
        run([cmds["radosgw-admin"], *c, "-n", "client.rgw", "user", "create", "--uid", "tester",
             "--display-name", "tfrecord-s3 tests", "--access-key", KEY_ID, "--secret-key", SECRET],
            "rgw user create", timeout=120)
    except BaseException:
        processes.stop()
        raise
    return S3Server(
        name="rgw",
        version=f"Ceph RGW {_version(cmds['radosgw'])}",
        endpoint_url=f"http://127.0.0.1:{rgw_port}",
        key_id=KEY_ID,
        secret=SECRET,
        stop=processes.stop,
    )


def _osds_up(ceph: str, c: list[str]) -> int:
    try:
        out = run([ceph, *c, "osd", "stat", "-f", "json", "--connect-timeout", "5"], "rgw osd stat", timeout=30)
        return int(json.loads(out).get("num_up_osds", 0))
    except (ServerUnavailable, ValueError):
        return 0


def _answers(port: int) -> bool:
    if not port_open(port):
        return False
    with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
        return bool(reply.status)
    return False


def _version(radosgw: str) -> str:
    """``16.2.15`` from ``radosgw --version`` (``ceph version 16.2.15 (...) pacific``)."""
    try:
        words = run([radosgw, "--version"], "rgw version").split()
    except ServerUnavailable:
        return "?"
    return words[2] if len(words) > 2 else "?"
