"""Re-run lesson notebooks top to bottom and save them with their outputs (for instructors).

    python tools/run_notebooks.py                       # every notebooks/*.ipynb
    python tools/run_notebooks.py notebooks/03_unet.ipynb

Each notebook runs in a fresh kernel from its own folder, as a learner's "Restart kernel and run
all cells" would, and the time it took is printed: every lesson must run in about two minutes
on a CPU. Widgets are saved frozen (segkit_course.notebooks.freeze_widgets), so a notebook reads
well before it is run. Commit the notebooks afterwards: the saved outputs are what a reader on
GitHub sees, and what nbval compares against.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from segkit_course.notebooks import run_notebook  # noqa: E402


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
