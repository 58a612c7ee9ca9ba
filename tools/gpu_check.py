"""Train the full lesson configuration on a GPU and print its figures (for instructors).

    python tools/gpu_check.py            # needs a CUDA GPU; about a minute

The lesson's UNet (base width 32, depth 4, 7.8 M weights) at 256x256, trained by segkit's own
`fit` on the bundled real cats (data/cats/train, 10% held out for best.pt), then scored on
data/cats/test at each photo's own size: the GPU path of lesson 5 (bf16 autocast, channels_last,
pinned memory, loader workers). Prints one JSON line: the GPU, images per second, the test IoU
and the time. README.md and lesson 5 quote its output, with the date it was run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from segkit import SegmentationFolder, TrainConfig, UNet, evaluate, fit, load_checkpoint, split_folder  # noqa: E402
from segkit.datasets import bundled  # noqa: E402
from segkit.transforms import train_transforms  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--base-features", type=int, default=32)
    parser.add_argument("--cpu", action="store_true", help="run on the CPU instead (to try this script out)")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.cpu:
        print("No CUDA GPU: this check trains on a GPU (--cpu tries the script out on the CPU).", file=sys.stderr)
        return 2
    device = "cpu" if args.cpu else "cuda"

    started = time.perf_counter()
    train_set, val_set = split_folder(bundled("cats", "train"), 0.1, 0, train_transforms(), image_size=args.image_size)
    test_set = SegmentationFolder(bundled("cats", "test"), image_size=args.image_size)
    torch.manual_seed(0)
    model = UNet(num_classes=1, base_features=args.base_features)
    with tempfile.TemporaryDirectory() as run:
        history = fit(model, train_set, val_set, TrainConfig(epochs=args.epochs, device=device, progress=False),
                      out_dir=run)
        best, checkpoint = load_checkpoint(Path(run) / "best.pt", device=device)
        scores = evaluate(best, test_set)
    later = [row["images_per_second"] for row in history[1:]]  # epoch 1 also fills the cache
    print(json.dumps({
        "gpu": torch.cuda.get_device_name() if device == "cuda" else "none (--cpu)", "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"),
        "config": f"UNet(base_features={args.base_features}), {args.image_size} px, {args.epochs} epochs, "
                  f"batch {TrainConfig.batch_size}, {len(train_set)} training photos",
        "images_per_second": round(sorted(later)[len(later) // 2], 1),
        "train_seconds": round(sum(row["seconds"] for row in history), 1),
        "best_epoch": checkpoint["epoch"],
        "test_foreground_iou": scores["foreground_iou"],
        "total_seconds": round(time.perf_counter() - started, 1),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
