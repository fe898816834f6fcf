"""`segtrack ...` run in the test process, as the CLI tests call it."""

from __future__ import annotations

from segtrack_core.cli import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `segtrack ARGV` (paths and numbers as text)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err
