"""What is left to gain on a CPU beyond what `fit` runs? Each remaining lever, measured.

    .venv/bin/python benchmarks/speed_levers.py              # about 3 minutes on 2 idle cores
    .venv/bin/python benchmarks/speed_levers.py --compile    # + torch.compile (about 2 more)

Issue 2 asks for `segkit train` to be 3x faster than the source lesson's fp32 loop as a whole
program. A whole program cannot beat its training step, so this script asks how much faster
the step (and the data pipeline feeding it) could still get, and at what cost:

1. Where the step's time goes: the share spent inside convolutions (oneDNN kernels that segkit
   does not control) against BatchNorm, ReLU, pooling, loss and optimizer.
2. Round-robin, in one process: fp32 (the lesson's arithmetic), what `fit` runs (bf16 autocast,
   channels_last, fused AdamW), and the same with each 2x2 transposed conv computed as a 1x1 conv
   followed by a pixel shuffle (the same maths, checked here; oneDNN's transposed-conv weight
   gradient is slow on this CPU).
3. glibc's allocator: the same step in fresh processes with MALLOC_MMAP_THRESHOLD_ and
   MALLOC_TRIM_THRESHOLD_ raised (large activations are then reused instead of being handed
   back to the kernel and page-faulted in again on the next step), alternating, best of each.
4. The data pipeline: milliseconds per photo for `train_transforms()`, without hue jitter
   (an RGB -> HSV round trip), against the step's time per photo.
5. (--compile) torch.compile: seconds to compile and the compiled step's time.

Prints each lever's gain as a ratio to what `fit` runs, and the step ratio to fp32 with every
lever combined: the ceiling for a whole program. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import profile
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_train import make_step, time_round_robin  # noqa: E402
from segkit import model as model_module  # noqa: E402
from segkit.transforms import train_transforms  # noqa: E402

BATCH, SIZE = 4, 256


class ConvTranspose2x2AsShuffle(nn.ConvTranspose2d):
    """A 2x2, stride-2 transposed conv computed as a 1x1 conv to 4x the channels, then a pixel
    shuffle: out[2i+a, 2j+b, o] = sum_c x[i, j, c] * weight[c, o, a, b] + bias[o] either way.
    Same parameters (and state_dict) as nn.ConvTranspose2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        cin, cout = self.weight.shape[:2]
        n, _, h, w = x.shape
        weight = self.weight.permute(2, 3, 1, 0).reshape(4 * cout, cin, 1, 1)  # channels ordered (a, b, o)
        y = F.conv2d(x, weight, self.bias.repeat(4) if self.bias is not None else None)
        y = y.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, cout)  # a view when y is channels_last
        return y.permute(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, cout).permute(0, 3, 1, 2)


def check_shuffle_equivalence() -> float:
    torch.manual_seed(0)
    reference, shuffle = nn.ConvTranspose2d(64, 32, 2, stride=2), ConvTranspose2x2AsShuffle(64, 32, 2, stride=2)
    shuffle.load_state_dict(reference.state_dict())
    x = torch.randn(2, 64, 9, 11)
    return (reference(x) - shuffle(x)).abs().max().item()


def fit_step_with_shuffle_upsampling():
    """fit's step with every Up block's transposed conv swapped for the shuffle version."""
    original = model_module.nn.ConvTranspose2d
    model_module.nn.ConvTranspose2d = ConvTranspose2x2AsShuffle
    try:
        return make_step(torch.bfloat16, True, BATCH, SIZE, train=True, fit_optimizer=True)
    finally:
        model_module.nn.ConvTranspose2d = original


def conv_share(step, steps: int = 2) -> tuple[float, dict[str, float]]:
    """Fraction of the step's CPU time inside convolution ops, and ms/step of the other big ops."""
    with profile() as prof:
        for _ in range(steps):
            step()
    rows = prof.key_averages()
    total = sum(r.self_cpu_time_total for r in rows)
    conv = sum(r.self_cpu_time_total for r in rows if "convolution" in r.key)
    groups = {"BatchNorm": "batch_norm", "ReLU": ("clamp_min", "threshold_backward", "relu"),
              "max-pool": "max_pool", "concat": "aten::cat", "AdamW": "adamw", "copies (autocast casts)": "copy_"}
    other = {}
    for name, keys in groups.items():
        keys = (keys,) if isinstance(keys, str) else keys
        other[name] = sum(r.self_cpu_time_total for r in rows if any(k in r.key for k in keys)) / steps / 1e3
    return conv / total, other


def malloc_child(repeats: int) -> None:
    """Child process: median seconds of fit's step, printed as the last line."""
    step = make_step(torch.bfloat16, True, BATCH, SIZE, train=True, fit_optimizer=True)
    times = time_round_robin({"fit": step}, repeats)["fit"]
    print(statistics.median(times))


def time_malloc(repeats: int, runs: int) -> dict[str, float]:
    env_tuned = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**32)}
    best: dict[str, float] = {}
    for _ in range(runs):
        for name, env in (("default", dict(os.environ)), ("tuned", env_tuned)):
            out = subprocess.run([sys.executable, __file__, "--malloc-child", str(repeats)], env=env, check=True,
                                 stdout=subprocess.PIPE, text=True).stdout
            seconds = float(out.strip().splitlines()[-1])
            best[name] = min(best.get(name, seconds), seconds)
    return best


def ms_per_photo(transforms, repeats: int = 60) -> float:
    torch.manual_seed(0)
    image, mask = torch.rand(3, SIZE, SIZE), (torch.rand(SIZE, SIZE) > 0.5).long()
    for _ in range(5):
        transforms(image, mask)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        transforms(image, mask)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per variant")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--malloc-child", type=int, help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.malloc_child:
        malloc_child(args.malloc_child)
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; UNet() {SIZE}x{SIZE}, batch {BATCH}")
    fit_step = make_step(torch.bfloat16, True, BATCH, SIZE, train=True, fit_optimizer=True)

    print("\n1. Where what fit runs spends its step (profiler, self CPU time):")
    for _ in range(2):
        fit_step()
    share, other = conv_share(fit_step)
    print(f"  convolutions (oneDNN kernels): {share:.0%}; " + ", ".join(f"{k} {v:.0f} ms" for k, v in other.items()))

    print(f"\n2. Transposed conv as 1x1 conv + pixel shuffle (max difference to nn.ConvTranspose2d: "
          f"{check_shuffle_equivalence():.1e}); median of {args.repeats}, interleaved:")
    steps = {"fp32 (the lesson's arithmetic)": make_step(None, False, BATCH, SIZE, train=True),
             "what fit runs": fit_step,
             "fit + shuffle upsampling": fit_step_with_shuffle_upsampling()}
    medians = {k: statistics.median(v) for k, v in time_round_robin(steps, args.repeats).items()}
    fp32, fit = medians["fp32 (the lesson's arithmetic)"], medians["what fit runs"]
    for name, seconds in medians.items():
        print(f"  {name:<32} {BATCH / seconds:6.2f} img/s  {fp32 / seconds:5.2f}x fp32  {fit / seconds:5.3f}x fit")
    gains = {"shuffle upsampling": fit / medians["fit + shuffle upsampling"]}

    print("\n3. glibc allocator thresholds raised (fresh processes, alternating, best of 3):")
    malloc = time_malloc(args.repeats, 3)
    gains["allocator"] = malloc["default"] / malloc["tuned"]
    print(f"  default {BATCH / malloc['default']:.2f} img/s, tuned {BATCH / malloc['tuned']:.2f} img/s: "
          f"{gains['allocator']:.3f}x")

    print("\n4. Augmentation per photo (256x256), against the step's time per photo:")
    step_ms = fit / BATCH * 1e3
    full = ms_per_photo(train_transforms())
    no_hue = train_transforms()
    no_hue.color = v2.Compose([v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2)])  # the default, minus hue
    reduced = ms_per_photo(no_hue)
    print(f"  train_transforms(): {full:.1f} ms; without hue jitter: {reduced:.1f} ms; the step: {step_ms:.0f} ms "
          f"per photo")
    gains["no hue jitter"] = (step_ms + full) / (step_ms + reduced)

    if args.compile:
        print("\n5. torch.compile (inductor) of fit's model:")
        import bench_train
        compiled_step = bench_train.make_step(torch.bfloat16, True, BATCH, SIZE, train=True, fit_optimizer=True,
                                              compile_model=True)
        started = time.perf_counter()
        compiled_step()
        compile_seconds = time.perf_counter() - started
        times = time_round_robin({"fit": fit_step, "compiled": compiled_step}, args.repeats, warmup=1)
        compiled = statistics.median(times["compiled"])
        gains["torch.compile"] = statistics.median(times["fit"]) / compiled
        print(f"  first step (compiling): {compile_seconds:.0f} s; then {BATCH / compiled:.2f} img/s = "
              f"{gains['torch.compile']:.3f}x fit; pays for itself after "
              f"{compile_seconds / max(statistics.median(times['fit']) - compiled, 1e-9):.0f} steps")

    combined = 1.0
    for gain in gains.values():
        combined *= gain
    print(f"\nEvery lever together (product of the gains: {', '.join(f'{k} {v:.3f}x' for k, v in gains.items())}):"
          f"\n  the step would run at {fp32 / fit * combined:.2f}x fp32 (what fit runs: {fp32 / fit:.2f}x). "
          f"A whole program also pays start-up and saving, so it stays below this.")


if __name__ == "__main__":
    main()
