"""Faults of the machine a command runs on, not of what it was asked to do: the GL back end MuJoCo
renders with (``MUJOCO_GL``) and the disk space runs write to.

Why a module of its own: such a failure arrives as some library's raw error (MuJoCo's ``FatalError``,
PyOpenGL's ``ImportError``, torch's ``unexpected pos``) that reads like a bug of the run, and a launcher that
cannot tell it apart says "a re-run will not fix this", though fixing the machine and re-running resumes
every run. So the GL setting is checked before MuJoCo is imported (``check_gl``, called by the ``tasks``
package), and a failure is recognised as an ``EnvironmentFault`` whose one line says what to change
(``environment_fault``). Nothing here imports MuJoCo, torch or any other stage of the project.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, MutableMapping, Sequence

#: what every environment fault ends with: the machine is fixed, then the same command resumes
RERUN = "then re-run to resume"


class EnvironmentFault(RuntimeError):
    """The machine lacks what the command needs (a working GL back end, disk space): its message says what to
    change; fixing that and re-running the same command resumes the runs from their last checkpoint."""


# ------------------------------------------------------------------------------------ GL back ends
@dataclass(frozen=True)
class GLBackend:
    """A ``MUJOCO_GL`` value the suite renders with: the Debian packages it needs (setup.sh installs the
    off-screen ones), the shared libraries of which one must load (PyOpenGL loads it when MuJoCo is
    imported; a missing one would fail that import in a traceback) and whether it needs an X display."""

    packages: str
    libraries: tuple[str, ...] = ()
    needs_display: bool = False


GL_BACKENDS: Mapping[str, GLBackend] = {
    "egl": GLBackend("libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0", ("libEGL.so.1", "libEGL.so")),
    "osmesa": GLBackend("libosmesa6", ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so")),
    "glfw": GLBackend("libgl1", needs_display=True),
}
DEFAULT_GL = "egl"


def _headless_choices(other_than: str = "") -> str:
    """The off-screen back ends (but ``other_than``) and the packages each needs: the advice of a GL fault."""
    options = [
        f"MUJOCO_GL={name} (Debian: {b.packages})"
        for name, b in GL_BACKENDS.items()
        if not b.needs_display and name != other_than
    ]
    return f"{' or '.join(options)}, installed by setup.sh"


def _valid() -> str:
    """The back ends by name, those that need a display marked so."""
    return ", ".join(name + (" (needs a display)" if b.needs_display else "") for name, b in GL_BACKENDS.items())


def _loads(libraries: Sequence[str]) -> bool:
    """Whether one of ``libraries`` can be loaded (what PyOpenGL will load, so loading it costs nothing extra)."""
    for name in libraries:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return not libraries


def check_gl(environ: MutableMapping[str, str] = os.environ) -> str:
    """Settle ``MUJOCO_GL`` before MuJoCo is imported, or raise ``EnvironmentFault`` saying what to set.

    Unset or empty means ``egl``; the value is normalised as MuJoCo reads it (case, spaces). Refused up
    front, since each would otherwise fail in a library traceback (or, for a display, in every run): a
    value MuJoCo does not render with here, ``glfw`` without ``DISPLAY``, a ``PYOPENGL_PLATFORM`` that
    disagrees (PyOpenGL and MuJoCo must use one platform) and a back end whose library is not installed.
    Sets ``PYOPENGL_PLATFORM`` for the off-screen back ends. Returns the back end's name."""
    given = environ.get("MUJOCO_GL", "")
    name = given.strip().lower() or DEFAULT_GL
    backend = GL_BACKENDS.get(name)
    if backend is None:
        raise EnvironmentFault(
            f"MUJOCO_GL={given} is not a GL back end the suite renders with; valid: {_valid()}; off screen, use "
            f"{_headless_choices()}"
        )
    if backend.needs_display and not environ.get("DISPLAY"):
        raise EnvironmentFault(
            f"MUJOCO_GL={name} needs an X display and DISPLAY is not set; without one, use {_headless_choices()}"
        )
    platform = environ.get("PYOPENGL_PLATFORM", "")
    if not backend.needs_display and platform and platform.strip().lower() != name:
        raise EnvironmentFault(
            f"PYOPENGL_PLATFORM={platform} disagrees with MUJOCO_GL={name} (PyOpenGL and MuJoCo must use one "
            f"platform); unset PYOPENGL_PLATFORM or set it to {name}"
        )
    if not _loads(backend.libraries):
        raise EnvironmentFault(
            f"MUJOCO_GL={name} needs {backend.libraries[0]}, which is not installed: install {backend.packages} "
            f"(setup.sh does), or use {_headless_choices(other_than=name)}"
        )
    environ["MUJOCO_GL"] = name
    if not backend.needs_display:
        environ["PYOPENGL_PLATFORM"] = name
    return name


# ------------------------------------------------------------------------------------ failures
def _chain(e: BaseException) -> Iterator[BaseException]:
    """``e`` and the exceptions it was raised from or while handling (``__cause__``, ``__context__``): a
    full disk often surfaces as a library's own error raised while handling the ``OSError``."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _mount_point(path: Path) -> Path:
    """The mount point of the file system ``path`` (or its nearest existing parent) lies on: the "device"."""
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def _free_text(where: str | os.PathLike | None) -> str:
    """``<mount point> (N MB free)`` of ``where``, or a plain "the disk" when no place is known."""
    if where is None:
        return "the disk"
    mount = _mount_point(Path(where))
    try:
        free = shutil.disk_usage(mount).free
    except OSError:
        return str(mount)
    mb = free / 2**20
    return f"{mount} ({mb:.1f} MB free)" if mb < 10 else f"{mount} ({mb:,.0f} MB free)"


#: torch's C++ writer reports a failed write without the errno: "unexpected pos N vs M" (the file
#: object wrote less than it was given) or "PytorchStreamWriter failed writing file ..."
TORCH_WRITE_ERROR = re.compile(r"unexpected pos \d+ vs \d+|PytorchStreamWriter failed")


def _disk_full(chain: Sequence[BaseException], where: str | os.PathLike | None) -> str | None:
    """A full disk: ``ENOSPC`` anywhere in the chain (its file's device), or torch's write error without an
    errno (an exception that lost its chain on the way to the launcher), judged by the free space left."""
    full = next((x for x in chain if isinstance(x, OSError) and x.errno == errno.ENOSPC), None)
    if full is not None:
        place = full.filename if isinstance(full.filename, (str, os.PathLike)) else where
        return f"no space left on {_free_text(place)}; free space, {RERUN}"
    written = next((x for x in chain if TORCH_WRITE_ERROR.search(str(x))), None)
    if written is None:
        return None
    return (
        f"writing a file failed ({written}) with {_free_text(where)}: a full disk or quota is the usual "
        f"cause; free space, {RERUN}"
    )


#: MuJoCo's modules that make GL contexts: an error raised in one of them is a GL fault
_MUJOCO_GL_MODULES = {"renderer.py", "gl_context.py", "egl", "osmesa", "glfw", "cgl"}
#: libraries whose every exception is a GL fault
_GL_LIBRARIES = {"OpenGL", "glfw"}


def _raised_in_gl(e: BaseException) -> bool:
    """Whether ``e`` came from the GL stack: PyOpenGL or glfw, or MuJoCo's context code (its
    ``FatalError`` "an OpenGL platform library has not been loaded" is raised in ``mujoco/renderer.py``;
    one from a simulation step is not a GL fault)."""
    if type(e).__module__.partition(".")[0] in _GL_LIBRARIES:
        return True
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return False
    parts = Path(tb.tb_frame.f_code.co_filename).parts
    return any(a == "mujoco" and b in _MUJOCO_GL_MODULES for a, b in zip(parts, parts[1:]))


def _gl_failure(chain: Sequence[BaseException], where: str | os.PathLike | None) -> str | None:
    """A GL context that could not be made: the back end's library, device or display is missing."""
    failed = next((x for x in chain if _raised_in_gl(x)), None)
    if failed is None:
        return None
    message = " ".join(str(failed).split())
    return (
        f"rendering failed (MUJOCO_GL={os.environ.get('MUJOCO_GL', '')}): {type(failed).__name__}: {message}; "
        f"install or choose another back end: {_headless_choices()}; {RERUN}"
    )


#: each detector reads an exception chain and returns the fault's line, or None when it is not its fault
DETECTORS: tuple[Callable[[Sequence[BaseException], str | os.PathLike | None], str | None], ...] = (
    _disk_full,
    _gl_failure,
)


def environment_fault(e: BaseException, where: str | os.PathLike | None = None) -> EnvironmentFault | None:
    """``e`` as an ``EnvironmentFault`` when the machine, not the command, is at fault (see ``DETECTORS``),
    else None. ``where``: the folder being written (a run's directory), whose device and free space a full
    disk's line names when the error does not carry its file. Call it where ``e`` was raised: an exception
    sent between processes loses its chain and traceback, and with them most of what tells a fault apart."""
    if isinstance(e, EnvironmentFault):
        return e
    chain = list(_chain(e))
    for detect in DETECTORS:
        line = detect(chain, where)
        if line is not None:
            return EnvironmentFault(line)
    return None
