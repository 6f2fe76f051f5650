"""Peer benchmark scripts. Each runs as ``<peer venv python> -m benchmarks.peers.<name> '<json>'``
and prints one JSON line; only the standard library is imported at module level, so the
modules load in any virtualenv."""
