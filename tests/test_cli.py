"""The `segkit` command end to end: a folder a learner labelled with labelme -> export ->
train -> evaluate -> predict, on a few small photos made here."""

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
        width, height = int(rng.integers(40, 64)), int(rng.integers(40, 64))  # not square, not 256
        pixels = rng.integers(90, 160, size=(height, width, 3), dtype=np.uint8)
        photo = Image.fromarray(pixels)
        cx, cy, r = width / 2 + rng.uniform(-6, 6), height / 2 + rng.uniform(-6, 6), rng.uniform(9, 14)
        points = [[cx + r * np.cos(a), cy + r * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 9)[:-1]]
        ImageDraw.Draw(photo).polygon([tuple(p) for p in points], fill=(200, 40, 40))
        photo.save(folder / f"cat_{index}.jpg", quality=95)
        record = {
            "version": "5.4.1", "flags": {},
            "shapes": [{"label": "cat", "points": points, "group_id": None, "description": "",
                        "shape_type": "polygon", "flags": {}}],
            "imagePath": f"cat_{index}.jpg", "imageData": None,
            "imageHeight": height, "imageWidth": width,
        }
        (folder / f"cat_{index}.json").write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize("command", ["export", "make-data", "fetch-pets", "train", "evaluate", "predict", "demo"])
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

    assert main(["train", str(voc), "--out", str(run), "--epochs", "12", "--image-size", "32",
                 "--batch-size", "2", "--base-features", "4", "--depth", "2", "--val-fraction", "0",
                 "--lr", "0.01", "--quiet"]) == 0
    assert {"best.pt", "last.pt", "history.json"} <= {p.name for p in run.iterdir()}
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 12 and history[-1]["train_loss"] < history[0]["train_loss"]
    capsys.readouterr()

    assert main(["evaluate", str(run / "best.pt"), str(voc)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert 0.0 <= metrics["miou"] <= 1.0 and len(metrics["iou"]) == 2
    assert metrics["miou"] == pytest.approx(metrics["iou"][1])  # binary: mIoU is the cat's IoU

    assert main(["predict", str(run / "best.pt"), str(photos), "--out", str(out), "--quiet"]) == 0
    for photo in photos.glob("*.jpg"):
        mask = Image.open(out / f"{photo.stem}_mask.png")
        assert mask.mode == "P" and mask.size == Image.open(photo).size  # the photo's own size
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 1}
    # A second run must not overwrite the learner's outputs without --overwrite.
    assert main(["predict", str(run / "best.pt"), str(photos), "--out", str(out), "--quiet"]) == 2


def test_training_on_a_labelme_folder_says_export_first(tmp_path):
    photos = make_labelme_folder(tmp_path / "photos", count=2)
    with pytest.raises(SystemExit, match="segkit export"):
        main(["train", str(photos), "--out", str(tmp_path / "run")])


def test_bad_arguments_are_rejected():
    parser = build_parser()
    for argv in (["train", "d", "--out", "r", "--val-fraction", "1.5"],
                 ["predict", "c", "i", "--out", "o", "--threshold", "2"],
                 ["train", "d", "--out", "r", "--epochs", "0"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)


def test_export_failure_gives_nonzero_exit(tmp_path, capsys):
    photos = make_labelme_folder(tmp_path / "photos", count=2)
    (photos / "broken.json").write_text("{not json")
    code = main(["export", str(photos), str(tmp_path / "voc"), "--labels", str(photos / "labels.txt"), "--quiet"])
    assert code == 1
    assert "broken.json" in capsys.readouterr().out
    assert len(list((tmp_path / "voc" / "SegmentationClass").glob("*.png"))) == 2  # the others still exported


def test_checkpoint_loads_with_weights_only(tmp_path):
    photos = make_labelme_folder(tmp_path / "photos", count=4)
    voc, run = tmp_path / "voc", tmp_path / "run"
    main(["export", str(photos), str(voc), "--labels", str(photos / "labels.txt"), "--quiet"])
    main(["train", str(voc), "--out", str(run), "--epochs", "1", "--image-size", "32",
          "--base-features", "4", "--depth", "2", "--quiet"])
    checkpoint = torch.load(run / "best.pt", weights_only=True)
    assert checkpoint["model_config"]["num_classes"] == 1
    assert checkpoint["class_names"] == ["_background_", "cat"]


def test_demo_runs_the_whole_path(tmp_path, capsys):
    project = tmp_path / "project"
    make_labelme_folder(project / "train", count=5, seed=1)
    make_labelme_folder(project / "test", count=2, seed=2)
    (project / "labels.txt").write_text("__ignore__\n_background_\ncat\n")
    run = tmp_path / "run"
    assert main(["demo", "--data", str(project), "--out", str(run), "--max-time", "2",
                 "--epochs", "2", "--image-size", "32", "--quiet"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["miou"] <= 1.0
    assert len(list((run / "predictions").glob("*_overlay.jpg"))) == 2
    assert "test mIoU" in capsys.readouterr().out
    # The demo never silently reuses (and overwrites) a learner's folder.
    with pytest.raises(SystemExit, match="--overwrite"):
        main(["demo", "--data", str(project), "--out", str(run)])
