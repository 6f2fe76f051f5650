"""Benchmarks for tfrecord-s3: our layers against TensorFlow, PyPI ``tfrecord``, s3fs and the ceilings.

Run ``python -m benchmarks`` (``--quick`` for a small check). Nothing here is imported by the
library or its tests; peers run in their own virtualenvs (``benchmarks/setup_peers.sh``).
"""
