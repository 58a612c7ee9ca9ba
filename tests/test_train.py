"""Tests for segkit.train: TrainConfig, WarmupCosine, make_optimizer, train_one_epoch, evaluate and fit.

Everything runs on the CPU with tiny UNets (base_features=4, depth=2) on a VOC folder made in
the test: 8 photos of 32 to 48 px, dark noise with a bright red square (class 1) and, in the
multi-class folder, a green one (class 2). Time is a fake clock: no test waits or reads the
wall clock's value.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from segkit import train as train_module
from segkit.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from segkit.data import IGNORE_INDEX, SegmentationFolder, make_loader
from segkit.losses import BCEDiceLoss, CEDiceLoss
from segkit.metrics import ConfusionMatrix
from segkit.model import UNet
from segkit.predict import predict_mask
from segkit.train import TrainConfig, WarmupCosine, evaluate, fit, make_optimizer, seed_everything, train_one_epoch
from segkit.transforms import train_transforms

SIZE = 32
CPU = torch.device("cpu")
PHOTO_SIZES = [(40, 48), (48, 36), (44, 44), (36, 40)]  # (height, width), none of them SIZE x SIZE
RED, GREEN = (220, 30, 30), (30, 220, 30)
HISTORY_KEYS = {"epoch", "train_loss", "images_per_second", "val_foreground_iou", "val_miou", "lr", "seconds"}


# ----------------------------------------------------------------------------- tiny data and models

def make_voc(root, n: int = 8, classes: int = 2, seed: int = 0, names: list[str] | None = None,
             ignore: bool = True):
    """A VOC folder (JPEGImages/*.png, SegmentationClass/*.png, class_names.txt) of `n` small photos.

    classes: 2 (background + a red square) or 3 (+ a green square). Photo 0 has a strip of ignored
    pixels (255) when `ignore`. names: the class_names.txt lines (default: one per class).
    """
    rng = np.random.default_rng(seed)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    for i in range(n):
        height, width = PHOTO_SIZES[i % len(PHOTO_SIZES)]
        photo = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)  # dark noise
        mask = np.zeros((height, width), np.uint8)
        for label, colour in list(zip((1, 2), (RED, GREEN)))[:classes - 1]:
            side = int(rng.integers(10, 18))
            top, left = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
            mask[top:top + side, left:left + side] = label
            photo[top:top + side, left:left + side] = colour
        if i == 0 and ignore:
            mask[:, :3] = IGNORE_INDEX
        Image.fromarray(photo).save(root / "JPEGImages" / f"photo{i}.png")  # lossless: exact colours
        Image.fromarray(mask, mode="L").save(root / "SegmentationClass" / f"photo{i}.png")
    names = names if names is not None else ["_background_", "cat", "dog"][:classes]
    if names:
        (root / "class_names.txt").write_text("\n".join(names) + "\n")
    return root


@pytest.fixture(scope="module")
def binary_root(tmp_path_factory):
    return make_voc(tmp_path_factory.mktemp("cats"), n=8, classes=2, seed=0)


@pytest.fixture(scope="module")
def val_root(tmp_path_factory):
    return make_voc(tmp_path_factory.mktemp("cats_val"), n=4, classes=2, seed=1)


@pytest.fixture(scope="module")
def multi_root(tmp_path_factory):
    return make_voc(tmp_path_factory.mktemp("pets"), n=6, classes=3, seed=2)


def folder(root, **kwargs) -> SegmentationFolder:
    return SegmentationFolder(root, image_size=kwargs.pop("image_size", SIZE), **kwargs)


def tiny_unet(num_classes: int = 1, seed: int = 0, **overrides) -> UNet:
    torch.manual_seed(seed)
    return UNet(**{"num_classes": num_classes, "base_features": 4, "depth": 2, **overrides})


def config(**overrides) -> TrainConfig:
    values = dict(epochs=2, batch_size=4, lr=1e-2, device="cpu", amp="off", channels_last=False, progress=False)
    return TrainConfig(**{**values, **overrides})


def state_of(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


class FakeClock:
    """Stands in for segkit.train's `time`. Reads `now`; with `tick`, each reading first adds `tick` seconds."""

    def __init__(self, tick: float = 0.0) -> None:
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(train_module, "time", SimpleNamespace(perf_counter=fake.perf_counter))
    return fake


# ----------------------------------------------------------------------------- TrainConfig

@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("epochs", -3), ("epochs", 2.0), ("epochs", True), ("epochs", "10"),
    ("batch_size", 0), ("batch_size", 4.5), ("batch_size", False), ("batch_size", None),
])
def test_train_config_wants_positive_int_epochs_and_batch_size(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field} must be a positive int, got {value!r}"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize("lr", [0, -1e-3, None, "3e-3"])
def test_train_config_wants_a_positive_lr(lr):
    with pytest.raises(ValueError, match="TrainConfig.lr must be a number > 0"):
        TrainConfig(lr=lr)


@pytest.mark.parametrize("max_time", [0, -5.0])
def test_train_config_wants_max_time_none_or_positive(max_time):
    with pytest.raises(ValueError, match="TrainConfig.max_time must be None or seconds > 0"):
        TrainConfig(max_time=max_time)


def test_train_config_accepts_good_values_and_is_plain():
    config_ = TrainConfig(epochs=1, batch_size=1, lr=1, max_time=0.5)
    assert (config_.epochs, config_.batch_size, config_.lr, config_.max_time) == (1, 1, 1, 0.5)
    # stored in every checkpoint, which holds only plain values
    assert all(type(v) in (int, float, str, bool, type(None)) for v in asdict(TrainConfig()).values())


def test_fit_refuses_a_bad_amp_before_writing_anything(tmp_path, binary_root):
    with pytest.raises(ValueError, match="amp must be"):
        fit(tiny_unet(), folder(binary_root), None, config(amp="float16"), out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- WarmupCosine

def sgd(*peaks: float) -> torch.optim.SGD:
    return torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": peak} for peak in peaks])


def lrs(optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def test_warmup_cosine_by_steps():
    """200 steps, 5% warm-up = 10 steps: 1% of the peak, up to the peak, cosine down to 1%."""
    optimizer = sgd(1.0)
    schedule = WarmupCosine(optimizer, total_steps=200)
    seen = [lrs(optimizer)[0]]
    for _ in range(200):
        schedule.step()
        seen.append(lrs(optimizer)[0])
    assert seen[0] == pytest.approx(0.01)                      # starts at 1% (factor 0)
    assert seen[4] == pytest.approx(0.01 + 0.99 * 0.4)         # 4 of 10 warm-up steps
    assert seen[10] == pytest.approx(1.0)                      # the peak at the end of the warm-up
    assert seen[105] == pytest.approx(0.505)                   # the cosine's midpoint: half-way down
    assert seen[200] == pytest.approx(0.01)                    # 1% at the end
    assert all(a < b for a, b in zip(seen[:10], seen[1:11]))   # rises during the warm-up
    assert all(a > b for a, b in zip(seen[10:200], seen[11:201]))  # then only falls
    schedule.step()  # past the plan: stays at 1%
    assert lrs(optimizer)[0] == pytest.approx(0.01)
    assert schedule.steps == 201 and not schedule.out_of_time  # no max_time: never out of time


def test_warmup_cosine_scales_each_group_by_its_own_peak():
    optimizer = sgd(1.0, 0.1)
    schedule = WarmupCosine(optimizer, total_steps=100, warmup=0.1, final=0.05)
    assert lrs(optimizer) == pytest.approx([0.05, 0.005])
    for _ in range(10):
        schedule.step()
    assert lrs(optimizer) == pytest.approx([1.0, 0.1])
    for _ in range(90):
        schedule.step()
    assert lrs(optimizer) == pytest.approx([0.05, 0.005])


def test_warmup_cosine_progress_follows_time_when_that_is_further(clock):
    optimizer = sgd(1.0)
    schedule = WarmupCosine(optimizer, total_steps=1000, max_time=10.0)
    assert schedule.progress == 0.0 and not schedule.out_of_time
    clock.now = 5.25  # 52.5% of the time, 0.1% of the steps
    schedule.step()
    assert schedule.progress == pytest.approx(0.525)
    assert lrs(optimizer)[0] == pytest.approx(0.505)  # the cosine's midpoint, set by time
    assert not schedule.out_of_time
    clock.now = 9.99
    assert not schedule.out_of_time
    clock.now = 10.0
    assert schedule.out_of_time and schedule.progress == 1.0
    schedule.step()
    assert lrs(optimizer)[0] == pytest.approx(0.01)  # a run cut short by its budget still ends annealed


def test_warmup_cosine_progress_follows_steps_when_those_are_further(clock):
    optimizer = sgd(1.0)
    schedule = WarmupCosine(optimizer, total_steps=20, max_time=1000.0)
    for _ in range(20):
        schedule.step()
    assert schedule.progress == 1.0 and lrs(optimizer)[0] == pytest.approx(0.01)
    assert not schedule.out_of_time


def test_warmup_cosine_counts_time_from_its_creation(clock):
    clock.now = 100.0
    schedule = WarmupCosine(sgd(1.0), total_steps=10, max_time=5.0)
    clock.now = 104.0
    assert not schedule.out_of_time and schedule.progress == pytest.approx(0.8)
    clock.now = 105.0
    assert schedule.out_of_time


# ----------------------------------------------------------------------------- make_optimizer

def test_make_optimizer_decays_conv_weights_only():
    model = tiny_unet()
    optimizer = make_optimizer(model, 2e-3, CPU)
    decay_group, rest_group = optimizer.param_groups
    conv_weights = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
    others = {id(p) for p in model.parameters()} - conv_weights
    assert {id(p) for p in decay_group["params"]} == conv_weights
    assert {id(p) for p in rest_group["params"]} == others
    batchnorm = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    assert batchnorm and batchnorm <= others  # BatchNorm scales and shifts are not decayed
    assert id(model.outc.conv.bias) in others  # nor are biases
    assert decay_group["weight_decay"] == 0.01 and rest_group["weight_decay"] == 0.0
    assert isinstance(optimizer, torch.optim.AdamW) and lrs(optimizer) == [2e-3, 2e-3]
    assert decay_group["fused"] is True  # one kernel on a CPU (and CUDA)


def test_make_optimizer_is_not_fused_on_mps():
    assert make_optimizer(tiny_unet(), 1e-3, torch.device("mps")).param_groups[0]["fused"] is False


# ----------------------------------------------------------------------------- train_one_epoch

class RecordingLoss(nn.Module):
    """BCE + Dice that records, per call, (loss, batch size, was the model training?)."""

    def __init__(self, model: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.inner, self.model, self.scale, self.calls = BCEDiceLoss(), model, scale, []
        self.after_call = None

    def forward(self, logits, target):
        loss = self.inner(logits, target) * self.scale
        self.calls.append((loss.item(), len(target), self.model.training))
        if self.after_call is not None:
            self.after_call(len(self.calls))
        return loss


def one_epoch_setup(binary_root, batch_size=3, max_time=None):
    model = tiny_unet()
    loader = DataLoader(folder(binary_root), batch_size=batch_size, shuffle=False)  # 8 photos: 3 + 3 + 2
    optimizer = make_optimizer(model, 1e-2, CPU)
    schedule = WarmupCosine(optimizer, total_steps=len(loader), max_time=max_time)
    return model, loader, optimizer, schedule


def test_train_one_epoch_returns_the_mean_loss_per_image_and_the_images_seen(binary_root):
    model, loader, optimizer, schedule = one_epoch_setup(binary_root)
    model.eval()  # left in eval mode by, say, a validation pass
    before = state_of(model)
    loss_fn = RecordingLoss(model)
    mean_loss, images = train_one_epoch(model, loader, loss_fn, optimizer, schedule, CPU)
    assert [n for _, n, _ in loss_fn.calls] == [3, 3, 2] and images == 8
    assert mean_loss == pytest.approx(sum(loss * n for loss, n, _ in loss_fn.calls) / 8)
    assert all(training for _, _, training in loss_fn.calls) and model.training  # put in train mode
    assert schedule.steps == 3
    after = model.state_dict()
    assert not torch.equal(after["inc.block.0.weight"], before["inc.block.0.weight"])  # the optimizer stepped
    assert not torch.equal(after["inc.block.1.running_mean"], before["inc.block.1.running_mean"])  # BatchNorm learned
    assert after["inc.block.1.num_batches_tracked"].item() == 3


def test_train_one_epoch_stops_at_the_step_that_runs_out_of_time(binary_root, clock):
    model, loader, optimizer, schedule = one_epoch_setup(binary_root, max_time=10.0)
    loss_fn = RecordingLoss(model)

    def time_passes(calls):
        clock.now = 4.0 * calls  # 4 s per step: the 10 s budget is spent during step 3

    loss_fn.after_call = time_passes
    loader = DataLoader(folder(binary_root), batch_size=1, shuffle=False)
    mean_loss, images = train_one_epoch(model, loader, loss_fn, optimizer, schedule, CPU)
    assert images == 3 and len(loss_fn.calls) == 3 and schedule.steps == 3
    assert mean_loss == pytest.approx(np.mean([loss for loss, _, _ in loss_fn.calls]))


def test_train_one_epoch_refuses_a_loss_that_is_not_finite(binary_root):
    model, loader, optimizer, schedule = one_epoch_setup(binary_root)
    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train_one_epoch(model, loader, RecordingLoss(model, scale=float("nan")), optimizer, schedule, CPU)


def test_train_one_epoch_with_bf16_autocast_and_channels_last(binary_root):
    model, loader, optimizer, schedule = one_epoch_setup(binary_root)
    model.to(memory_format=torch.channels_last)
    loss_fn = RecordingLoss(model)
    mean_loss, images = train_one_epoch(model, loader, loss_fn, optimizer, schedule, CPU, torch.bfloat16, True)
    assert images == 8 and math.isfinite(mean_loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: weights stay fp32


def test_train_one_epoch_fp16_with_a_grad_scaler(binary_root):
    """The CUDA-without-bf16 path (fp16 autocast + GradScaler), on the CPU where PyTorch allows it."""
    try:
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    except (RuntimeError, TypeError, ValueError) as error:
        pytest.skip(f"no GradScaler on the CPU in this PyTorch: {error}")
    model, loader, optimizer, schedule = one_epoch_setup(binary_root)
    before = state_of(model)
    scaled = []
    real_scale = scaler.scale
    scaler.scale = lambda loss: scaled.append(loss.item()) or real_scale(loss)
    mean_loss, images = train_one_epoch(model, loader, BCEDiceLoss(), optimizer, schedule, CPU, torch.float16,
                                        scaler=scaler)
    assert images == 8 and math.isfinite(mean_loss)
    assert len(scaled) == 3  # every step's loss went through the scaler
    assert not torch.equal(model.state_dict()["inc.block.0.weight"], before["inc.block.0.weight"])


# ----------------------------------------------------------------------------- evaluate

class ColourModel(nn.Module):
    """Reads the classes from the colours: red is class 1, green class 2. A 1x1 conv (it has parameters)."""

    def __init__(self, num_classes: int, invert: bool = False) -> None:
        super().__init__()
        self.config = {"num_classes": num_classes, "in_channels": 3}
        self.conv = nn.Conv2d(3, num_classes, 1)
        sign = -1.0 if invert else 1.0
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            if num_classes == 1:  # logit = 20 (R - 0.5)
                self.conv.weight[0, 0] = 20 * sign
                self.conv.bias[0] = -10 * sign
            else:  # background 0, red 20 (R - G) - 5, green 20 (G - R) - 5
                self.conv.weight[1, :2, 0, 0] = torch.tensor([20.0, -20.0]) * sign
                self.conv.weight[2, :2, 0, 0] = torch.tensor([-20.0, 20.0]) * sign
                self.conv.bias[1:] = -5 * sign

    def forward(self, x):
        return self.conv(x)


def hand_scores(model, dataset, threshold=0.5, names=None) -> dict:
    """The oracle: predict_mask on each photo at its own size, one ConfusionMatrix over all photos."""
    confusion = ConfusionMatrix(max(model.config["num_classes"], 2))
    for i in range(len(dataset)):
        photo, mask = dataset.read(i)
        predicted = predict_mask(model, photo, dataset.image_size, threshold, dataset.resize)
        assert predicted.shape == mask.shape  # at the photo's own size
        confusion.update(torch.from_numpy(predicted), torch.from_numpy(mask))
    return confusion.summary(names)


def own_size_pixels(dataset) -> int:
    return sum(int((dataset.read(i)[1] != IGNORE_INDEX).sum()) for i in range(len(dataset)))


@pytest.mark.parametrize("threshold", [0.5, 0.05, 0.95])
def test_evaluate_binary_equals_predict_mask_scored_at_each_photos_size(binary_root, threshold):
    dataset = folder(binary_root)
    for model in (ColourModel(1), tiny_unet(seed=3).eval()):
        scores = evaluate(model, dataset, threshold=threshold, batch_size=3)  # batches of 3, 3 and 2
        assert scores == hand_scores(model, dataset, threshold, ["_background_", "cat"])
        assert scores["pixels"] == own_size_pixels(dataset)  # not 8 x 32 x 32
        assert set(scores["iou"]) == {"_background_", "cat"}
        assert scores["foreground_iou"] == scores["iou"]["cat"]


def test_evaluate_multiclass_equals_predict_mask_scored_at_each_photos_size(multi_root):
    dataset = folder(multi_root, resize="letterbox")
    model = ColourModel(3)
    scores = evaluate(model, dataset, batch_size=4)
    assert scores == hand_scores(model, dataset, names=["_background_", "cat", "dog"])
    assert scores["pixels"] == own_size_pixels(dataset)
    assert list(scores["iou"]) == ["_background_", "cat", "dog"]
    assert scores["foreground_iou"] == pytest.approx((scores["iou"]["cat"] + scores["iou"]["dog"]) / 2, abs=1e-6)
    assert 0.5 < scores["miou"] < 1.0  # blurred edges at 32 px: good, not perfect


def test_evaluate_a_perfect_and_an_inverted_model_at_the_photos_own_size(binary_root, multi_root):
    """image_size None: each photo runs at its own size, so the colour model is exactly right (or wrong)."""
    for root, classes in ((binary_root, 1), (multi_root, 3)):
        dataset = folder(root, image_size=None)
        perfect = evaluate(ColourModel(classes), dataset)
        assert perfect["miou"] == 1.0 and perfect["foreground_iou"] == 1.0 and perfect["pixel_accuracy"] == 1.0
    inverted = evaluate(ColourModel(1, invert=True), folder(binary_root, image_size=None))
    assert inverted["miou"] == 0.0 and inverted["pixel_accuracy"] == 0.0


def test_evaluate_restores_the_models_mode(binary_root):
    model = tiny_unet().train()
    evaluate(model, folder(binary_root))
    assert model.training
    model.eval()
    evaluate(model, folder(binary_root))
    assert not model.training


def test_evaluate_class_names_only_when_they_fit(tmp_path):
    nameless = folder(make_voc(tmp_path / "nameless", n=2, names=[]))
    assert list(evaluate(ColourModel(1), nameless)["iou"]) == ["class_0", "class_1"]
    wrong = folder(make_voc(tmp_path / "wrong", n=2, names=["_background_", "cat", "dog"]))  # 3 names, 2 classes
    assert list(evaluate(ColourModel(1), wrong)["iou"]) == ["class_0", "class_1"]


# ----------------------------------------------------------------------------- fit: end to end

def test_fit_end_to_end_writes_last_best_and_history(tmp_path, binary_root, val_root):
    """bf16 autocast + channels_last (the CPU 'auto' choice where bf16 is native), 6 epochs."""
    train_set, val_set = folder(binary_root), folder(val_root)
    model = tiny_unet()
    settings = config(epochs=6, amp="bf16", channels_last=True)
    history = fit(model, train_set, val_set, settings, out_dir=tmp_path)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    for row in history:
        assert set(row) == HISTORY_KEYS
        assert row["seconds"] > 0 and row["images_per_second"] > 0 and row["lr"] > 0
        assert 0.0 <= row["val_miou"] <= 1.0 and 0.0 <= row["val_foreground_iou"] <= 1.0
    assert history[-1]["train_loss"] < history[0]["train_loss"]  # it learns
    assert history[-1]["val_foreground_iou"] == evaluate(model, val_set)["foreground_iou"]  # the final model's
    assert history[-1]["lr"] == pytest.approx(0.01 * settings.lr)  # the cosine ran to its end
    # the model comes back in fp32, BatchNorm statistics finite
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.isfinite(b.float()).all() for b in model.buffers())

    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "history.json", "last.pt"]
    assert json.loads((tmp_path / "history.json").read_text()) == history
    last = torch.load(tmp_path / "last.pt", weights_only=True)
    assert last["epoch"] == 6 and last["history"] == history
    assert last["class_names"] == ["_background_", "cat"] and last["image_size"] == [SIZE, SIZE]
    assert last["resize"] == "stretch" and last["train_config"] == asdict(settings)
    assert last["schedule_steps"] == 6 * 2  # 8 photos, batches of 4
    assert last["optimizer_state"]["state"][0]["step"].item() == 6 * 2
    assert all(t.is_contiguous() for t in last["model_state"].values())  # saved from a channels_last model
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert "optimizer_state" not in best  # best.pt is for predicting
    loaded, _ = load_checkpoint(tmp_path / "last.pt")
    model.eval()
    image = train_set[0][0][None]
    with torch.inference_mode():
        assert torch.allclose(loaded(image), model(image.contiguous()), atol=1e-5)


def test_fit_multiclass_end_to_end(tmp_path, multi_root):
    history = fit(tiny_unet(3), folder(multi_root), folder(multi_root), config(epochs=2), out_dir=tmp_path)
    assert len(history) == 2 and all(set(row) == HISTORY_KEYS for row in history)
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint["class_names"] == ["_background_", "cat", "dog"]
    assert checkpoint["model_config"]["num_classes"] == 3


def test_fit_without_out_dir_writes_nothing(tmp_path, binary_root, monkeypatch):
    monkeypatch.chdir(tmp_path)
    history = fit(tiny_unet(), folder(binary_root), None, config(epochs=1))
    assert len(history) == 1 and list(tmp_path.iterdir()) == []


def test_fit_trains_the_model_in_place(binary_root):
    model = tiny_unet()
    before = state_of(model)
    fit(model, folder(binary_root), None, config(epochs=1))
    assert not torch.equal(model.state_dict()["inc.block.0.weight"], before["inc.block.0.weight"])


def test_fit_refuses_masks_with_classes_the_model_lacks(multi_root):
    with pytest.raises(ValueError, match=r"target holds classes \[2\].*num_classes=K\+1"):
        fit(tiny_unet(1), folder(multi_root), None, config(epochs=1))


def test_fit_redraws_the_live_plot_after_every_epoch(binary_root, monkeypatch):
    import segkit.plots

    drawn = []
    monkeypatch.setattr(segkit.plots, "LiveHistory", lambda: SimpleNamespace(update=lambda h: drawn.append(list(h))))
    history = fit(tiny_unet(), folder(binary_root), None, config(epochs=2, live_plot=True))
    assert drawn == [history[:1], history]
    fit(tiny_unet(), folder(binary_root), None, config(epochs=2, live_plot=False))
    assert len(drawn) == 2  # no plot unless asked for


def test_fit_prints_one_line_per_epoch(tmp_path, binary_root, val_root, capsys):
    fit(tiny_unet(), folder(binary_root), folder(val_root), config(epochs=2, progress=True), out_dir=tmp_path)
    err = capsys.readouterr()
    text = err.out + err.err
    assert "Training on cpu (fp32), 8 photos, 2 steps per epoch" in text
    assert "epoch   1/2" in text and "epoch   2/2" in text and "val_foreground_iou" in text


def test_fit_prints_the_first_and_last_epoch_of_quick_epochs(binary_root, capsys, monkeypatch):
    monkeypatch.setattr(train_module, "LOG_EVERY_S", 3600.0)
    history = fit(tiny_unet(), folder(binary_root), None, config(epochs=4, progress=True))
    err = capsys.readouterr()
    lines = [line for line in (err.out + err.err).splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/4", "4/4"] and len(history) == 4


# ----------------------------------------------------------------------------- fit: the default loss

def first_batch_loss(model: nn.Module, dataset: SegmentationFolder, settings: TrainConfig, loss_fn: nn.Module) -> float:
    """The loss `loss_fn` gives `model` (in train mode) on fit's first batch, which the test rebuilds."""
    loader = make_loader(dataset, settings.batch_size, shuffle=True, seed=settings.seed)
    loader.generator.manual_seed(settings.seed)
    images, masks = next(iter(loader))
    model.train()
    with torch.no_grad():
        return loss_fn(model(images), masks).item()


@pytest.mark.parametrize("num_classes, root_name, default", [(1, "binary_root", BCEDiceLoss),
                                                             (3, "multi_root", CEDiceLoss)])
def test_fit_uses_bce_dice_for_one_channel_and_ce_dice_for_more(request, num_classes, root_name, default):
    """One epoch of one batch: the logged training loss is the default loss of the untrained model."""
    dataset = folder(request.getfixturevalue(root_name))
    settings = config(epochs=1, batch_size=len(dataset))  # one step: the loss before any update
    model = tiny_unet(num_classes)
    untrained = copy.deepcopy(model)
    history = fit(model, dataset, None, settings)
    assert history[0]["train_loss"] == pytest.approx(first_batch_loss(untrained, dataset, settings, default()),
                                                     rel=1e-5)


def test_fit_uses_the_loss_it_is_given(binary_root):
    model = tiny_unet()
    loss_fn = RecordingLoss(model, scale=3.0)
    history = fit(model, folder(binary_root), None, config(epochs=1), loss_fn=loss_fn)
    assert len(loss_fn.calls) == 2
    assert history[0]["train_loss"] == pytest.approx(np.mean([loss for loss, _, _ in loss_fn.calls]))


# ----------------------------------------------------------------------------- fit: best.pt

def scripted_evaluate(monkeypatch, scores: list[float | None]) -> list[dict]:
    """Replace segkit.train.evaluate: epoch i scores scores[i]; returns the model's state at each call."""
    states = []

    def fake(model, dataset, *args, **kwargs):
        states.append(state_of(model))
        score = scores[len(states) - 1]
        return {"foreground_iou": score, "miou": None if score is None else score / 2}

    monkeypatch.setattr(train_module, "evaluate", fake)
    return states


def test_best_pt_holds_the_epoch_with_the_highest_validation_foreground_iou(tmp_path, binary_root, val_root,
                                                                           monkeypatch):
    # epoch 2 is the best; epoch 4 only ties it, epoch 3 is undefined (None), epoch 5 is worse
    states = scripted_evaluate(monkeypatch, [0.2, 0.5, None, 0.5, 0.4])
    history = fit(tiny_unet(), folder(binary_root), folder(val_root), config(epochs=5), out_dir=tmp_path)
    assert [row["val_foreground_iou"] for row in history] == [0.2, 0.5, None, 0.5, 0.4]
    assert [row["val_miou"] for row in history] == [0.1, 0.25, None, 0.25, 0.2]
    best = read_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == 2 and best["history"] == history[:2]
    assert_same_state(best["model_state"], states[1])  # the weights of epoch 2
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == 5
    assert json.loads((tmp_path / "history.json").read_text())[2]["val_foreground_iou"] is None


def test_best_pt_moves_to_a_later_better_epoch(tmp_path, binary_root, val_root, monkeypatch):
    states = scripted_evaluate(monkeypatch, [0.6, 0.3, 0.7])
    fit(tiny_unet(), folder(binary_root), folder(val_root), config(epochs=3), out_dir=tmp_path)
    best = read_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == 3
    assert_same_state(best["model_state"], states[2])


def test_without_val_set_best_pt_is_the_latest_epoch(tmp_path, binary_root):
    history = fit(tiny_unet(), folder(binary_root), None, config(epochs=3), out_dir=tmp_path)
    assert all(row["val_foreground_iou"] is None and row["val_miou"] is None for row in history)
    best, last = read_checkpoint(tmp_path / "best.pt"), read_checkpoint(tmp_path / "last.pt")
    assert best["epoch"] == last["epoch"] == 3
    assert_same_state(best["model_state"], last["model_state"])


# ----------------------------------------------------------------------------- fit: seeds, resume, Ctrl-C

def test_the_same_seed_gives_the_same_losses(binary_root):
    """Augmented photos in shuffled batches of 2: fit seeds every generator it draws from."""
    train_set = folder(binary_root, transforms=train_transforms())
    models = [tiny_unet() for _ in range(3)]  # the same initial weights

    def losses(model: UNet, seed: int) -> list[float]:
        history = fit(model, train_set, None, config(epochs=3, batch_size=2, seed=seed))
        return [row["train_loss"] for row in history]

    first = losses(models[0], 3)
    # the global generator is wherever the first run left it: the second run must not depend on that
    assert losses(models[1], 3) == first
    assert losses(models[2], 4) != first


def test_seed_everything_seeds_python_numpy_and_torch():
    import random

    seed_everything(7)
    draws = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(7)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == draws


def fit_through_ctrl_c(*args, **kwargs) -> list[dict]:
    """fit(...), turning a KeyboardInterrupt that escapes it into a test failure (not an aborted test session)."""
    try:
        return fit(*args, **kwargs)
    except KeyboardInterrupt:
        pytest.fail("fit let the KeyboardInterrupt escape instead of saving last.pt and returning the history")


def interrupt_at_call(monkeypatch, call: int) -> None:
    """segkit.train.train_one_epoch raises KeyboardInterrupt (Ctrl-C) when called the `call`-th time."""
    real = train_module.train_one_epoch
    calls = []

    def patched(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", patched)


def test_ctrl_c_saves_last_pt_and_returns_the_history(tmp_path, binary_root, val_root, monkeypatch, capsys):
    interrupt_at_call(monkeypatch, 3)
    history = fit_through_ctrl_c(tiny_unet(), folder(binary_root), folder(val_root), config(epochs=5), out_dir=tmp_path)
    assert [row["epoch"] for row in history] == [1, 2]
    last = read_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 2 and last["history"] == history and last["optimizer_state"] is not None
    assert json.loads((tmp_path / "history.json").read_text()) == history
    printed = capsys.readouterr().out
    assert "Interrupted in epoch 3: 2 epoch(s) done" in printed and f"resume='{tmp_path / 'last.pt'}'" in printed


def test_ctrl_c_without_out_dir_returns_the_history(tmp_path, binary_root, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    interrupt_at_call(monkeypatch, 2)
    history = fit_through_ctrl_c(tiny_unet(), folder(binary_root), None, config(epochs=3))
    assert [row["epoch"] for row in history] == [1]
    assert "Interrupted in epoch 2: 1 epoch(s) done." in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_in_the_first_epoch_still_leaves_last_pt(tmp_path, binary_root, monkeypatch):
    interrupt_at_call(monkeypatch, 1)
    model = tiny_unet()
    before = state_of(model)
    assert fit_through_ctrl_c(model, folder(binary_root), None, config(epochs=2), out_dir=tmp_path) == []
    last = read_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 0 and last["history"] == []
    assert_same_state(last["model_state"], before)


def test_ctrl_c_inside_a_step_still_leaves_last_pt(tmp_path, binary_root):
    """A KeyboardInterrupt raised inside a training step (here: the loss of epoch 2's second step)."""
    model = tiny_unet()
    loss_fn = RecordingLoss(model)

    def interrupt(calls):
        if calls == 4:  # 2 steps per epoch
            raise KeyboardInterrupt

    loss_fn.after_call = interrupt
    history = fit_through_ctrl_c(model, folder(binary_root), None, config(epochs=3), out_dir=tmp_path, loss_fn=loss_fn)
    assert [row["epoch"] for row in history] == [1]
    last = read_checkpoint(tmp_path / "last.pt")
    assert last["epoch"] == 1 and last["history"] == history


def test_resume_reproduces_an_uninterrupted_run(tmp_path, binary_root, val_root, monkeypatch):
    """Augmented photos, shuffled batches: a run stopped by Ctrl-C after epoch 2 and resumed from its last.pt
    gives the losses, scores, learning rates and weights of a run that was never stopped."""
    train_set, val_set = folder(binary_root, transforms=train_transforms()), folder(val_root)
    settings = config(epochs=3, batch_size=2)
    straight_model = tiny_unet()
    straight = fit(straight_model, train_set, val_set, settings, out_dir=tmp_path / "straight")

    with monkeypatch.context() as patch:
        interrupt_at_call(patch, 3)
        partial = fit_through_ctrl_c(tiny_unet(), train_set, val_set, settings, out_dir=tmp_path / "stopped")
    assert len(partial) == 2

    torch.manual_seed(123)  # another global generator state: everything must come from the checkpoint
    resumed_model = tiny_unet(seed=99)  # and other initial weights
    resumed = fit(resumed_model, train_set, val_set, settings, out_dir=tmp_path / "stopped",
                  resume=tmp_path / "stopped" / "last.pt")
    assert [row["epoch"] for row in resumed] == [1, 2, 3]
    for key in ("train_loss", "val_foreground_iou", "val_miou", "lr"):
        assert [row[key] for row in resumed] == [row[key] for row in straight], key
    assert_same_state(resumed_model.state_dict(), straight_model.state_dict())
    last = read_checkpoint(tmp_path / "stopped" / "last.pt")
    assert last["epoch"] == 3 and last["schedule_steps"] == 3 * 4
    assert last["optimizer_state"]["state"][0]["step"].item() == 3 * 4


def test_resume_a_finished_run_returns_its_history(tmp_path, binary_root):
    history = fit(tiny_unet(), folder(binary_root), None, config(epochs=2), out_dir=tmp_path)
    model = tiny_unet(seed=5)
    again = fit(model, folder(binary_root), None, config(epochs=2), out_dir=tmp_path, resume=tmp_path / "last.pt")
    assert again == history
    assert_same_state(model.state_dict(), read_checkpoint(tmp_path / "last.pt")["model_state"])


def test_resume_refuses_another_model_and_a_best_pt(tmp_path, binary_root, val_root):
    fit(tiny_unet(), folder(binary_root), folder(val_root), config(epochs=1), out_dir=tmp_path)
    with pytest.raises(ValueError, match="base_features"):
        fit(tiny_unet(base_features=8), folder(binary_root), None, config(epochs=2), resume=tmp_path / "last.pt")
    with pytest.raises(ValueError, match="no optimizer state .*resume from the run's last.pt"):
        fit(tiny_unet(), folder(binary_root), None, config(epochs=2), resume=tmp_path / "best.pt")


# ----------------------------------------------------------------------------- fit: time budget

def test_max_time_stops_early_validates_and_saves(tmp_path, binary_root, val_root, monkeypatch):
    clock = FakeClock(tick=0.05)  # each reading of the clock: 50 ms later
    monkeypatch.setattr(train_module, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    settings = config(epochs=50, lr=1e-2, max_time=1.0)
    history = fit(tiny_unet(), folder(binary_root), folder(val_root), settings, out_dir=tmp_path)
    assert 1 <= len(history) < 50
    assert clock.now >= 1.0  # it stopped on the budget, not for want of epochs
    assert history[-1]["val_foreground_iou"] is not None  # the cut-short epoch was validated
    assert read_checkpoint(tmp_path / "last.pt")["epoch"] == len(history)
    assert history[-1]["lr"] < 0.05 * settings.lr  # the budget drove the cosine (nearly) to its end


def test_max_time_stops_inside_an_epoch(binary_root, monkeypatch):
    clock = FakeClock(tick=0.05)
    monkeypatch.setattr(train_module, "time", SimpleNamespace(perf_counter=clock.perf_counter))
    seen = []
    real = train_module.train_one_epoch

    def counting(*args, **kwargs):
        seen.append(real(*args, **kwargs)[1])
        return seen[-1], seen[-1]

    monkeypatch.setattr(train_module, "train_one_epoch", counting)
    fit(tiny_unet(), folder(binary_root), None, config(epochs=1, batch_size=1, max_time=0.25))
    assert 1 <= seen[0] < 8  # not all 8 steps of the epoch


# ----------------------------------------------------------------------------- fit: fine-tuning (init=)

def test_init_starts_from_the_checkpoints_weights(tmp_path, binary_root, val_root, monkeypatch):
    fit(tiny_unet(seed=1), folder(binary_root), folder(val_root), config(epochs=1), out_dir=tmp_path / "first")
    trained = read_checkpoint(tmp_path / "first")["model_state"]  # the run folder: its best.pt
    at_start = []
    real = train_module.train_one_epoch

    def spy(model, *args, **kwargs):
        if not at_start:
            at_start.append(state_of(model))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", spy)
    history = fit(tiny_unet(seed=2), folder(binary_root), None, config(epochs=1), init=tmp_path / "first")
    assert_same_state(at_start[0], trained)
    assert history[0]["epoch"] == 1  # fine-tuning starts a new run: epoch 1, a fresh schedule


@pytest.mark.parametrize("ours, difference", [
    ({"num_classes": 3}, "num_classes: checkpoint 1, this model 3"),
    ({"base_features": 8}, "base_features: checkpoint 4, this model 8"),
    ({"in_channels": 1}, "in_channels: checkpoint 3, this model 1"),
])
def test_init_refuses_another_unet(tmp_path, binary_root, ours, difference):
    save_checkpoint(tmp_path / "cats.pt", tiny_unet(), class_names=["_background_", "cat"])
    model = tiny_unet(**ours)
    before = state_of(model)
    with pytest.raises(ValueError, match="Cannot start from") as error:
        fit(model, folder(binary_root), None, config(epochs=1), init=tmp_path / "cats.pt", out_dir=tmp_path / "run")
    assert difference in str(error.value)
    assert_same_state(model.state_dict(), before) and not (tmp_path / "run").exists()


def test_init_refuses_other_class_names(tmp_path):
    dogs = folder(make_voc(tmp_path / "dogs", n=4, names=["_background_", "dog"]))
    save_checkpoint(tmp_path / "cats.pt", tiny_unet(), class_names=["_background_", "cat"])
    with pytest.raises(ValueError, match=r"class names: checkpoint \['_background_', 'cat'\], "
                                         r"this data \['_background_', 'dog'\]"):
        fit(tiny_unet(), dogs, None, config(epochs=1), init=tmp_path / "cats.pt")


# ----------------------------------------------------------------------------- CUDA (skipped without a GPU)

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["auto", "fp16"])
def test_fit_on_cuda(tmp_path, binary_root, val_root, amp):
    """auto: bf16 + channels_last on recent GPUs; fp16: autocast + a GradScaler. The checkpoints load on a CPU."""
    settings = config(epochs=2, device="cuda", amp=amp, channels_last="auto")
    model = tiny_unet()
    history = fit(model, folder(binary_root), folder(val_root), settings, out_dir=tmp_path)
    assert len(history) == 2 and all(math.isfinite(row["train_loss"]) for row in history)
    assert next(model.parameters()).device.type == "cuda"
    loaded, _ = load_checkpoint(tmp_path / "last.pt")
    assert next(loaded.parameters()).device.type == "cpu"
    assert all(t.is_contiguous() for t in loaded.state_dict().values())
    model.eval()
    image = folder(val_root)[0][0][None]
    with torch.inference_mode():
        assert torch.allclose(loaded(image), model(image.cuda()).cpu(), atol=1e-4)
