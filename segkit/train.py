"""Training: fit a UNet with validation, checkpoints, resume, mixed precision and a time budget.

Read it top to bottom (like nanoGPT's train.py or torchvision's references/segmentation):

    config  = TrainConfig(epochs=30, max_time=120)        # one small dataclass
    history = fit(model, train_set, val_set, config, out_dir="runs/cats")
    model, checkpoint = load_checkpoint("runs/cats/best.pt")

What `fit` does, in order:
 1. picks the device (CUDA, then Apple MPS, then CPU) and the number format: bf16/fp16 autocast
    and channels_last where they are fast on that device (see `choose_precision`);
 2. per epoch: train over shuffled batches (AdamW, warm-up then cosine LR), validate
    (loss and mIoU), append a history row, write `last.pt`, `best.pt` (when val mIoU improves)
    and `history.json` into `out_dir`;
 3. stops after `epochs`, after `max_time` seconds, or at Ctrl-C, always leaving a checkpoint.

A checkpoint is a dict of plain types and tensors (no pickled classes), loadable with
`torch.load(path, weights_only=True)`; `load_checkpoint` rebuilds the UNet from the config
stored inside. (The source lesson saved the whole pickled model with `torch.save(model)`;
such files need the exact class importable to load, which is what broke for its learners.)
"""

from __future__ import annotations

import json
import math
import os
import pickle
import random
import signal
import sys
import threading
import time
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .files import atomic_file
from .losses import default_loss
from .metrics import ConfusionMatrix, logits_to_pred
from .model import UNet

CHECKPOINT_FORMAT = "segkit"
CHECKPOINT_VERSION = 1


# ----------------------------------------------------------------------------- configuration

@dataclass
class TrainConfig:
    """Everything `fit` needs to know besides the model and the data. All plain types.

    The defaults are a recipe for small datasets (8 to 100 labelled photos) on a CPU:
    AdamW at lr 1e-3 with a short warm-up and cosine decay, batch 4, BCE + Dice loss
    (`losses.default_loss`), validation every epoch. Chosen by held-out IoU after a fixed
    training budget (benchmarks/README.md, 3 seeds each): lr 1e-3 beat 5e-4, 2e-3 and 3e-3,
    batch 4 beat batch 8, and warm-up + cosine beat a constant lr on average and varied less.
    """

    epochs: int = 30                  # upper bound on epochs (a run may stop earlier: max_time, Ctrl-C)
    batch_size: int = 4
    lr: float = 1e-3                  # peak learning rate, reached after the warm-up
    weight_decay: float = 1e-2        # AdamW decay of conv weights (not BatchNorm or biases)
    warmup: float = 0.05              # fraction of the run spent ramping the LR up from ~0
    max_time: float | None = None     # seconds; stop cleanly (validate + checkpoint) after this long
    device: str = "auto"              # "auto" (cuda > mps > cpu), "cpu", "cuda", "cuda:1", "mps"
    amp: str = "auto"                 # "auto" | "bf16" | "fp16" | "off": autocast number format
    channels_last: bool | str = "auto"  # True | False | "auto": NHWC memory layout for the convs
    seed: int = 0
    deterministic: bool = False       # True: repeatable GPU runs (cuDNN deterministic, a bit slower)
    num_workers: int = 0              # DataLoader worker processes (0 is fine for a cached dataset)
    val_every: int = 1                # validate every N epochs (and always after the last one)
    threshold: float = 0.5            # binary models: foreground where sigmoid(logit) > threshold
    progress: bool = True             # tqdm progress bar and one summary line per epoch
    live_plot: bool = False           # redraw a loss / mIoU plot each epoch (Jupyter only)

    def __post_init__(self) -> None:
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ValueError(f"TrainConfig.amp must be 'auto', 'bf16', 'fp16' or 'off', got {self.amp!r}")
        if self.channels_last not in (True, False, "auto"):
            raise ValueError(f"TrainConfig.channels_last must be True, False or 'auto', got {self.channels_last!r}")
        for name in ("epochs", "batch_size", "val_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive int, got {value!r}")
        if self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers must be >= 0, got {self.num_workers!r}")
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be a number > 0, got {self.lr!r}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"TrainConfig.warmup is a fraction of the run in [0, 1), got {self.warmup!r}")
        if self.max_time is not None and (not isinstance(self.max_time, (int, float)) or not self.max_time > 0):
            raise ValueError(f"TrainConfig.max_time must be None or seconds > 0, got {self.max_time!r}")

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Rebuild from `asdict(config)` (e.g. checkpoint["train_config"]), ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# ----------------------------------------------------------------------------- device and numbers

def select_device(device: str | torch.device = "auto") -> torch.device:
    """"auto": CUDA if available, else Apple MPS, else CPU. Or name one: "cpu", "cuda", "cuda:1", "mps"."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string like 'auto', 'cpu' or 'cuda:0', got {device!r}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"Unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.") from error
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"device={device!r} but PyTorch sees no CUDA GPU (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda}). Use device='auto' or 'cpu', or install a "
                "CUDA build of PyTorch that matches your driver (https://pytorch.org/get-started/)."
            )
        count = torch.cuda.device_count()
        if chosen.index is not None and chosen.index >= count:
            raise RuntimeError(f"device={device!r} but only {count} CUDA GPU(s) exist: cuda:0 .. cuda:{count - 1}.")
    elif chosen.type == "mps" and not _mps_available():
        raise RuntimeError(f"device={device!r} but Apple MPS is not available here (it needs an Apple-silicon "
                           "Mac). Use 'auto' or 'cpu'.")
    elif chosen.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"Unsupported device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    return chosen


def _mps_available() -> bool:
    return hasattr(torch.backends, "mps") and torch.backends.mps.is_available()


def cpu_has_native_bf16() -> bool:
    """True when this x86 CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16).

    oneDNN also runs bf16 on plain AVX-512 CPUs (`torch.ops.mkldnn._is_mkldnn_bf16_supported()`
    says True there), but by converting to fp32, which is slower than staying in fp32. ARM CPUs
    are left in fp32: not measured for this course.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)  # public API in torch >= 2.10
    if get_capabilities is not None:
        caps = get_capabilities()
        return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
    try:  # older torch: ask the kernel (Linux)
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cpu_runs_nhwc_natively() -> bool:
    """oneDNN (x86, AVX2 or better) runs convolutions natively in NHWC (channels_last)."""
    get_capabilities = getattr(torch.cpu, "get_capabilities", None)
    if get_capabilities is not None:
        caps = get_capabilities()
        return torch.backends.mkldnn.is_available() and bool(caps.get("avx2") or caps.get("avx512_f"))
    return torch.backends.mkldnn.is_available() and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


def choose_precision(device: torch.device, amp: str = "auto",
                     channels_last: bool | str = "auto") -> tuple[torch.dtype | None, bool]:
    """Resolve `amp` and `channels_last` for `device`: (autocast dtype or None for fp32, channels_last).

    "auto" rules (training the lesson UNet, 256x256, batch 4; figures in benchmarks/README.md):
      CUDA: bf16 autocast where the GPU supports it (Ampere and newer), else fp16 with a
            GradScaler; channels_last (tensor cores work in NHWC).
      CPU:  bf16 autocast only when the CPU has bf16 instructions (AVX512-BF16 / AMX): measured
            about 2x faster than fp32 there, while emulated bf16 is slower than fp32.
            channels_last on x86 CPUs with oneDNN (it avoids a layout conversion per conv).
      MPS:  fp32 and the default layout (autocast support on MPS is still young).
    """
    device = torch.device(device)
    if amp == "off":
        dtype = None
    elif amp == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise RuntimeError("amp='bf16' but this GPU has no bf16 support; use amp='fp16' or 'auto'.")
        dtype = torch.bfloat16
    elif amp == "fp16":
        dtype = torch.float16
    elif amp == "auto":
        if device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        elif device.type == "cpu" and cpu_has_native_bf16():
            dtype = torch.bfloat16
        else:
            dtype = None
    else:
        raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")

    if channels_last == "auto":
        use_channels_last = device.type == "cuda" or (device.type == "cpu" and _cpu_runs_nhwc_natively())
    elif channels_last in (True, False):
        use_channels_last = bool(channels_last)
    else:
        raise ValueError(f"channels_last must be True, False or 'auto', got {channels_last!r}")
    return dtype, use_channels_last


def _precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


# ----------------------------------------------------------------------------- randomness

def _seed_rngs(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python's `random`, NumPy and PyTorch (CPU and CUDA).

    Call it before building the model so that its initial weights repeat too. On a CPU, two
    runs with the same seed then give identical losses. On a GPU, `deterministic=True` also
    makes cuDNN pick deterministic convolution algorithms (repeatable, a little slower);
    `deterministic=False` lets cuDNN benchmark and pick the fastest ones instead.
    """
    _seed_rngs(seed)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


# ----------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str | os.PathLike, checkpoint: dict) -> None:
    """Write `checkpoint` to `path` atomically: a temp file in the same folder, then `os.replace`.

    A crash or Ctrl-C mid-write leaves the previous file intact (never a half-written one).
    Raises TypeError, before writing anything, if the dict holds something other than plain
    types and tensors (a Path, numpy scalar, argparse Namespace ...), because
    `torch.load(..., weights_only=True)` could not read it back.
    """
    _check_plain(checkpoint, "checkpoint")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as file:
        torch.save(checkpoint, file)


_PLAIN_TYPES = (bool, int, float, str, type(None))


def _check_plain(value: Any, where: str) -> None:
    """Raise TypeError naming the first value that `torch.load(..., weights_only=True)` would refuse."""
    if type(value) in _PLAIN_TYPES or isinstance(value, (torch.Tensor, torch.dtype, torch.device)):
        return
    if type(value) in (dict, OrderedDict):  # state_dict() returns an OrderedDict
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; use str or int keys.")
            _check_plain(item, f"{where}[{key!r}]")
        return
    if type(value) in (list, tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__name__} ({value!r:.80}); checkpoints hold only "
        "str, int, float, bool, None, lists, dicts and tensors so that torch.load(..., weights_only=True) "
        "can read them. Convert it first, e.g. str(path), float(numpy_value), vars(namespace)."
    )


def _resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():  # a run folder: prefer the best weights
        for name in ("best.pt", "last.pt"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"{path} is a folder without best.pt or last.pt. Training writes them into its run folder: "
            "fit(..., out_dir=RUN_DIR) or `segkit train DATA_DIR --out RUN_DIR`."
        )
    if not path.is_file():
        hint = ""
        if path.parent.is_dir():
            found = sorted(p.name for p in path.parent.glob("*.pt"))
            hint = (f" Checkpoints in {path.parent}: {', '.join(found)}." if found
                    else f" {path.parent} holds no .pt files.")
        raise FileNotFoundError(
            f"No checkpoint at {path}.{hint} Training writes RUN_DIR/best.pt, RUN_DIR/last.pt and "
            "RUN_DIR/history.json, where RUN_DIR is fit(..., out_dir=RUN_DIR) or `segkit train DATA_DIR --out RUN_DIR`."
        )
    return path


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a segkit checkpoint dict with `weights_only=True`, with clear errors for other files."""
    path = _resolve_checkpoint_path(path)
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path} is not a segkit checkpoint: it holds pickled Python objects, most likely a whole "
            "model saved with torch.save(model) as in the source lesson. Such a file can only be loaded "
            "with the exact class that made it importable (and unpickling runs code, so only trust your "
            "own files). segkit saves a dict with the model's state_dict and its config instead, so any "
            "machine can rebuild it. To convert a model you can load: "
            "model = torch.load(path, weights_only=False); then fit or save_checkpoint a segkit UNet "
            "with its weights."
        ) from error
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"Could not read {path} as a PyTorch file ({error}). Is it truncated, or not a "
                         "checkpoint?") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        tensors_only = isinstance(checkpoint, dict) and all(isinstance(v, torch.Tensor) for v in checkpoint.values())
        if checkpoint and tensors_only:
            raise ValueError(
                f"{path} holds a bare state_dict, not a segkit checkpoint (no model config inside). "
                "Build the model with the same arguments it was trained with, then load it: "
                "model = UNet(...); model.load_state_dict(torch.load(path, weights_only=True))."
            )
        raise ValueError(
            f"{path} is not a segkit checkpoint (no 'format': 'segkit' entry). segkit checkpoints are "
            "written by fit(..., out_dir=RUN_DIR) as RUN_DIR/best.pt and RUN_DIR/last.pt."
        )
    if checkpoint.get("version", 0) > CHECKPOINT_VERSION:
        raise ValueError(f"{path} was written by a newer segkit (checkpoint version {checkpoint['version']}); "
                         "upgrade segkit.")
    return checkpoint


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """Rebuild the UNet stored in a checkpoint (file, or run folder -> its best.pt) in eval mode.

    Returns (model on `device`, the checkpoint dict: "epoch", "metrics", "history",
    "class_names", "image_size", "train_config", ...).
    """
    device = select_device(device) if isinstance(device, str) else torch.device(device)
    checkpoint = read_checkpoint(path, map_location=device)
    model = UNet(**checkpoint["model_config"])
    model.load_state_dict(checkpoint["model_state"])
    model.to(device).eval()
    return model, checkpoint


# ----------------------------------------------------------------------------- data

def _as_loader(data: Dataset | DataLoader, batch_size: int, shuffle: bool, num_workers: int,
               device: torch.device, generator: torch.Generator | None = None) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    if len(data) == 0:
        raise ValueError("The dataset is empty: check the folder holds JPEGImages/ and SegmentationClass(PNG)/.")
    return DataLoader(
        data,
        batch_size=batch_size,
        shuffle=shuffle,
        # Training: drop a last, smaller batch when there is at least one full batch; a batch of
        # one or two images gives BatchNorm noisy statistics. Shuffling changes which images
        # are dropped every epoch, so none is left out for good.
        drop_last=shuffle and len(data) > batch_size,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=device.type == "cuda",  # page-locked memory: faster, asynchronous copies to the GPU
        generator=generator,
    )


def _load_batches(loader: DataLoader):
    """Iterate over `loader`; batches loaded in this process are loaded with one torch thread.

    Augmentation runs many small ops per image (rotate, colour jitter ...). Spread over several
    OpenMP threads they gain next to nothing, and on a busy machine (other programs, tests in
    parallel) a thread waiting for a descheduled sibling made them 100x slower, measured here:
    ColorJitter on a 256x256 image took 0.6 s with 2 threads and 3 ms with 1. Worker processes
    (num_workers > 0) already use one thread each.
    """
    iterator = iter(loader)
    while True:
        threads = torch.get_num_threads()
        if loader.num_workers == 0:
            torch.set_num_threads(1)
        try:
            batch = next(iterator)
        except StopIteration:
            return
        finally:
            torch.set_num_threads(threads)
        yield batch


def _find_attribute(data: Any, name: str) -> Any:
    """Look for `name` on a dataset, through DataLoader.dataset and Subset.dataset wrappers."""
    for _ in range(5):
        if data is None:
            return None
        value = getattr(data, name, None)
        if value is not None:
            return value
        data = getattr(data, "dataset", None)
    return None


def _target_indices(masks: torch.Tensor) -> torch.Tensor:
    """Masks as (N, H, W) int64 class indices, for the confusion matrix."""
    if masks.ndim == 4 and masks.shape[1] == 1:  # SegmentationFolder(binary_target=True): (N, 1, H, W) float
        masks = masks[:, 0]
    return masks if masks.dtype == torch.int64 else masks.round().long()


def _check_first_batch(images: torch.Tensor, masks: torch.Tensor, num_classes: int, in_channels: int) -> None:
    if not images.is_floating_point() or images.ndim != 4 or images.shape[1] != in_channels:
        raise ValueError(
            f"Training images must be float (N, {in_channels}, H, W) in [0, 1]; got {images.dtype} "
            f"{tuple(images.shape)}. Check the dataset's __getitem__ (SegmentationFolder returns them so)."
        )
    target = _target_indices(masks)
    if target.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"Masks of shape {tuple(masks.shape)} do not match images {tuple(images.shape)}: "
                         "expected (N, H, W).")
    values = torch.unique(target).tolist()
    too_big = [v for v in values if v != 255 and not 0 <= v < max(num_classes, 2)]
    if too_big:
        hint = (f"UNet(num_classes={max(too_big) + 1}) (classes incl. background) for a multi-class model"
                if num_classes == 1 else f"a model with num_classes >= {max(too_big) + 1}")
        raise ValueError(
            f"Masks hold class ids {too_big}, but the model has num_classes={num_classes} "
            f"(valid ids 0..{max(num_classes, 2) - 1} and 255 = ignore). Use {hint}, or fix the masks."
        )


# ----------------------------------------------------------------------------- the LR schedule

def lr_factor(progress: float, warmup: float = 0.05, final: float = 0.01) -> float:
    """LR multiplier at `progress` in [0, 1] of the run: linear warm-up, then cosine down to `final`.

    The warm-up keeps Adam's first, badly estimated steps small; the cosine decay lets the
    weights settle at the end. `progress` is the larger of (steps done / steps planned) and
    (seconds spent / max_time), so a run cut short by its time budget still ends annealed.
    """
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return final + (1 - final) * progress / warmup
    decay = (progress - warmup) / (1 - warmup)
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * decay))


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, device: torch.device) -> torch.optim.AdamW:
    """AdamW, decaying only conv weights (tensors of 2+ dims): decaying BatchNorm scales and
    biases only fights the normalisation (as nanoGPT's configure_optimizers does)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        # one fused kernel over all parameters instead of a dozen small ops per tensor: measured
        # 3x faster optimizer steps on CPU (about 3% of a UNet training step); CUDA has one too
        fused=True if device.type in ("cpu", "cuda") else None,
    )


# ----------------------------------------------------------------------------- evaluation

def _evaluate_batches(model: nn.Module, loader: DataLoader, device: torch.device, num_classes: int,
                      threshold: float, loss_fn: nn.Module | None = None,
                      autocast_dtype: torch.dtype | None = None,
                      channels_last: bool = False) -> tuple[ConfusionMatrix, float | None]:
    """Run the model over `loader` once; return the confusion matrix and the mean loss."""
    confusion = ConfusionMatrix(2 if num_classes == 1 else num_classes, device=device)
    loss_sum, count = 0.0, 0
    was_training = model.training
    model.eval()  # BatchNorm: running statistics, not the batch's
    try:
        with torch.inference_mode():
            for images, masks in _load_batches(loader):
                images = images.to(device, non_blocking=True)
                if channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                masks = masks.to(device, non_blocking=True)
                with _autocast(device, autocast_dtype):
                    logits = model(images)
                logits = logits.float()  # loss and thresholds in fp32
                if loss_fn is not None:
                    loss_sum += loss_fn(logits, masks).item() * images.shape[0]
                    count += images.shape[0]
                confusion.update(logits_to_pred(logits, threshold), _target_indices(masks))
    finally:
        model.train(was_training)
    return confusion, (loss_sum / count if count else None)


def _headline_miou(confusion: ConfusionMatrix, num_classes: int) -> float | None:
    """Binary: IoU of the foreground (the lesson's mIoU with k = 1). Multi-class: mean IoU over
    all classes including background (the Pascal VOC convention). None when undefined."""
    value = confusion.miou(include_background=num_classes > 1)
    return None if value is None or math.isnan(value) else float(value)


def evaluate(model: nn.Module, data: Dataset | DataLoader, device: str | torch.device | None = None,
             threshold: float = 0.5, num_classes: int | None = None, batch_size: int = 4,
             class_names: list[str] | None = None) -> dict:
    """Segmentation metrics of `model` over a whole dataset (accumulated in one confusion matrix).

    Returns `ConfusionMatrix.summary()` (plain floats: per-class IoU, Dice, pixel accuracy, ...)
    with "miou" set to the headline number: for a binary model (num_classes == 1) the
    foreground IoU, as in the lesson; for a multi-class model the mean IoU including background.
    Runs in fp32, in eval mode; the model's mode is restored afterwards.
    """
    if device is None:  # where the model already is
        device = next(model.parameters(), torch.empty(0)).device
    device = select_device(device) if isinstance(device, str) else torch.device(device)
    model.to(device)
    if num_classes is None:
        num_classes = getattr(model, "config", {}).get("num_classes")
        if num_classes is None:
            raise ValueError("evaluate: pass num_classes= for a model without a .config dict.")
    if class_names is None:
        class_names = _find_attribute(data, "class_names")
    if class_names is not None and len(class_names) != (2 if num_classes == 1 else num_classes):
        class_names = None  # names that do not fit the model (e.g. a dataset's) are not worth an error here
    loader = _as_loader(data, batch_size, shuffle=False, num_workers=0, device=device)
    confusion, _ = _evaluate_batches(model, loader, device, num_classes, threshold)
    summary = confusion.summary(class_names=list(class_names) if class_names else None)
    summary["miou"] = _headline_miou(confusion, num_classes)
    return summary


# ----------------------------------------------------------------------------- training

def fit(model: nn.Module, train_data: Dataset | DataLoader, val_data: Dataset | DataLoader | None = None,
        config: TrainConfig | None = None, *, out_dir: str | os.PathLike | None = None,
        resume: str | os.PathLike | bool | None = None, loss_fn: nn.Module | None = None,
        class_names: list[str] | None = None) -> list[dict]:
    """Train `model` and return its history: one dict per epoch.

    Args:
        model: a segkit UNet (or any module with a `.config` dict holding num_classes and
            in_channels). It is trained in place and stays on the chosen device.
        train_data / val_data: Datasets giving (image (3, H, W) float in [0, 1], mask (H, W)
            int64) or DataLoaders of such batches. No val_data: no validation, and best.pt is
            chosen by the lowest training loss.
        config: TrainConfig (defaults when None).
        out_dir: run folder for last.pt (every epoch), best.pt (best validation mIoU) and
            history.json. None: write nothing.
        resume: a checkpoint path (or True for out_dir/last.pt) to continue from: epoch count,
            weights, optimizer, LR schedule and history. Raise config.epochs to train longer.
        loss_fn: called as loss_fn(logits (N, C, H, W) fp32, masks); default
            `losses.default_loss(num_classes)` (BCE + Dice for binary, CE + Dice otherwise).
        class_names: stored in the checkpoints; default: the dataset's `class_names`.

    Stopping early: `max_time` ends the epoch in progress, validates it and saves; Ctrl-C (in
    Jupyter: interrupt the kernel) stops after the current step, writes last.pt (the epochs
    completed so far; resume repeats the unfinished one) and returns the history so far.

    History rows: epoch (1-based), train_loss, val_loss, val_miou (binary: foreground IoU;
    multi-class: mean IoU incl. background; None without validation that epoch), lr (at the
    end of the epoch), seconds (wall time of the epoch incl. validation), images_per_second
    (training images / seconds of the training phase, data loading included).
    """
    config = config or TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    model_config = getattr(model, "config", None)
    if not isinstance(model_config, dict) or "num_classes" not in model_config:
        raise TypeError("fit needs a segkit UNet (a module with a .config dict of its constructor arguments).")
    num_classes = model_config["num_classes"]
    out_dir = Path(out_dir) if out_dir is not None else None

    device = select_device(config.device)
    autocast_dtype, channels_last = choose_precision(device, config.amp, config.channels_last)
    seed_everything(config.seed, deterministic=config.deterministic)

    # Model, loss and every batch must live on the same device (the lesson's BatchNorm, made
    # inside forward(), stayed on the CPU: "Expected all tensors to be on the same device").
    model.to(device)
    loss_fn = (loss_fn if loss_fn is not None else default_loss(num_classes))
    if isinstance(loss_fn, nn.Module):
        loss_fn.to(device)

    # Each epoch's shuffling and augmentation depend only on (seed, epoch): a resumed run sees
    # the same batches as an uninterrupted one.
    sampler_generator = torch.Generator()
    train_loader = _as_loader(train_data, config.batch_size, shuffle=True, num_workers=config.num_workers,
                              device=device, generator=sampler_generator)
    val_loader = (_as_loader(val_data, config.batch_size, shuffle=False, num_workers=config.num_workers,
                             device=device) if val_data is not None else None)
    steps_per_epoch = len(train_loader)
    if steps_per_epoch == 0:
        raise ValueError("The training data gives no batches (an empty dataset, or a DataLoader with drop_last=True "
                         "and fewer images than batch_size).")
    total_steps = config.epochs * steps_per_epoch
    class_names = list(class_names) if class_names is not None else _find_attribute(train_data, "class_names")
    class_names = [str(name) for name in class_names] if class_names is not None else None
    image_size = _find_attribute(train_data, "image_size")

    optimizer = make_optimizer(model, config.lr, config.weight_decay, device)
    # fp16 has a narrow range: scale the loss up so small gradients do not flush to zero (bf16
    # has fp32's range and needs no scaler).
    scaler = torch.amp.GradScaler(device.type, enabled=autocast_dtype == torch.float16)

    history: list[dict] = []
    start_epoch, step, progress = 0, 0, 0.0
    if resume:
        if resume is True:
            if out_dir is None:
                raise ValueError("resume=True means out_dir/last.pt, but out_dir is None: pass out_dir, or "
                                 "resume='path/to/last.pt'.")
            resume = out_dir / "last.pt"
        checkpoint = read_checkpoint(resume, map_location=device)
        if checkpoint["model_config"] != model_config:
            raise ValueError(
                f"{resume} was trained as UNet(**{checkpoint['model_config']}) but this model is "
                f"UNet(**{model_config}). Build the model with the checkpoint's config, or use "
                "load_checkpoint() to get it."
            )
        model.load_state_dict(checkpoint["model_state"])
        if checkpoint.get("optimizer_state") is not None:
            implementation = {k: optimizer.param_groups[0][k] for k in ("fused", "foreach")}
            optimizer.load_state_dict(checkpoint["optimizer_state"])
            for group in optimizer.param_groups:  # the saved run may have used another device
                group.update(implementation)
        else:
            _say(config, f"{resume} holds no optimizer state (a best.pt?): AdamW starts afresh. "
                         "Resume from last.pt to continue exactly where training stopped.")
        if checkpoint.get("scaler_state"):
            scaler.load_state_dict(checkpoint["scaler_state"])
        schedule = checkpoint.get("scheduler_state") or {}
        step, progress = int(schedule.get("step", 0)), float(schedule.get("progress", 0.0))
        start_epoch = int(checkpoint["epoch"])
        history = list(checkpoint.get("history", []))
        if class_names is None:
            class_names = checkpoint.get("class_names")
        if start_epoch >= config.epochs:
            _say(config, f"{resume} has already trained {start_epoch} epochs (config.epochs={config.epochs}); "
                         "raise epochs to train longer.")
            return history
        _say(config, f"Resuming from {resume} after epoch {start_epoch}.")

    def make_checkpoint(epoch: int, metrics: dict) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "model_config": dict(model_config),
            # contiguous CPU copies: loadable anywhere, whatever layout we trained in
            "model_state": {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()},
            "optimizer_state": optimizer.state_dict(),
            "scheduler_state": {"name": "warmup_cosine", "step": step, "progress": progress,
                                "total_steps": total_steps},
            "scaler_state": scaler.state_dict() if scaler.is_enabled() else None,
            "epoch": epoch,
            "metrics": dict(metrics),
            "history": [dict(row) for row in history],
            "train_config": asdict(config),
            "class_names": class_names,
            "image_size": _image_size_of(image_size, first_shape),
        }

    def best_score(row: dict) -> tuple:
        # Higher is better. With validation: mIoU first (None counts as worst), then lower val loss.
        if val_loader is not None:
            if row.get("val_loss") is None:
                return (-math.inf, -math.inf)
            miou = row["val_miou"]
            return (-math.inf if miou is None else miou, -row["val_loss"])
        return (-row["train_loss"],)

    scored = [best_score(row) for row in history]
    best = max(scored) if scored else None

    live_plot = _LivePlot() if config.live_plot and _in_notebook() else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    _say(config, f"Training on {device} ({_precision_name(autocast_dtype)}"
                 f"{', channels_last' if channels_last else ''}), {steps_per_epoch} steps per epoch"
                 + (f", at most {config.max_time:g} s" if config.max_time else "")
                 + (f", run folder {out_dir}" if out_dir else ""))

    # mininterval 1 s: in Jupyter every redraw is a few widget messages, and a long run at the
    # default 0.1 s floods the kernel's output channel (nbval then loses the end of the cell).
    bar = tqdm(total=total_steps, initial=start_epoch * steps_per_epoch, disable=not config.progress,
               unit="step", dynamic_ncols=True, leave=True, mininterval=1.0)
    started = time.perf_counter()
    start_progress = progress
    first_shape = None
    stop_reason = None
    model.train()
    if channels_last:  # NHWC weights; each batch is converted below (undone in `finally`)
        model.to(memory_format=torch.channels_last)
    with _StopOnCtrlC() as ctrl_c:
        try:
            for epoch in range(start_epoch, config.epochs):
                epoch_started = time.perf_counter()
                _seed_rngs(config.seed + 1_000_003 * (epoch + 1))
                sampler_generator.manual_seed(config.seed + 7919 * (epoch + 1))
                bar.set_description(f"epoch {epoch + 1}/{config.epochs}")
                loss_sum, images_seen = 0.0, 0

                for batch_index, (images, masks) in enumerate(_load_batches(train_loader)):
                    if first_shape is None:
                        _check_first_batch(images, masks, num_classes, model_config.get("in_channels", images.shape[1]))
                        first_shape = tuple(images.shape[-2:])
                    images = images.to(device, non_blocking=True)
                    if channels_last:
                        images = images.contiguous(memory_format=torch.channels_last)
                    masks = masks.to(device, non_blocking=True)

                    elapsed = time.perf_counter() - started
                    time_progress = (start_progress + (1 - start_progress) * elapsed / config.max_time
                                     if config.max_time else 0.0)
                    progress = max(step / total_steps, time_progress)
                    lr = config.lr * lr_factor(progress, config.warmup)
                    for group in optimizer.param_groups:
                        group["lr"] = lr

                    with _autocast(device, autocast_dtype):
                        logits = model(images)
                    loss = loss_fn(logits.float(), masks)  # the loss in fp32, whatever the autocast
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                    step += 1

                    loss_value = loss.item()
                    if not math.isfinite(loss_value):
                        raise FloatingPointError(
                            f"The training loss became {loss_value} at epoch {epoch + 1}, step {batch_index + 1}. "
                            f"Lower the learning rate (config.lr={config.lr:g}) or check the masks."
                        )
                    loss_sum += loss_value * images.shape[0]
                    images_seen += images.shape[0]
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_sum / images_seen:.4f}", lr=f"{lr:.2e}", refresh=False)

                    if ctrl_c.requested:
                        raise KeyboardInterrupt
                    if config.max_time and time.perf_counter() - started >= config.max_time:
                        stop_reason = "time"
                        break

                train_seconds = time.perf_counter() - epoch_started  # data loading included
                row = {"epoch": epoch + 1, "train_loss": loss_sum / max(images_seen, 1),
                       "val_loss": None, "val_miou": None}
                is_last = epoch + 1 == config.epochs or stop_reason is not None
                if val_loader is not None and ((epoch + 1) % config.val_every == 0 or is_last):
                    confusion, val_loss = _evaluate_batches(model, val_loader, device, num_classes, config.threshold,
                                                            loss_fn, autocast_dtype, channels_last)
                    row["val_loss"] = val_loss
                    row["val_miou"] = _headline_miou(confusion, num_classes)
                row["lr"] = optimizer.param_groups[0]["lr"]
                row["seconds"] = time.perf_counter() - epoch_started
                row["images_per_second"] = images_seen / train_seconds if train_seconds > 0 else None
                history.append(row)

                score = best_score(row)
                improved = best is None or score > best
                if improved:
                    best = score
                if out_dir is not None:
                    checkpoint = make_checkpoint(epoch + 1, row)
                    save_checkpoint(out_dir / "last.pt", checkpoint)
                    if improved:
                        # best.pt is for predicting: without the optimizer state (twice the
                        # model's size for AdamW) it is a third as big. Resume from last.pt.
                        lean = {**checkpoint, "optimizer_state": None, "scaler_state": None}
                        save_checkpoint(out_dir / "best.pt", lean)
                    _write_json(out_dir / "history.json", history)
                if config.progress:
                    bar.write(_format_row(row, config.epochs) + ("  (best)" if improved and out_dir else ""))
                if live_plot is not None:
                    live_plot.update(history)
                if stop_reason == "time":
                    _say(config, f"Stopped after max_time={config.max_time:g} s, in epoch {epoch + 1}/{config.epochs}.")
                    break
                if ctrl_c.requested:  # Ctrl-C during validation: stop before the next epoch
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            # Stop now; keep what was learned. The unfinished epoch gets no history row, and
            # last.pt records the epochs completed so that resuming repeats the unfinished one.
            bar.close()
            completed = history[-1]["epoch"] if history else 0
            if out_dir is not None:
                save_checkpoint(out_dir / "last.pt", make_checkpoint(completed, history[-1] if history else {}))
                print(f"Interrupted: saved {out_dir / 'last.pt'} ({completed} epochs completed). "
                      f"Continue with fit(..., out_dir={str(out_dir)!r}, resume=True).", file=sys.stderr)
            else:
                print(f"Interrupted after {completed} completed epochs; the model keeps its current weights "
                      "(pass out_dir= to fit to have checkpoints written).", file=sys.stderr)
        finally:
            bar.close()
            if channels_last:  # hand the model back in the default layout
                model.to(memory_format=torch.contiguous_format)
    if out_dir is not None and config.progress:
        _say(config, f"Checkpoints: {out_dir / 'best.pt'} (best), {out_dir / 'last.pt'} (last); "
                     f"history: {out_dir / 'history.json'}")
    return history


def _image_size_of(dataset_size: Any, batch_shape: tuple | None) -> int | list | None:
    """The training image size for the checkpoint: an int for squares, else [height, width]."""
    size = dataset_size if dataset_size is not None else batch_shape
    if size is None:
        return None
    if isinstance(size, int):
        return size
    height, width = (int(v) for v in size)
    return height if height == width else [height, width]


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


class _StopOnCtrlC:
    """The first Ctrl-C asks training to stop after the current step; a second one stops at once.

    Signal handlers can only be set from the main thread; elsewhere Ctrl-C raises
    KeyboardInterrupt as usual, which fit also handles (without finishing the step).
    """

    def __enter__(self) -> _StopOnCtrlC:
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not None:  # None: a handler not set from Python, which we could not restore
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this step and saving last.pt (press again to stop at once).", file=sys.stderr)

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _say(config: TrainConfig, message: str) -> None:
    if config.progress:
        tqdm.write(message)


def _format_row(row: dict, epochs: int) -> str:
    parts = [f"epoch {row['epoch']:>3}/{epochs}", f"train_loss {row['train_loss']:.4f}"]
    if row["val_loss"] is not None:
        parts.append(f"val_loss {row['val_loss']:.4f}")
        parts.append("val_mIoU " + ("n/a" if row["val_miou"] is None else f"{row['val_miou']:.3f}"))
    parts.append(f"lr {row['lr']:.2e}")
    parts.append(f"{row['seconds']:.1f} s")
    if row["images_per_second"]:
        parts.append(f"{row['images_per_second']:.1f} img/s")
    return "  ".join(parts)


def _write_json(path: Path, value: Any) -> None:
    """Atomic, like save_checkpoint: a reader never sees half a file."""
    with atomic_file(path, "w") as file:
        json.dump(value, file, indent=1)


# ----------------------------------------------------------------------------- live plot (Jupyter)

def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class _LivePlot:
    """A loss and mIoU plot redrawn in place after each epoch (one output, updated, not appended)."""

    def __init__(self) -> None:
        from matplotlib.figure import Figure  # no pyplot: the figure is not shown twice by the inline backend

        self.figure = Figure(figsize=(9, 3.2))
        self.loss_axes, self.miou_axes = self.figure.subplots(1, 2)
        self.handle = None

    def update(self, history: list[dict]) -> None:
        from IPython.display import display

        epochs = [row["epoch"] for row in history]
        self.loss_axes.clear()
        self.loss_axes.plot(epochs, [row["train_loss"] for row in history], "o-", label="train")
        val = [(row["epoch"], row["val_loss"]) for row in history if row["val_loss"] is not None]
        if val:
            self.loss_axes.plot(*zip(*val), "o-", label="validation")
        self.loss_axes.set(xlabel="epoch", ylabel="loss", title="loss")
        self.loss_axes.legend()
        self.miou_axes.clear()
        miou = [(row["epoch"], row["val_miou"]) for row in history if row["val_miou"] is not None]
        if miou:
            self.miou_axes.plot(*zip(*miou), "o-", color="tab:green")
        self.miou_axes.set(xlabel="epoch", ylabel="mIoU", title="validation mIoU", ylim=(0, 1))
        self.figure.tight_layout()
        if self.handle is None:
            self.handle = display(self.figure, display_id=True)
        else:
            self.handle.update(self.figure)
