"""A TLS front for the benchmarks, in a process of its own (so its relaying costs no CPU of
the client being measured): the test suite's front (tests/servers/tls.py) with a CA made now.

    python -m benchmarks.tls_front --upstream HOST:PORT --dir DIR

Prints ``listening PORT CA_FILE`` once it accepts connections, then serves until terminated.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from tests.servers.tls import TlsFront, make_certificates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the plain-HTTP server")
    parser.add_argument("--dir", required=True, help="where the CA and certificate are written")
    args = parser.parse_args(argv)
    host, _, port = str(args.upstream).rpartition(":")
    certificates = make_certificates(Path(args.dir))
    front = TlsFront((host, int(port)), certificates).start()
    print(f"listening {front.port} {certificates.ca_file}", flush=True)
    threading.Event().wait()  # until SIGTERM (the benchmark stops us by PID)


if __name__ == "__main__":
    main()
