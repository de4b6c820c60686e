"""`fastmlp train`: every setting of the table as a flag, a preset beneath them, resuming a
checkpoint, a progress bar, one summary line and the run written as JSON or CSV."""
import argparse
import dataclasses
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..atomic import write_atomically
from ..errors import FastMLPError
from ..presets import MEASURED, MEASURED_ON, PRESETS
from ..runtime.versions import fastmlp_version
from ..settings import CONFIG_SETTINGS, RUN_SETTINGS
from . import add_command
from .options import (
    add_quiet,
    add_setting,
    at_least,
    distinct_files,
    existing_file,
    free_name,
    memory_size,
    output_path,
)
from .progress import epoch_bar, percent

# Where Ctrl-C leaves the checkpoint of a run that has no --save file.
INTERRUPT_PATH = Path("fastmlp-interrupted.npz")
# The one setting a resumed run may change is how long it goes on: any other would make it
# another run than the one checkpointed. Run options (threads, data directory) do not change
# what the run is, so they may be given too (other threads may round BLAS's last bits apart).
RESUME_MAY_CHANGE = ("epochs",)
# The letters the table's help texts use for these values ("up to K pixels").
METAVARS = {"augment_shift": "K", "augment_elastic": "ALPHA", "augment_elastic_sigma": "SIGMA",
            "eval_every": "K", "lr_step_epochs": "N", "patience": "N", "warmup": "EPOCHS"}


def add_parser(subparsers):
    parser = add_command(
        subparsers, "train",
        argument_default=argparse.SUPPRESS,  # unset flags fall back to the preset, then defaults
        description="Train an MLP: inputs -> ReLU hidden layers -> softmax over the classes, "
                    "cross-entropy loss. A flag not given takes the --preset's value, else the "
                    "default shown (the source documents' deepest experiment).")
    measured = "; ".join(f"{name}: {MEASURED[name]}" for name in sorted(PRESETS)).replace("%", "%%")
    parser.add_argument("--preset", choices=sorted(PRESETS),
                        help="a tested recipe (see docs/user-guide.md); flags given beside "
                        f"it win. Measured whole process, 2 threads, on {MEASURED_ON}: "
                        f"{measured}")
    config = parser.add_argument_group("training settings (what decides the numbers)")
    for setting in CONFIG_SETTINGS:
        metavar = {"metavar": METAVARS[setting.name]} if setting.name in METAVARS else {}
        add_setting(config, setting.name, **metavar)
    run = parser.add_argument_group("run options (where and how it runs)")
    for setting in RUN_SETTINGS:
        add_setting(run, setting.name)
    out = parser.add_argument_group("outputs and resuming")
    out.add_argument("--out", type=output_path, metavar="FILE",
                     help="write the configuration, summary and per-epoch history as JSON (with "
                          "its schema version and the package versions), or as CSV when FILE "
                          "ends in .csv (written atomically)")
    out.add_argument("--save", type=output_path, metavar="MODEL.npz",
                     help="save the trained model (weights, architecture, settings, history, "
                          "data checksums), atomically")
    out.add_argument("--checkpoint-every", type=at_least(1), metavar="K",
                     help="also write the --save file every K epochs, resumable")
    out.add_argument("--resume", type=existing_file, metavar="CKPT.npz",
                     help="continue the run saved in CKPT.npz with its own settings (only "
                          "--epochs, the run options and the output flags may be given beside "
                          "it); it keeps writing to CKPT.npz unless --save names another file")
    add_quiet(out)
    out.add_argument("--dry-run", action="store_true",
                     help="print the layers, parameters, FLOPs, the memory the run will hold "
                          "and a rough time estimate, then stop without training")
    out.add_argument("--max-memory", type=memory_size, metavar="SIZE",
                     help="refuse a run that would need more than SIZE (e.g. 4GiB, 500MB); "
                          "a run that needs more than the memory available is always refused")
    return parser


def configure(args):
    """(TrainConfig, RunOptions, Checkpoint or None) of a parsed command line: the flags given,
    else the preset's values, else the table's defaults; with --resume, the checkpoint's
    settings, of which only RESUME_MAY_CHANGE may be given."""
    from ..settings import RunOptions, TrainConfig
    from ..training import checkpoint

    given = vars(args)  # only the flags given: the parser's default is SUPPRESS
    settings = {s.name: given[s.name] for s in CONFIG_SETTINGS if s.name in given}
    if settings.get("data") is not None:  # recorded whole: a resume may run elsewhere
        settings["data"] = str(Path(settings["data"]).resolve())
    options = RunOptions(**{s.name: given[s.name] for s in RUN_SETTINGS if s.name in given})
    if "checkpoint_every" in given and "save" not in given and "resume" not in given:
        raise FastMLPError("--checkpoint-every needs --save FILE to write the checkpoints to")
    if "resume" not in given:
        return TrainConfig(**{**PRESETS.get(given.get("preset"), {}), **settings}), options, None
    refused = set(settings) - set(RESUME_MAY_CHANGE) | ({"preset"} & set(given))
    if refused:
        flags = ", ".join("--" + name.replace("_", "-") for name in sorted(refused))
        raise FastMLPError(f"--resume continues the saved run with its own settings; drop "
                           f"{flags}")
    saved = checkpoint.load(args.resume)
    if not saved.state:
        raise FastMLPError(f"{args.resume}: a final model, not a resumable checkpoint")
    made_by, running = saved.versions.get("fastmlp"), fastmlp_version()
    if made_by is not None and made_by != running:
        raise FastMLPError(f"{args.resume}: written by fastmlp {made_by}, this is {running}; a "
                           "resumed run would mix two versions' numbers: train it again")
    config = dataclasses.replace(saved.config, **settings)
    check_left_to_train(args.resume, config, saved)
    return config, options, saved


def check_left_to_train(path, config, saved):
    """Refuse a resume with no epoch left to train: it would exit 0 having done nothing."""
    done, early = len(saved.history), saved.state.get("early", {})
    if config.patience and early.get("waited", 0) >= config.patience:
        raise FastMLPError(f"{path}: nothing to train: the run stopped early after epoch {done} "
                           f"(no better validation for {config.patience} epochs)")
    if done >= config.epochs:
        raise FastMLPError(f"{path}: nothing to train: the checkpoint already has {done} "
                           f"epochs and the run asks for {config.epochs}; pass --epochs "
                           f"{done + 1} or more to train on")


def summary_line(result):
    """The line a run ends with. A resumed run tells the epochs and times of this process apart
    from the whole run's, which its training time and samples/s are of."""
    final = result.final
    best = f" (best epoch {result.best_epoch})" if result.config.patience else ""
    head = f"val {percent(final.val_acc)} | test {percent(final.test_acc)}{best}"
    speed = f"{result.samples_per_s:,.0f} samples/s"
    epochs = len(result.history)
    if not result.resumed_epochs:
        return (f"{head} | {epochs} epochs in {result.wall_seconds:.1f} s "
                f"(training {result.train_seconds:.1f} s) | {speed}")
    session = result.history[result.resumed_epochs:]
    return (f"{head} | {epochs} epochs ({result.resumed_epochs} before the resume) | "
            f"since the resume: {len(session)} epochs, {sum(e.seconds for e in session):.1f} s "
            f"training, {result.wall_seconds:.1f} s in all | "
            f"whole run: {result.train_seconds:.1f} s training | {speed}")


def note_thread_clamp(threads):
    """One line on stderr when more threads are asked for than there are cores to run them."""
    from ..runtime.threads import usable_threads

    if threads is not None and usable_threads(threads) < threads:
        print(f"fastmlp: note: --threads {threads} is more than the {usable_threads(threads)} "
              f"cores this process may use; using {usable_threads(threads)}", file=sys.stderr)


def refuse_oversized(config, options, max_memory, dry_run):
    """Size data read from files before loading it: one larger than memory is refused with the
    memory plan's line (a dry run prints that plan first), never swapped into."""
    from ..errors import OutOfMemory
    from ..training.dry_run import report
    from ..training.plan import check_fits, plan_unread

    plan = plan_unread(config, options.data_dir)
    if plan is None:
        return
    try:
        check_fits(plan, max_memory)
    except OutOfMemory:
        if dry_run:
            print(report(plan, config.optimizer))
        raise


def _resume_words(args, out, max_memory):
    """What the command that resumes an interrupted run needs beside the checkpoint and the
    run options: the outputs and limits this command was given."""
    words = []
    for flag, value in (("--out", out), ("--checkpoint-every",
                                         getattr(args, "checkpoint_every", None)),
                        ("--max-memory", max_memory)):
        if value:
            words += [flag, str(value)]
    return words + (["--quiet"] if getattr(args, "quiet", False) else [])


def run(args):
    from ..data.load import load_dataset_for

    config, options, resume = configure(args)
    # A resumed run goes on writing to its checkpoint unless --save names another file.
    save = getattr(args, "save", None) or (args.resume if resume is not None else None)
    out = getattr(args, "out", None)
    distinct_files([("--out", out), ("--save", save)], [("--data", config.data)])
    distinct_files([("--out", out)], [("--resume", getattr(args, "resume", None))])
    max_memory = getattr(args, "max_memory", None)
    if config.data is not None:
        refuse_oversized(config, options, max_memory, getattr(args, "dry_run", False))
    # Decompressing and checksumming the data releases the GIL, so it overlaps with importing
    # numba and loading the cached kernels: start-up is the longer of the two, not their sum.
    # The data starts first: the thread check below imports numba.
    # Not `with`: a Ctrl-C or an error here must not wait for the data to finish loading.
    pool = ThreadPoolExecutor(1)
    try:
        loading = pool.submit(load_dataset_for, config, options.data_dir)
        note_thread_clamp(options.threads)
        from ..training.loop import train  # imports numba and loads the kernels
        dataset = loading.result()  # before the progress bar, so a data error prints alone
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    if getattr(args, "dry_run", False):
        from ..training.dry_run import dry_run
        text, refusal = dry_run(config, options, dataset, max_memory, resume)
        print(text)
        if refusal is not None:
            raise refusal
        return
    from ..training.plan import bfloat16_note, check_fits
    from ..training.session import run_plan
    plan = run_plan(config, dataset, options, resume)
    check_fits(plan, max_memory)  # before the progress bar: one line
    note = bfloat16_note(plan)
    if note:
        print(f"fastmlp: note: {note}", file=sys.stderr)
    done = len(resume.history) if resume is not None else 0
    with epoch_bar(config.epochs, getattr(args, "quiet", False), initial=done) as bar:
        def on_epoch(stats):
            bar.set_postfix(loss=f"{stats.train_loss:.4f}", train=percent(stats.train_acc),
                            val=percent(stats.val_acc),
                            samples_s=f"{stats.samples_per_s:,.0f}", refresh=False)
            bar.update()

        result = train(config, dataset, on_epoch, options=options, save_path=save,
                       checkpoint_every=getattr(args, "checkpoint_every", 0), resume=resume,
                       interrupt_path=save or free_name(INTERRUPT_PATH), max_memory=max_memory,
                       plan=plan, resume_words=_resume_words(args, out, max_memory))
    print(summary_line(result))
    if out is not None:
        if out.suffix.lower() == ".csv":
            text = result.to_csv()
        else:
            text = json.dumps(result.to_dict(), indent=1) + "\n"
        write_atomically(out, text)
