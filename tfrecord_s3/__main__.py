"""``python -m tfrecord_s3``: the ``tfrecord-s3`` command line."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
