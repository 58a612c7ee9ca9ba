"""Writing files so that nothing is half-written, and nothing of a learner's is overwritten unasked."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Write to a temporary file beside `path`, then fsync it and rename it over `path`.

    The rename is atomic, so a reader sees the old file or the new one, never half of one. On any
    error (or Ctrl-C) the temporary file is removed and `path` is untouched. mode: "wb" or "w".
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, mode.replace("w", "x")) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_file`)."""
    with atomic_file(path) as file:
        file.write(data)


def refuse_non_empty(folder: str | os.PathLike, overwrite: bool) -> None:
    """Raise FileExistsError for a folder that holds files, unless overwrite (the CLI's --overwrite)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file, not a folder: choose another output folder.")
    if not overwrite and folder.is_dir() and any(folder.iterdir()):
        raise FileExistsError(f"{folder} is not empty. Choose a new folder, or pass overwrite=True (--overwrite) "
                              "to write into it: files of the same name are replaced, other files are left alone.")
