"""A regular install: the version comes from the package metadata, and a read-only copy of the
package laid out as a wheel installs it (the MNIST files in fastmlp/shipped) trains from any
directory with nothing writable but the temporary directory. CI (.ci/run) also builds the real
wheel and sdist and trains from the wheel installed in a fresh virtual environment."""
import os
import shutil
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from importlib import metadata
from pathlib import Path

import pytest

import fastmlp
from fastmlp.data import load as data

from .helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_the_version_is_the_package_metadata():
    assert fastmlp.__version__ == metadata.version("fastmlp")
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"fastmlp {fastmlp.__version__}"


def test_the_wheel_carries_the_license_with_the_mnist_attribution(tmp_path):
    """The LICENSE file (MIT, and the CC BY-SA 3.0 attribution of the MNIST files the package
    ships) is in the repository and in the wheel's metadata (pyproject's license-files). Built
    from a copy of the sources, without build isolation (no download), so the checkout keeps no
    build directory."""
    import zipfile

    text = (ROOT / "LICENSE").read_text()
    for words in ("MIT License", "CC BY-SA 3.0", "Yann LeCun", "Corinna Cortes",
                  "Christopher J.C. Burges"):
        assert words in text
    source = tmp_path / "src"
    for name in ("pyproject.toml", "LICENSE", "README.md", "MANIFEST.in"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "fastmlp", source / "fastmlp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    wheel, = (tmp_path / "dist").glob("fastmlp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(licence).decode() == text
        metadata_text = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata_text
    assert "License-File: LICENSE" in metadata_text


def test_the_shipped_mnist_files_are_found_without_any_setting(monkeypatch):
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    assert data.find_dataset_dir("mnist") == data.SHIPPED_DATA / "mnist"


@contextmanager
def read_only(directory):
    """`directory` bind-mounted read-only over itself (even root cannot write to it)."""
    for command in (["mount", "--bind", directory, directory],
                    ["mount", "-o", "remount,bind,ro", directory]):
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode:
            subprocess.run(["umount", directory], capture_output=True)
            pytest.skip(f"cannot make a read-only mount here: {proc.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", directory], check=True)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"),
                    reason="read-only bind mounts need root")
def test_a_read_only_install_with_a_read_only_home_trains(tmp_path):
    site = tmp_path / "site"
    # As a wheel lays it out: the package with its data (the shipped MNIST files) inside.
    shutil.copytree(ROOT / "fastmlp", site / "fastmlp",
                    ignore=shutil.ignore_patterns("__pycache__"))
    home, work, temp = tmp_path / "home", tmp_path / "work", tmp_path / "tmp"
    for d in (home, work, temp):
        d.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTMLP_DATA", "XDG_CACHE_HOME", "NUMBA_CACHE_DIR", "PYTHONPATH")}
    env.update(HOME=str(home), TMPDIR=str(temp))
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); import fastmlp; "
            "print(fastmlp.__file__); from fastmlp.cli import main; sys.exit(main())")
    with ExitStack() as stack:
        stack.enter_context(read_only(site))
        stack.enter_context(read_only(home))
        proc = subprocess.run([sys.executable, "-c", code, str(site), "train", "--layers", "10",
                               "--epochs", "1", "--batch-size", "4096", "--quiet"], cwd=work,
                              env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(str(site / "fastmlp"))  # that copy, not this checkout
    assert "val " in proc.stdout
    # numba could write neither beside the package nor in the home: the kernels went to TMPDIR.
    assert any(temp.glob("fastmlp-numba-cache-*/*/*.nbi"))
