"""`fastmlp train --dry-run`: a run's plan and its time estimate, as text, without training."""
from ..engine.cost import KERNEL_SHARE
from ..errors import OutOfMemory
from ..runtime.probe import PEAK_N, available_bytes, gemm_gflops
from ..runtime.threads import thread_limits
from ..units import duration_text, size_text
from .plan import check_fits, plan_for

PEAK_REPEATS = 3


def dry_run(config, options, dataset, max_memory=None):
    """(the text describing the run of `config` on `dataset`: layers, parameters, FLOPs,
    memory, the time estimated on this machine now; the OutOfMemory that would refuse the run,
    or None)."""
    plan = plan_for(config, dataset)
    with thread_limits(options.threads) as threads:
        peak = gemm_gflops(config.dtype, threads, n=PEAK_N, repeats=PEAK_REPEATS)
        estimate = plan.estimate()
    available = available_bytes()
    text = report(plan, config.optimizer, estimate, peak, threads, available)
    try:
        check_fits(plan, max_memory, available)
    except OutOfMemory as e:
        return text, e
    return text, None


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
