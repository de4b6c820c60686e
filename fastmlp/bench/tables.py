"""`fastmlp bench`'s outputs: the Markdown table (and the per-phase profile), JSON and CSV."""
import csv
import io
import json
from dataclasses import asdict

from .profile import PHASES


def table(rows, peers=()):
    """A Markdown table of the rows."""
    head = ["configuration", "threads", "blas (matmuls on)", "fast path", "samples/s", "GFLOPS",
            "share of its limit",
            "matmuls alone: % of GEMM peak", "% of matmuls-alone speed", "speed-up vs 1 thread"]
    for peer in peers:
        head += [f"{peer} samples/s", f"fastmlp / {peer}"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r in rows:
        cells = [f"{r.configuration} {r.optimizer}", str(r.threads), f"{r.blas} ({r.matmuls})",
                 r.fast_path, f"{r.samples_per_s:,.0f}", f"{r.gflops:.1f}", r.limit_text,
                 _percent(r.matmul_roofline_pct), _percent(r.matmul_share),
                 "n/a" if r.speedup is None else f"{r.speedup:.2f}x"]
        for peer in peers:
            if peer not in r.peers:  # not measured beside this row (a bfloat16 peer, float64)
                cells += ["-", "-"]
                continue
            cells += [_peer_cell(r.peers.get(peer), r.peer_runs.get(peer, [])),
                      "n/a" if r.ratio(peer) is None else f"{r.ratio(peer):.2f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _peer_cell(best, runs):
    """A peer's samples/s: the best, and the spread when it ran in several processes."""
    if not isinstance(best, float):
        return str(best)
    rates = [r for r in runs if isinstance(r, float)]
    spread = (f" (best of {len(runs)}: {min(rates):,.0f}-{max(rates):,.0f})"
              if len(runs) > 1 else "")
    return f"{best:,.0f}{spread}"


def _percent(value):
    return "n/a" if value is None else f"{value:.1f}%"


def profile_table(rows):
    """Per configuration and thread count: each phase's ms per epoch and share of the epoch."""
    lines = []
    for r in rows:
        total = sum(r.profile.values())
        lines.append(f"\n{r.configuration}, {r.threads} threads: "
                     f"{1e3 * total:.1f} ms per epoch")
        lines += ["| phase | ms per epoch | share |", "| --- | --- | --- |"]
        lines += [f"| {p} | {1e3 * r.profile[p]:.2f} | {100 * r.profile[p] / total:.1f}% |"
                  for p in PHASES]
    return "\n".join(lines)


def to_json(rows):
    return json.dumps([asdict(r) | {"roofline_pct": r.roofline_pct,
                                    "matmul_roofline_pct": r.matmul_roofline_pct}
                       for r in rows], indent=1)


def to_csv(rows, peers=()):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["layers", "batch_size", "dtype", "threads", "blas", "matmuls", "fast_path",
                     "samples_per_s",
                     "gflops", "peak_gflops", "roofline_pct", "stream_gbps", "stream_peak_gbps",
                     "matmul_samples_per_s", "matmul_roofline_pct", "speedup",
                     *[f"{p}_samples_per_s" for p in peers]])
    for r in rows:
        writer.writerow([" ".join(map(str, r.layers)), r.batch_size or "full", r.dtype,
                         r.threads, r.blas, r.matmuls, r.fast_path, r.samples_per_s, r.gflops,
                         r.peak_gflops,
                         r.roofline_pct, r.stream_gbps, r.stream_peak_gbps,
                         r.matmul_samples_per_s, r.matmul_roofline_pct, r.speedup,
                         *[r.peers.get(p) for p in peers]])
    return buffer.getvalue()
