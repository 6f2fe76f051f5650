"""A throwaway S3 server in this process (moto), for ``tfrecord-s3 demo`` and quick trials.

Listens on 127.0.0.1 only, on a free port; keeps everything in memory; gone when stopped.
Needs the ``demo`` extra (``pip install 'tfrecord-s3[demo]'``).
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

from .errors import ConfigError

_HOST = "127.0.0.1"
# moto accepts any credentials; these only have to be present for boto3 to sign requests.
_FAKE_KEY = "demo-access-key"
_FAKE_SECRET = "demo-secret-key"
_REGION = "us-east-1"


class LocalS3Server:
    """moto's S3 server on ``127.0.0.1:<free port>`` in a background thread.

    ``environ()`` gives the variables that point the library (and boto3) at it. Use as a
    context manager, or call ``start()`` and ``stop()``; ``stop()`` is idempotent.
    """

    def __init__(self) -> None:
        self._server: Any = None
        self._port = 0

    def start(self) -> LocalS3Server:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise ConfigError(
                "the demo needs moto's S3 server: pip install 'tfrecord-s3[demo]' (or moto[server])"
            ) from exc
        # werkzeug logs every request at INFO on stderr unless its logger already has a level.
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            werkzeug_log.setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address=_HOST, port=0, verbose=False)
        server.start()
        self._server = server
        self._port = int(server.get_host_and_port()[1])
        return self

    @property
    def endpoint(self) -> str:
        """``host:port``, as S3_ENDPOINT takes it."""
        if self._server is None:
            raise RuntimeError("LocalS3Server is not running: call start() first")
        return f"{_HOST}:{self._port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def environ(self) -> dict[str, str]:
        """Environment variables that point tfrecord-s3 and boto3 at this server."""
        return {
            "S3_ENDPOINT": self.endpoint,
            "S3_USE_HTTPS": "0",
            "AWS_REGION": _REGION,
            "AWS_ACCESS_KEY_ID": _FAKE_KEY,
            "AWS_SECRET_ACCESS_KEY": _FAKE_SECRET,
        }

    def create_bucket(self, name: str) -> None:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=_REGION,
            aws_access_key_id=_FAKE_KEY,
            aws_secret_access_key=_FAKE_SECRET,
        )
        client.create_bucket(Bucket=name)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> LocalS3Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
