"""Re-run lesson notebooks top to bottom and save them with their outputs (for instructors).

    python tools/run_notebooks.py                  # every notebooks/*.ipynb
    python tools/run_notebooks.py notebooks/03_unet.ipynb

Each notebook runs in a fresh kernel from the notebooks/ folder, exactly as a learner's
"Restart kernel and run all cells" would. The time each one took is printed, because every
lesson must run in about two minutes on a 2-core CPU. Commit the notebooks afterwards: the
saved outputs are what a reader on GitHub sees, and what nbval compares against.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def run_notebook(path: Path, timeout: int = 600) -> float:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - started
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    total = 0.0
    for path in paths:
        seconds = run_notebook(path)
        total += seconds
        print(f"{seconds:6.1f} s  {path.name}", flush=True)
    print(f"{total:6.1f} s  total")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
