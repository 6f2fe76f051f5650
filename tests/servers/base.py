"""What the server modules share: the description of a running server, the "cannot run here"
exception, and processes started in their own process group and stopped by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ServerUnavailable(Exception):
    """The server cannot run on this machine (a package is missing, it failed to start);
    the message is the reason the tests it would serve are skipped with."""


@dataclass
class S3Server:
    """A running S3-compatible server: where it listens and the credentials it accepts."""

    name: str
    version: str
    endpoint_url: str
    key_id: str
    secret: str
    region: str = "us-east-1"
    #: Whether it checks SigV4 signatures (moto does not).
    verifies_signatures: bool = True
    stop: Callable[[], None] = field(default=lambda: None, repr=False)
    #: Crash the server's front daemon, wait the given seconds, start it again (None: cannot).
    restart: Callable[[float], None] | None = field(default=None, repr=False)

    @property
    def host_port(self) -> str:
        """``HOST:PORT``, as TensorFlow's ``S3_ENDPOINT`` wants it."""
        return self.endpoint_url.split("://", 1)[1]

    @property
    def port(self) -> int:
        return int(self.host_port.rsplit(":", 1)[1])


def require_commands(server: str, commands: Sequence[str], packages: str) -> dict[str, str]:
    """The full paths of ``commands``; raises ServerUnavailable naming the Debian packages
    to install when one is missing."""
    found = {name: shutil.which(name) for name in commands}
    missing = sorted(name for name, path in found.items() if path is None)
    if missing:
        raise ServerUnavailable(
            f"{server}: {', '.join(missing)} not found (apt-get install {packages})"
        )
    return {name: path for name, path in found.items() if path is not None}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str, *, alive: Callable[[], str | None]) -> None:
    """Poll ``condition`` until it holds; raise ServerUnavailable after ``timeout`` seconds or
    as soon as ``alive()`` reports a dead process (its text is the reason)."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if condition():
            return
        dead = alive()
        if dead:
            raise ServerUnavailable(f"{what}: {dead}")
        if time.monotonic() > deadline:
            raise ServerUnavailable(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(delay)  # polling a server's readiness, no event to wait on
        delay = min(delay * 1.5, 0.5)


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Processes:
    """Daemons of one server, each in its own process group (so workers it forks go with
    it), output in ``log_dir``; :meth:`stop` signals the groups by their leaders' PIDs."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._started: list[tuple[str, subprocess.Popen[bytes]]] = []

    def restart(self, name: str, pause: float) -> None:
        """Kill daemon ``name``'s process group (SIGKILL: a crash), wait ``pause`` seconds
        (the outage being simulated), start it again with the same command line."""
        for i, (started, process) in enumerate(self._started):
            if started == name:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
                time.sleep(pause)  # the outage itself, not a synchronisation
                del self._started[i]
                self.start(name, process.args)  # type: ignore[arg-type]
                return
        raise KeyError(name)

    def start(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        finally:
            log.close()
        self._started.append((name, process))
        return process

    def dead(self) -> str | None:
        """Text naming the first daemon that exited (with its log's tail), else None."""
        for name, process in self._started:
            code = process.poll()
            if code is not None:
                return f"{name} exited with code {code}: {self.tail(name)}"
        return None

    def tail(self, name: str, lines: int = 6) -> str:
        try:
            text = (self.log_dir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def signal(self, name: str, sig: signal.Signals) -> None:
        """Send ``sig`` to the process group of daemon ``name``."""
        for started, process in self._started:
            if started == name and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every group (last started first), then SIGKILL what is left; reap all."""
        for _, process in reversed(self._started):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for _, process in reversed(self._started):
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The leader may be gone while workers it forked still run: kill the group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        self._started.clear()


def run(argv: Sequence[str], what: str, *, timeout: float = 60.0, env: dict[str, str] | None = None) -> str:
    """Run a set-up command; its stdout, or ServerUnavailable with its output."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ServerUnavailable(f"{what}: {argv[0]} did not finish in {timeout:.0f} s") from exc
    if done.returncode != 0:
        output = " | ".join((done.stdout + done.stderr).strip().splitlines()[-6:])
        raise ServerUnavailable(f"{what}: {' '.join(argv[:3])} failed ({done.returncode}): {output}")
    return done.stdout
