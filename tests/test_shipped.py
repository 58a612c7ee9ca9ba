"""The trained checkpoint shipped in data/checkpoints: it loads safely and scores what it says."""

from __future__ import annotations

import json

import pytest
import torch

from segkit import load_checkpoint
from segkit.data import SegmentationFolder
from segkit.datasets import DATA_DIR, bundled, shipped_checkpoint
from segkit.train import evaluate


def test_shipped_checkpoint_loads_with_weights_only_and_reaches_its_recorded_iou():
    path = shipped_checkpoint("cats")
    raw = torch.load(path, weights_only=True)  # plain types and tensors only
    assert raw["format"] == "segkit" and raw["optimizer_state"] is None  # lean: weights + config
    model, checkpoint = load_checkpoint(path)
    assert checkpoint["class_names"] == ["_background_", "cat"]
    assert model.config["num_classes"] == 1

    record = json.loads(path.with_suffix(".json").read_text())
    assert record["train_command"].startswith("segkit train ")
    test_set = SegmentationFolder(bundled("cats", "test"), image_size=checkpoint["image_size"])
    assert len(test_set) == 40
    result = evaluate(model, test_set, class_names=checkpoint["class_names"])
    # Same code as `segkit evaluate`; other CPUs may round a few pixels differently.
    assert result["miou"] == pytest.approx(record["test"]["miou"], abs=0.005)
    assert result["miou"] >= 0.85


def test_missing_shipped_checkpoint_names_the_fix():
    with pytest.raises(FileNotFoundError, match="data/README.md"):
        shipped_checkpoint("zebras")


def test_data_folder_stays_small():
    total = sum(p.stat().st_size for p in DATA_DIR.rglob("*") if p.is_file())
    assert total <= 10_000_000, f"data/ holds {total / 1e6:.1f} MB; the course allows 10 MB"
