"""The data shipped in data/: the trained models load safely and still score what their records say,
and the folder stays within its size budget."""

from __future__ import annotations

import json

import pytest
import torch

from segkit import SegmentationFolder, evaluate, load_checkpoint
from segkit.datasets import DATA_DIR, bundled, shipped_checkpoint

# How tools/make_checkpoint.py names each held-out set in the record, and where its photos are.
SETS = {"cats/test": ("cats", "test", None), "cats/test feral": ("cats", "test", "feral"),
        "cats/test oxford": ("cats", "test", "oxford"), "my_cats": ("my_cats", None, None),
        "chelsea": ("chelsea", None, None), "pets/test": ("pets", "test", None)}


@pytest.mark.parametrize("kind", ["cats", "pets"])
def test_shipped_model_loads_with_weights_only_and_scores_its_record(kind):
    path = shipped_checkpoint(kind)
    raw = torch.load(path, weights_only=True)  # plain types and tensors only: no pickled code
    assert raw["format"] == "segkit" and "optimizer_state" not in raw  # weights and config, nothing to resume
    assert path.stat().st_size <= 8_000_000
    model, checkpoint = load_checkpoint(path)
    assert not model.training
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["commands"][-1].startswith("segkit train ") and record["scores"]
    names = {"cats": ["_background_", "cat"], "pets": ["_background_", "cat", "dog"]}[kind]
    assert checkpoint["class_names"] == names
    for name, recorded in record["scores"].items():
        project, split, prefix = SETS[name]
        dataset = SegmentationFolder(bundled(project, split), checkpoint["image_size"])
        if prefix is not None:
            dataset = SegmentationFolder(dataset.root, checkpoint["image_size"],
                                         stems=[s for s in dataset.stems if s.startswith(prefix)])
        scores = evaluate(model, dataset)
        # The same code as the record's; another CPU may round a few pixels differently.
        assert scores["foreground_iou"] == pytest.approx(recorded["foreground_iou"], abs=0.005), name
        assert scores["iou"] == pytest.approx(recorded["iou"], abs=0.005), name


def test_the_shipped_models_never_trained_on_their_judges():
    record = json.loads((DATA_DIR / "sources.json").read_text())
    held_out = {stem for key in ("cats/test", "pets/test", "my_cats") for stem in record["splits"][key]["stems"]}
    train = {stem for key in ("cats/train", "pets/train") for stem in record["splits"][key]["stems"]}
    assert held_out and not held_out & train
    assert record["pool"]["cats"]["photos"] == 1115 and record["pool"]["pets"]["photos"] == 413
    for kind in ("cats", "pets"):
        shipped = json.loads(shipped_checkpoint(kind).with_suffix(".json").read_text())
        assert shipped["pool_photos"] == record["pool"][kind]["photos"]


def test_missing_shipped_checkpoint_names_the_fix():
    with pytest.raises(FileNotFoundError, match="data/README.md"):
        shipped_checkpoint("zebras")


def test_data_folder_stays_within_its_budget():
    total = sum(p.stat().st_size for p in DATA_DIR.rglob("*") if p.is_file())
    assert total <= 20_000_000, f"data/ holds {total / 1e6:.1f} MB; the course allows 20 MB"
