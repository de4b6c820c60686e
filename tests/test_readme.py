"""The README and the docs must tell the truth about this tree: CI runs exactly the test command
the README gives a new user; the README stays a short page for users; every `fastmlp` command
shown in the README or the user guide parses with the real parser; the grid and sweep files the
user guide shows load; every relative link leads to a file (and heading) that exists."""
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from fastmlp.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
USER_GUIDE = ROOT / "docs" / "user-guide.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 300

FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)
SHELL = ("", "sh", "shell", "bash", "console")  # the info strings of blocks a user would type
# A fastmlp command at the start of a line or after `&&`, as `fastmlp` or `python -m fastmlp`.
COMMAND_START = re.compile(r"(^|&&)\s*(python -m )?fastmlp\s")
# The words of a command that name a file, input or output: they end in a file suffix.
FILE_WORD = re.compile(r"^[^-].*\.(npz|json|csv|png|jpe?g|toml|md|gz)$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:")  # https:, mailto:, ...


def blocks(path, kinds):
    return [body for info, body in FENCE.findall(path.read_text()) if info in kinds]


def fastmlp_commands(path):
    """The words of every fastmlp command in the shell code blocks of `path` (after the `fastmlp`
    or `python -m fastmlp`): a `$ ` prompt, comments and the commands `&&` joins to it are left
    out; output lines shown in a block (`fastmlp: error: ...`) are not commands."""
    found = []
    for body in blocks(path, SHELL):
        for line in body.splitlines():
            line = line.removeprefix("$ ")
            if not COMMAND_START.search(line):
                continue
            words = shlex.split(line, comments=True)
            segments = [[]]
            for word in words:
                if word == "&&":
                    segments.append([])
                else:
                    segments[-1].append(word)
            for segment in segments:
                if segment[:3] == ["python", "-m", "fastmlp"]:
                    found.append(segment[3:])
                elif segment[:1] == ["fastmlp"]:
                    found.append(segment[1:])
    return found


def parse(words, directory):
    """Parse a command as `fastmlp` would, in `directory`, where every file the command names
    has been made first (empty: only the parser reads them)."""
    for word in words:
        if FILE_WORD.match(word):
            (directory / word).parent.mkdir(parents=True, exist_ok=True)
            (directory / word).touch()
    command = next((w for w in words if not w.startswith("-")), None)
    return build_parser(command if command in COMMANDS else None).parse_args(words)


COMMAND_LINES = [(path.relative_to(ROOT), words) for path in (README, USER_GUIDE)
                 for words in fastmlp_commands(path)]


def test_ci_runs_the_readme_test_command():
    code_blocks = re.findall(r"```\n(.*?)\n```", README.read_text(), re.S)
    test_command = next(b for b in code_blocks if "pytest" in b and "\n" not in b)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines


def test_the_readme_is_a_short_page_without_images():
    """At most MAX_README_LINES lines; no images, whose relative paths break on a package
    index's page (they belong in docs/)."""
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    assert "![" not in text and "<img" not in text


def test_the_readme_shows_every_command():
    shown = {words[0] for path, words in COMMAND_LINES if path.name == "README.md" and words}
    assert set(COMMANDS) <= shown, sorted(set(COMMANDS) - shown)


@pytest.mark.parametrize("path, words", COMMAND_LINES,
                         ids=[f"{p}: fastmlp {shlex.join(w)}"[:90] for p, w in COMMAND_LINES])
def test_every_command_shown_parses(path, words, tmp_path, monkeypatch, capsys):
    """Parsing is what is checked, never running: flags, choices and value types, exactly as the
    command line reads them. argparse's types also check that an input file exists (and that an
    output's directory does), so the command is parsed in an empty directory where every word
    ending in a file suffix has been created first; the examples' file names need not exist in
    the repository, and nothing of theirs is read."""
    monkeypatch.chdir(tmp_path)
    try:
        parse(words, tmp_path)
    except SystemExit:
        pytest.fail(f"{path}: `fastmlp {shlex.join(words)}` does not parse: "
                    f"{capsys.readouterr().err.strip()}")


def test_a_command_that_does_not_parse_is_caught(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for words in (["train", "--layers"], ["train", "--optimizer", "lion"],
                  ["evaluate", "model.npz", "--split", "holdout"], ["no-such-command"]):
        with pytest.raises(SystemExit):
            parse(words, tmp_path)
    assert fastmlp_commands(README), "no fastmlp command found in the README's code blocks"


def test_the_user_guide_grid_and_sweep_files_load(tmp_path):
    from fastmlp.grids.experiments import load_grid
    from fastmlp.grids.sweep import load_sweep

    toml = blocks(USER_GUIDE, ("toml",))
    grid = next(b for b in toml if "[[experiment]]" in b)
    sweep = next(b for b in toml if "[space]" in b)
    halving = next(b for b in toml if "[halving]" in b)
    for body in toml:
        tomllib.loads(body)
    (tmp_path / "grid.toml").write_text(grid)
    (tmp_path / "sweep.toml").write_text(sweep)
    (tmp_path / "halving.toml").write_text(sweep + halving)
    assert [e.name for e in load_grid(tmp_path / "grid.toml").experiments] == ["deep"]
    assert len(load_sweep(tmp_path / "sweep.toml").points) == 3 * 2 * 3
    assert load_sweep(tmp_path / "halving.toml").halving.rungs[-1] == 10


def headings(path):
    """The anchors GitHub makes of a Markdown page's headings."""
    text = FENCE.sub("", path.read_text())
    anchors = set()
    for title in re.findall(r"^#{1,6} +(.+?) *$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def relative_links(path):
    text = FENCE.sub("", path.read_text())
    return [target for target in LINK.findall(text) if not EXTERNAL.match(target)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_leads_somewhere(page):
    broken = []
    for target in relative_links(page):
        name, _, anchor = target.partition("#")
        destination = (page.parent / name) if name else page
        if not destination.exists():
            broken.append(f"{target}: no such file")
        elif anchor and destination.suffix == ".md" and anchor not in headings(destination):
            broken.append(f"{target}: no such heading in {name or page.name}")
    assert broken == []
