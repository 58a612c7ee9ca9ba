"""The `segkit` command: export, train, evaluate, predict, demo. `segkit COMMAND --help` for the options.

Each command is a thin layer over a library function, so a notebook can do the same in one call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .datasets import DATA_DIR
from .train import TrainConfig

DEFAULT_IMAGE_SIZE = 128
FINETUNE_LR = 1e-4


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return int(text)


def _fraction(text: str) -> float:
    if not 0.0 <= float(text) < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return float(text)


def _zoom(text: str) -> float:
    if not 0.0 < float(text) <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return float(text)


def _probability(text: str) -> float:
    if not 0.0 <= float(text) <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return float(text)


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_labelme_folder

    report = export_labelme_folder(args.input_dir, args.output_dir, args.labels, args.overwrite, not args.quiet)
    print(report.summary())
    return 0 if report.ok else 1


def cmd_train(args: argparse.Namespace) -> int:
    from .checkpoint import read_checkpoint
    from .data import SegmentationFolder, split_folder
    from .model import UNet
    from .train import TrainConfig, fit, seed_everything
    from .transforms import train_transforms

    # Fine-tuning starts from the trained model's own architecture, size and input handling.
    start = read_checkpoint(args.init) if args.init else {}
    architecture = start.get("model_config", {"base_features": args.base_features})
    sizes = dict(image_size=args.image_size or start.get("image_size") or DEFAULT_IMAGE_SIZE,
                 resize=args.resize or start.get("resize") or "stretch")
    seed_everything(args.seed)  # the model's first weights
    augment = train_transforms(scale=(args.zoom, 1.0) if args.zoom < 1 else None)
    if args.val_dir:
        train_set = SegmentationFolder(args.data_dir, transforms=augment, **sizes)
        val_set = SegmentationFolder(args.val_dir, **sizes)
    else:
        train_set, val_set = split_folder(args.data_dir, args.val_fraction, args.seed, augment, **sizes)
    names = train_set.class_names or ["_background_", "foreground"]
    # Background + one class: one sigmoid channel, as in the lesson. More classes: one channel each.
    model = UNet(**{**architecture, "num_classes": 1 if len(names) == 2 else len(names)})
    # A trained model needs smaller steps than a random one (benchmarks/README.md, fine-tuning).
    lr = args.lr or (FINETUNE_LR if args.init else TrainConfig.lr)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=lr, max_time=args.max_time,
                         seed=args.seed, device=args.device, progress=not args.quiet)
    history = fit(model, train_set, val_set, config, out_dir=args.out, resume=args.resume, init=args.init)
    last = history[-1] if history else {}
    print(json.dumps({"run_dir": str(args.out), "epochs": len(history), "train_loss": last.get("train_loss"),
                      "val_foreground_iou": last.get("val_foreground_iou"), "val_miou": last.get("val_miou")}))
    return 0


def _model_and_size(args: argparse.Namespace):
    from .checkpoint import load_checkpoint

    model, checkpoint = load_checkpoint(args.checkpoint)
    return model, args.image_size or checkpoint.get("image_size") or 256, checkpoint.get("resize", "stretch")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data import SegmentationFolder
    from .train import evaluate

    model, size, resize = _model_and_size(args)
    print(json.dumps(evaluate(model, SegmentationFolder(args.data_dir, size, resize), args.threshold), indent=2))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .predict import predict_folder

    model, size, resize = _model_and_size(args)
    written = predict_folder(model, args.input, args.out, size, args.threshold, args.alpha, resize, args.overwrite,
                             not args.quiet)
    print(f"Wrote a mask and an overlay for {len(written)} photo(s) to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The course's path on the bundled real cats: export, train, evaluate, predict (about 2 minutes on a CPU)."""
    from .checkpoint import load_checkpoint
    from .data import SegmentationFolder, split_folder
    from .datasets import shipped_checkpoint
    from .export import export_labelme_folder
    from .files import refuse_non_empty
    from .model import UNet
    from .predict import predict_folder
    from .train import TrainConfig, evaluate, fit, seed_everything
    from .transforms import train_transforms

    project, run, started = Path(args.data), Path(args.out), time.perf_counter()
    refuse_non_empty(run, args.overwrite)
    print(f"1/4 export the labelme polygons of {project} to masks")
    for split in ("train", "test"):
        report = export_labelme_folder(project / split, run / split, project / "labels.txt", True, False)
        if not report.ok:
            print(report.summary())
            return 1
    print(f"2/4 train a UNet from scratch for at most {args.max_time:g} s")
    seed_everything(0)
    train_set, val_set = split_folder(run / "train", 0.1, 0, train_transforms(), image_size=args.image_size)
    model = UNet(num_classes=1, base_features=args.base_features)
    history = fit(model, train_set, val_set, TrainConfig(epochs=args.epochs, max_time=args.max_time,
                                                         progress=not args.quiet), out_dir=run / "checkpoints")
    print("3/4 evaluate it, and the shipped model, on the test photos neither has seen")
    model, _ = load_checkpoint(run / "checkpoints" / "best.pt")
    ours = evaluate(model, SegmentationFolder(run / "test", args.image_size))
    shipped, checkpoint = load_checkpoint(shipped_checkpoint("cats"))
    theirs = evaluate(shipped, SegmentationFolder(run / "test", checkpoint["image_size"]))
    (run / "metrics.json").write_text(json.dumps({"trained": ours, "shipped": theirs}, indent=2) + "\n")
    print("4/4 predict masks and overlays for the test photos with both models")
    predict_folder(model, run / "test" / "JPEGImages", run / "predictions", args.image_size, overwrite=True, progress=False)
    predict_folder(shipped, run / "test" / "JPEGImages", run / "predictions-shipped", checkpoint["image_size"],
                   overwrite=True, progress=False)
    trained = f"{len(history)} epochs in {sum(row['seconds'] for row in history):.0f} s"
    print(f"test IoU of the cat: {ours['foreground_iou']:.3f} trained here ({trained}), "
          f"{theirs['foreground_iou']:.3f} the shipped model  [{time.perf_counter() - started:.0f} s in all; "
          f"overlays in {run / 'predictions'} and {run / 'predictions-shipped'}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("export", help="labelme JSON folder -> VOC masks (JPEGImages/, SegmentationClass/)")
    p.add_argument("input_dir", help="a folder of photos and their labelme .json files")
    p.add_argument("output_dir", help="where to write the VOC layout (new or empty)")
    p.add_argument("--labels", required=True, help="labels.txt: __ignore__, _background_, then one class per line")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty OUTPUT_DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train", help="train a UNet on a VOC folder; writes best.pt, last.pt, history.json")
    p.add_argument("data_dir", help="a VOC folder (segkit export makes one)")
    p.add_argument("--out", required=True, help="the run folder")
    val = p.add_mutually_exclusive_group()
    val.add_argument("--val-dir", help="a separate VOC folder of validation photos")
    val.add_argument("--val-fraction", type=_fraction, default=0.1, help="hold out this fraction for validation (0: none)")
    p.add_argument("--init", help="start from this trained checkpoint's weights (fine-tuning)")
    p.add_argument("--resume", help="continue a run from its last.pt")
    p.add_argument("--epochs", type=_positive_int, default=TrainConfig.epochs)
    p.add_argument("--max-time", type=float, help="stop cleanly after this many seconds")
    p.add_argument("--image-size", type=_positive_int, help=f"the network's input size (default {DEFAULT_IMAGE_SIZE}; "
                                                  "with --init, the checkpoint's)")
    p.add_argument("--resize", choices=["stretch", "letterbox"], help="default stretch; with --init, the checkpoint's")
    p.add_argument("--batch-size", type=_positive_int, default=TrainConfig.batch_size)
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {TrainConfig.lr:g}; with --init {FINETUNE_LR:g})")
    p.add_argument("--base-features", type=_positive_int, default=16,
                   help="UNet width (ignored with --init: the checkpoint's)")
    p.add_argument("--zoom", type=_zoom, default=0.75, help="augmentation: each random crop keeps at least this "
                   "fraction of the photo's area (1: no zoom)")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    for name, help_text in (("evaluate", "scores of a checkpoint on a VOC folder, at each photo's size (JSON)"),
                            ("predict", "a mask and an overlay per photo, at each photo's size")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("checkpoint", help="a .pt file, or a run folder (its best.pt)")
        p.add_argument("data_dir" if name == "evaluate" else "input", help="a VOC folder" if name == "evaluate"
                       else "a photo or a folder of photos")
        p.add_argument("--threshold", type=_probability, default=0.5, help="binary models: cat where P(cat) > threshold")
        p.add_argument("--image-size", type=_positive_int, help="the network's input size (default: the checkpoint's)")
        if name == "predict":
            p.add_argument("--out", required=True)
            p.add_argument("--alpha", type=_probability, default=0.3, help="the mask's opacity in the overlay")
            p.add_argument("--overwrite", action="store_true")
            p.add_argument("--quiet", action="store_true")
        p.set_defaults(func=cmd_evaluate if name == "evaluate" else cmd_predict)

    p = sub.add_parser("demo", help="export, train (at most 150 s), evaluate and predict on the bundled real cats")
    p.add_argument("--data", default=str(DATA_DIR / "cats"), help="a labelme project with train/, test/, labels.txt")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--max-time", type=float, default=150.0, help="seconds of training")
    p.add_argument("--epochs", type=_positive_int, default=TrainConfig.epochs)
    p.add_argument("--image-size", type=_positive_int, default=DEFAULT_IMAGE_SIZE)
    p.add_argument("--base-features", type=_positive_int, default=16)
    p.add_argument("--overwrite", action="store_true", help="reuse a non-empty --out folder")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError, RuntimeError) as error:
        # segkit's errors name the file and the fix: show them without a traceback.
        print(f"segkit {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
