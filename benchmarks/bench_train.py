"""How fast does segkit train the lesson UNet on a CPU, and why?

    .venv/bin/python benchmarks/bench_train.py            # a few minutes on 2 cores
    .venv/bin/python benchmarks/bench_train.py --quick    # about a minute, rougher figures

Three parts, all on the CPU, all in one process so that the ratios compare like with like:

1. Step throughput of the default UNet (32 base features, depth 4) at 256x256, batch 4:
   training step (forward, BCE + Dice loss in fp32, backward, AdamW) and inference, in fp32,
   channels_last, bf16 autocast and both; then what `fit` picks by itself ("auto").
   The variants are timed round-robin (one step of each in turn) and the median step time is
   reported, so a neighbour process slowing the machine down hits every variant alike.
2. Hardware utilisation: FLOPs of one training step (torch.utils.flop_counter) divided by its
   time, as a fraction of what this CPU reaches on one large convolution (3x3, 256 -> 256
   channels, 64x64, batch 8) in fp32 and in bf16.
3. Whole program, same photos (the bundled real cats, data/cats/train): the source lesson's
   training script re-created in lesson_script.py (BatchNorm2d and ReLU created inside forward,
   Adam, soft Dice on sigmoid, a Dataset that opens and resizes every photo with PIL on every
   access, torch.save(model) every epoch) against what `segkit train --image-size 256
   --base-features 32` runs (SegmentationFolder with cache and augmentation, fit,
   last.pt/best.pt/history.json each epoch), twice: with its default 10% held out and
   validated each epoch, and with --val-fraction 0, which does the lesson's job exactly
   (every photo, no validation). Each runs in a fresh Python process, timed from start to exit
   (imports, warm-up, data loading, validation and saving included); reported as training
   images per second, and for the same job as the ratio of wall times.

On a shared machine use --threads 1: a process whose 2 OpenMP threads compete with other
programs for 2 cores spends much of its time waiting for a descheduled thread.

Held-out IoU after a fixed time, which is what a learner cares about, is measured by
time_to_iou.py.

Not part of the test run. Figures and the command go into benchmarks/README.md.
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
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFilter
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lesson_script import LessonDataset, LessonUNet, lesson_dice_loss  # noqa: E402

from segkit.data import SegmentationFolder, split_folder  # noqa: E402
from segkit.datasets import bundled  # noqa: E402
from segkit.device import choose_precision, cpu_has_native_bf16  # noqa: E402
from segkit.losses import default_loss  # noqa: E402
from segkit.model import UNet  # noqa: E402
from segkit.train import TrainConfig, fit, make_optimizer, seed_everything  # noqa: E402
from segkit.transforms import train_transforms  # noqa: E402

VARIANTS = {  # name: (autocast dtype, channels_last)
    "fp32": (None, False),
    "channels_last": (None, True),
    "bf16 autocast": (torch.bfloat16, False),
    "bf16 + channels_last": (torch.bfloat16, True),
}


# ------------------------------------------------------------------------------ 1. steps

def make_step(dtype: torch.dtype | None, channels_last: bool, batch: int, size: int, train: bool,
              fit_optimizer: bool = False, compile_model: bool = False):
    """A closure running one training (or inference) step of a fresh default UNet.

    fit_optimizer: use fit's optimizer (segkit.train.make_optimizer: fused AdamW) instead of a
    plain torch.optim.AdamW. compile_model: run the model through torch.compile (the first
    step then compiles)."""
    torch.manual_seed(0)
    model = UNet()
    images = torch.rand(batch, 3, size, size)
    masks = (torch.rand(batch, size, size) > 0.7).long()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    parameters = list(model.parameters())
    if compile_model:
        model = torch.compile(model)
    if train:
        model.train()
        loss_fn = default_loss(1)
        optimizer = (make_optimizer(model, 1e-3, torch.device("cpu")) if fit_optimizer
                     else torch.optim.AdamW(parameters, lr=1e-3))

        def step() -> None:
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                logits = model(images)
            loss = loss_fn(logits.float(), masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    else:
        model.eval()

        def step() -> None:
            with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                model(images)
    return step


def time_round_robin(steps: dict, repeats: int, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each closure, interleaved: [a, b, c, a, b, c, ...]."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - started)
    return times


def bench_steps(batch: int, size: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds per step of each variant, and of what fit runs ("fit auto")."""
    auto_dtype, auto_cl = choose_precision(torch.device("cpu"))
    auto_name = next(name for name, value in VARIANTS.items() if value == (auto_dtype, auto_cl))
    fit_name = f"fit auto ({auto_name}, fused AdamW)"
    results: dict[str, dict[str, float]] = {}
    for mode in ("train", "inference"):
        train = mode == "train"
        steps = {name: make_step(dtype, cl, batch, size, train) for name, (dtype, cl) in VARIANTS.items()}
        if train:  # fit's own optimizer differs from a plain AdamW; its inference is the variant's
            steps[fit_name] = make_step(auto_dtype, auto_cl, batch, size, train, fit_optimizer=True)
        times = time_round_robin(steps, repeats)
        medians = {name: statistics.median(t) for name, t in times.items()}
        if not train:
            medians[fit_name], times[fit_name] = medians[auto_name], times[auto_name]
        results[mode] = medians
        print(f"\n{mode} step, UNet() {size}x{size}, batch {batch}, median of {repeats}, interleaved "
              f"(images/s, ratio to fp32, fastest..slowest step):")
        for name, median in medians.items():
            print(f"  {name:<44} {batch / median:7.2f} img/s  {medians['fp32'] / median:5.2f}x   "
                  f"[{min(times[name]):.3f}..{max(times[name]):.3f} s]")
    return results


# ------------------------------------------------------------------------------ 2. FLOPs

def conv_peak(dtype: torch.dtype | None, repeats: int) -> float:
    """Peak FLOP/s this CPU reaches on one large 3x3 conv (forward): fastest of `repeats` runs,
    better memory layout of the two."""
    best = 0.0
    x = torch.rand(8, 256, 64, 64)
    conv = nn.Conv2d(256, 256, 3, padding=1, bias=False)
    flops = 2 * 8 * 256 * 64 * 64 * 256 * 9
    for channels_last in (False, True):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        xx, cc = x.contiguous(memory_format=fmt), conv.to(memory_format=fmt)
        with torch.inference_mode(), torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            for _ in range(2):
                cc(xx)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                cc(xx)
                times.append(time.perf_counter() - started)
        best = max(best, flops / min(times))  # the peak: the fastest run, not a typical one
    return best


def train_step_flops(batch: int, size: int) -> int:
    model = UNet()
    images = torch.rand(batch, 3, size, size)
    masks = (torch.rand(batch, size, size) > 0.7).long()
    counter = FlopCounterMode(display=False)
    with counter:
        loss = default_loss(1)(model(images).float(), masks)
        loss.backward()
    return counter.get_total_flops()


# ------------------------------------------------------------------------------ 3. whole program

def make_photos(root: Path, n: int, width: int = 400, height: int = 300, seed: int = 0) -> Path:
    """N JPEG pictures (textured background, 1-2 blobs) and palette PNG masks, VOC layout: tiny data for
    tests/test_benchmarks.py, which checks the harness runs (not its timings, not any IoU)."""
    rng = np.random.default_rng(seed)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClassPNG").mkdir()
    (root / "class_names.txt").write_text("_background_\ncat\n")
    for i in range(n):
        noise = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
        photo = Image.fromarray(noise).resize((width, height), Image.Resampling.BICUBIC)
        mask = Image.new("P", (width, height), 0)
        mask.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
        draw_photo, draw_mask = ImageDraw.Draw(photo), ImageDraw.Draw(mask)
        for _ in range(rng.integers(1, 3)):
            w, h = rng.integers(60, 180), rng.integers(50, 150)
            x, y = rng.integers(0, width - w), rng.integers(0, height - h)
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            draw_photo.ellipse([x, y, x + w, y + h], fill=colour)
            draw_mask.ellipse([x, y, x + w, y + h], fill=1)
        photo.filter(ImageFilter.GaussianBlur(1)).save(root / "JPEGImages" / f"img_{i:03d}.jpg", quality=90)
        mask.save(root / "SegmentationClassPNG" / f"img_{i:03d}.png")
    return root


def lesson_program(root: Path, epochs: int, out: Path) -> dict:
    """The source lesson's training script. Returns training images processed and the training
    rate of the last epoch (img/s, data loading included)."""
    torch.manual_seed(0)
    loader = DataLoader(LessonDataset(root), batch_size=4, shuffle=True)
    model = LessonUNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    images_seen = 0
    for epoch in range(epochs):
        running, epoch_started = 0.0, time.perf_counter()
        for images, masks in loader:
            optimizer.zero_grad()
            loss = lesson_dice_loss(model(images), masks)
            loss.backward()
            optimizer.step()
            running += loss.item()
            images_seen += images.shape[0]
        rate = len(loader.dataset) / (time.perf_counter() - epoch_started)
        print(f"  lesson epoch {epoch + 1}: dice loss {running / len(loader):.4f}, {rate:.2f} img/s", file=sys.stderr)
        torch.save(model, out / f"lesson_epoch_{epoch + 1}.pth")  # the whole pickled model, as the lesson did
    return {"images": images_seen, "last_epoch_rate": rate}


def segkit_program(root: Path, epochs: int, out: Path, val_fraction: float = 0.1) -> dict:
    """What `segkit train ROOT --out OUT --epochs E --image-size 256 [--val-fraction F]` runs (segkit/cli.py
    cmd_train): a held-out fraction for validation (default 10%; 0 = train on every photo, as the lesson
    does, and validate nothing), augmentation, cached dataset, fit's defaults, checkpoints every epoch."""
    seed_everything(0)
    train_ds, val_ds = split_folder(root, val_fraction, 0, train_transforms(), image_size=256)
    model = UNet(num_classes=1, base_features=32)
    history = fit(model, train_ds, val_ds, TrainConfig(epochs=epochs, progress=False), out_dir=out)
    for row in history:
        print(f"  segkit epoch {row['epoch']}: loss {row['train_loss']:.4f}, val IoU {row['val_foreground_iou']}, "
              f"training phase {row['images_per_second']:.2f} img/s", file=sys.stderr)
    batch = TrainConfig.batch_size
    steps = len(train_ds) // batch if len(train_ds) > batch else 1  # fit drops a last, partial batch
    return {"images": epochs * steps * min(batch, len(train_ds)), "last_epoch_rate": history[-1]["images_per_second"]}


PROGRAMS = {  # part 3's programs, by name
    "lesson": lesson_program,
    "segkit": segkit_program,  # segkit train's defaults: 10% held out and validated each epoch
    "segkit-all": lambda root, epochs, out: segkit_program(root, epochs, out, val_fraction=0.0),  # the lesson's job
}


def time_program(name: str, root: Path, epochs: int, out: Path, threads: int | None) -> tuple[float, dict]:
    """Run one program in a fresh Python process (imports, warm-up, saving all included):
    (wall seconds, {"images": training images, "last_epoch_rate": img/s})."""
    command = [sys.executable, __file__, "--run-program", name, "--root", str(root), "--epochs", str(epochs),
               "--out", str(out)] + (["--threads", str(threads)] if threads else [])
    started = time.perf_counter()
    result = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    return time.perf_counter() - started, json.loads(result.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and photos: rough figures, about a minute")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per variant (default 10, --quick 3)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice, one per core)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs for part 3 (default 4, --quick 2)")
    parser.add_argument("--repeats", type=int, default=1, help="part 3: run both programs this many times, alternating; best of each")
    parser.add_argument("--data", default=None, help="a VOC folder for part 3 (default: the bundled real cats, "
                        "data/cats/train)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["steps", "flops", "program"])
    parser.add_argument("--run-program", choices=list(PROGRAMS), help=argparse.SUPPRESS)  # internal
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.run_program:  # child process of part 3
        print(json.dumps(PROGRAMS[args.run_program](Path(args.root), args.epochs, Path(args.out))))
        return
    steps = args.steps or (3 if args.quick else 10)
    epochs = args.epochs or (2 if args.quick else 4)

    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU {caps.get('cpu_name', '?')}, "
          f"capability {torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_has_native_bf16()}")
    dtype, cl = choose_precision(torch.device("cpu"))
    print(f"fit's automatic choice on this CPU: {'bf16' if dtype else 'fp32'}{' + channels_last' if cl else ''}")

    results = {}
    if "steps" not in args.skip:
        results = bench_steps(args.batch_size, args.image_size, steps)

    if "flops" not in args.skip:
        print("\nHardware utilisation (training step FLOPs / time, vs one large conv's FLOP/s):")
        flops = train_step_flops(args.batch_size, args.image_size)
        peaks = {"fp32": conv_peak(None, steps), "bf16": conv_peak(torch.bfloat16, steps)}
        print(f"  training step: {flops / 1e9:.1f} GFLOP (convs, fwd + bwd); conv 3x3 256->256 64x64 b8: "
              f"fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f} GFLOP/s")
        for name, seconds in results.get("train", {}).items():
            achieved = flops / seconds
            kind = "fp32" if VARIANTS.get(name, (dtype,))[0] is None else "bf16"
            print(f"  {name:<44} {achieved / 1e9:6.0f} GFLOP/s = {achieved / peaks[kind]:5.1%} of the {kind} conv"
                  + (f", {achieved / peaks['fp32']:5.1%} of the fp32 conv" if kind == "bf16" else ""))

    if "program" not in args.skip:
        with tempfile.TemporaryDirectory(prefix="segkit-bench-") as temp:
            temp = Path(temp)
            root = Path(args.data) if args.data else bundled("cats", "train")
            n = len(list((root / "JPEGImages").iterdir()))
            print(f"\nWhole program, {n} photos from {root}, "
                  f"{epochs} epoch(s), batch 4, 256x256, each in a fresh process, best of {args.repeats}:", flush=True)
            best: dict[str, tuple[float, dict]] = {}
            for repeat in range(args.repeats):
                for name in PROGRAMS:
                    out = temp / f"{name}_{repeat}"
                    out.mkdir()
                    seconds, images = time_program(name, root, epochs, out, args.threads)
                    if name not in best or seconds < best[name][0]:
                        best[name] = (seconds, images)
            labels = {
                "lesson": "lesson script (fp32, PIL every item, BN in forward, torch.save(model))",
                "segkit": "segkit train (defaults: 10% held out and validated each epoch)",
                "segkit-all": "segkit train --val-fraction 0 (every photo, no validation: the lesson's job)",
            }
            lesson_seconds, lesson = best["lesson"]
            lesson_rate = lesson["images"] / lesson_seconds
            for name, (seconds, result) in best.items():
                rate = result["images"] / seconds
                print(f"  {labels[name]}:\n      {result['images']} training images in {seconds:.1f} s = {rate:.2f} img/s "
                      f"= {rate / lesson_rate:.2f}x the lesson; last epoch's training phase "
                      f"{result['last_epoch_rate']:.2f} img/s = {result['last_epoch_rate'] / lesson['last_epoch_rate']:.2f}x")
            print(f"  same job (same photos, same epochs): the lesson's script takes "
                  f"{lesson_seconds / best['segkit-all'][0]:.2f}x as long as segkit train --val-fraction 0 (target >= 3x)")
            print("  (short runs are dominated by start-up: Python imports, first-epoch caching, warm-up)")


if __name__ == "__main__":
    main()
