"""Writing files so that nothing is ever half-written: used for masks, photos, checkpoints, JSON."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file next to `path`; on success fsync it and rename it over `path`.

    The rename is atomic on POSIX and Windows, so a reader sees the old file or the new one,
    never half of one. On any error (or Ctrl-C) the temp file is deleted and `path` is untouched.
    mode: "wb" or "w".
    """
    path = Path(path)
    temp_path = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp_path, mode.replace("w", "x")) as file:  # "x": never reuse an existing file
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_path, path)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (see `atomic_file`)."""
    with atomic_file(path, "wb") as file:
        file.write(data)
