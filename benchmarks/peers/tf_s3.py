"""TensorFlow + tensorflow-io reading s3:// from the local server: one object batched, eight
shards with num_parallel_reads, and parse_example. Run in the TensorFlow venv with S3_ENDPOINT
set to a full http:// URL (tensorflow-io ignores S3_USE_HTTPS).

Arguments: {"single": {"url", "bytes"} | null, "shards": {"urls", "bytes"} | null,
            "parallel": int, "more_parallel": [int] (batched runs only), "spec", "batch",
            "repeats", "parse": bool}
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from benchmarks.peers._common import Measurement, NetworkStats, ServerCPU, emit, finish, measure, read_args
from benchmarks.peers._tf import count_batches, count_parsed, feature_spec, import_tf, versions


def _first_record_seconds(tf: Any, urls: list[str], parallel: int | None) -> float:
    start = time.perf_counter()
    dataset = tf.data.TFRecordDataset(urls, num_parallel_reads=parallel)
    next(iter(dataset))
    return time.perf_counter() - start


def main() -> None:
    args = read_args()
    tf = import_tf(with_io=True)
    repeats = int(args["repeats"])
    batch = int(args["batch"])
    spec = feature_spec(tf, args["spec"])
    results: list[Measurement] = []

    def batched(urls: list[str], size: int, parallel: int | None) -> tuple[int, int]:
        return count_batches(tf.data.TFRecordDataset(urls, num_parallel_reads=parallel).batch(batch)), size

    def parsed(urls: list[str], size: int, parallel: int | None = None) -> tuple[int, int]:
        dataset = tf.data.TFRecordDataset(urls, num_parallel_reads=parallel)
        dataset = dataset.batch(batch).map(lambda x: tf.io.parse_example(x, spec))
        return count_parsed(dataset), size

    server_cpu = ServerCPU(args.get("server_pid"))
    net = NetworkStats(args.get("stats_url"))

    def add(name: str, scenario: str, run: Callable[[], tuple[int, int]]) -> Measurement:
        m = measure(name, scenario, net.wrap(name, server_cpu.wrap(name, run)), repeats)
        server_cpu.annotate(m)
        net.annotate(m)
        results.append(m)
        return m

    single = args.get("single")
    if single:
        one, one_size = [str(single["url"])], int(single["bytes"])
        first = _first_record_seconds(tf, one, None)  # also the warm-up (client, credentials)
        m = add(f"TF+tf-io TFRecordDataset.batch({batch})", "s3 single object", lambda: batched(one, one_size, None))
        m.first_record_seconds = [first]
        if args.get("parse"):
            add(f"TF+tf-io parse_example batch {batch}", "s3 single object", lambda: parsed(one, one_size))
    shards = args.get("shards")
    if shards:
        urls, size, parallel = list(shards["urls"]), int(shards["bytes"]), int(args["parallel"])
        if not single:
            _first_record_seconds(tf, urls, parallel)
        scenario = f"s3 {len(urls)} shards"
        # The chart of MB/s against num_parallel_reads (report.py) reads extra["num_parallel_reads"].
        more = [int(n) for n in args.get("more_parallel") or [] if int(n) != parallel]
        for n in [parallel, *more]:
            m = add(
                f"TF+tf-io TFRecordDataset(num_parallel_reads={n}).batch({batch})",
                scenario,
                functools.partial(batched, urls, size, n),
            )
            m.extra["num_parallel_reads"] = n
        if args.get("parse"):
            add(
                f"TF+tf-io (num_parallel_reads={parallel}).batch({batch}) + parse_example",
                scenario,
                lambda: parsed(urls, size, parallel),
            )
    emit(results, versions(tf), [])
    finish()  # os._exit: a process that touched s3:// aborts in teardown (tensorflow/io#2039)


if __name__ == "__main__":
    main()
