"""Held-out IoU on real photos after a fixed CPU time: `segkit train` against the source lesson's script.

    .venv/bin/python benchmarks/time_to_iou.py                            # 60/300/1200 s, 3 seeds: ~2.7 hours
    .venv/bin/python benchmarks/time_to_iou.py --budgets 60 300 --seeds 0 --programs segkit

Both programs train on the same photos (data/cats/train, 80 real photos, exported as a learner
would) for the same number of seconds, then are scored on data/cats/test (80 other photos) as
the cat's IoU at each photo's own size, with each program's own way of predicting:

* segkit: `segkit train TRAIN --out RUN --max-time T --seed S` with its defaults (10% of the photos
  held out to pick best.pt), in a fresh process; then `evaluate(best.pt, test)`.
  --segkit-args adds options, to compare recipes (benchmarks/README.md lists the ones tried).
* lesson: benchmarks/lesson_script.py, the source lesson's script re-created (see its docstring).
  It has no schedule, so one run to the largest budget yields the model at every smaller one.

Each segkit run and each lesson seed runs in a fresh process; on a 2-core machine nothing else
should run meanwhile (the budgets are wall-clock seconds). Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lesson_script import LessonUNet, lesson_predict, train_lesson  # noqa: E402

from segkit import ConfusionMatrix, SegmentationFolder, evaluate, load_checkpoint  # noqa: E402
from segkit.datasets import bundled  # noqa: E402


def segkit_run(train: Path, test: Path, budget: float, seed: int, extra: str, work: Path) -> dict:
    """`segkit train` for `budget` seconds in a fresh process; the test IoU of its best.pt."""
    run = work / f"segkit_{budget:g}_{seed}"
    command = [sys.executable, "-m", "segkit", "train", str(train), "--out", str(run), "--max-time", str(budget),
               "--seed", str(seed), "--epochs", "1000", "--quiet", *extra.split()]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    model, checkpoint = load_checkpoint(run / "best.pt")
    epochs = len(json.loads((run / "history.json").read_text()))  # best.pt's own history stops at its epoch
    scores = evaluate(model, SegmentationFolder(test, checkpoint["image_size"], checkpoint["resize"]))
    return {"iou": scores["foreground_iou"], "wall_seconds": round(seconds, 1), "epochs": epochs,
            "best_epoch": checkpoint["epoch"]}


def lesson_scores(test: Path, snapshots: dict) -> dict:
    dataset = SegmentationFolder(test, image_size=None)
    result = {}
    for budget, snapshot in snapshots.items():
        model = LessonUNet()
        model.load_state_dict(snapshot["state"])
        confusion = ConfusionMatrix(2)
        for index in range(len(dataset)):
            photo, truth = dataset.read(index)
            pred = lesson_predict(model, photo)
            confusion.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(truth.astype(np.int64)))
        result[budget] = {"iou": round(confusion.foreground_iou(), 6), "images": snapshot["images"]}
    return result


def lesson_child(train: Path, test: Path, budgets: list[float], seed: int) -> None:
    """Run in a fresh process by main(): train the lesson, print the scores as JSON on the last line."""
    with tempfile.TemporaryDirectory() as out:
        snapshots = train_lesson(train, budgets, Path(out), seed, log=lambda text: print(text, file=sys.stderr))
    print(json.dumps({str(k): v for k, v in lesson_scores(test, snapshots).items()}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="+", default=[60, 300, 1200])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--programs", nargs="+", default=["segkit", "lesson"], choices=["segkit", "lesson"])
    parser.add_argument("--segkit-args", default="", help="extra `segkit train` options, e.g. '--image-size 160'")
    parser.add_argument("--out", default=None, help="append each result as a JSON line to this file")
    parser.add_argument("--lesson-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    train, test = bundled("cats", "train"), bundled("cats", "test")
    if args.lesson_child:
        lesson_child(train, test, args.budgets, args.seeds[0])
        return 0

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; train {train} "
          f"({len(list((train / 'JPEGImages').iterdir()))} photos), test {test}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="segkit-time-to-iou-") as work:
        for seed in args.seeds:
            if "lesson" in args.programs:
                child = subprocess.run([sys.executable, __file__, "--lesson-child", "--seeds", str(seed), "--budgets",
                                        *map(str, args.budgets)], check=True, stdout=subprocess.PIPE, text=True)
                for budget, score in json.loads(child.stdout.strip().splitlines()[-1]).items():
                    rows.append({"program": "lesson", "budget": float(budget), "seed": seed, **score})
                    print(json.dumps(rows[-1]), flush=True)
            if "segkit" in args.programs:
                for budget in args.budgets:
                    result = segkit_run(train, test, budget, seed, args.segkit_args, Path(work))
                    rows.append({"program": "segkit", "args": args.segkit_args, "budget": budget, "seed": seed, **result})
                    print(json.dumps(rows[-1]), flush=True)
            if args.out:
                with open(args.out, "a") as file:
                    file.writelines(json.dumps(row) + "\n" for row in rows if row["seed"] == seed)

    print("\ntest IoU (cat, at each photo's own size), mean and spread over seeds:")
    for program in args.programs:
        cells = []
        for budget in args.budgets:
            values = [r["iou"] for r in rows if r["program"] == program and r["budget"] == budget]
            spread = f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else ""
            cells.append(f"{budget:g} s: {statistics.mean(values):.3f}{spread}")
        print(f"  {program:7s} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
