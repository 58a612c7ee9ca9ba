"""How hard is the bundled dataset? Two numbers on its held-out test split.

1. A per-pixel colour classifier: logistic regression on RGB (multinomial for "pets"), fitted
   on the training pixels. It sees colour and nothing else, so it shows how far colour alone
   gets. Reported at its natural threshold (0.5 / argmax) and, for the binary data, at the best
   threshold chosen on the test split itself (an optimistic upper bound).
2. The lesson's UNet (segkit.model.UNet(), base 32, depth 4) trained with segkit's own
   export -> SegmentationFolder -> fit, in the lesson's CPU budget.

    python benchmarks/dataset_difficulty.py                      # data/cats, lesson settings
    python benchmarks/dataset_difficulty.py --data data/pets
    python benchmarks/dataset_difficulty.py --generate /tmp/cats  # make a fresh copy first

Foreground IoU is accumulated over the whole test split (one confusion matrix), as
segkit.train.evaluate does; for "pets" the IoU of each animal class and their mean.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from segkit.data import SegmentationFolder, train_transforms  # noqa: E402
from segkit.export import export_labelme_folder  # noqa: E402
from segkit.model import UNet  # noqa: E402
from segkit.synth import make_dataset  # noqa: E402
from segkit.train import TrainConfig, evaluate, fit  # noqa: E402

IGNORE = 255


def load_pixels(voc_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """All pixels of a VOC folder at the photos' own size: (N, 3) float32 in [0, 1], (N,) uint8."""
    colours, labels = [], []
    for mask_path in sorted((voc_dir / "SegmentationClass").glob("*.png")):
        photo = Image.open(voc_dir / "JPEGImages" / f"{mask_path.stem}.jpg").convert("RGB")
        colours.append(np.asarray(photo, np.float32).reshape(-1, 3) / 255)
        labels.append(np.asarray(Image.open(mask_path)).reshape(-1))
    colours, labels = np.concatenate(colours), np.concatenate(labels)
    keep = labels != IGNORE
    return colours[keep], labels[keep]


def iou_per_class(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> list[float]:
    counts = np.bincount(truth.astype(np.int64) * num_classes + pred, minlength=num_classes**2)
    confusion = counts.reshape(num_classes, num_classes)
    inter = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - inter
    return [float(i / u) if u else float("nan") for i, u in zip(inter, union)]


def colour_classifier(train_dir: Path, test_dir: Path, num_classes: int, max_pixels: int = 2_000_000) -> dict:
    """Logistic regression on RGB (+ bias), fitted with L-BFGS on (a sample of) the training pixels."""
    x, y = load_pixels(train_dir)
    if len(x) > max_pixels:  # a fixed random sample: the fit does not need every pixel
        pick = np.random.default_rng(0).choice(len(x), max_pixels, replace=False)
        x, y = x[pick], y[pick]
    x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    outputs = 1 if num_classes == 2 else num_classes
    linear = torch.nn.Linear(3, outputs)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def loss_fn():
        optimizer.zero_grad()
        logits = linear(x)
        if outputs == 1:
            loss = F.binary_cross_entropy_with_logits(logits[:, 0], (y > 0).float())
        else:
            loss = F.cross_entropy(logits, y)
        loss.backward()
        return loss

    optimizer.step(loss_fn)
    xt, yt = load_pixels(test_dir)
    with torch.no_grad():
        logits = linear(torch.from_numpy(xt))
    result = {"train_pixels": len(x), "test_pixels": len(xt)}
    if outputs == 1:
        prob = torch.sigmoid(logits[:, 0]).numpy()
        truth = (yt > 0).astype(np.int64)
        result["fg_iou"] = iou_per_class((prob > 0.5).astype(np.int64), truth, 2)[1]
        best = max((iou_per_class((prob > t).astype(np.int64), truth, 2)[1], float(t))
                   for t in np.linspace(0.02, 0.98, 49))
        result["fg_iou_best_threshold"], result["best_threshold"] = best
        result["fg_fraction_test"] = float(truth.mean())
        result["everything_is_cat_iou"] = float(truth.mean())
    else:
        ious = iou_per_class(logits.argmax(1).numpy(), yt.astype(np.int64), num_classes)
        result["class_iou"] = ious
        result["fg_miou"] = float(np.nanmean(ious[1:]))
    return result


def train_unet(train_dir: Path, test_dir: Path, num_classes: int, args: argparse.Namespace) -> dict:
    transforms = train_transforms() if args.augment else None
    train_set = SegmentationFolder(train_dir, image_size=args.image_size, transforms=transforms, cache=True)
    test_set = SegmentationFolder(test_dir, image_size=args.image_size, cache=True)
    model = UNet(num_classes=1 if num_classes == 2 else num_classes)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, max_time=args.max_time,
                         seed=args.seed, progress=args.progress)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    history = fit(model, train_set, None, config)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary = evaluate(model, test_set)
    return {
        "epochs_done": len(history),
        "train_seconds": round(seconds, 1),
        "train_cpu_seconds": round(usage.ru_utime + usage.ru_stime - cpu_start, 1),
        "images_per_second": round(sum(r["images_per_second"] for r in history) / len(history), 2),
        "test_miou": summary["miou"],  # binary: foreground IoU; multi-class: incl. background
        "test_class_iou": summary.get("iou"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/cats"), help="labelme project: labels.txt, train/, test/")
    parser.add_argument("--generate", metavar="DIR", type=Path,
                        help="first generate a fresh dataset into DIR (kind from --kind) and measure that")
    parser.add_argument("--kind", default="cats", choices=["cats", "pets"])
    parser.add_argument("--n-train", type=int, help="with --generate: number of training images")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--max-time", type=float, default=None, help="seconds of training (default: no limit)")
    parser.add_argument("--augment", action="store_true", help="segkit.data.train_transforms() during training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-unet", action="store_true")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(torch.get_num_threads(), 1))

    data = args.data
    if args.generate:
        make_dataset(args.generate, kind=args.kind, n_train=args.n_train, overwrite=True, progress=False)
        data = args.generate
    labels = data / "labels.txt"
    with tempfile.TemporaryDirectory() as tmp:
        voc = Path(tmp)
        for split in ("train", "test"):
            report = export_labelme_folder(data / split, voc / split, labels, progress=False)
            if not report.ok:
                print(report.summary())
                return 1
        num_classes = len((voc / "train" / "class_names.txt").read_text().split())
        results = {"data": str(data), "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
        results["colour_classifier"] = colour_classifier(voc / "train", voc / "test", num_classes)
        print("colour classifier:", json.dumps(results["colour_classifier"]), flush=True)
        if not args.skip_unet:
            results["unet"] = train_unet(voc / "train", voc / "test", num_classes, args)
            print("unet:", json.dumps(results["unet"]), flush=True)
    print(f"settings: image_size={args.image_size} epochs={args.epochs} batch_size={args.batch_size} "
          f"lr={args.lr} max_time={args.max_time} augment={args.augment} threads={torch.get_num_threads()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
