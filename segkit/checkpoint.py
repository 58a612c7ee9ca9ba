"""Checkpoints: plain dicts written atomically and read with `torch.load(..., weights_only=True)`.

    model, checkpoint = load_checkpoint("runs/cats/best.pt")       # rebuilds the UNet, in eval mode

A checkpoint holds only plain types and tensors: the UNet's constructor arguments and its
state_dict, the class names, the image size it was trained at, the training history, and, in
last.pt, the optimizer's state for resuming. The source lesson saved the whole pickled model
(`torch.save(model)`); loading such a file needs the very class that made it importable, and
unpickling runs code. segkit rebuilds the model from its config instead, on any machine.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from .files import atomic_file
from .model import UNet

FORMAT, VERSION = "segkit", 1
_RUN_FILES = "Training writes RUN_DIR/best.pt and RUN_DIR/last.pt: fit(..., out_dir=RUN_DIR) or `segkit train DATA --out RUN_DIR`."


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra) -> dict:
    """Write `model` (config + state_dict on the CPU) and `extra` entries to `path`, atomically.

    extra: plain values (str, int, float, bool, None, lists, dicts, tensors), e.g. epoch=3,
    history=[...], class_names=[...], image_size=[256, 256], optimizer_state=optimizer.state_dict().
    A crash or Ctrl-C while writing leaves the previous file as it was. Returns the dict written.
    Raises TypeError, before writing, for a value weights_only loading could not read back.
    """
    for key, value in extra.items():
        _check_plain(value, f"checkpoint[{key!r}]")
    checkpoint = {"format": FORMAT, "version": VERSION, "model_config": dict(model.config),
                  # contiguous CPU copies: loadable anywhere, whatever device and layout trained it
                  "model_state": {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
                  **extra}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as file:
        torch.save(checkpoint, file)
    return checkpoint


def _check_plain(value, where: str) -> None:
    """Raise TypeError naming the first value that `torch.load(..., weights_only=True)` would refuse."""
    if value is None or type(value) in (bool, int, float, str) or isinstance(value, (torch.Tensor, torch.dtype,
                                                                                     torch.device)):
        return
    if isinstance(value, dict):  # OrderedDict too (state_dict())
        for key, item in value.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}: use str or int keys.")
            _check_plain(item, f"{where}[{key!r}]")
        return
    if type(value) in (list, tuple):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]")
        return
    raise TypeError(f"{where} is a {type(value).__module__}.{type(value).__name__} ({value!r:.80}): checkpoints hold "
                    "only str, int, float, bool, None, lists, dicts and tensors, so that torch.load(..., "
                    "weights_only=True) can read them. Convert it first: str(path), float(numpy_value), ...")


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint dict at `path` (a file, or a run folder: its best.pt), with clear errors for other files."""
    path = Path(path)
    if path.is_dir():
        path = next((path / name for name in ("best.pt", "last.pt") if (path / name).is_file()), path / "best.pt")
    if not path.is_file():
        nearby = sorted(p.name for p in path.parent.glob("*.pt")) if path.parent.is_dir() else []
        raise FileNotFoundError(f"No checkpoint at {path}." + (f" {path.parent} holds: {', '.join(nearby)}." if nearby
                                                              else "") + f" {_RUN_FILES}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive: this is some other file
            raise ValueError(f"{path} is not a PyTorch file (torch.save writes a zip archive). {_RUN_FILES}") from None
        raise ValueError(f"{path} holds pickled Python objects, most likely a whole model saved with torch.save(model) "
                         "as in the source lesson. segkit reads only plain checkpoints (weights_only=True), since "
                         "unpickling runs code. If you trust the file: model = torch.load(path, weights_only=False), "
                         "then save_checkpoint(path, model) with a segkit UNet.") from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"{path} is not a readable PyTorch file ({error}); was it cut short?") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path} is not a segkit checkpoint (a bare state_dict? then build the UNet with the "
                         f"arguments it was trained with and call model.load_state_dict). {_RUN_FILES}")
    if checkpoint.get("version", 0) > VERSION:
        raise ValueError(f"{path} was written by a newer segkit (checkpoint version {checkpoint['version']}): upgrade.")
    return checkpoint


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[UNet, dict]:
    """(the UNet rebuilt from its stored config, on `device`, in eval mode; the checkpoint dict).

    The dict's entries include class_names, image_size ([height, width] the model was trained at),
    resize, epoch, history and train_config.
    """
    checkpoint = read_checkpoint(path)
    model = UNet(**checkpoint["model_config"])
    model.load_state_dict(checkpoint["model_state"])
    return model.to(device).eval(), checkpoint


def load_weights_for_finetuning(model: nn.Module, path: str | os.PathLike,
                                class_names: list[str] | None = None) -> dict:
    """Copy a trained checkpoint's weights into `model` (fine-tuning); refuse a checkpoint that does not fit.

    The checkpoint must be the same UNet (channels, classes, width, depth) and, when both are
    known, have the same class names in the same order. Returns the checkpoint dict.
    """
    checkpoint = read_checkpoint(path)
    theirs, ours = checkpoint["model_config"], dict(model.config)
    differences = [f"{key}: checkpoint {theirs.get(key)!r}, this model {ours.get(key)!r}"
                   for key in sorted(set(theirs) | set(ours)) if theirs.get(key) != ours.get(key)]
    known = checkpoint.get("class_names")
    if class_names is not None and known is not None and list(known) != list(class_names):
        differences.append(f"class names: checkpoint {known}, this data {list(class_names)}")
    if differences:
        raise ValueError(f"Cannot start from {path}: it does not fit this model and data ({'; '.join(differences)}). "
                         "Fine-tune from a checkpoint of the same UNet with the same classes, or train from scratch.")
    model.load_state_dict(checkpoint["model_state"])
    return checkpoint
