"""The `tapioca` command as a newcomer meets it: its version, its help, and one clear line
when the database cannot be reached."""

from __future__ import annotations

import re
from importlib.metadata import version

import pytest

import tapioca
from support.procs import Launcher
from support.servers import free_port

pytestmark = pytest.mark.e2e

COMMANDS = [
    ["serve"],
    ["api"],
    ["worker"],
    ["migrate"],
    ["import"],
    ["sites", "create"],
    ["sites", "update"],
    ["sites", "list"],
    ["sites", "grant"],
    ["sites", "revoke"],
    ["users", "create"],
    ["users", "list"],
    ["users", "delete"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "revoke"],
    ["derive", "run"],
    ["derive", "rebuild"],
    ["orders", "connect"],
    ["batch", "run"],
    ["scheduler"],
    ["forecast"],
]
# the options that are settings, and the defaults of docs/configuration.md
SETTINGS = {
    ("serve", "--host ADDRESS"): "[env var: TAPIOCA_HOST; default: 127.0.0.1]",
    ("serve", "--port PORT"): "[env var: TAPIOCA_PORT; default: 8000]",
    ("api", "--host ADDRESS"): "[env var: TAPIOCA_HOST; default: 127.0.0.1]",
    ("api", "--port PORT"): "[env var: TAPIOCA_PORT; default: 8000]",
    ("api", "--workers N"): "[env var: TAPIOCA_API_WORKERS; default: 1]",
}


def help_entries(text: str, section: str) -> dict[str, str]:
    """The entries of one section of a help text (``Options:``): name -> its help, as one
    line with single spaces."""
    entries: dict[str, str] = {}
    lines = text.split(f"\n{section}:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    for line in lines:
        if re.match(r"  \S", line):  # a new entry; a wrapped one goes on further indented
            current, _, line = line.strip().partition("  ")
            entries[current] = ""
        entries[current] = " ".join([*entries[current].split(), *line.split()])
    return entries


def test_version(launcher: Launcher) -> None:
    done = launcher.run(["--version"], {})
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"tapioca {tapioca.__version__}\n",
        "",
    )
    assert version("tapioca") == tapioca.__version__


def test_the_top_level_help_names_every_command(launcher: Launcher) -> None:
    done = launcher.run(["--help"], {})
    assert done.returncode == 0
    commands = help_entries(done.stdout, "Commands")
    assert sorted(commands) == sorted(
        [
            "serve",
            "api",
            "worker",
            "migrate",
            "import",
            "sites",
            "users",
            "keys",
            "derive",
            "orders",
            "batch",
            "scheduler",
            "forecast",
        ]
    )
    assert all(commands.values())
    assert help_entries(done.stdout, "Options") == {
        "--version": "Print the version and exit.",
        "--help": "Show this message and exit.",
    }


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_option_has_a_help_and_shows_its_default(
    launcher: Launcher, command: list[str]
) -> None:
    done = launcher.run([*command, "--help"], {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: tapioca {' '.join(command)} [OPTIONS]")
    options = help_entries(done.stdout, "Options")
    assert options.pop("--help") == "Show this message and exit."
    for name, text in options.items():
        assert re.match(r"[A-Z][^\[]+\. \[", text), f"{name}: no help text: {text!r}"
        # a default, or none to have: the option is required
        assert re.search(r"(default: [^\]]+|required)\]$", text), f"{name}: no default: {text!r}"
        assert "<" not in name, f"{name}: a placeholder for its value"
        expected = SETTINGS.get((command[0], name))
        if expected is not None:
            assert text.endswith(expected), f"{name}: {text!r}"
        else:
            assert "env var" not in text
    named = {name for (cmd, name) in SETTINGS if cmd == command[0]}
    assert named <= set(options)


def test_an_option_read_from_its_environment_variable(launcher: Launcher) -> None:
    done = launcher.run(["serve"], {"TAPIOCA_PORT": "eighty"})
    assert done.returncode == 2
    assert "Invalid value for '--port' (env var: 'TAPIOCA_PORT')" in done.stderr


def test_an_invalid_setting_is_one_line_naming_it(launcher: Launcher) -> None:
    done = launcher.run(["migrate"], {"TAPIOCA_MAX_EVENTS_PER_REQUEST": "0"})
    assert done.returncode == 2
    assert done.stderr == (
        "invalid setting TAPIOCA_MAX_EVENTS_PER_REQUEST: "
        "Input should be greater than or equal to 1\n"
    )


@pytest.mark.parametrize("command", [["migrate"], ["sites", "list"]], ids=" ".join)
def test_an_unreachable_database_is_one_line_naming_it(
    launcher: Launcher, command: list[str]
) -> None:
    port = free_port()  # nothing listens there
    env = {"TAPIOCA_DATABASE_URL": f"postgresql://tapioca:pa55word@127.0.0.1:{port}/tapioca"}
    done = launcher.run(command, env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"cannot reach the database at 127.0.0.1:{port} (ConnectionRefusedError): "
        "is PostgreSQL running there, and is TAPIOCA_DATABASE_URL right?\n"
    )
