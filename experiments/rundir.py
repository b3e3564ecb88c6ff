"""The run directory's safety rules: safe run ids, an exclusive lock, atomic writes, trusted results only.

``dynamic-mtl run``, ``study``, ``ttc`` and ``pretrain`` make their run directories here. A run directory
(``<results>/<dataset>/<run-id>``, :func:`run_directory`; the id given or a timestamp, :func:`new_run_id`;
``pretrain``'s is the ``--out`` folder itself) is created and locked by :func:`open_run_dir` and written by
one process at a time (``.lock`` holds its pid while it runs and is removed at the end); a directory that
already holds files (:func:`holds_files`) is refused unless the run is resumed; every file is written
under a unique temporary name and renamed into place (:func:`atomic_write`, :func:`atomic_save`), so a
kill or a full disk leaves either the previous file or the new one, never half of one; a per-fold JSON
that still cannot be parsed (written by an older version, edited by hand) is named and recomputed, never
trusted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

#: a run id: letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit; ``dynamic-mtl study``
#: nests its seeds' runs as ``<study-id>/seed<k>`` (at most 3 such names joined by ``/``)
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}(/[A-Za-z0-9][A-Za-z0-9._-]{0,99}){0,2}")

#: config fields a ``--resume`` may change: where things are, not what is computed
RESUMABLE_FIELDS = ("run_id", "results_dir", "data_dir", "data_root")

LOCK_NAME = ".lock"


class RunError(Exception):
    """A run that must not start or continue; the message is one line for the user."""


class RunLocked(RunError):
    """Another live process holds the run directory."""


def check_run_id(run_id: str) -> str:
    """``run_id`` if it names a directory inside the results folder safely, else :class:`RunError`."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or ".." in run_id:
        raise RunError(
            f"--run-id {run_id!r} is not a safe name: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no '..', no leading '/')"
        )
    return run_id


def new_run_id(suffix: str | None = None) -> str:
    """A run id from the current time, ``20250101-120000`` (``20250101-120000-<suffix>`` with a suffix)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{suffix}" if suffix else stamp


def run_directory(results_dir: str | Path, dataset: str, run_id: str) -> Path:
    """Where a run lives: ``results_dir/dataset/run_id`` (the run id checked by :func:`check_run_id`)."""
    return Path(results_dir) / dataset / check_run_id(run_id)


def holds_files(run_dir: Path) -> bool:
    """Whether ``run_dir`` exists and holds anything besides its lock (a run that must not be overwritten)."""
    run_dir = Path(run_dir)
    return run_dir.is_dir() and any(entry.name != LOCK_NAME for entry in run_dir.iterdir())


def check_resume(
    saved: dict,
    current: dict,
    run_dir: Path,
    same_settings: str,
    resumable: tuple[str, ...] = RESUMABLE_FIELDS,
    other: str = "a new --run-id",
) -> None:
    """Refuse a ``--resume`` whose settings differ from the saved run's in any field not in ``resumable``
    (result-affecting). ``same_settings``: the command that resumes with the saved settings (the one the
    run printed at its start); ``other``: what else the user can choose."""
    changed = [k for k in sorted(set(saved) | set(current)) if k not in resumable and saved.get(k) != current.get(k)]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise RunError(
            f"--resume with settings that differ from the run in {run_dir}: {detail}. Use the same "
            f"settings ({same_settings}) or {other}"
        )


# ---------------------------------------------------------------------------------------- writes
def temporary_name(path: Path) -> Path:
    """A name beside ``path`` that no other process or call uses (hidden, ends in ``.tmp``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def atomic_write(path: Path, write: Callable) -> None:
    """``write(handle)`` into a unique temporary file, flushed to disk, then renamed to ``path``."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_save(path: Path, save: Callable[[Path], object]) -> None:
    """``save(name)`` for writers that take a file name (a Keras model, a config, a copy): the name is
    unique, beside ``path`` and ends in ``path``'s suffix (Keras needs ``.keras``); then renamed to ``path``."""
    path = Path(path)
    tmp = temporary_name(path).with_suffix(path.suffix)
    try:
        save(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2))


def read_result(path: Path, warn: Callable[[str], None] | None = None) -> dict | None:
    """A finished (method, fold)'s JSON, or None when it is absent or unreadable (then ``warn`` names it)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "method" not in data or "fold" not in data:
            raise ValueError("not a per-fold result")
    except (ValueError, OSError, UnicodeDecodeError) as err:
        (warn or _stderr)(
            f"[dynamic-mtl] {path} is unreadable ({type(err).__name__}: {err}); "
            "not trusted: recomputing that (method, fold)"
        )
        return None
    return data


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ lock
@contextlib.contextmanager
def open_run_dir(run_dir: Path) -> Iterator[Path]:
    """Create ``run_dir`` (and its parents) if needed and hold its lock (:func:`run_lock`) for the block."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_lock(run_dir):
        yield run_dir


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[Path]:
    """Hold ``run_dir/.lock`` exclusively for the block; a second holder gets :class:`RunLocked`
    naming the holder's pid. The lock is an OS file lock, so a killed holder's lock is free at once
    (a stale ``.lock`` naming a dead pid is taken over); the file is removed when the block ends."""
    path = Path(run_dir) / LOCK_NAME
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): a pid file, taken over when its pid is dead
        with _pid_file_lock(path):
            yield path
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            content = os.pread(fd, 200, 0)
            os.close(fd)
            raise RunLocked(_locked_message(run_dir, path, content)) from None
        if _same_file(fd, path):
            break
        os.close(fd)  # the previous holder removed this file after we opened it: lock the current one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)  # removed while still held, so no one locks a file that is gone
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _locked_message(run_dir: Path, path: Path, content: bytes) -> str:
    holder = content.decode(errors="replace").split()
    who = f"pid {holder[0]}" + (f" on {holder[1]}" if len(holder) > 1 else "") if holder else "another process"
    return f"{run_dir} is in use by {who} (lock {path}): wait for that run to end, or choose another --run-id"


@contextlib.contextmanager
def _pid_file_lock(path: Path) -> Iterator[None]:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            content = path.read_bytes()
            pid = int(content.split()[0]) if content.split() and content.split()[0].isdigit() else None
            if pid is not None and _alive(pid):
                raise RunLocked(_locked_message(path.parent, path, content)) from None
            path.unlink(missing_ok=True)  # stale: its process is gone
    else:
        raise RunLocked(_locked_message(path.parent, path, b""))
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
