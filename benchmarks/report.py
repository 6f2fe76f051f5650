"""Turns ``benchmarks/out/*.json`` into ``benchmarks/RESULTS.md`` and ``benchmarks/throughput.png``.

python -m benchmarks.report      (the entry point ``python -m benchmarks`` calls this too)
"""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

from ._common import OUT_DIR, REPO

RESULTS_MD = REPO / "benchmarks" / "RESULTS.md"
CHART_PNG = REPO / "benchmarks" / "throughput.png"
BENCHES = (
    ("core", "Local files (page cache warm)"),
    ("s3", "S3: one object on a local s3rver"),
    ("tls", "S3 over HTTPS: one object through a local TLS front"),
    ("dataset", "S3: eight shards through a dataset"),
    ("small", "S3: many small objects through a dataset"),
    ("ray", "Ray Data: eight shards, ours vs ray.data.read_tfrecords"),
    ("hedge", "S3: one object with stragglers, hedged GETs on vs off"),
)
_KIND_COLOURS = {"ours": "#1f77b4", "peer": "#ff7f0e", "ceiling": "#7f7f7f"}
#: Shaped networks (benchmarks/shaper.py) whose results get sections of their own.
NETWORKS = ("s3-region", "s3-far")
#: The layers that read through S3 (ray: from s3rver when shaped), so run through a shaped network too.
SHAPED = ("s3", "tls", "dataset", "small", "ray", "hedge")


def sections(profile: str = "loopback") -> list[tuple[str, str]]:
    """(results name, title) of every section of one network profile's report: the layers on
    loopback, or the S3 layers (all but the local one) through the shaping proxy."""
    if profile == "loopback":
        return list(BENCHES)
    return [(f"{name}@{profile}", f"{title}, network `{profile}`") for name, title in BENCHES if name in SHAPED]


def parallel_chart_path(profile: str) -> Path:
    """The chart of MB/s against ``num_parallel_reads`` of one profile's dataset layer."""
    suffix = "" if profile == "loopback" else f"-{profile}"
    return CHART_PNG.with_name(f"parallel-reads{suffix}.png")


def report_paths(profile: str) -> tuple[Path, Path]:
    """RESULTS.md and throughput.png for loopback; RESULTS-<profile>.md/.png for the others."""
    if profile == "loopback":
        return RESULTS_MD, CHART_PNG
    return RESULTS_MD.with_name(f"RESULTS-{profile}.md"), CHART_PNG.with_name(f"throughput-{profile}.png")


def machine() -> dict[str, str]:
    info = {"nproc": str(os.cpu_count()), "python": platform.python_version(), "kernel": platform.release()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return info


def load() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for name, _title in [entry for profile in ("loopback", *NETWORKS) for entry in sections(profile)]:
        path = OUT_DIR / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if digits == 0:
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


def _rows_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| reader | kind | input | records/s | MB/s | client CPU s/GB | server CPU s/GB "
        "| peak RSS MB (+ above start) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        rss = "-"
        if row.get("peak_rss_mb") is not None:
            rss = f"{row['peak_rss_mb']:.0f} (+{row['rss_delta_mb']:.0f})"
        first = row.get("first_record_s")
        reader = row["reader"] + (f" (first record {first:.2f} s)" if first is not None else "")
        lines.append(
            f"| {reader} | {row['kind']} | {row['scenario']} | {_num(row.get('records_per_s'))} | "
            f"{_num(row['mb_per_s'], 1)} | {_num(row.get('cpu_s_per_gb'), 2)} | "
            f"{_num(row.get('extra', {}).get('server_cpu_s_per_gb'), 2)} | {rss} |"
        )
    return lines


def _network_table(rows: list[dict[str, Any]]) -> list[str]:
    """What each reader cost on a shaped network, per timed run (medians)."""
    lines = [
        "| reader | MB/s | first record (s) | GET / HEAD / LIST per run | 503s | peak requests in flight "
        "| connections opened (peak open, idle pooled ones included) | client CPU s/GB "
        "| our scheduler's window at the end (peak) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        net = row.get("extra", {}).get("network")
        if not net:
            continue
        first = row.get("first_record_s")
        lines.append(
            f"| {row['reader']} | {_num(row['mb_per_s'], 1)} | {_num(first, 2) if first is not None else '-'} | "
            f"{_num(net['gets'])} / {_num(net['heads'])} / {_num(net['lists'])} | {_num(net['slowdowns'])} | "
            f"{_num(net['peak_in_flight'])} | {_num(net['connections'])} ({_num(net['peak_connections'])}) | "
            f"{_num(row.get('cpu_s_per_gb'), 2)} | {_window(row)} |"
        )
    return lines if len(lines) > 2 else []  # no row read the proxy's counters (the ray layer)


def _tail_table(rows: list[dict[str, Any]]) -> list[str]:
    """Per-block waits of the stragglers benchmark (benchmarks/bench_hedge.py)."""
    lines = [
        "| reader | MB/s | slowest run (s) | wait per block p50 / p99 / max (s) | blocks | GETs | hedges "
        "| stragglers injected |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        tail = row.get("extra", {}).get("tail")
        if tail:
            lines.append(
                f"| {row['reader']} | {_num(row['mb_per_s'], 1)} | {tail['slowest_run_s']:.2f} | "
                f"{tail['wait_p50_s']:.3f} / {tail['wait_p99_s']:.3f} / {tail['wait_max_s']:.3f} | "
                f"{_num(tail['blocks'])} | {_num(tail['requests'])} | {_num(tail['hedges'])} | "
                f"{_num(tail['stragglers'])} |"
            )
    return lines if len(lines) > 2 else []


def _window(row: dict[str, Any]) -> str:
    scheduler = row.get("extra", {}).get("scheduler")
    if not scheduler:
        return "-"
    return f"{scheduler['window']} ({scheduler['peak_window']})"


def _targets_table(results: dict[str, dict[str, Any]], profile: str) -> list[str]:
    lines = [
        "| target | ours | baseline (same run) | ratio | goal | verdict |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for name, _title in sections(profile):
        for target in results.get(name, {}).get("targets", []):
            verdict = {True: "met", False: "**missed**", None: "not measured"}[target["met"]]
            digits = {"rec/s": 0, "GB/s": 2}.get(target["unit"], 1)
            baseline = f"{_num(target['baseline'], digits)} ({target['baseline_name']})" if target["baseline"] else "-"
            ratio = "-"
            if target["ratio"] is not None:
                # Three decimals where two would round onto the goal and hide which side it is on.
                close = abs(target["ratio"] - target["target"]) < 0.01
                ratio = f"{target['ratio']:.3f}x" if close else f"{target['ratio']:.2f}x"
            if target["kind"] == "ratio":
                goal = f">= {target['target']:g}x"
            else:
                goal = f"{'>=' if target['kind'] == 'min' else '<'} {target['target']:g} {target['unit']}"
            ours = f"{_num(target['ours'], digits)} {target['unit']}" if target["ours"] is not None else "-"
            lines.append(f"| {target['name']} | {ours} | {baseline} | {ratio} | {goal} | {verdict} |")
    return lines


def write_markdown(
    results: dict[str, dict[str, Any]],
    path: Path = RESULTS_MD,
    chart_name: str = CHART_PNG.name,
    profile: str = "loopback",
) -> Path:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    modes = sorted({f"{r['mode']} ({r['repeats']} timed runs per reader)" for r in results.values()})
    info = machine()
    lines = [
        "# Benchmark results" + ("" if profile == "loopback" else f" on the `{profile}` network"),
        "",
        f"Written by `python -m benchmarks` on {now}; mode: {', '.join(modes) or '-'}. Figures are medians "
        "of the timed runs; every peer and ceiling was measured in the same run as ours: readers of one "
        "process take turns within a round, and rounds alternate our process with the peers' ones (in "
        "reversed order every other round), so a busy spell of the machine does not fall on one side "
        "only. MB = 10^6 bytes of "
        "file (frames included). Generated data: ~1 KB `tf.train.Example` records with 7 features, and "
        "1 MiB raw records. Peers run in their own virtualenvs (`benchmarks/setup_peers.sh`). "
        "The S3 server is s3rver 3.7.1 on 127.0.0.1 (one Node.js process, sharing the 2 cores with the client).",
        "",
        f"Machine: {info.get('nproc', '?')} CPUs ({info.get('cpu', '?')}), {info.get('memory', '?')} memory, "
        f"Linux {info.get('kernel', '?')}, Python {info.get('python', '?')}.",
        "",
        "## Targets",
        "",
        *_targets_table(results, profile),
        "",
        f"![throughput per reader]({chart_name})",
        "",
    ]
    versions: dict[str, str] = {}
    notes: list[str] = []
    for name, title in sections(profile):
        bench = results.get(name)
        if bench is None:
            lines += [f"## {title}", "", f"Not run (no `benchmarks/out/{name}.json`).", ""]
            continue
        versions.update({k: v for k, v in bench.get("versions", {}).items() if k != "network"})
        notes += [f"{name}: {n}" for n in bench.get("notes", [])]
        share = bench.get("others_cpu_share")
        load_text = f" Other processes used {share:.0%} of the CPUs meanwhile." if share is not None else ""
        rounds = bench.get("rounds", 1)
        lines += [
            f"## {title}",
            "",
            f"Mode {bench['mode']}: {rounds} round(s), {bench['repeats']} timed runs per reader.{load_text}",
            "",
        ]
        if bench.get("versions", {}).get("network"):
            lines += [f"Network: {bench['versions']['network']} (benchmarks/shaper.py).", ""]
        lines += [*_rows_table(bench["rows"]), ""]
        if "@" in name:
            lines += [*_network_table(bench["rows"]), ""]
        lines += [*_tail_table(bench["rows"]), ""]
        counters = [r for r in bench["rows"] if r.get("extra", {}).get("counters")]
        for row in counters:
            lines += [f"{row['reader']} stream counters (last run): `{json.dumps(row['extra']['counters'])}`", ""]
    lines += ["## Versions", "", "| package | version |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in sorted(versions.items())]
    lines += ["", "## Notes", ""]
    lines += [f"- {n}" for n in notes] or ["- none"]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_chart(results: dict[str, dict[str, Any]], path: Path = CHART_PNG, profile: str = "loopback") -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = [(title, results[name]["rows"]) for name, title in sections(profile) if name in results]
    if not panels:
        return None
    heights = [max(1.5, 0.32 * len(rows) + 0.9) for _title, rows in panels]
    figure, axes = plt.subplots(len(panels), 1, figsize=(11, sum(heights)), gridspec_kw={"height_ratios": heights})
    if len(panels) == 1:
        axes = [axes]
    for axis, (title, rows) in zip(axes, panels, strict=True):
        rows = sorted(rows, key=lambda r: (r["scenario"], r["mb_per_s"]))
        labels = [f"{r['reader']}  [{r['scenario']}]" for r in rows]
        values = [r["mb_per_s"] for r in rows]
        colours = [_KIND_COLOURS.get(r["kind"], "#2ca02c") for r in rows]
        bars = axis.barh(range(len(rows)), values, color=colours)
        axis.set_yticks(range(len(rows)), labels, fontsize=8)
        axis.set_title(title, fontsize=10, loc="left")
        axis.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=7, padding=2)
        # Log scale only where ceilings dwarf the readers (local page-cache reads run at ~16 GB/s).
        if max(values) > 30 * max(min(values), 1e-9):
            axis.set_xscale("log")
            axis.set_xlim(right=max(values) * 3)
            axis.set_xlabel("MB/s (log scale)", fontsize=8)
        else:
            axis.set_xlim(0, max(values) * 1.15)
            axis.set_xlabel("MB/s", fontsize=8)
    figure.suptitle("Throughput per reader (blue = tfrecord-s3, orange = peers, grey = ceilings)", fontsize=10)
    figure.tight_layout(rect=(0, 0, 1, 0.985))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


#: x positions of the parallel-reads chart: each num_parallel_reads run, then the default (None).
_PARALLEL_TICKS = (1, 2, 4, 8, None)
#: (label, colour, marker) of a series of the parallel-reads chart, by what each row read.
_PARALLEL_SERIES = {
    "batch": ("ours .batch(256)", _KIND_COLOURS["ours"], "o"),
    "records": ("ours, one record at a time", "#6baed6", "s"),
    "tf": ("TF + tensorflow-io .batch(256)", _KIND_COLOURS["peer"], "^"),
}


def parallel_series(rows: list[dict[str, Any]]) -> dict[str, dict[int | None, float]]:
    """MB/s by ``num_parallel_reads`` (None: the default) of each series of the dataset layer:
    ours batched, ours per record, TF + tensorflow-io batched; the ceiling as "ceiling" (at None)."""
    found: dict[str, dict[int | None, float]] = {}
    for row in rows:
        extra = row.get("extra") or {}
        if row["kind"] == "ceiling":
            found.setdefault("ceiling", {})[None] = row["mb_per_s"]
            continue
        if "num_parallel_reads" not in extra:
            continue
        series = "tf" if row["kind"] == "peer" else extra.get("how")
        if series in _PARALLEL_SERIES:
            found.setdefault(series, {})[extra["num_parallel_reads"]] = row["mb_per_s"]
    return found


def write_parallel_chart(results: dict[str, dict[str, Any]], profile: str) -> Path | None:
    """MB/s against ``num_parallel_reads`` (1, 2, 4, 8, default) for ours and TF +
    tensorflow-io on eight shards, the boto3 ceiling as a line; None without data or matplotlib."""
    name = "dataset" if profile == "loopback" else f"dataset@{profile}"
    if name not in results:
        return None
    series = parallel_series(results[name]["rows"])
    if not any(key in series for key in _PARALLEL_SERIES):
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axis = plt.subplots(figsize=(7, 4.2))
    positions = {n: i for i, n in enumerate(_PARALLEL_TICKS)}
    for key, (label, colour, marker) in _PARALLEL_SERIES.items():
        points = sorted((positions[n], mb) for n, mb in series.get(key, {}).items() if n in positions)
        if not points:
            continue
        # The default sits apart from the 1-2-4-8 curve: a point of its own, not joined to it.
        joined = [(x, y) for x, y in points if x < positions[None]]
        if joined:
            axis.plot(*zip(*joined, strict=True), color=colour, marker=marker, label=label)
        for x, y in points:
            if x == positions[None]:
                axis.plot([x], [y], color=colour, marker=marker, markersize=9, linestyle="none")
            axis.annotate(f"{y:,.0f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ceiling = series.get("ceiling", {}).get(None)
    if ceiling is not None:
        axis.axhline(
            ceiling,
            color=_KIND_COLOURS["ceiling"],
            linestyle="--",
            label=f"boto3 16 x 8 MiB ranged GETs, bytes only ({ceiling:,.0f})",
        )
    axis.set_xticks(range(len(_PARALLEL_TICKS)), [str(n) if n is not None else "default" for n in _PARALLEL_TICKS])
    axis.set_xlabel("num_parallel_reads", fontsize=9)
    axis.set_ylabel("MB/s", fontsize=9)
    axis.set_ylim(bottom=0)
    axis.set_title(f"TFRecordDataset over 8 S3 shards, network `{profile}`", fontsize=10, loc="left")
    axis.legend(fontsize=7, loc="best")
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    path = parallel_chart_path(profile)
    if results[name].get("mode") == "quick":
        path = OUT_DIR / f"quick-{path.name}"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main() -> None:
    results = load()
    for profile in ("loopback", *NETWORKS):
        mine = {name: results[name] for name, _title in sections(profile) if name in results}
        if not mine:
            continue
        markdown, png = report_paths(profile)
        if any(r.get("mode") == "quick" for r in mine.values()):
            # Quick runs check that everything works; they never replace the committed results.
            markdown, png = OUT_DIR / f"quick-{markdown.name}", OUT_DIR / f"quick-{png.name}"
        print(f"wrote {write_markdown(mine, markdown, png.name, profile).relative_to(REPO)}")
        chart = write_chart(mine, png, profile)
        print(f"wrote {chart.relative_to(REPO)}" if chart else "no chart (matplotlib missing or no results)")
        parallel = write_parallel_chart(mine, profile)
        if parallel is not None:
            print(f"wrote {parallel.relative_to(REPO)}")


if __name__ == "__main__":
    main()
