"""The Makefile a newcomer starts with: `make help` lists every target, `make run` installs
only what running needs while `make test` adds the dev group, and scripts/find-python.sh
picks a Python Tapioca runs on, or says what to do."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_PYTHON = "No Python 3.11, 3.12 or 3.13 found"


def make(*args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_help_lists_every_target_once_with_what_it_does() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = re.findall(r"^([a-z][a-z0-9-]*):", makefile, re.MULTILINE)
    [phony] = re.findall(r"^\.PHONY: (.*)$", makefile, re.MULTILINE)
    assert sorted(phony.split()) == sorted(targets)
    lines = make("help").splitlines()
    listed = {}
    for line in lines:
        entry = re.fullmatch(r"make (\S+) +(\S.*)", line)
        assert entry, line
        listed[entry[1]] = entry[2]
    assert len(lines) == len(listed) == len(targets)
    assert sorted(listed) == sorted(targets)
    assert listed["run"].startswith("install, migrate and serve on http://127.0.0.1:8000")


def sync_commands(target: str) -> list[str]:
    """The `uv sync` commands `make TARGET` would run on a machine with nothing installed."""
    return [line for line in make("-n", "-B", target).splitlines() if " sync " in line]


def test_run_syncs_without_the_dev_group_and_test_with_it() -> None:
    [run] = sync_commands("run")
    assert "--no-dev" in run and "--group" not in run
    assert "--frozen" in run and "bash scripts/find-python.sh" in run
    for target in ("test", "lint", "test-e2e"):
        [dev] = sync_commands(target)
        assert "--group dev" in dev and "--no-dev" not in dev
        assert dev.replace("--group dev", "--no-dev") == run


def uv_binary() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local" / "bin" / "uv")
    assert Path(found).exists(), "make test installs uv first"
    return found


def find_python(tmp_path: Path, interpreters: dict[str, str], **env: str) -> tuple[int, str, str]:
    """Run scripts/find-python.sh in a project of its own (pyproject.toml, no .venv) with a
    PATH of only the given interpreters (name -> target) and uv."""
    project, bin_dir = tmp_path / "project", tmp_path / "bin"
    project.mkdir(parents=True)
    bin_dir.mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", project)
    os.symlink(uv_binary(), bin_dir / "uv")
    for name, target in interpreters.items():
        os.symlink(target, bin_dir / name)
    environ = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_PYTHON_INSTALL_DIR": str(tmp_path / "no-managed-pythons"),
        **env,
    }
    done = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "find-python.sh")],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def broken_shim(tmp_path: Path) -> str:
    """A version manager's shim for a version it does not have: it exists but cannot run."""
    shim = tmp_path / "shim"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.13: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    return str(shim)


def test_no_python_that_fits_is_one_message_saying_what_to_do(tmp_path: Path) -> None:
    code, out, err = find_python(tmp_path, {"python3.13": broken_shim(tmp_path)})
    assert (code, out) == (1, "")
    assert err.startswith(NO_PYTHON)
    assert "make run PYTHON=/path/to/python3.12" in err


# `uv python find`, and the search of PATH when uv finds none
@pytest.mark.parametrize("uv", ["uv", "/bin/false"])
def test_a_python_on_path_is_found_past_a_broken_shim(tmp_path: Path, uv: str) -> None:
    python = os.path.realpath(sys.executable)  # the suite's own: it fits requires-python
    interpreters = {"python3.13": broken_shim(tmp_path), "python3.11": python}
    code, out, err = find_python(tmp_path, interpreters, UV=uv)
    assert code == 0, err
    [found] = out.splitlines()
    assert Path(found).parent == tmp_path / "bin" or found == python
    version = subprocess.run(
        [found, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout == f"{tuple(sys.version_info[:2])}\n"


def test_python_named_by_the_user_is_taken_as_given(tmp_path: Path) -> None:
    code, out, _ = find_python(tmp_path, {}, PYTHON="/opt/python3.12/bin/python3")
    assert (code, out) == (0, "/opt/python3.12/bin/python3\n")
