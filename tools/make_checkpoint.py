"""Re-make the checkpoint shipped in data/checkpoints/ (for instructors), and record how.

    python tools/make_checkpoint.py --overwrite       # about 5 minutes on a 2-core CPU

Runs the same `segkit` commands a learner would type, in this order:

    segkit export data/cats/train runs/shipped/data/train --labels data/cats/labels.txt
    segkit export data/cats/test  runs/shipped/data/test  --labels data/cats/labels.txt
    segkit train runs/shipped/data/train --out runs/shipped/run <TRAIN_ARGS>
    segkit evaluate runs/shipped/run/best.pt runs/shipped/data/test

then copies best.pt (weights + config, no optimizer state) to data/checkpoints/cats_unet.pt and
writes data/checkpoints/cats_unet.json: the commands, the training time, the machine, and the
evaluate result on the test split. tests/test_shipped.py checks the checkpoint still scores that.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from segkit.cli import main as segkit  # noqa: E402

# A slim UNet (base 8: 16x fewer weights than the lesson's 32, 1.9 MB) so that data/ stays
# under 10 MB; 256 px, the lesson's size, so that lesson 6's outlines are fine-grained.
TRAIN_ARGS = "--base-features 8 --image-size 256 --epochs 60 --lr 2e-3 --seed 0"


def run(command: str, capture: bool = False) -> str:
    print("$", command, flush=True)
    args = shlex.split(command)[1:]
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if capture else contextlib.nullcontext():
        code = segkit(args)
    if code:
        raise SystemExit(f"`{command}` failed with exit code {code}")
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", default="cats")
    parser.add_argument("--overwrite", action="store_true", help="replace the shipped checkpoint")
    args = parser.parse_args()

    os.chdir(ROOT)  # the recorded commands use paths relative to the repository
    target = Path("data/checkpoints") / f"{args.kind}_unet.pt"
    if target.exists() and not args.overwrite:
        print(f"{target} exists; pass --overwrite to replace it.", file=sys.stderr)
        return 2
    work = Path("runs/shipped")
    if work.exists():
        shutil.rmtree(work)  # our own scratch folder under runs/ (git-ignored)

    project = Path("data") / args.kind
    for split in ("train", "test"):
        run(f"segkit export {project}/{split} {work}/data/{split} --labels {project}/labels.txt --quiet")
    train_command = f"segkit train {work}/data/train --out {work}/run {TRAIN_ARGS}"
    started = time.perf_counter()
    run(train_command)
    seconds = time.perf_counter() - started
    evaluate_command = f"segkit evaluate {work}/run/best.pt {work}/data/test"
    result = json.loads(run(evaluate_command, capture=True))

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(work / "run" / "best.pt", target)
    record = {
        "checkpoint": target.name,
        "commands": [f"segkit export {project}/{s} {work}/data/{s} --labels {project}/labels.txt"
                     for s in ("train", "test")],
        "train_command": train_command,
        "evaluate_command": evaluate_command,
        "train_seconds": round(seconds, 1),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"{torch.get_num_threads()} torch threads, torch {torch.__version__}, "
                   f"{'CUDA' if torch.cuda.is_available() else 'CPU'}",
        "test": result,
    }
    target.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    print(f"Wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and {target.with_suffix('.json')}: "
          f"test IoU {result['miou']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
