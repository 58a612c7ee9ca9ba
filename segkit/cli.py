"""The `segkit` command: export, make-data, train, evaluate, predict, demo, fetch-pets, course.

Each subcommand is a thin wrapper over a library function, so anything the CLI does a
notebook can do in one call too. Run `segkit <command> --help` for the options.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_DATA = Path(__file__).resolve().parent.parent / "data"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


# --- export / make-data / fetch-pets -----------------------------------------------------


def cmd_export(args: argparse.Namespace) -> int:
    from segkit.export import export_labelme_folder

    report = export_labelme_folder(args.input_dir, args.output_dir, args.labels,
                                   overwrite=args.overwrite, progress=not args.quiet)
    print(report.summary())
    return 1 if report.failures else 0


def cmd_make_data(args: argparse.Namespace) -> int:
    from segkit.synth import make_dataset

    written = make_dataset(args.out, kind=args.kind, seed=args.seed, overwrite=args.overwrite,
                           progress=not args.quiet)
    print(f"Wrote {len(written)} labelled photos (labelme JSON + JPEG) of the {args.kind} project to {args.out}")
    return 0


def cmd_fetch_pets(args: argparse.Namespace) -> int:
    from segkit.datasets import oxford_pet_cats

    out = oxford_pet_cats(args.root, args.out, split=args.split, download=args.download,
                          limit=args.limit, overwrite=args.overwrite)
    print(f"Wrote the Oxford-IIIT Pet cats ({args.split}) in VOC layout to {out}")
    return 0


# --- train / evaluate / predict ----------------------------------------------------------


def _check_voc_dir(path: Path, what: str) -> None:
    """Fail early, with the fix, when a learner points training at a labelme folder."""
    if not path.is_dir():
        raise SystemExit(f"segkit: {what} {path} does not exist.")
    if not (path / "JPEGImages").is_dir() and any(path.glob("*.json")):
        raise SystemExit(
            f"segkit: {path} holds labelme JSON files, not the VOC layout training reads.\n"
            f"Convert it first:  segkit export {path} {path}-voc --labels {path}/labels.txt\n"
            f"then train on {path}-voc."
        )


def cmd_train(args: argparse.Namespace) -> int:
    from segkit.data import SegmentationFolder, split_folder, train_transforms
    from segkit.model import UNet
    from segkit.train import TrainConfig, fit, seed_everything

    data_dir = Path(args.data_dir)
    _check_voc_dir(data_dir, "DATA_DIR")
    seed_everything(args.seed)
    augment = train_transforms()
    folder_kwargs = dict(image_size=args.image_size, resize=args.resize, cache=True)
    if args.val_dir:
        _check_voc_dir(Path(args.val_dir), "--val-dir")
        train_ds = SegmentationFolder(data_dir, transforms=augment, **folder_kwargs)
        val_ds = SegmentationFolder(args.val_dir, **folder_kwargs)
    elif args.val_fraction > 0:
        train_ds, val_ds = split_folder(data_dir, val_fraction=args.val_fraction, seed=args.seed,
                                        train_transforms=augment, **folder_kwargs)
    else:
        train_ds, val_ds = SegmentationFolder(data_dir, transforms=augment, **folder_kwargs), None

    class_names = train_ds.class_names or ["_background_", "foreground"]
    # Two classes (background + one) -> one sigmoid channel, as in the lesson.
    num_classes = 1 if len(class_names) == 2 and not args.multiclass else len(class_names)
    model = UNet(num_classes=num_classes, base_features=args.base_features, depth=args.depth)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, max_time=args.max_time,
                         device=args.device, seed=args.seed, progress=not args.quiet)
    if args.lr is not None:
        config.lr = args.lr
    history = fit(model, train_ds, val_ds, config, out_dir=args.out, resume=args.resume,
                  class_names=class_names)
    last = history[-1] if history else {}
    print(json.dumps({"run_dir": str(args.out), "epochs": len(history),
                      "val_miou": last.get("val_miou"), "train_loss": last.get("train_loss")}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from segkit.data import SegmentationFolder
    from segkit.train import evaluate, load_checkpoint

    _check_voc_dir(Path(args.data_dir), "DATA_DIR")
    model, ckpt = load_checkpoint(args.checkpoint)
    image_size = args.image_size or ckpt.get("image_size") or 256
    dataset = SegmentationFolder(args.data_dir, image_size=image_size)
    result = evaluate(model, dataset, threshold=args.threshold,
                      class_names=ckpt.get("class_names"))
    print(json.dumps(result, indent=2))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from segkit.predict import predict_folder
    from segkit.train import load_checkpoint

    model, ckpt = load_checkpoint(args.checkpoint)
    image_size = args.image_size or ckpt.get("image_size") or 256
    written = predict_folder(model, args.input, args.out, threshold=args.threshold,
                             alpha=args.alpha, image_size=image_size, overwrite=args.overwrite,
                             progress=not args.quiet)
    print(f"Wrote masks and overlays for {len(written)} photo(s) to {args.out}")
    return 0


# --- demo ----------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole course path on the bundled cats, on CPU in about two minutes."""
    from segkit.data import SegmentationFolder, split_folder, train_transforms
    from segkit.export import export_labelme_folder
    from segkit.model import UNet
    from segkit.predict import predict_folder
    from segkit.train import TrainConfig, evaluate, fit, load_checkpoint, seed_everything

    project = Path(args.data)
    run = Path(args.out)
    if run.exists() and any(run.iterdir()) and not args.overwrite:
        raise SystemExit(f"segkit demo: {run} is not empty. Pass --overwrite to reuse it, "
                         f"or --out to pick another folder.")
    started = time.perf_counter()
    print(f"1/4 export labelme polygons from {project} to masks")
    for split in ("train", "test"):
        report = export_labelme_folder(project / split, run / "data" / split,
                                       project / "labels.txt", overwrite=True, progress=False)
        if report.failures:
            print(report.summary())
            return 1

    print(f"2/4 train a UNet (width {args.base_features}, {args.image_size} px) for {args.epochs} epochs "
          f"(at most {args.max_time:.0f} s)")
    seed_everything(0)
    kwargs = dict(image_size=args.image_size, cache=True)
    # best.pt is picked on a validation split of the training photos; the test photos are only
    # looked at once, at the end (picking by test IoU would flatter the figure).
    train_ds, val_ds = split_folder(run / "data" / "train", val_fraction=0.2, seed=0,
                                    train_transforms=train_transforms(), **kwargs)
    test_ds = SegmentationFolder(run / "data" / "test", **kwargs)
    model = UNet(num_classes=1, base_features=args.base_features)
    config = TrainConfig(epochs=args.epochs, lr=args.lr, max_time=args.max_time, progress=not args.quiet)
    fit(model, train_ds, val_ds, config, out_dir=run / "checkpoints",
        class_names=train_ds.class_names)

    print("3/4 evaluate the best checkpoint on the test split")
    model, ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    metrics = evaluate(model, test_ds, class_names=ckpt.get("class_names"))
    (run / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")

    print("4/4 predict masks and overlays for the test photos")
    predict_folder(model, project / "test", run / "predictions", image_size=args.image_size,
                   overwrite=True, progress=False)
    print(f"test mIoU (cat IoU) = {metrics['miou']:.3f}   "
          f"[{time.perf_counter() - started:.0f} s; overlays in {run / 'predictions'}, "
          f"metrics in {run / 'metrics.json'}]")
    return 0


# --- course ------------------------------------------------------------------------------


def cmd_course(args: argparse.Namespace) -> int:
    from segkit.course import command

    return command(args)


# --- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("export", help="labelme JSON folder -> VOC masks (JPEGImages, SegmentationClass)")
    p.add_argument("input_dir", help="folder of labelme .json files (and their photos)")
    p.add_argument("output_dir", help="where to write the VOC layout (must be empty or new)")
    p.add_argument("--labels", required=True, help="labels.txt: __ignore__, _background_, then one class per line")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty OUTPUT_DIR (replaces only files it writes)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("make-data", help="regenerate the bundled synthetic labelme project")
    p.add_argument("out", help="output folder, e.g. data/cats")
    p.add_argument("--kind", choices=["cats", "pets"], default="cats", help="cats (binary) or pets (cat/dog)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_make_data)

    p = sub.add_parser("fetch-pets", help="Oxford-IIIT Pet cats -> VOC layout (downloads with --download)")
    p.add_argument("root", help="where torchvision keeps (or downloads) the archives")
    p.add_argument("out", help="output folder for the VOC layout")
    p.add_argument("--split", choices=["trainval", "test"], default="trainval")
    p.add_argument("--download", action="store_true", help="download the archives (needs internet, ~800 MB)")
    p.add_argument("--limit", type=_positive_int, default=None, help="keep at most this many cats")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_fetch_pets)

    p = sub.add_parser("train", help="train a UNet on a VOC folder; writes best.pt, last.pt, history.json")
    p.add_argument("data_dir", help="VOC layout: JPEGImages/ + SegmentationClass/ (see `segkit export`)")
    p.add_argument("--out", required=True, help="run folder for checkpoints and history")
    val = p.add_mutually_exclusive_group()
    val.add_argument("--val-dir", help="a separate VOC folder for validation")
    val.add_argument("--val-fraction", type=_fraction, default=0.2, help="hold out this fraction (0: no validation)")
    p.add_argument("--epochs", type=_positive_int, default=30)
    p.add_argument("--max-time", type=float, default=None, help="stop cleanly after this many seconds of training")
    p.add_argument("--image-size", type=_positive_int, default=256)
    p.add_argument("--resize", choices=["stretch", "letterbox"], default="stretch")
    p.add_argument("--batch-size", type=_positive_int, default=4)
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: TrainConfig's)")
    p.add_argument("--base-features", type=_positive_int, default=32)
    p.add_argument("--depth", type=_positive_int, default=4)
    p.add_argument("--multiclass", action="store_true", help="softmax output even for one class")
    p.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--resume", default=None, help="a last.pt to continue from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="mIoU and per-class IoU of a checkpoint on a VOC folder (JSON)")
    p.add_argument("checkpoint")
    p.add_argument("data_dir")
    p.add_argument("--threshold", type=_probability, default=0.5)
    p.add_argument("--image-size", type=_positive_int, default=None, help="default: the checkpoint's")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="palette mask + overlay for a photo or a folder, at each photo's size")
    p.add_argument("checkpoint")
    p.add_argument("input", help="a photo or a folder of photos")
    p.add_argument("--out", required=True)
    p.add_argument("--threshold", type=_probability, default=0.5)
    p.add_argument("--alpha", type=_probability, default=0.3, help="mask opacity in the overlay (lesson: 0.3)")
    p.add_argument("--image-size", type=_positive_int, default=None, help="default: the checkpoint's")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("demo", help="export, train, evaluate and predict on the bundled cats (CPU, ~2 min)")
    p.add_argument("--data", default=str(REPO_DATA / "cats"), help="a labelme project with train/ and test/")
    p.add_argument("--out", default="runs/demo")
    # Lesson 5's CPU configuration: a slim UNet at 128 px for 35 epochs (about 80 s on 2 cores).
    p.add_argument("--epochs", type=_positive_int, default=35)
    p.add_argument("--max-time", type=float, default=300.0, help="stop training after this many seconds at most")
    p.add_argument("--image-size", type=_positive_int, default=128)
    p.add_argument("--base-features", type=_positive_int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    from segkit.course import add_arguments as add_course_arguments

    p = sub.add_parser("course", help="exercises: build them from solutions/, check them, start your own copy")
    add_course_arguments(p)
    p.set_defaults(func=cmd_course)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError, RuntimeError) as error:
        # Library errors already name the file and the fix: show them without a traceback.
        print(f"segkit {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
