"""A local Ray (2 CPUs) for the Ray tests, its workers pointed at the session's moto server.

Started once for this package and shut down when it is done (not at the end of the session:
later tests fork DataLoader workers, which should not inherit Ray's threads).

Ray workers take their environment when Ray starts, not from a test's monkeypatch: the S3
variables a user would export (TensorFlow's, fake keys) go to every worker via runtime_env.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FAKE_KEY_ID, FAKE_SECRET, MotoServer


@pytest.fixture(scope="package")
def ray_cluster(moto_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'tfrecord-s3[ray]')")
    empty = Path(tmp_path_factory.mktemp("aws")) / "empty"
    empty.write_text("")
    env = {
        "S3_ENDPOINT": f"{moto_server.host}:{moto_server.port}",
        "S3_USE_HTTPS": "0",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
    }
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": env},
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()
