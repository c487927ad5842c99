"""The command line: parses, calls genlab.api, prints. A user mistake is one line and exit code 2.

One module per verb group, each with its flags beside the function that runs it: train, sample, eval,
export (and demo). They import genlab.api and genlab.errors only, and never branch on a family's or a
modality's name: the run's sampler says which controls it takes and how its outputs are shown.

`main` is the one error boundary: a GenlabError (a user mistake) and an OSError (disk full, permission
denied, read-only file system, a missing path) become one line and exit code 2; any other exception is a
bug and keeps its traceback. GENLAB_DEBUG=1 shows the traceback of every error.
"""

from __future__ import annotations

import argparse
import difflib
import errno
import os
import sys
import traceback

from genlab.runtime import wait_passively_when_busy

wait_passively_when_busy()  # OpenMP reads its wait policy once, when torch loads: before any torch import

from genlab.cli import align, chat, evaluate, export, report, runs, safety, sample, serve, train  # noqa: E402
from genlab.errors import GenlabError  # noqa: E402

VERBS = (train, sample, chat, evaluate, export, runs, align, serve, safety, report)


class Parser(argparse.ArgumentParser):
    """argparse without silent abbreviations (`--temp` is not `--temperature`), and with a suggestion for a
    mistyped flag, taken from the flags of the verb it was given to."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            verb = self._subparsers._group_actions[0].choices.get(getattr(parsed, "command", None), self)
            flags = [f for action in verb._actions for f in action.option_strings if f.startswith("--")]
            for extra in extras:
                name = extra.split("=", 1)[0]
                if name.startswith("--"):
                    near = [f for f in flags if f.startswith(name)] or difflib.get_close_matches(name, flags, n=1)
                    if near:
                        verb.error(f"unrecognized argument {name}: did you mean {near[0]}?")
            verb.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="genlab", description="Train, sample and evaluate generative models.")
    parser.add_argument("-V", "--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for verb in VERBS:
        verb.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        debug = _debug()
    except GenlabError as e:
        print(f"genlab: error: {e}", file=sys.stderr)
        return 2
    try:
        code = args.handler(args, argv)  # a verb whose answer is a finding (inspect) returns its exit code
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", None)  # training stopped on a signal has saved its work and said so
        if signum is None:
            print("genlab: interrupted", file=sys.stderr)
        return 128 + (signum or 2)  # what a shell reports for a tool that the signal ended
    except BrokenPipeError:
        # the reader of our output went away (`genlab sample RUN | head -1`): nothing is wrong, nobody is
        # left to tell; stdout goes to /dev/null so that Python's flush at exit does not fail again
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass  # stdout is no file (captured in-process): there is nothing to flush at exit
        return 141  # what a shell reports for a tool that SIGPIPE ended
    except (GenlabError, OSError) as e:
        if debug:
            traceback.print_exc()
        line = str(e) if isinstance(e, GenlabError) else _os_error_line(e, args)
        print(f"genlab: error: {line}", file=sys.stderr)
        return 2
    return code if isinstance(code, int) else 0


def _debug() -> bool:
    """GENLAB_DEBUG=1: show the traceback of every error, user mistakes included (0, empty or unset: no)."""
    raw = os.environ.get("GENLAB_DEBUG", "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise GenlabError(f"environment variable GENLAB_DEBUG={os.environ['GENLAB_DEBUG']!r} must be 1 (show "
                      "tracebacks) or 0; set it to one of them, or unset it")


# what to do about the OS errors a user can meet ({elsewhere}: the verb's flag for where it writes); the OS's
# own words say what happened
_OS_FIXES = {
    errno.ENOSPC: "free some space there, or write elsewhere{elsewhere}, and run the command again",
    errno.EDQUOT: "free some space within your disk quota, or write elsewhere{elsewhere}, and run the command again",
    errno.EFBIG: "a file size limit (ulimit -f) or the file system's largest file was reached; raise the limit "
                 "or write elsewhere{elsewhere}",
    errno.EACCES: "write somewhere you may{elsewhere}, or fix the permissions of that path",
    errno.EPERM: "write somewhere you may{elsewhere}, or fix the permissions of that path",
    errno.EROFS: "write elsewhere{elsewhere}, or mount that file system read-write",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of that path is a file, not a folder; check the path",
    errno.EISDIR: "that path is a folder where a file was expected; check the path",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) and run the command again",
    errno.ENFILE: "too many open files on this machine; close some programs and run the command again",
    errno.EIO: "the disk reported an input/output error; check the device and run the command again",
}


def _os_error_line(e: OSError, args: argparse.Namespace) -> str:
    """An OSError as one line: the path, the OS's reason and what to do.

    A write to an open file (disk full mid-write) carries no file name; then the line names the folder the
    command was working on (--out, --resume, RUN), the nearest thing to where it happened that we know."""
    reason = e.strerror or (str(e).splitlines() or [type(e).__name__])[0]
    if e.filename is not None:
        where = _path(e.filename) + (f" -> {_path(e.filename2)}" if e.filename2 is not None else "")
        what = f"{where}: {reason}"
    else:
        folder = next((getattr(args, k) for k in ("out_dir", "out", "resume", "run") if getattr(args, k, None)),
                      None)
        what = f"{reason} (while working on {folder})" if folder else reason
    flag = " (-o/--out-dir)" if hasattr(args, "out_dir") else " (--out)" if hasattr(args, "out") else ""
    fix = _OS_FIXES.get(e.errno, "check the path and its permissions, then run the command again")
    return f"{what}; {fix.format(elsewhere=flag)}"


def _path(name: object) -> str:
    return os.fsdecode(name) if isinstance(name, str | bytes | os.PathLike) else str(name)  # an fd is an int


def _version() -> str:
    from genlab import __version__

    return f"genlab {__version__}"


if __name__ == "__main__":
    sys.exit(main())
