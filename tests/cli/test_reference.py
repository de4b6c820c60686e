"""docs/cli.md is the command-line reference rendered from the real parsers
(fastmlp/cli/reference.py): the page must be what rendering gives now, as tests/test_readme.py
holds the README to CI's test command."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fastmlp.cli import COMMANDS, EXIT_INTERRUPTED, EXIT_TERMINATED
from fastmlp.cli.options import EXIT_BAD_INPUT
from fastmlp.cli.reference import REGENERATE, render

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cli.md"


def test_the_page_is_what_the_parsers_render():
    page = PAGE.read_text()
    made_with = re.search(r"argparse of Python (\d+\.\d+)", page)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if made_with and made_with.group(1) != running:
        # argparse's layout of --help changes between Python versions (3.13 writes
        # `-o, --output FILE` where 3.11 writes `-o FILE, --output FILE`).
        pytest.skip(f"docs/cli.md was rendered by Python {made_with.group(1)}, this is "
                    f"{running}")
    assert page == render(), f"docs/cli.md is out of date: regenerate it with `{REGENERATE}`"


def test_the_page_has_every_command_and_exit_status():
    text = render()
    for name in COMMANDS:
        assert f"\n## fastmlp {name}\n" in text
        assert f"usage: fastmlp {name} " in text
    for status in (0, 1, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED):
        assert f"\n| {status} | " in text


def test_the_statuses_are_the_documented_numbers():
    assert (EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED) == (2, 130, 143)


def test_help_is_formatted_at_the_fixed_width_whatever_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    text = render()
    assert max(len(line) for line in text.split("```text")[1].splitlines()) > 40
    assert all(len(line) <= 100 for block in text.split("```text")[1:]
               for line in block.split("```")[0].splitlines())
    assert os.environ["COLUMNS"] == "40"  # put back as it was


def test_rendering_imports_no_numba():
    code = ("import sys; from fastmlp.cli.reference import render; render(); "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "False"
