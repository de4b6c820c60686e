"""Random flag values never crash the argument handling: each either builds a valid TrainConfig
or is refused with one line and exit status 2 (checked in-process: no training runs). Also: the
argument handling answers without the engine (numba) and --help without numpy."""
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastmlp.cli import build_parser
from fastmlp.cli.train import configure
from fastmlp.errors import FastMLPError
from fastmlp.settings import SETTINGS, Flag, RunOptions, TrainConfig

# Every flag that takes a value: the table's, and the preset.
OPTIONS = [s.flag for s in SETTINGS if not isinstance(s.constraint, Flag)] + ["--preset"]
SWITCHES = [s.flag for s in SETTINGS if isinstance(s.constraint, Flag)]
SWITCHES += ["--no-" + flag[2:] for flag in SWITCHES]

values = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["full", "nan", "inf", "-0", "1e-300", "", " ", "0x10", "1_000", "adam",
                     "cosine", "he", "float64", "fast", "arrays", "momentum"]),
    st.text(max_size=8))
words = st.one_of(st.tuples(st.sampled_from(OPTIONS), values),
                  st.sampled_from(SWITCHES).map(lambda switch: (switch,)))


# capsys is read (and so emptied) at the start of every example.
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(words, min_size=1, max_size=4))
def test_random_flag_values_are_accepted_or_refused_in_one_line(capsys, flags):
    argv = ["train"] + [part for flag in flags for part in flag]
    capsys.readouterr()
    try:
        args = build_parser("train").parse_args(argv)
        config, options, resume = configure(args)
    except SystemExit as e:
        assert e.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "error" in err
        return
    except FastMLPError as e:
        assert "\n" not in str(e)
        return
    assert isinstance(config, TrainConfig) and isinstance(options, RunOptions)
    assert resume is None
    assert config.epochs >= 1 and config.lr > 0 and all(h >= 1 for h in config.layers)


def test_a_flag_value_that_looks_like_a_flag_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser("train").parse_args(["train", "--lr", "--epochs"])
    assert e.value.code == 2


def imported_after(*argv):
    """The modules imported by `fastmlp ARGV` (which must end in argparse's exit)."""
    code = ("import sys\nfrom fastmlp.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\nprint('MODULES', *sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=120, check=True)
    return set(proc.stdout.splitlines()[-1].split()[1:])  # the help text comes before


@pytest.mark.parametrize("argv", [["--help"], ["no-such-command"]])
def test_the_command_list_imports_no_command(argv):
    modules = imported_after(*argv)
    assert "numpy" not in modules and not any(m.startswith("fastmlp.cli.") and
                                              m != "fastmlp.cli.options" for m in modules)


@pytest.mark.parametrize("argv", [["train", "--help"], ["train", "--lr", "0"],
                                  ["bench", "--threads", "0"], ["evaluate", "--help"]])
def test_a_command_imports_only_its_module_and_not_the_engine(argv):
    modules = imported_after(*argv)
    commands = {m for m in modules if m.startswith("fastmlp.cli.")}
    assert commands <= {f"fastmlp.cli.{argv[0]}", "fastmlp.cli.options",
                        "fastmlp.cli.progress"}
    assert "numba" not in modules and "fastmlp.engine.kernels" not in modules
