"""examples/two_laptops: the script runs both laptops in two network namespaces (root),
and every ``rspfed`` command the README gives exists with the options it uses."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rspfed.cli import main
from tests.paths import REPO
from tests.transport.netns import netns_unavailable_reason

FOLDER = REPO / "examples" / "two_laptops"


def _commands(text: str) -> list[list[str]]:
    """The ``rspfed ...`` command lines of the README's shell blocks (continuations joined)."""
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    found = []
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line.startswith("rspfed "):
            found.append(shlex.split(line)[1:])
    return found


def test_readme_commands_exist_with_their_options() -> None:
    commands = _commands((FOLDER / "README.md").read_text())
    assert len(commands) >= 15
    runner = CliRunner()
    for argv in commands:
        path: list[str] = []
        command: click.Command = main
        for arg in argv:  # the subcommand path: names of nested groups' commands
            if not isinstance(command, click.Group):
                break
            sub = command.get_command(click.Context(command), arg)
            if sub is None:
                break
            path.append(arg)
            command = sub
        assert not isinstance(command, click.Group), f"rspfed {' '.join(argv)}: no such command"
        result = runner.invoke(main, [*path, "--help"])
        assert result.exit_code == 0, f"rspfed {' '.join(path)}: {result.output}"
        for option in (a.split("=", 1)[0] for a in argv if a.startswith("--")):
            assert option in result.output, f"rspfed {' '.join(path)} has no {option}"


@pytest.mark.root
@pytest.mark.slow
def test_script_runs_both_laptops_in_two_namespaces(tmp_path: Path) -> None:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    done = subprocess.run(
        ["bash", str(FOLDER / "run_in_namespaces.sh"), str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHON": sys.executable, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    assert "paired by short code: secure channel up" in out
    assert "the old phone is refused by the network" in out
    assert "two_laptops: OK" in out
