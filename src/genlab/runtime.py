"""Device and thread choices, made on purpose and in one place.

torch is imported inside the functions: the command line checks the OpenMP wait policy before
torch loads, since OpenMP reads it once, when the library starts.
"""

from __future__ import annotations

import os
import platform
import time

from genlab.errors import GenlabError


def cores_busy_now(seconds: float = 0.05) -> float:
    """The share of CPU time other processes used over a short look at /proc/stat (0 where unknown)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def wait_passively() -> None:
    """OpenMP threads wait passively, unless the user chose a policy: for a server, whose cores are shared with
    its clients and other work at any moment (spinning threads were measured to lose most of their speed to one
    busy core). Like wait_passively_when_busy, it must run before torch loads."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def wait_passively_when_busy() -> None:
    """Make OpenMP threads wait passively when other work keeps the cores busy right now.

    OpenMP threads that spin while waiting for work were measured to slow training steps 3-8x on a
    busy 2-core machine, while on an idle one passive waiting made small steps ~40% slower. The load
    average lags by a minute and counts our own last run, so this looks at the cores now. It must run
    before torch loads, and leaves a policy the user set alone.
    """
    if "OMP_WAIT_POLICY" not in os.environ and cores_busy_now() > 0.5:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def env_int(name: str, default: int | None, meaning: str, example: int) -> int | None:
    """A positive integer from the environment variable `name` (unset or empty: `default`).

    Anything else is one line naming the variable, what it means and a value that works: an environment
    variable is set far from where it fails, so the message must say which one."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise GenlabError(
            f"environment variable {name}={os.environ[name]!r} must be a positive integer ({meaning}); "
            f"set it to e.g. {example}, or unset it"
        )
    return value


def setup_threads() -> None:
    """Use as many threads as cores torch sees, unless the user pinned a number."""
    import torch

    threads = env_int("GENLAB_THREADS", None, "the number of CPU threads to train and sample with",
                      os.cpu_count() or 1)
    if threads is not None:
        torch.set_num_threads(threads)


def pick_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GenlabError(f"--device {name} was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def cpu_name() -> str:
    """The processor's model name, as Linux reports it (platform.processor() elsewhere)."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
