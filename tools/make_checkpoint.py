"""Train the models shipped in data/checkpoints/ and record how, and how well (for instructors).

    python tools/make_data.py --feral F --pets P --pool runs/pool           # the training photos, once
    python tools/make_checkpoint.py cats --pool runs/pool --overwrite      # 4 minutes on a GPU
    python tools/make_checkpoint.py pets --pool runs/pool --overwrite

It runs the `segkit` commands a learner would type:

    segkit export runs/pool/<kind>/train runs/shipped/<kind>/pool --labels runs/pool/<kind>/labels.txt
    segkit train runs/shipped/<kind>/pool --out runs/shipped/<kind>/run <TRAIN_ARGS>

then stores best.pt's weights in half precision (half the file; predictions change by less than
0.001 IoU, measured below on the stored file) as data/checkpoints/<kind>_unet.pt, and writes
<kind>_unet.json: the commands, the machine, the time, and the scores of the stored file on
photos it never saw (data/cats/test per source, data/pets/test, data/my_cats and, for the cats
model, skimage's chelsea in data/chelsea). tests/test_shipped.py re-checks those scores.

The pool holds every usable photo of both sources except the held-out ones (data/cats/test,
data/pets/test, data/my_cats), so the shipped models never see the photos that judge them.
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

from segkit import SegmentationFolder, evaluate, load_checkpoint  # noqa: E402
from segkit.cli import main as segkit  # noqa: E402
from segkit.datasets import bundled  # noqa: E402
from segkit.files import atomic_file  # noqa: E402

# What made the shipped files (data/README.md): UNet width 16 (1.9 M weights, 3.9 MB in half precision),
# 256 px, strong zoom (a long run can afford it), a time budget on an NVIDIA H200, every pool photo trains
# (best.pt is then the last epoch). The recorded commands ran before --zoom existed, with 0.35 as the default.
# On a CPU, raise --max-time: an epoch of the cats pool takes about 100 s on one core at 224 px.
TRAIN_ARGS = {
    "cats": "--base-features 16 --image-size 256 --epochs 600 --max-time 230 --batch-size 16 --lr 3e-3 "
            "--zoom 0.35 --val-fraction 0 --seed 0 --quiet",
    "pets": "--base-features 16 --image-size 256 --epochs 600 --max-time 165 --batch-size 16 --lr 3e-3 "
            "--zoom 0.35 --val-fraction 0 --seed 0 --quiet",
}


def run(command: str, capture: bool = False) -> str:
    """Run a `segkit ...` command line in this process; its stdout when capture."""
    print("$", command, flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if capture else contextlib.nullcontext():
        code = segkit(shlex.split(command)[1:])
    if code:
        raise SystemExit(f"`{command}` failed with exit code {code}")
    return out.getvalue()


def scores(path: Path, kind: str) -> dict:
    """The stored model's scores on every held-out set, at each photo's own size."""
    model, checkpoint = load_checkpoint(path)
    size = checkpoint["image_size"]
    result = {}
    if kind == "cats":
        test = SegmentationFolder(bundled("cats", "test"), size)
        for source in ("feral", "oxford"):
            stems = [s for s in test.stems if s.startswith(source)]
            result[f"cats/test {source}"] = evaluate(model, SegmentationFolder(test.root, size, stems=stems))
        result["cats/test"] = evaluate(model, test)
        result["my_cats"] = evaluate(model, SegmentationFolder(bundled("my_cats", None), size))
        # skimage's chelsea, labelled by hand for the course (data/chelsea)
        result["chelsea"] = evaluate(model, SegmentationFolder(bundled("chelsea", None), size))
    else:
        result["pets/test"] = evaluate(model, SegmentationFolder(bundled("pets", "test"), size))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=sorted(TRAIN_ARGS))
    parser.add_argument("--pool", default="runs/pool", help="the folder tools/make_data.py --pool wrote")
    parser.add_argument("--overwrite", action="store_true", help="replace the shipped checkpoint")
    parser.add_argument("--train-args", default=None, help="override TRAIN_ARGS (for trying recipes)")
    args = parser.parse_args()

    os.chdir(ROOT)  # the recorded commands use paths relative to the repository
    target = Path("data/checkpoints") / f"{args.kind}_unet.pt"
    if target.exists() and not args.overwrite:
        print(f"{target} exists; pass --overwrite to replace it.", file=sys.stderr)
        return 2
    pool, work = Path(args.pool) / args.kind, Path("runs/shipped") / args.kind
    if work.exists():
        shutil.rmtree(work)  # this tool's own scratch folder under runs/ (git-ignored)
    commands = [f"segkit export {pool}/train {work}/pool --labels {pool}/labels.txt --quiet"]
    run(commands[0])
    commands.append(f"segkit train {work}/pool --out {work}/run {args.train_args or TRAIN_ARGS[args.kind]}")
    started = time.perf_counter()
    run(commands[1])
    seconds = time.perf_counter() - started

    checkpoint = torch.load(work / "run" / "best.pt", weights_only=True)
    checkpoint["model_state"] = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint["model_state"].items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target) as file:
        torch.save(checkpoint, file)
    record = {
        "checkpoint": target.name,
        "commands": commands,
        "train_seconds": round(seconds, 1),
        "epochs": checkpoint["epoch"],
        "pool_photos": len(list((work / "pool" / "JPEGImages").iterdir())),  # val-fraction of them validate
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} "
                   f"torch threads, torch {torch.__version__}, {'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}",
        "date": time.strftime("%Y-%m-%d"),
        "scores": scores(target, args.kind),
    }
    target.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"Wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and {target.with_suffix('.json')}")
    print(json.dumps({k: v.get("foreground_iou") for k, v in record["scores"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
