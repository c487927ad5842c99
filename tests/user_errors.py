"""The check every CLI error test shares: a user mistake is exit code 2 and one line, never a traceback."""

from __future__ import annotations

from genlab.cli import main


def user_error(capsys, *args) -> str:
    """Run the CLI in-process: a user mistake must be exit code 2 and one line, never a traceback."""
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("genlab: error: ") and "\n" not in err and "Traceback" not in err, err
    return err
