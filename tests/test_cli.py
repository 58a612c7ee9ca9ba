"""The `segkit` command end to end: a folder a learner labelled with labelme -> export -> train ->
evaluate -> predict, fine-tuning with --init, and the demo, on small photos made here."""

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from segkit.cli import build_parser, main


def make_labelme_folder(folder, count=6, seed=0):
    """Photos of a red 'cat' polygon on a noisy grey background, with labelme 5-style JSON files."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    (folder / "labels.txt").write_text("__ignore__\n_background_\ncat\n")
    for index in range(count):
        width, height = int(rng.integers(40, 64)), int(rng.integers(40, 64))  # not square, not the network's size
        photo = Image.fromarray(rng.integers(90, 160, size=(height, width, 3), dtype=np.uint8))
        cx, cy, r = width / 2 + rng.uniform(-6, 6), height / 2 + rng.uniform(-6, 6), rng.uniform(9, 14)
        points = [[cx + r * np.cos(a), cy + r * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 9)[:-1]]
        ImageDraw.Draw(photo).polygon([tuple(p) for p in points], fill=(200, 40, 40))
        photo.save(folder / f"cat_{index}.jpg", quality=95)
        record = {"version": "5.5.0", "flags": {},
                  "shapes": [{"label": "cat", "points": points, "group_id": None, "description": "",
                              "shape_type": "polygon", "flags": {}}],
                  "imagePath": f"cat_{index}.jpg", "imageData": None, "imageHeight": height, "imageWidth": width}
        (folder / f"cat_{index}.json").write_text(json.dumps(record))
    return folder


TINY = ["--image-size", "32", "--batch-size", "2", "--base-features", "4", "--quiet"]


@pytest.mark.parametrize("command", ["export", "train", "evaluate", "predict", "demo"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: segkit " + command in capsys.readouterr().out


def test_labelled_folder_end_to_end(tmp_path, capsys):
    photos = make_labelme_folder(tmp_path / "photos")
    voc, run, out = tmp_path / "voc", tmp_path / "run", tmp_path / "overlays"

    assert main(["export", str(photos), str(voc), "--labels", str(photos / "labels.txt"), "--quiet"]) == 0
    assert len(list((voc / "SegmentationClass").glob("*.png"))) == 6

    assert main(["train", str(voc), "--out", str(run), "--epochs", "12", "--val-fraction", "0", "--lr", "0.01",
                 *TINY]) == 0
    assert {"best.pt", "last.pt", "history.json"} <= {p.name for p in run.iterdir()}
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 12 and history[-1]["train_loss"] < history[0]["train_loss"]
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 12 and summary["val_foreground_iou"] is None  # no validation photos

    assert main(["evaluate", str(run / "best.pt"), str(voc)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores["iou"]) == {"_background_", "cat"}
    assert scores["foreground_iou"] == pytest.approx(scores["iou"]["cat"])  # binary: the cat's IoU
    assert scores["miou"] == pytest.approx((scores["iou"]["cat"] + scores["iou"]["_background_"]) / 2)
    # measured at each photo's own size, not at the network's 32x32
    assert scores["pixels"] == sum(np.asarray(Image.open(p)).size // 3 for p in (voc / "JPEGImages").glob("*.jpg"))

    assert main(["predict", str(run), str(photos), "--out", str(out), "--quiet"]) == 0  # a run folder: its best.pt
    for photo in photos.glob("*.jpg"):
        mask = Image.open(out / f"{photo.stem}_mask.png")
        assert mask.mode == "P" and mask.size == Image.open(photo).size  # the photo's own size
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 1}
    # A second run must not overwrite the learner's outputs without --overwrite.
    assert main(["predict", str(run / "best.pt"), str(photos), "--out", str(out), "--quiet"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_init_fine_tunes_from_a_checkpoint_and_takes_its_architecture(tmp_path, capsys):
    photos = make_labelme_folder(tmp_path / "photos", count=4)
    voc = tmp_path / "voc"
    main(["export", str(photos), str(voc), "--labels", str(photos / "labels.txt"), "--quiet"])
    assert main(["train", str(voc), "--out", str(tmp_path / "first"), "--epochs", "2", "--val-fraction", "0",
                 "--image-size", "48", "--base-features", "6", "--quiet"]) == 0
    first = torch.load(tmp_path / "first" / "best.pt", weights_only=True)
    # no --image-size, no --base-features: both come from the checkpoint; lr falls to the fine-tuning default
    assert main(["train", str(voc), "--out", str(tmp_path / "tuned"), "--epochs", "1", "--val-fraction", "0",
                 "--init", str(tmp_path / "first" / "best.pt"), "--quiet"]) == 0
    tuned = torch.load(tmp_path / "tuned" / "last.pt", weights_only=True)
    assert tuned["model_config"] == first["model_config"] and tuned["image_size"] == [48, 48]
    assert tuned["train_config"]["lr"] == pytest.approx(1e-4)


def test_init_refuses_a_checkpoint_of_other_classes(tmp_path, capsys):
    photos = make_labelme_folder(tmp_path / "photos", count=4)
    voc = tmp_path / "voc"
    main(["export", str(photos), str(voc), "--labels", str(photos / "labels.txt"), "--quiet"])
    main(["train", str(voc), "--out", str(tmp_path / "first"), "--epochs", "1", "--val-fraction", "0", *TINY])
    (voc / "class_names.txt").write_text("_background_\ndog")
    capsys.readouterr()
    assert main(["train", str(voc), "--out", str(tmp_path / "tuned"), "--epochs", "1", "--val-fraction", "0",
                 "--init", str(tmp_path / "first" / "best.pt"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "class names" in error and "cat" in error and "dog" in error


def test_training_on_a_labelme_folder_says_export_first(tmp_path, capsys):
    photos = make_labelme_folder(tmp_path / "photos", count=2)
    assert main(["train", str(photos), "--out", str(tmp_path / "run")]) == 2
    assert "segkit export" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "d", "--out", "r", "--val-fraction", "1.5"],
                                  ["predict", "c", "i", "--out", "o", "--threshold", "2"],
                                  ["train", "d", "--out", "r", "--epochs", "0"],
                                  ["evaluate", "c", "d", "--image-size", "-3"]])
def test_bad_arguments_are_rejected_before_anything_runs(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2 and "must be" in capsys.readouterr().err


def test_export_failure_gives_nonzero_exit(tmp_path, capsys):
    photos = make_labelme_folder(tmp_path / "photos", count=2)
    (photos / "broken.json").write_text("{not json")
    code = main(["export", str(photos), str(tmp_path / "voc"), "--labels", str(photos / "labels.txt"), "--quiet"])
    assert code == 1
    assert "broken.json" in capsys.readouterr().out
    assert len(list((tmp_path / "voc" / "SegmentationClass").glob("*.png"))) == 2  # the others still exported


def test_demo_runs_the_whole_path_and_compares_with_the_shipped_model(tmp_path, capsys):
    project = tmp_path / "project"
    make_labelme_folder(project / "train", count=5, seed=1)
    make_labelme_folder(project / "test", count=2, seed=2)
    (project / "labels.txt").write_text("__ignore__\n_background_\ncat\n")
    run = tmp_path / "run"
    assert main(["demo", "--data", str(project), "--out", str(run), "--max-time", "2", "--epochs", "2",
                 "--image-size", "32", "--base-features", "4", "--quiet"]) == 0
    scores = json.loads((run / "metrics.json").read_text())
    assert set(scores) == {"trained", "shipped"}
    assert len(list((run / "predictions").glob("*_overlay.jpg"))) == 2
    assert len(list((run / "predictions-shipped").glob("*_overlay.jpg"))) == 2
    printed = capsys.readouterr().out
    assert f"{scores['trained']['foreground_iou']:.3f}" in printed and f"{scores['shipped']['foreground_iou']:.3f}" in printed
    assert "trained here (2 epochs in " in printed  # the time it took, not the budget it was given
    # The demo never silently reuses (and overwrites) a learner's folder.
    assert main(["demo", "--data", str(project), "--out", str(run)]) == 2
    assert "--overwrite" in capsys.readouterr().err
