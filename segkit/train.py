"""Training, as in torchvision's references/segmentation: `train_one_epoch`, `evaluate`, and `fit`.

    config = TrainConfig(epochs=30)
    history = fit(model, train_set, val_set, config, out_dir="runs/cats")
    model, checkpoint = load_checkpoint("runs/cats/best.pt")

`fit` picks the device and number format (segkit.device), then per epoch: `train_one_epoch`
(AdamW, warm-up then cosine learning rate), `evaluate` on the validation photos, a history row,
and the checkpoints in out_dir: last.pt (to resume), best.pt (best validation foreground IoU,
to predict with) and history.json. It stops after `epochs`, after `max_time` seconds, or at
Ctrl-C, and always leaves last.pt behind.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoint import load_weights_for_finetuning, read_checkpoint, save_checkpoint
from .data import SegmentationFolder, make_loader
from .device import autocast, choose_precision, precision_name, select_device
from .files import atomic_file
from .losses import default_loss
from .metrics import ConfusionMatrix
from .predict import predict_proba, probabilities_to_mask

StrPath = str | os.PathLike  # a file or folder name, as a str or a Path
LOG_EVERY_S = 5.0  # fit prints an epoch's line at most this often (and always the first and the last)


@dataclass
class TrainConfig:
    """What `fit` needs besides the model and the data. The defaults are segkit's recipe for real
    photos on a CPU, chosen by held-out IoU after fixed time budgets (benchmarks/README.md)."""

    epochs: int = 40
    batch_size: int = 8
    lr: float = 3e-3                  # peak learning rate of AdamW, after a 5% warm-up; cosine decay to 1%
    max_time: float | None = None     # seconds: stop after the step that reaches it, validate, save
    seed: int = 0
    device: str = "auto"              # "auto" (cuda > mps > cpu), "cpu", "cuda", "cuda:1", "mps"
    amp: str = "auto"                 # autocast format: "auto", "bf16", "fp16" or "off" (segkit.device)
    channels_last: bool | str = "auto"
    progress: bool = True             # a progress bar and epoch lines (at most one per LOG_EVERY_S)
    live_plot: bool = False           # redraw the loss / IoU plot after every epoch (Jupyter)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if isinstance(getattr(self, name), bool) or not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {getattr(self, name)!r}")
        if isinstance(self.lr, bool) or not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"TrainConfig.lr must be a number > 0, got {self.lr!r}")
        if self.max_time is not None and not self.max_time > 0:
            raise ValueError(f"TrainConfig.max_time must be None or seconds > 0, got {self.max_time!r}")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators: same seed, same weights and batches, same losses on a CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every GPU's too


class WarmupCosine:
    """The learning rate per step: linear warm-up over the first 5%, then a cosine down to 1% of the peak.

    Progress is the larger of steps done / steps planned and seconds spent / max_time, so a run
    that its time budget cuts short still ends with a small learning rate, settled.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, total_steps: int, max_time: float | None = None,
                 warmup: float = 0.05, final: float = 0.01) -> None:
        self.optimizer, self.total_steps, self.max_time = optimizer, total_steps, max_time
        self.warmup, self.final, self.steps = warmup, final, 0
        self.peak = [group["lr"] for group in optimizer.param_groups]
        self.started = time.perf_counter()
        self._apply()

    @property
    def progress(self) -> float:
        by_time = (time.perf_counter() - self.started) / self.max_time if self.max_time else 0.0
        return min(1.0, max(self.steps / self.total_steps, by_time))

    @property
    def out_of_time(self) -> bool:
        return self.max_time is not None and time.perf_counter() - self.started >= self.max_time

    def step(self) -> None:
        self.steps += 1
        self._apply()

    def _apply(self) -> None:
        p = self.progress
        factor = p / self.warmup if p < self.warmup else 0.5 * (1 + math.cos(math.pi * (p - self.warmup) / (1 - self.warmup)))
        for group, peak in zip(self.optimizer.param_groups, self.peak):
            group["lr"] = peak * (self.final + (1 - self.final) * factor)


def make_optimizer(model: nn.Module, lr: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW that decays conv weights only: decaying BatchNorm scales and biases fights the normalisation."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}], lr=lr,
                             fused=device.type in ("cpu", "cuda"))  # one kernel for all weights: 3x faster on a CPU


def train_one_epoch(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                    schedule: WarmupCosine, device: torch.device, dtype: torch.dtype | None = None,
                    channels_last: bool = False, scaler: torch.amp.GradScaler | None = None,
                    bar: tqdm | None = None) -> tuple[float, int]:
    """One pass over `loader`: (mean training loss per image, images seen). Stops early when time is up."""
    model.train()  # BatchNorm uses the batch's statistics and updates its running ones
    loss_sum, images_seen = 0.0, 0
    for images, masks in loader:
        images, masks = images.to(device, non_blocking=True), masks.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(device, dtype):
            logits = model(images)
        loss = loss_fn(logits.float(), masks)  # the loss in fp32, whatever the autocast
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:  # fp16: scale the loss so small gradients do not flush to zero
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        schedule.step()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"the training loss became {loss.item()}: lower the learning rate, or check the masks.")
        loss_sum += loss.item() * len(images)
        images_seen += len(images)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / images_seen:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.1e}", refresh=False)
        if schedule.out_of_time:
            break
    return loss_sum / max(images_seen, 1), images_seen


def evaluate(model: nn.Module, dataset: SegmentationFolder, threshold: float = 0.5, batch_size: int = 8) -> dict:
    """Scores of `model` on every photo of `dataset`, measured at each photo's own size.

    Each photo is predicted exactly as `predict_mask` predicts it (preprocessed to the dataset's
    image_size, probabilities upsampled to the photo's size, then thresholded or arg-maxed) and
    compared with its mask; all pixels go into one ConfusionMatrix. Returns its `summary()`:
    foreground_iou (the cat's IoU for a binary model), miou, per-class iou, dice, accuracies.
    """
    classes = max(model.config["num_classes"], 2)
    confusion = ConfusionMatrix(classes)
    for start in range(0, len(dataset), batch_size):
        photos, masks = zip(*(dataset.read(i) for i in range(start, min(start + batch_size, len(dataset)))))
        probabilities = predict_proba(model, list(photos), dataset.image_size, dataset.resize)
        for probs, mask in zip(probabilities, masks):
            confusion.update(torch.from_numpy(probabilities_to_mask(probs, threshold)), torch.from_numpy(mask))
    names = dataset.class_names if dataset.class_names and len(dataset.class_names) == classes else None
    return confusion.summary(names)


def resume_training(path: StrPath, model: nn.Module, optimizer: torch.optim.Optimizer,
                    schedule: WarmupCosine) -> tuple[int, list[dict]]:
    """Restore model, optimizer and schedule from a last.pt (or a run folder's); returns (epochs done, history so far)."""
    path = Path(path) / "last.pt" if Path(path).is_dir() else path
    checkpoint = read_checkpoint(path)
    if checkpoint["model_config"] != model.config:
        raise ValueError(f"{path} holds UNet(**{checkpoint['model_config']}), this model is UNet(**{model.config}).")
    if checkpoint.get("optimizer_state") is None:
        raise ValueError(f"{path} has no optimizer state (a best.pt?): resume from the run's last.pt.")
    model.load_state_dict(checkpoint["model_state"])
    fused = optimizer.param_groups[0]["fused"]
    optimizer.load_state_dict(checkpoint["optimizer_state"])
    for group in optimizer.param_groups:
        group["fused"] = fused  # the run may have been saved on another device
    schedule.steps = checkpoint["schedule_steps"]
    return checkpoint["epoch"], checkpoint["history"]


def fit(model: nn.Module, train_set: SegmentationFolder, val_set: SegmentationFolder | None = None,
        config: TrainConfig | None = None, *, out_dir: StrPath | None = None, resume: StrPath | None = None,
        init: StrPath | None = None, loss_fn: nn.Module | None = None) -> list[dict]:
    """Train `model` in place; return its history, a dict per epoch: epoch, train_loss, val_foreground_iou
    and val_miou (None without val_set), lr, seconds (the whole epoch), images_per_second (training only).

    val_set None: no validation, and best.pt is the last epoch. out_dir: the run folder for last.pt, best.pt
    and history.json (None: write nothing). resume: a last.pt to continue from. init: a trained checkpoint
    to start from (fine-tuning). loss_fn: default BCE + Dice for one output channel, else CE + Dice.
    """
    config = config or TrainConfig()
    device = select_device(config.device)
    dtype, channels_last = choose_precision(device, config.amp, config.channels_last)
    out_dir = Path(out_dir) if out_dir is not None else None
    if init is not None:
        load_weights_for_finetuning(model, init, train_set.class_names)
    model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    loss_fn = (loss_fn or default_loss(model.config["num_classes"])).to(device)
    # On a GPU, worker processes prepare the next batches meanwhile; on a CPU they would only compete for its cores.
    workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
    loader = make_loader(train_set, config.batch_size, shuffle=True, seed=config.seed, workers=workers)
    optimizer = make_optimizer(model, config.lr, device)
    schedule = WarmupCosine(optimizer, config.epochs * len(loader), config.max_time)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    start, history = resume_training(resume, model, optimizer, schedule) if resume else (0, [])
    bar = tqdm(total=config.epochs * len(loader), initial=start * len(loader), disable=not config.progress,
               unit="step", mininterval=1.0)
    show_plot = _live_plot(config.live_plot)
    if config.progress:
        bar.write(_describe_run(device, dtype, channels_last, len(train_set), len(loader), config.max_time))
    epoch, last_line = start, -math.inf
    try:
        for epoch in range(start, config.epochs):
            seed_everything(config.seed + epoch)  # the only seed rule: a resumed run repeats the same batches
            loader.generator.manual_seed(config.seed + epoch)
            started = time.perf_counter()
            loss, images = train_one_epoch(model, loader, loss_fn, optimizer, schedule, device, dtype, channels_last,
                                           scaler, bar)
            row = {"epoch": epoch + 1, "train_loss": loss, "images_per_second": images / (time.perf_counter() - started)}
            scores = evaluate(model, val_set) if val_set is not None else {}
            row |= {"val_foreground_iou": scores.get("foreground_iou"), "val_miou": scores.get("miou"),
                    "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started}
            best = val_set is None or all((row["val_foreground_iou"] or 0) > (r["val_foreground_iou"] or 0) for r in history)
            history.append(row)
            _save_epoch(out_dir, model, optimizer, schedule, config, train_set, history, best)
            # Epochs of a second would flood a notebook: a line at most every LOG_EVERY_S (history.json keeps all).
            last_epoch = epoch + 1 == config.epochs or schedule.out_of_time
            if config.progress and (epoch == start or last_epoch or time.perf_counter() - last_line >= LOG_EVERY_S):
                bar.write(_format_row(row, config.epochs) + ("  (best)" if best and val_set is not None else ""))
                last_line = time.perf_counter()
            show_plot(history)
            if schedule.out_of_time:
                break
    except KeyboardInterrupt:
        _save_epoch(out_dir, model, optimizer, schedule, config, train_set, history, best=False)
        print(f"Interrupted in epoch {epoch + 1}: {len(history)} epoch(s) done" +
              (f", saved in {out_dir / 'last.pt'}; continue with resume='{out_dir / 'last.pt'}'." if out_dir else "."))
    finally:
        bar.close()
    return history


def _save_epoch(out_dir: Path | None, model: nn.Module, optimizer: torch.optim.Optimizer, schedule: WarmupCosine,
                config: TrainConfig, train_set: SegmentationFolder, history: list[dict], best: bool) -> None:
    if out_dir is None:
        return
    info = {"class_names": train_set.class_names, "image_size": list(train_set.image_size or []) or None,
            "resize": train_set.resize, "epoch": len(history), "history": history, "train_config": asdict(config)}
    save_checkpoint(out_dir / "last.pt", model, **info, optimizer_state=optimizer.state_dict(),
                    schedule_steps=schedule.steps)
    if best:  # without the optimizer's state (twice the model's size): best.pt is for predicting
        save_checkpoint(out_dir / "best.pt", model, **info)
    with atomic_file(out_dir / "history.json", "w") as file:
        json.dump(history, file, indent=1)


def _describe_run(device: torch.device, dtype: torch.dtype | None, channels_last: bool, photos: int, steps: int,
                  max_time: float | None) -> str:
    layout = ", channels_last" if channels_last else ""
    budget = f", at most {max_time:g} s" if max_time else ""
    return (f"Training on {device} ({precision_name(dtype)}{layout}), {photos} photos, "
            f"{steps} step{'' if steps == 1 else 's'} per epoch{budget}")


def _format_row(row: dict, epochs: int) -> str:
    text = f"epoch {row['epoch']:>3}/{epochs}  train_loss {row['train_loss']:.4f}"
    if row["val_foreground_iou"] is not None:
        text += f"  val_foreground_iou {row['val_foreground_iou']:.3f}  val_miou {row['val_miou']:.3f}"
    return text + f"  lr {row['lr']:.1e}  {row['seconds']:.1f} s  {row['images_per_second']:.1f} img/s"


def _live_plot(enabled: bool):
    """A function that redraws the history plot after each epoch (Jupyter), or does nothing."""
    if not enabled:
        return lambda history: None
    from .plots import LiveHistory  # matplotlib only when asked for

    return LiveHistory().update
