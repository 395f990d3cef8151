"""Destinations of oplearn's outputs, checked before any work starts.

Every command that writes checks its destinations first: :func:`output_file` for a file
(a dataset, a CSV table), :func:`output_dir` for a folder (a run, a report). A destination
that cannot be written (a folder where a file is expected, a file where a folder is
expected or in the path above it, a folder without write permission) is refused in one line
(:class:`~oplearn.errors.OutputError`) before anything is computed or created. Whatever the
checks cannot foresee (a full disk, a file system that refuses the name) still ends as one line:
the command line turns any ``OSError`` into ``error: ...`` with :func:`os_error_message`.
The same checks serve as argparse types (:func:`oplearn.arguments.file_argument`, :func:`oplearn.arguments.dir_argument`).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from oplearn.errors import OutputError


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (``.`` for a relative path whose parts are all new)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _check_creatable(path: Path, option: str) -> None:
    """``path`` can be created: the nearest existing ancestor is a writable folder."""
    ancestor = _first_existing(path.parent)
    if not ancestor.is_dir():
        raise OutputError(f"{option} '{path}': '{ancestor}' is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{option} '{path}': no permission to write in '{ancestor}'")


def output_file(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a file destination: not a folder, and creatable (an existing file is allowed;
    whether it may be replaced is the caller's rule). Raises a one-line OutputError."""
    path = Path(path)
    if path.name in ("", ".", "..") or path.is_dir():
        raise OutputError(f"{option} '{path}' is a folder; give a file name inside it")
    if path.exists():
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
            raise OutputError(f"{option} '{path}': no permission to replace it")
        return path
    _check_creatable(path, option)
    return path


def output_dir(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a folder destination: an existing writable folder or a creatable one. Raises a
    one-line OutputError."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"{option} '{path}' is a file; give a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{option} '{path}': no permission to write in it")
        return path
    _check_creatable(path, option)
    return path


def os_error_message(err: OSError) -> str:
    """One line for an operating-system error: the path and the reason (``"'x.h5': Permission denied"``)."""
    reason = err.strerror or (os.strerror(err.errno) if err.errno else None)
    if reason is None:  # libraries (h5py) put everything in the message, over several lines
        reason = " ".join(str(err).split())[:200] or type(err).__name__
    if err.errno == errno.ENOSPC:
        reason += " (the disk is full)"
    return f"'{err.filename}': {reason}" if err.filename else reason
