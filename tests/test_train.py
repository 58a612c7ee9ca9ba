"""Tests for segkit.train: fit, checkpoints, resume, Ctrl-C, time budget, seeding, devices.

Everything runs on the CPU with a tiny UNet (base_features=4, depth=2) on 32x32 images of
bright squares on dark noise, a task such a network learns in a few dozen steps.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from segkit import train as train_module
from segkit.model import UNet
from segkit.train import (TrainConfig, choose_precision, evaluate, fit, load_checkpoint, lr_factor,
                          save_checkpoint, seed_everything, select_device)

SIZE = 32


class Squares(Dataset):
    """(image (3, 32, 32) float in [0, 1], mask (32, 32) int64): a bright square is class 1."""

    def __init__(self, n: int, seed: int = 0, mask_as_float: bool = False, label: int = 1) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.items = []
        for _ in range(n):
            image = torch.rand(3, SIZE, SIZE, generator=generator) * 0.4
            mask = torch.zeros(SIZE, SIZE, dtype=torch.long)
            side = int(torch.randint(8, 17, (1,), generator=generator))
            top, left = torch.randint(0, SIZE - side, (2,), generator=generator).tolist()
            mask[top:top + side, left:left + side] = label
            image[:, mask > 0] += 0.5
            self.items.append((image.clamp(0, 1), mask.float().unsqueeze(0) if mask_as_float else mask))
        self.class_names = ["_background_", "square"]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int):
        return self.items[index]


def tiny_unet(num_classes: int = 1) -> UNet:
    return UNet(num_classes=num_classes, base_features=4, depth=2)


def config(**overrides) -> TrainConfig:
    values = dict(epochs=4, batch_size=4, lr=1e-2, device="cpu", amp="off", channels_last=False, progress=False)
    values.update(overrides)
    return TrainConfig(**values)


def run(out_dir=None, seed: int = 0, train_n: int = 12, val: bool = True, **overrides) -> tuple[UNet, list[dict]]:
    seed_everything(seed)
    model = tiny_unet()
    history = fit(model, Squares(train_n), Squares(8, seed=1) if val else None, config(seed=seed, **overrides),
                  out_dir=out_dir)
    return model, history


# ----------------------------------------------------------------------------- end to end

def test_fit_loss_falls_and_iou_rises(tmp_path):
    """bf16 autocast + channels_last (the CPU 'auto' choice where bf16 is native) end to end."""
    model, history = run(tmp_path, epochs=12, train_n=16, amp="bf16", channels_last=True)
    assert [row["epoch"] for row in history] == list(range(1, 13))
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert history[-1]["val_miou"] > history[0]["val_miou"] + 0.2
    assert history[-1]["val_miou"] > 0.5
    for row in history:
        assert set(row) == {"epoch", "train_loss", "val_loss", "val_miou", "lr", "seconds", "images_per_second"}
        assert row["seconds"] > 0 and row["images_per_second"] > 0
    # the model comes back in fp32 and the default memory layout, BatchNorm statistics finite
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.inc.block[0].weight.is_contiguous()
    assert all(torch.isfinite(b).all() for b in model.buffers())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "history.json", "last.pt"]
    assert json.loads((tmp_path / "history.json").read_text()) == history


def test_fit_accepts_dataloaders_and_float_channel_masks():
    seed_everything(0)
    model = tiny_unet()
    loader = DataLoader(Squares(8, mask_as_float=True), batch_size=4, shuffle=True)
    history = fit(model, loader, Squares(4, seed=1, mask_as_float=True), config(epochs=2))
    assert len(history) == 2 and all(math.isfinite(row["train_loss"]) for row in history)
    assert history[-1]["val_miou"] is not None


def test_fit_rejects_masks_with_classes_the_model_lacks():
    seed_everything(0)
    with pytest.raises(ValueError, match="num_classes=1"):
        fit(tiny_unet(), Squares(4, label=2), None, config(epochs=1))


def test_fit_multiclass_defaults_to_ce_dice_and_reports_miou():
    seed_everything(0)
    model = tiny_unet(num_classes=3)
    history = fit(model, Squares(8, label=2), Squares(4, seed=1, label=2), config(epochs=2))
    assert 0.0 <= history[-1]["val_miou"] <= 1.0


# ----------------------------------------------------------------------------- checkpoints

PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def assert_plain(value, where="checkpoint"):
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) in (str, int), f"{where}: key {key!r}"
            assert_plain(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        for index, item in enumerate(value):
            assert_plain(item, f"{where}[{index}]")
    else:
        assert type(value) in PLAIN or isinstance(value, torch.Tensor), f"{where} is {type(value)}"


def test_checkpoint_holds_plain_types_and_rebuilds_the_model(tmp_path):
    model, history = run(tmp_path, epochs=2)
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=True)
    assert_plain(checkpoint)
    assert checkpoint["format"] == "segkit" and checkpoint["version"] == 1
    assert checkpoint["epoch"] == 2
    assert checkpoint["model_config"] == model.config
    assert checkpoint["history"] == history
    assert checkpoint["metrics"] == history[-1]
    assert checkpoint["train_config"] == asdict(config(epochs=2))
    assert checkpoint["class_names"] == ["_background_", "square"]
    assert checkpoint["image_size"] == SIZE
    for key in ("model_state", "optimizer_state", "scheduler_state"):
        assert key in checkpoint

    loaded, loaded_checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert not loaded.training
    assert loaded_checkpoint["epoch"] == 2
    images = torch.stack([Squares(2, seed=5)[i][0] for i in range(2)])
    model.eval()
    with torch.inference_mode():
        assert torch.equal(loaded(images), model(images))
    # a run folder means its best.pt
    _, from_folder = load_checkpoint(tmp_path)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert from_folder["epoch"] == best["epoch"]
    # best.pt is for predicting: weights and config, no optimizer state (last.pt has it)
    assert best["optimizer_state"] is None and best["model_config"] == model.config
    assert (tmp_path / "best.pt").stat().st_size < 0.6 * (tmp_path / "last.pt").stat().st_size


def test_save_checkpoint_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"format": "segkit", "value": torch.tensor([1.0])})
    before = path.read_bytes()

    # refused before writing: a value weights_only loading could not read back
    with pytest.raises(TypeError, match=r"checkpoint\['where'\].*PosixPath|WindowsPath"):
        save_checkpoint(path, {"where": tmp_path})
    with pytest.raises(TypeError, match="numpy"):
        save_checkpoint(path, {"score": np.float64(0.5)})

    # a crash in the middle of writing leaves the old file and no temp file behind
    real_save = torch.save

    def crash(obj, file):
        file.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"format": "segkit", "value": torch.tensor([2.0])})
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert torch.load(path, weights_only=True)["value"].item() == 1.0


def test_best_checkpoint_follows_val_miou_or_train_loss(tmp_path):
    _, history = run(tmp_path / "val", epochs=5)
    best = torch.load(tmp_path / "val" / "best.pt", weights_only=True)
    top = max(row["val_miou"] for row in history)
    first_top = next(row for row in history if row["val_miou"] == top)
    # the first epoch reaching the top mIoU, unless a later tie has a lower validation loss
    ties = [row for row in history if row["val_miou"] == top]
    assert best["epoch"] == min(ties, key=lambda row: (row["val_loss"], row["epoch"]))["epoch"]
    assert best["metrics"]["val_miou"] == first_top["val_miou"]

    _, history = run(tmp_path / "noval", epochs=5, val=False)
    best = torch.load(tmp_path / "noval" / "best.pt", weights_only=True)
    assert all(row["val_miou"] is None for row in history)
    assert best["epoch"] == min(history, key=lambda row: row["train_loss"])["epoch"]


# ----------------------------------------------------------------------------- resume and Ctrl-C

class InterruptAt:
    """The default loss, raising KeyboardInterrupt at the `at`-th training step (0-based; validation calls,
    made without gradients, are not counted)."""

    def __init__(self, at: int) -> None:
        self.loss = train_module.default_loss(1)
        self.calls, self.at = 0, at

    def __call__(self, logits, target):
        if logits.requires_grad:
            self.calls += 1
            if self.calls - 1 == self.at:
                raise KeyboardInterrupt
        return self.loss(logits, target)


class InterruptingSquares(Squares):
    """Squares whose `at`-th item fetch (0-based) raises KeyboardInterrupt, before any forward pass."""

    def __init__(self, n: int, at: int) -> None:
        super().__init__(n)
        self.fetches, self.at = 0, at

    def __getitem__(self, index: int):
        self.fetches += 1
        if self.fetches - 1 == self.at:
            raise KeyboardInterrupt
        return super().__getitem__(index)


def test_interrupt_then_resume_equals_an_uninterrupted_run(tmp_path, capsys):
    _, straight = run(tmp_path / "straight", epochs=4)
    straight_model = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model_state"]

    # 12 images, batch 4 -> 3 steps per epoch; Ctrl-C arrives while loading the first batch of epoch 3
    seed_everything(0)
    model = tiny_unet()
    partial = fit(model, InterruptingSquares(12, at=2 * 12), Squares(8, seed=1), config(epochs=4),
                  out_dir=tmp_path / "resumed")
    assert [row["epoch"] for row in partial] == [1, 2]
    assert "last.pt" in capsys.readouterr().err  # the learner is told where the checkpoint is
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["epoch"] == 2

    seed_everything(123)  # a different fresh model: everything must come from the checkpoint
    resumed = fit(tiny_unet(), Squares(12), Squares(8, seed=1), config(epochs=4), out_dir=tmp_path / "resumed",
                  resume=True)
    assert [row["epoch"] for row in resumed] == [1, 2, 3, 4]
    for key in ("train_loss", "val_loss", "val_miou", "lr"):
        assert [row[key] for row in resumed] == [row[key] for row in straight], key
    last = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    for name, tensor in straight_model.items():
        assert torch.equal(last["model_state"][name], tensor), name
    assert last["optimizer_state"]["state"][0]["step"].item() == 4 * 3
    assert last["scheduler_state"]["step"] == 4 * 3


def test_keyboard_interrupt_mid_step_keeps_last_pt(tmp_path):
    """A KeyboardInterrupt raised inside a step (e.g. a second Ctrl-C) still saves and returns."""
    seed_everything(0)
    history = fit(tiny_unet(), Squares(12), Squares(8, seed=1), config(epochs=4), out_dir=tmp_path,
                  loss_fn=InterruptAt(4))
    assert [row["epoch"] for row in history] == [1]
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert last["epoch"] == 1 and last["history"] == history
    assert last["optimizer_state"]["state"][0]["step"].item() == 4  # 3 steps of epoch 1, 1 of epoch 2
    seed_everything(0)
    assert fit(tiny_unet(), Squares(4), None, config(epochs=2), loss_fn=InterruptAt(0)) == []  # no out_dir


def test_resume_a_finished_run_returns_its_history(tmp_path):
    _, history = run(tmp_path, epochs=2)
    seed_everything(0)
    again = fit(tiny_unet(), Squares(12), Squares(8, seed=1), config(epochs=2), out_dir=tmp_path, resume=True)
    assert again == history


def test_resume_errors(tmp_path):
    with pytest.raises(ValueError, match="out_dir"):
        fit(tiny_unet(), Squares(4), None, config(epochs=1), resume=True)
    run(tmp_path, epochs=1)
    with pytest.raises(ValueError, match="base_features"):
        fit(UNet(base_features=8, depth=2), Squares(4), None, config(epochs=2), resume=tmp_path / "last.pt")


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signal handlers need the main thread")
def test_ctrl_c_finishes_the_current_step_and_keeps_last_pt(tmp_path):
    """A real SIGINT during step 5 (epoch 2): that step completes, then training stops."""
    loss = train_module.default_loss(1)
    calls = []

    def loss_fn(logits, target):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return loss(logits, target)

    handler_before = signal.getsignal(signal.SIGINT)
    seed_everything(0)
    history = fit(tiny_unet(), Squares(12), None, config(epochs=4), out_dir=tmp_path, loss_fn=loss_fn)
    assert signal.getsignal(signal.SIGINT) is handler_before
    assert len(calls) == 5 and [row["epoch"] for row in history] == [1]
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert last["epoch"] == 1
    assert last["optimizer_state"]["state"][0]["step"].item() == 5  # the interrupted step was completed


# ----------------------------------------------------------------------------- time budget and schedule

class FakeClock:
    """Stands in for segkit.train's `time`: every reading is 0.05 s after the last, so a time
    budget ends after the same steps on any machine (the test asserts no wall-clock time)."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 0.05
        return self.now


def test_max_time_stops_early_with_validation_and_an_annealed_lr(tmp_path, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(train_module, "time", clock)
    _, history = run(tmp_path, epochs=50, max_time=1.0)
    assert 1 <= len(history) < 50
    assert clock.now >= 1.0  # it stopped on the budget, not on running out of epochs
    assert history[-1]["val_miou"] is not None  # the stopped epoch was validated
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == len(history)
    assert history[-1]["lr"] < 0.1 * 1e-2  # the time budget drove the cosine decay to its end


def test_lr_factor_warms_up_then_decays():
    assert lr_factor(0.0, warmup=0.1) == pytest.approx(0.01)
    assert lr_factor(0.1, warmup=0.1) == pytest.approx(1.0)
    assert lr_factor(0.05, warmup=0.1) == pytest.approx(0.505)
    decay = [lr_factor(p / 20, warmup=0.1) for p in range(2, 21)]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert lr_factor(1.0, warmup=0.1) == pytest.approx(0.01)
    assert lr_factor(0.55, warmup=0.1) == pytest.approx(0.505)  # cosine midpoint


# ----------------------------------------------------------------------------- seeding

def test_seed_everything_gives_identical_loss_histories():
    _, first = run(seed=3, epochs=3)
    _, second = run(seed=3, epochs=3)
    _, other = run(seed=4, epochs=3)
    assert [row["train_loss"] for row in first] == [row["train_loss"] for row in second]
    assert [row["val_miou"] for row in first] == [row["val_miou"] for row in second]
    assert [row["train_loss"] for row in first] != [row["train_loss"] for row in other]


def test_seed_everything_seeds_python_numpy_and_torch():
    seed_everything(7)
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark


# ----------------------------------------------------------------------------- devices and precision

def test_select_device(monkeypatch):
    assert select_device("cpu") == torch.device("cpu")
    assert select_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(train_module, "_mps_available", lambda: False)
    assert select_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        select_device("cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        select_device("cuda:1")
    with pytest.raises(RuntimeError, match="MPS"):
        select_device("mps")
    with pytest.raises(ValueError, match="Unknown device"):
        select_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert select_device("auto") == torch.device("cuda")
    with pytest.raises(RuntimeError, match="only 1 CUDA GPU"):
        select_device("cuda:1")


def test_choose_precision(monkeypatch):
    cpu = torch.device("cpu")
    assert choose_precision(cpu, "off", False) == (None, False)
    assert choose_precision(cpu, "bf16", True) == (torch.bfloat16, True)
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: False)
    assert choose_precision(cpu)[0] is None
    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: True)
    assert choose_precision(cpu)[0] is torch.bfloat16
    assert choose_precision(torch.device("mps")) == (None, False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert choose_precision(torch.device("cuda")) == (torch.float16, True)
    with pytest.raises(RuntimeError, match="fp16"):
        choose_precision(torch.device("cuda"), "bf16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert choose_precision(torch.device("cuda")) == (torch.bfloat16, True)


def test_train_config_validates_and_round_trips():
    with pytest.raises(ValueError, match="amp"):
        TrainConfig(amp="float16")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="max_time"):
        TrainConfig(max_time=0)
    with pytest.raises(ValueError, match="lr must be a number"):
        TrainConfig(lr=None)
    original = TrainConfig(epochs=3, max_time=60.0, channels_last=True)
    assert TrainConfig.from_dict({**asdict(original), "unknown_key": 1}) == original
    assert all(type(v) in (int, float, str, bool, type(None)) for v in asdict(TrainConfig()).values())


# ----------------------------------------------------------------------------- load_checkpoint errors

def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"No checkpoint at .*out_dir"):
        load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="best.pt or last.pt"):
        load_checkpoint(tmp_path)

    whole_model = tmp_path / "lesson_model.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 1, 1)), whole_model)  # the lesson's torch.save(model)
    with pytest.raises(ValueError, match=r"torch\.save\(model\)"):
        load_checkpoint(whole_model)

    bare = tmp_path / "state_dict.pt"
    torch.save(tiny_unet().state_dict(), bare)
    with pytest.raises(ValueError, match="bare state_dict"):
        load_checkpoint(bare)

    garbage = tmp_path / "notes.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="notes.pt"):
        load_checkpoint(garbage)

    other = tmp_path / "other.pt"
    torch.save({"epoch": 3}, other)
    with pytest.raises(ValueError, match="not a segkit checkpoint"):
        load_checkpoint(other)


# ----------------------------------------------------------------------------- evaluate

class Oracle(nn.Module):
    """Reads the answer from the image: channel c holds the one-hot mask of class c."""

    def __init__(self, num_classes: int, invert: bool = False) -> None:
        super().__init__()
        self.config = {"num_classes": num_classes, "in_channels": 3}
        self.scale = nn.Parameter(torch.tensor(-20.0 if invert else 20.0))

    def forward(self, x):
        if self.config["num_classes"] == 1:
            return self.scale * (x[:, 1:2] - 0.5)
        return self.scale * (x[:, : self.config["num_classes"]] - 0.5)


class OneHot(Dataset):
    def __init__(self, num_labels: int) -> None:
        generator = torch.Generator().manual_seed(0)
        self.masks = [torch.randint(0, num_labels, (SIZE, SIZE), generator=generator) for _ in range(5)]
        self.masks[0][:4] = 255  # ignored pixels

    def __len__(self) -> int:
        return len(self.masks)

    def __getitem__(self, index):
        mask = self.masks[index]
        image = torch.zeros(3, SIZE, SIZE)
        for c in range(3):
            image[c] = (mask == c).float()
        return image, mask


def test_evaluate_binary_miou_is_the_foreground_iou():
    model = Oracle(1).train()
    perfect = evaluate(model, OneHot(2), device="cpu")
    assert model.training  # mode restored
    assert perfect["miou"] == 1.0 and perfect["pixel_accuracy"] == 1.0
    inverted = evaluate(Oracle(1, invert=True), OneHot(2), device="cpu")
    assert inverted["miou"] == 0.0 and inverted["pixel_accuracy"] == 0.0
    labels = torch.stack(OneHot(2).masks)
    assert perfect["pixels"] == int((labels != 255).sum())


def test_evaluate_multiclass_miou_includes_background():
    result = evaluate(Oracle(3), OneHot(3), device="cpu", class_names=["_background_", "cat", "dog"])
    assert result["miou"] == 1.0 and result["iou_per_class"] == {"_background_": 1.0, "cat": 1.0, "dog": 1.0}
    # a model that swaps cat and dog: IoU 1 for background, 0 for both others -> mIoU 1/3
    swapped = Oracle(3)
    swapped.forward = lambda x: 20 * (x[:, [0, 2, 1]] - 0.5)
    assert evaluate(swapped, OneHot(3), device="cpu")["miou"] == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------- live plot

def test_live_plot_draws_once_then_updates_in_place(monkeypatch):
    import IPython.display

    calls = []

    class Handle:
        def update(self, figure):
            calls.append(("update", figure))

    def fake_display(figure, display_id=False):
        calls.append(("display", figure))
        return Handle()

    monkeypatch.setattr(IPython.display, "display", fake_display)
    plot = train_module._LivePlot()
    history = [{"epoch": 1, "train_loss": 0.9, "val_loss": 1.0, "val_miou": 0.2},
               {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "val_miou": 0.6}]
    plot.update(history[:1])
    plot.update(history)
    assert [kind for kind, _ in calls] == ["display", "update"]  # one output, redrawn: no pile of frames
    train_line, val_line = plot.loss_axes.get_lines()
    assert list(train_line.get_ydata()) == [0.9, 0.5] and list(val_line.get_ydata()) == [1.0, 0.7]
    assert list(plot.miou_axes.get_lines()[0].get_ydata()) == [0.2, 0.6]


def test_fp16_uses_a_grad_scaler_and_resumes_its_state(tmp_path):
    """The CUDA-without-bf16 path (fp16 autocast + GradScaler), exercised on the CPU."""
    _, history = run(tmp_path, epochs=2, amp="fp16")
    assert all(math.isfinite(row["train_loss"]) for row in history)
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=True)
    assert checkpoint["scaler_state"]["scale"] > 0
    seed_everything(0)
    resumed = fit(tiny_unet(), Squares(12), Squares(8, seed=1), config(epochs=3, amp="fp16"), out_dir=tmp_path,
                  resume=True)
    assert [row["epoch"] for row in resumed] == [1, 2, 3]
