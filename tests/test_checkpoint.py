"""Tests for segkit.checkpoint: save_checkpoint, read_checkpoint, load_checkpoint, load_weights_for_finetuning.

Checkpoints are plain dicts written atomically and read with weights_only=True; every file
that is not one gets an error that says what the file is and what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from segkit.checkpoint import (VERSION, load_checkpoint, load_weights_for_finetuning, read_checkpoint,
                               save_checkpoint)
from segkit.model import UNet

NAMES = ["_background_", "cat"]


def tiny_unet(seed: int = 0, **overrides) -> UNet:
    torch.manual_seed(seed)
    model = UNet(**{"base_features": 4, "depth": 2, **overrides})
    # non-trivial BatchNorm running statistics, as after training
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.num_batches_tracked.fill_(7)
    return model


def photos(n: int = 2, size: int = 32) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(5))


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


# ----------------------------------------------------------------------------- save and load round trip

def test_load_checkpoint_rebuilds_the_saved_model_in_eval_mode(tmp_path):
    model = tiny_unet(num_classes=3, up_mode="bilinear").train()
    save_checkpoint(tmp_path / "m.pt", model, class_names=["_background_", "cat", "dog"], image_size=[32, 32],
                    epoch=4)
    loaded, checkpoint = load_checkpoint(tmp_path / "m.pt")
    assert isinstance(loaded, UNet) and not loaded.training
    assert loaded.config == model.config
    assert_same_state(loaded.state_dict(), model.state_dict())
    model.eval()
    with torch.inference_mode():
        assert torch.equal(loaded(photos()), model(photos()))
    assert checkpoint["class_names"] == ["_background_", "cat", "dog"]
    assert checkpoint["image_size"] == [32, 32] and checkpoint["epoch"] == 4
    assert checkpoint["format"] == "segkit" and checkpoint["version"] == VERSION


def test_save_returns_the_dict_it_wrote_and_creates_folders(tmp_path):
    model = tiny_unet()
    path = tmp_path / "run" / "deeper" / "best.pt"
    written = save_checkpoint(path, model, epoch=2, history=[{"epoch": 1, "val_miou": None}])
    read = torch.load(path, weights_only=True)
    assert read.keys() == written.keys()
    assert read["history"] == [{"epoch": 1, "val_miou": None}] and read["model_config"] == model.config
    assert_same_state(read["model_state"], written["model_state"])


def test_saved_tensors_are_contiguous_cpu_copies(tmp_path):
    """A channels_last (or GPU) model saves tensors any machine can load in the default layout."""
    model = tiny_unet().to(memory_format=torch.channels_last)
    assert not model.inc.block[0].weight.is_contiguous()
    save_checkpoint(tmp_path / "m.pt", model)
    state = torch.load(tmp_path / "m.pt", weights_only=True)["model_state"]
    assert all(t.is_contiguous() and t.device.type == "cpu" for t in state.values())
    assert_same_state(state, {k: v.contiguous() for k, v in model.state_dict().items()})
    # the saved copy is detached from the model: training on does not change it
    with torch.no_grad():
        model.inc.block[0].weight.add_(1.0)
    assert not torch.equal(state["inc.block.0.weight"], model.inc.block[0].weight.contiguous())


def test_load_checkpoint_puts_the_model_on_the_device(tmp_path):
    save_checkpoint(tmp_path / "m.pt", tiny_unet())
    loaded, _ = load_checkpoint(tmp_path / "m.pt", device="cpu")
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_model_saves_a_checkpoint_the_cpu_loads(tmp_path):
    model = tiny_unet().cuda()
    save_checkpoint(tmp_path / "m.pt", model)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}
    assert_same_state(loaded.state_dict(), {k: v.cpu() for k, v in model.state_dict().items()})
    on_gpu, _ = load_checkpoint(tmp_path / "m.pt", device="cuda")
    assert {p.device.type for p in on_gpu.parameters()} == {"cuda"}


# ----------------------------------------------------------------------------- atomic, plain writes

def test_a_failing_torch_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, tiny_unet(), epoch=1)
    before = path.read_bytes()

    def crash(obj, file, *args, **kwargs):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, tiny_unet(seed=1), epoch=2)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
    assert read_checkpoint(path)["epoch"] == 1


def test_keyboard_interrupt_while_writing_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, tiny_unet(), epoch=1)

    def interrupted(obj, file, *args, **kwargs):
        file.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, tiny_unet(), epoch=2)
    monkeypatch.undo()
    assert read_checkpoint(path)["epoch"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_saving_replaces_an_existing_checkpoint(tmp_path):
    save_checkpoint(tmp_path / "last.pt", tiny_unet(), epoch=1)
    save_checkpoint(tmp_path / "last.pt", tiny_unet(seed=1), epoch=2)
    loaded, checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint["epoch"] == 2
    assert_same_state(loaded.state_dict(), tiny_unet(seed=1).state_dict())


@pytest.mark.parametrize("extra, where, kind", [
    ({"out_dir": Path("runs/cats")}, r"checkpoint\['out_dir'\]", "PosixPath|WindowsPath"),
    ({"score": np.float64(0.5)}, r"checkpoint\['score'\]", "numpy"),
    ({"history": [{"epoch": 1, "iou": np.float32(0.5)}]}, r"checkpoint\['history'\]\[0\]\['iou'\]", "numpy"),
    ({"sizes": {(32, 32): 1}}, r"checkpoint\['sizes'\] has a key \(32, 32\)", "tuple"),
    ({"names": {"cat", "dog"}}, r"checkpoint\['names'\]", "set"),
])
def test_values_weights_only_cannot_read_are_refused_before_writing(tmp_path, extra, where, kind):
    path = tmp_path / "last.pt"
    save_checkpoint(path, tiny_unet(), epoch=1)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=where) as error:
        save_checkpoint(path, tiny_unet(), **extra)
    assert any(word in str(error.value) for word in kind.split("|"))
    assert path.read_bytes() == before


def test_optimizer_state_and_plain_values_round_trip(tmp_path):
    model = tiny_unet()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(photos()).mean().backward()
    optimizer.step()
    extra = {"optimizer_state": optimizer.state_dict(), "train_config": {"device": "cpu", "lr": 1e-3, "max_time": None},
             "flags": (True, False), "dtype": torch.bfloat16, "where": torch.device("cpu")}
    save_checkpoint(tmp_path / "last.pt", model, **extra)
    checkpoint = read_checkpoint(tmp_path / "last.pt")
    assert checkpoint["train_config"] == extra["train_config"] and checkpoint["flags"] == (True, False)
    assert checkpoint["dtype"] is torch.bfloat16 and checkpoint["where"] == torch.device("cpu")
    restored = torch.optim.AdamW(tiny_unet(seed=3).parameters(), lr=1e-3)
    restored.load_state_dict(checkpoint["optimizer_state"])
    assert torch.equal(restored.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


# ----------------------------------------------------------------------------- weights_only and run folders

def test_reading_never_unpickles_code(tmp_path):
    """A pickle that runs code when unpickled is refused by weights_only loading, and its code does not run."""
    target = tmp_path / "created_by_unpickling"

    class Payload:
        def __reduce__(self):
            return (os.makedirs, (str(target),))

    torch.save({"format": "segkit", "version": 1, "evil": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="pickled Python objects"):
        read_checkpoint(tmp_path / "evil.pt")
    assert not target.exists()
    torch.load(tmp_path / "evil.pt", weights_only=False)  # the payload is real: a plain load runs it
    assert target.is_dir()


def test_a_run_folder_means_its_best_pt_then_its_last_pt(tmp_path):
    run = tmp_path / "run"
    save_checkpoint(run / "last.pt", tiny_unet(), epoch=5)
    assert read_checkpoint(run)["epoch"] == 5  # only last.pt: a run stopped before any best.pt
    save_checkpoint(run / "best.pt", tiny_unet(seed=1), epoch=3)
    assert read_checkpoint(run)["epoch"] == 3
    model, checkpoint = load_checkpoint(str(run))  # str paths too
    assert checkpoint["epoch"] == 3
    assert_same_state(model.state_dict(), tiny_unet(seed=1).state_dict())


def test_an_empty_run_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No checkpoint at .*best\.pt") as error:
        read_checkpoint(tmp_path)
    assert "out_dir=RUN_DIR" in str(error.value)  # says where checkpoints come from


def test_a_missing_file_lists_the_checkpoints_beside_it(tmp_path):
    save_checkpoint(tmp_path / "best.pt", tiny_unet())
    save_checkpoint(tmp_path / "last.pt", tiny_unet())
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(FileNotFoundError) as error:
        load_checkpoint(tmp_path / "bets.pt")
    message = str(error.value)
    assert "No checkpoint at" in message and "bets.pt" in message
    assert "holds: best.pt, last.pt." in message and "notes.txt" not in message


def test_a_missing_file_in_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="No checkpoint at") as error:
        read_checkpoint(tmp_path / "nowhere" / "best.pt")
    assert "holds" not in str(error.value)


# ----------------------------------------------------------------------------- files that are not checkpoints

def test_a_pickled_whole_model_says_what_it_is_and_how_to_convert_it(tmp_path):
    path = tmp_path / "lesson_model.pth"
    torch.save(tiny_unet(), path)  # the source lesson's torch.save(model)
    with pytest.raises(ValueError, match=r"torch\.save\(model\)") as error:
        load_checkpoint(path)
    message = str(error.value)
    assert str(path) in message and "weights_only" in message and "save_checkpoint" in message


def test_a_bare_state_dict(tmp_path):
    path = tmp_path / "state_dict.pt"
    torch.save(tiny_unet().state_dict(), path)
    with pytest.raises(ValueError, match="not a segkit checkpoint") as error:
        load_checkpoint(path)
    assert "bare state_dict" in str(error.value) and "load_state_dict" in str(error.value)


@pytest.mark.parametrize("content", [{"epoch": 3}, [1, 2], {"format": "other", "version": 1}])
def test_other_torch_files_are_not_segkit_checkpoints(tmp_path, content):
    torch.save(content, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a segkit checkpoint"):
        read_checkpoint(tmp_path / "other.pt")


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.0])
def test_a_truncated_file(tmp_path, keep):
    path = tmp_path / "last.pt"
    save_checkpoint(path, tiny_unet())
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match="cut short") as error:
        read_checkpoint(path)
    assert str(path) in str(error.value)


def test_a_file_that_is_not_a_pytorch_file(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a PyTorch file") as error:
        read_checkpoint(path)
    assert str(path) in str(error.value) and "torch.save(model)" not in str(error.value)


def test_a_checkpoint_from_a_newer_segkit(tmp_path):
    path = tmp_path / "future.pt"
    checkpoint = save_checkpoint(path, tiny_unet())
    torch.save({**checkpoint, "version": VERSION + 1}, path)
    with pytest.raises(ValueError, match=f"newer segkit \\(checkpoint version {VERSION + 1}\\): upgrade"):
        load_checkpoint(path)


# ----------------------------------------------------------------------------- fine-tuning

def test_finetuning_copies_the_weights(tmp_path):
    save_checkpoint(tmp_path / "best.pt", tiny_unet(seed=1), class_names=NAMES, epoch=9)
    model = tiny_unet(seed=2)
    checkpoint = load_weights_for_finetuning(model, tmp_path / "best.pt", NAMES)
    assert checkpoint["epoch"] == 9
    assert_same_state(model.state_dict(), tiny_unet(seed=1).state_dict())
    # unknown class names on either side are not a mismatch
    load_weights_for_finetuning(tiny_unet(), tmp_path / "best.pt", None)
    save_checkpoint(tmp_path / "nameless.pt", tiny_unet(seed=1))
    load_weights_for_finetuning(tiny_unet(), tmp_path / "nameless.pt", ["_background_", "dog"])


@pytest.mark.parametrize("ours, names, expected", [
    ({"num_classes": 3}, NAMES, ["num_classes: checkpoint 1, this model 3"]),
    ({"base_features": 8}, NAMES, ["base_features: checkpoint 4, this model 8"]),
    ({"in_channels": 1}, NAMES, ["in_channels: checkpoint 3, this model 1"]),
    ({"depth": 3, "up_mode": "bilinear"}, NAMES,
     ["depth: checkpoint 2, this model 3", "up_mode: checkpoint 'transpose', this model 'bilinear'"]),
    ({}, ["_background_", "dog"], ["class names: checkpoint ['_background_', 'cat'], this data ['_background_', 'dog']"]),
    ({}, ["cat", "_background_"], ["class names: checkpoint"]),
])
def test_finetuning_refuses_a_checkpoint_that_does_not_fit_and_says_what_differs(tmp_path, ours, names, expected):
    save_checkpoint(tmp_path / "best.pt", tiny_unet(seed=1), class_names=NAMES)
    model = tiny_unet(seed=2, **ours)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="Cannot start from") as error:
        load_weights_for_finetuning(model, tmp_path / "best.pt", names)
    for difference in expected:
        assert difference in str(error.value)
    assert_same_state(model.state_dict(), before)  # untouched
