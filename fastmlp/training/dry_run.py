"""`fastmlp train --dry-run`: a run's plan and its time estimate, as text, without training."""
from ..engine.cost import KERNEL_SHARE
from ..engine.gemm import main_backend, roofline_call
from ..errors import OutOfMemory
from ..runtime.probe import PEAK_N, available_bytes
from ..runtime.threads import thread_limits
from ..runtime.timing import best_seconds
from ..units import duration_text, size_text
from .plan import bfloat16_note, check_fits
from .session import run_plan

PEAK_REPEATS = 3
MATMULS_SHOWN = 6  # the products the dry run lists with their timings


def dry_run(config, options, dataset, max_memory=None, resume=None):
    """(the text describing the run of `config` on `dataset` (continuing the checkpoint
    `resume`, if given): layers, parameters, FLOPs, memory, the time estimated on this machine
    now; the OutOfMemory that would refuse the run, or None)."""
    plan = run_plan(config, dataset, options, resume)
    with thread_limits(options.threads) as threads:
        seconds, = best_seconds([roofline_call(plan.operand, main_backend(plan.gemm), PEAK_N)],
                                PEAK_REPEATS)
        peak = 2 * PEAK_N ** 3 / seconds / 1e9
        estimate = plan.estimate()
    available = available_bytes()
    text = report(plan, config.optimizer, estimate, peak, threads, available)
    note = bfloat16_note(plan)
    if note:
        text += f"\nnote: {note}"
    try:
        check_fits(plan, max_memory, available)
    except OutOfMemory as e:
        return text, e
    return text, None


def matmul_lines(plan):
    """Where the run's matmuls go and why: the libraries timed for each of its products (the
    first few) and the one kept, or the one library there was."""
    gemm = plan.gemm
    kept = ", ".join(f"{name} for {count}" for name, count in _counts(plan).items())
    lines = [f"matmuls ({plan.operand} operands): {kept}"]
    if not plan.gemm_times:
        lines[0] += (" (the only library here, the one --blas names, or a resumed run's)"
                     if not gemm.choices else "")
        return lines
    lines[0] += ", chosen by timing each on this machine (best of a few, at the run's threads)"
    for (m, k, n, layout), times in list(plan.gemm_times.items())[:MATMULS_SHOWN]:
        timed = ", ".join(f"{b} {1e6 * t:,.0f} us" for b, t in times.items())
        lines.append(f"  {m} x {k} @ {k} x {n} ({layout}): {timed} -> "
                     f"{gemm.backend_for((m, k, n, layout))}")
    if len(plan.gemm_times) > MATMULS_SHOWN:
        lines.append(f"  ... and {len(plan.gemm_times) - MATMULS_SHOWN} more")
    if plan.gemm_candidates:
        lines.append(f"  a mix of libraries: the run's first steps decide between it and "
                     f"{', '.join(n for n in plan.gemm_candidates if n != 'mix')} alone")
    return lines


def _counts(plan):
    """{library: how many of the run's distinct matmul shapes go there}."""
    products = plan.gemm_times or {None: None}
    counts = {}
    for product in products:
        name = plan.gemm.default if product is None else plan.gemm.backend_for(product)
        counts[name] = counts.get(name, 0) + (product is not None)
    return {name: count or "all" for name, count in counts.items()}


def report(plan, optimizer, estimate=None, peak_gflops=None, threads=None, available=None):
    """The plan as text, with the estimate (engine.cost.Estimate) when there is one."""
    batch = "full" if plan.batch_size == plan.n_train else plan.batch_size
    lines = [f"{' -> '.join(map(str, plan.sizes))}, {plan.dtype}, batch {batch} of "
             f"{plan.n_train:,} training samples, {optimizer}, {plan.epochs} epochs",
             f"{'layer':>5}  {'shape (weights + biases)':<28} {'parameters':>14}"]
    lines += [f"{i:>5}  {f'{n_in} x {n_out} + {n_out}':<28} {p:>14,}"
              for i, (n_in, n_out, p) in enumerate(plan.layers, 1)]
    lines.append(f"{'total':>5}  {'':<28} {plan.n_params:>14,}")
    lines.append(f"training FLOPs: {plan.flops_per_sample:,} per sample, "
                 f"{plan.flops_per_epoch:.3g} per epoch (evaluation: {plan.eval_flops:.3g})")
    lines.append("memory:")
    lines += [f"  {name:<22} {size_text(n):>12}" for name, n in plan.memory.items() if n]
    avail = "" if available is None else f" ({size_text(available)} available)"
    lines.append(f"  {'total':<22} {size_text(plan.total):>12}{avail}")
    lines += matmul_lines(plan)
    if estimate:
        e = estimate
        lines.append(f"time (estimate): {duration_text(e.train_seconds)} training + "
                     f"{duration_text(e.eval_seconds)} evaluation per epoch, "
                     f"{duration_text(e.run_seconds)} for {e.epochs} epochs and the final "
                     f"evaluation")
        if e.sweep_ns is not None:
            lines.append(f"  training: the fused pass, no matmuls: its sweep timed now at "
                         f"{threads} threads, {e.sweep_ns:.2f} ns per nonzero input")
        else:
            lines.append(
                f"  training: matmuls {duration_text(e.matmul_seconds)} (this run's own, timed "
                f"now at {threads} threads: {e.matmul_gflops:.0f} GFLOPS, "
                f"{e.matmul_gflops / peak_gflops:.0%} of the {peak_gflops:.0f} GFLOPS GEMM "
                f"peak) + kernels, update and Python {duration_text(e.other_seconds)} "
                f"(their bytes at {KERNEL_SHARE:.0%} of the {e.bandwidth / 1e9:.0f} GB/s "
                f"a copy of as many bytes reaches now)")
    return "\n".join(lines)
