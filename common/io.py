"""Atomic file writes and the project's data root.

Every artefact the suite makes (episodes, checkpoints, configs, tables) is written through these
helpers: the bytes go to a temporary file in the same directory, are flushed and fsync'ed, then
renamed over the target. A crash or kill therefore leaves either the old file or the new one, never a
half-written one, which is what lets datasets and runs resume by simply checking what exists.

``mkstemp`` creates its file 0600 (private, so no one can read a half-written temp file under a guessable
name); the finished file gets the mode a plain ``open()`` would have given it, ``0666 & ~umask`` (0644 under
the usual umask 022), so results and datasets stay readable by the group and others who share them.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

DATA_ROOT_ENV = "VRB_DATA_ROOT"


def data_root(override: str | os.PathLike | None = None) -> Path:
    """Where datasets and pretrained models live.

    Order: an explicit ``override`` (a command-line flag), then ``$VRB_DATA_ROOT``, then ``./data``
    under the current directory (the project checkout when run as documented). ``$VRB_DATA_ROOT`` set but
    empty is a ``ValueError`` naming it: taken as unset it would quietly mean ``./data``, and taken as a
    path, the current directory; either way the models and datasets of a root the user meant to name.
    """
    if override is not None:
        return Path(override)
    env = os.environ.get(DATA_ROOT_ENV)
    if env is None:
        return Path.cwd() / "data"
    if not env.strip():
        raise ValueError(
            f"${DATA_ROOT_ENV} is set but empty: set it to your data directory, unset it to use ./data, "
            "or pass --data-root DIR"
        )
    return Path(env)


def check_dir(path: str | os.PathLike, flag: str, writable: bool = True) -> Path:
    """Refuse, in one line naming the path, a directory flag (``--results``, ``--data-root``) that cannot work.

    Checked before any work starts: a path that is (or lies under) a file, or (``writable``) whose nearest
    existing directory cannot be written, would otherwise fail every run one by one, deep in a traceback.
    The directory itself is not created here. Returns the path.
    """
    p = Path(path)
    existing = p
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == p else f"lies under {existing}, which is a file"
        raise ValueError(f"{flag} {p} {where}, not a directory; pass a directory")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == p else f" (its parent {existing} is)"
        raise ValueError(f"{flag} {p} is not writable{where}; pass a directory you can write to")
    return p


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process's umask, read without changing it where the OS allows.

    ``os.umask`` can only be read by setting it, which for an instant changes the mode of files other threads
    create; Linux (>= 4.7) reports it in ``/proc/self/status``, so that is read first. The set-and-restore
    fallback holds a lock so at least two callers here never interleave.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], Any]) -> Path:
    """Call ``write(fileobj)`` on a temp file next to ``path``, then rename it into place.

    The file ends up with mode ``0666 & ~umask``, as ``open()`` would create it (not mkstemp's 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~current_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_save_npz(path: str | os.PathLike, compressed: bool = True, **arrays: Any) -> Path:
    saver = np.savez_compressed if compressed else np.savez
    return atomic_write(path, lambda f: saver(f, **arrays))


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    import torch  # local import: common stays torch-free at import

    return atomic_write(path, lambda f: torch.save(obj, f))


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def as_written(config: Any) -> Any:
    """A run config as ``config.json`` holds it (Paths as strings, NumPy scalars as numbers, mappings as
    dicts), so a planned config compares with a recorded one."""
    return json.loads(json.dumps(config, default=_json_default))


def flat_keys(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys (``agent.batch_size``): how run configs are compared
    (``suites.train.check_config``, ``analysis.consistency``); an empty dict stays a value."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out
