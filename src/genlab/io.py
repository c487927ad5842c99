"""Atomic, pickle-free persistence: a crash at any moment leaves the previous file intact."""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from genlab.errors import GenlabError


def cache_root() -> Path:
    """Where prepared data (token caches) and measurements live: $GENLAB_CACHE, else the XDG cache."""
    root = os.environ.get("GENLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "genlab"
    )
    return Path(root)


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_path(folder: Path, name: str) -> Path:
    return folder / f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"


def _create_temp_file(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty file beside `name`, created as open() creates files: 0666 less the umask (and any default
    ACL), so runs can be shared with a group. mkstemp's fixed 0600 made model.safetensors private."""
    for _ in range(100):
        tmp = _temp_path(folder, name)
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder / name))


def make_temp_dir(folder: Path, name: str) -> Path:
    """A new, empty folder beside `name`, created as mkdir creates folders: 0777 less the umask (mkdtemp's is
    0700, which made checkpoint folders private)."""
    for _ in range(100):
        tmp = _temp_path(folder, name)
        try:
            tmp.mkdir(0o777)
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(folder / name))


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder entry under `root` to disk: a rename must never publish unwritten data."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


@contextmanager
def atomic_directory(folder: Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside `folder`; when the block ends without error, fsync what it holds
    and rename it into place. If another process published `folder` first, its copy stays and ours is dropped;
    any other failure (disk full, permissions) is a GenlabError naming the folder."""
    hint = "free some space or fix its permissions"
    if cache_root() in folder.parents:
        hint += ", or point GENLAB_CACHE at another folder"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = make_temp_dir(folder.parent, folder.name)
    except OSError as e:
        raise GenlabError(f"cannot write into {folder.parent} ({_reason(e)}); {hint}") from None
    try:
        try:
            yield tmp  # the caller's writes into tmp fail here too (disk full mid-write)
            _fsync_tree(tmp)
        except OSError as e:
            raise GenlabError(f"cannot write {folder} ({_reason(e)}); {hint}") from None
        try:
            os.replace(tmp, folder)
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY) and folder.is_dir():
                return  # another process published it first: its copy is just as good (the finally drops ours)
            raise GenlabError(f"cannot publish {folder} ({_reason(e)}); {hint}") from None
        fsync_dir(folder.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Save tensors as safetensors, atomically. Shared storage (tied weights) is saved once per name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp_file(path.parent, path.name)
    mode = os.fstat(fd).st_mode & 0o777  # what the umask (and any default ACL) gives a new file here
    os.close(fd)
    try:
        flat = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        save_file(flat, str(tmp), metadata={k: str(v) for k, v in (metadata or {}).items()})
        os.chmod(tmp, mode)  # safetensors makes its file anew, 0600 whatever the umask
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a safetensors file; a truncated or corrupt file is a clear user error."""
    path = Path(path)
    if not path.is_file():
        raise GenlabError(f"{path} does not exist; was the run trained to its first checkpoint?")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise GenlabError(
            f"{path} is corrupt or truncated ({str(e).splitlines()[0][:120]}); "
            "restore it or retrain / resume from an earlier checkpoint"
        ) from None


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GenlabError(f"{path} does not exist") from None
    except json.JSONDecodeError as e:
        raise GenlabError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}); fix or restore the file") from None


# ---------------------------------------------------------------------------------------------------
# One writer per run folder

_LOCKS: dict[str, FileLock] = {}  # one FileLock per lock file in this process, so that holds nest
_LOCKS_GUARD = threading.Lock()


@contextmanager
def run_lock(run_dir: str | os.PathLike, *, purpose: str, hint: str, create: bool = False) -> Iterator[None]:
    """Hold RUN/.lock while this process writes the run folder; a second writer is refused at once.

    The refusal names the holder (pid, host, what it does; recorded in RUN/.lock.owner) and ends with `hint`,
    what to do instead. The lock is the OS's (flock): it dies with its process, so a killed run never blocks the
    next one. It nests within a thread: the card writer that train() and evaluate() call passes through the
    lock its own caller holds; another thread of this process is refused like another process. A folder that
    does not exist has nothing to guard unless `create` (a new run) makes it: the caller's own check reports it,
    and a folder made here is removed again if the block fails before writing anything into it (a typo in the
    data leaves no empty run behind). Readers (sample, load, serve) take no lock: every write they see is atomic.
    """
    run_dir = Path(run_dir)
    made = False
    if not run_dir.is_dir():
        if not create:
            yield
            return
        try:
            run_dir.mkdir(parents=True)
            made = True
        except FileExistsError:
            pass  # made by another process just now: the lock decides between us
        except OSError as e:
            raise GenlabError(f"cannot create {run_dir} ({_reason(e)}); choose another --out") from None
    path = os.path.realpath(run_dir / ".lock")
    with _LOCKS_GUARD:
        lock = _LOCKS.get(path)
        if lock is None:
            lock = _LOCKS[path] = FileLock(path)  # thread-local holds: nesting is per thread
    if lock.is_locked:  # this thread holds it already: e.g. the card writer inside train()
        yield
        return
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise GenlabError(f"{run_dir} is in use by {_lock_holder(run_dir)}; {hint}") from None
    except OSError as e:
        raise GenlabError(f"cannot lock {run_dir} ({_reason(e)}); writing to a run needs write access to its "
                          "folder: copy the run somewhere writable") from None
    owner = run_dir / ".lock.owner"
    try:
        atomic_write_json(owner, {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
                                  "since": time.strftime("%Y-%m-%d %H:%M:%S")})
        yield
    except BaseException:
        if made and {p.name for p in run_dir.iterdir()} <= {".lock", ".lock.owner"}:
            # removed while still held; filelock checks that a file it locks is still linked: no one takes this one
            with suppress(OSError):
                owner.unlink(missing_ok=True)
                Path(path).unlink()
                run_dir.rmdir()
        raise
    finally:
        with suppress(OSError):
            owner.unlink(missing_ok=True)  # before the release: never a record that a successor just wrote
        lock.release()


def _lock_holder(run_dir: Path) -> str:
    """Who holds RUN/.lock, from RUN/.lock.owner. A holder writes the record just after it takes the lock, so a
    missing record, or one naming a process that is gone (left by a killed holder), is read again briefly."""
    here = socket.gethostname()
    for _ in range(20):
        try:
            record = json.loads((run_dir / ".lock.owner").read_text(encoding="utf-8"))
            pid, host = int(record["pid"]), str(record["host"])
            doing = f"genlab {record['purpose']} since {record['since']}"
        except (OSError, ValueError, KeyError, TypeError):
            time.sleep(0.05)
            continue
        if host != here:
            return f"process {pid} on host {host} ({doing})"
        if _alive(pid):
            return f"process {pid} on this host ({doing})"
        time.sleep(0.05)
    return "another process"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
