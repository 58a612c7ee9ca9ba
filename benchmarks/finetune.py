"""Fine-tuning the shipped cats model on a learner's 8 photos, against training from scratch.

    .venv/bin/python benchmarks/finetune.py                 # 4 folds x 2 programs x 60 s: ~9 minutes

data/my_cats holds 8 real cat photos that the shipped model never saw. Each fold trains on 6 of
them and scores the other 2 (the cat's IoU at each photo's own size), for the same number of
seconds, with the commands a learner would type:

    segkit train FOLD --out RUN --max-time 60 --val-fraction 0 --init data/checkpoints/cats_unet.pt
    segkit train FOLD --out RUN --max-time 60 --val-fraction 0

(--val-fraction 0: with 6 photos there is none to spare; best.pt is then the last epoch.) It also
reports the shipped model itself, untouched (zero-shot). Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segkit import ConfusionMatrix, SegmentationFolder, load_checkpoint, predict_mask  # noqa: E402
from segkit.datasets import bundled, shipped_checkpoint  # noqa: E402


def fold_folder(voc: Path, stems: list[str], target: Path) -> Path:
    """A VOC folder holding only `stems` (copies), as a learner's own folder would be."""
    for sub in ("JPEGImages", "SegmentationClass"):
        (target / sub).mkdir(parents=True)
        for stem in stems:
            source = next((voc / sub).glob(f"{stem}.*"))
            shutil.copy(source, target / sub / source.name)
    shutil.copy(voc / "class_names.txt", target / "class_names.txt")
    return target


def score(model, image_size, held_out: SegmentationFolder) -> tuple[float, ConfusionMatrix]:
    confusion = ConfusionMatrix(2)
    for index in range(len(held_out)):
        photo, truth = held_out.read(index)
        pred = predict_mask(model, photo, image_size)
        confusion.update(torch.from_numpy(pred.astype(np.int64)), torch.from_numpy(truth.astype(np.int64)))
    return confusion.foreground_iou(), confusion


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--finetune-args", default="", help="extra `segkit train` options for the fine-tuning runs")
    parser.add_argument("--scratch-args", default="", help="extra `segkit train` options for the from-scratch runs")
    args = parser.parse_args()

    voc = bundled("my_cats", None)
    stems = SegmentationFolder(voc, image_size=None).stems
    shipped = shipped_checkpoint("cats")
    base_model, base_checkpoint = load_checkpoint(shipped)
    per_fold = len(stems) // args.folds
    programs = {"zero-shot": None,
                "fine-tuned": f"--init {shipped} {args.finetune_args}",
                "from scratch": args.scratch_args}
    pooled = {name: ConfusionMatrix(2) for name in programs}
    fold_ious: dict[str, list[float]] = {name: [] for name in programs}
    with tempfile.TemporaryDirectory(prefix="segkit-finetune-") as work:
        work = Path(work)
        for fold in range(args.folds):
            test_stems = stems[fold * per_fold:(fold + 1) * per_fold]
            train_stems = [s for s in stems if s not in test_stems]
            train = fold_folder(voc, train_stems, work / f"fold{fold}" / "train")
            held_out = SegmentationFolder(fold_folder(voc, test_stems, work / f"fold{fold}" / "test"), image_size=None)
            for name, extra in programs.items():
                if extra is None:
                    model, size = base_model, base_checkpoint["image_size"]
                else:
                    run = work / f"fold{fold}" / name.replace(" ", "_")
                    subprocess.run([sys.executable, "-m", "segkit", "train", str(train), "--out", str(run),
                                    "--max-time", str(args.seconds), "--epochs", "1000", "--val-fraction", "0",
                                    "--quiet", *extra.split()], check=True, stdout=subprocess.DEVNULL)
                    model, checkpoint = load_checkpoint(run / "best.pt")
                    size = checkpoint["image_size"]
                iou, confusion = score(model, size, held_out)
                pooled[name].mat += confusion.mat
                fold_ious[name].append(iou)
                print(json.dumps({"fold": fold, "program": name, "held_out": test_stems, "iou": round(iou, 4)}),
                      flush=True)
    print(f"\n{args.folds} folds of data/my_cats (train on {len(stems) - per_fold}, score {per_fold}), "
          f"{args.seconds:g} s of training per run; cat IoU on the held-out photos:")
    for name in programs:
        print(f"  {name:13s} mean over folds {statistics.mean(fold_ious[name]):.3f}  "
              f"(folds {', '.join(f'{v:.3f}' for v in fold_ious[name])}); all 8 photos pooled "
              f"{pooled[name].foreground_iou():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
