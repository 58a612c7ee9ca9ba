"""Run a trained UNet on photos, at each photo's own size.

    photo --preprocess (resize to the training size, /255)--> model --sigmoid / softmax--> probabilities
          --upsample to the photo's size--> predict_proba --threshold / argmax--> predict_mask

Order matters at the end: the probabilities are upsampled (bilinear) to the photo's size first
and thresholded after, so the mask's edges follow the smooth probability map at full
resolution. Resizing a 256x256 mask up to 1024x640 would give blocky edges, and resizing class
indices with anything but nearest-neighbour invents classes.

    probabilities  binary model (1 output channel): float32 (H, W), P(foreground) in [0, 1]
                   multi-class model (C channels):   float32 (C, H, W), summing to 1 over C
    mask           uint8 (H, W) class indices, 0 = background
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import IMAGE_EXTENSIONS, Size, as_hw, letterbox_box, open_image, preprocess
from .draw import blend_overlay, colorize
from .files import refuse_non_empty


@torch.inference_mode()
def predict_proba(model: nn.Module, photos, image_size: Size | None = 256, resize: str = "stretch",
                  batch_size: int = 8) -> np.ndarray | list[np.ndarray]:
    """The model's probabilities for a photo (or a list of photos), each at the photo's own size.

    photos: a path, PIL image or uint8 array, or a list of them. image_size: the size the model
    was trained at (a checkpoint's "image_size"); None runs each photo at its own size.
    resize: as in training ("stretch" or "letterbox"). Runs in eval mode on the model's device and
    in its number format (BatchNorm then uses its running statistics); the model's mode is restored
    afterwards.
    """
    single = not isinstance(photos, (list, tuple))
    photos = [open_image(p) for p in ([photos] if single else photos)]
    parameter = next(model.parameters())
    device, dtype = parameter.device, parameter.dtype
    was_training = model.training
    model.eval()
    results = []
    try:
        for start in range(0, len(photos), batch_size if image_size is not None else 1):
            chunk = photos[start:start + (batch_size if image_size is not None else 1)]
            batch = torch.stack([preprocess(photo, image_size, resize) for photo in chunk]).to(device, dtype)
            logits = model(batch).float()
            probs = torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)
            results += [_to_photo_size(p, photo.size, image_size, resize) for p, photo in zip(probs, chunk)]
    finally:
        model.train(was_training)
    return results[0] if single else results


def _to_photo_size(probs: torch.Tensor, photo_size: tuple[int, int], image_size: Size | None, resize: str) -> np.ndarray:
    """(C, h, w) probabilities -> float32 numpy at the photo's (width, height): (H, W) for C == 1."""
    if resize == "letterbox" and image_size is not None:
        left, top, right, bottom = letterbox_box(photo_size, as_hw(image_size))
        probs = probs[:, top:bottom, left:right]  # only the box that holds the photo maps back onto it
    width, height = photo_size
    if probs.shape[-2:] != (height, width):
        # Bilinear mixes of probabilities are probabilities; antialias when shrinking (either side).
        shrinking = probs.shape[-2] > height or probs.shape[-1] > width
        probs = F.interpolate(probs[None], size=(height, width), mode="bilinear", align_corners=False,
                              antialias=shrinking and probs.device.type in ("cpu", "cuda"))[0]
    probs = probs.clamp(0, 1).cpu().numpy().astype(np.float32)
    return probs[0] if probs.shape[0] == 1 else probs


def probabilities_to_mask(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(H, W) probabilities -> 1 where > threshold, else 0; (C, H, W) -> argmax over C. uint8 (H, W)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    probs = np.asarray(probs)
    if probs.ndim == 3 and len(probs) == 1:  # a binary model's (1, H, W): the argmax of one channel is all 0
        probs = probs[0]
    if probs.ndim == 2:
        return (probs > threshold).astype(np.uint8)
    if probs.ndim == 3:
        return probs.argmax(axis=0).astype(np.uint8)
    raise ValueError(f"expected (H, W) or (C, H, W) probabilities, got shape {probs.shape}.")


def predict_mask(model: nn.Module, photo, image_size: Size | None = 256, threshold: float = 0.5,
                 resize: str = "stretch") -> np.ndarray:
    """uint8 (H, W) class indices for one photo, at the photo's own size (see `predict_proba`).

    Binary model: 1 (cat) where P(cat) > threshold, as in the lesson. Multi-class: the most likely class.
    """
    return probabilities_to_mask(predict_proba(model, photo, image_size, resize), threshold)


def predict_folder(model: nn.Module, photos: str | Path | Sequence[str | Path], out_dir: str | Path,
                   image_size: Size | None = 256, threshold: float = 0.5, alpha: float = 0.3, resize: str = "stretch",
                   overwrite: bool = False, progress: bool = True) -> list[dict]:
    """Predict a folder of photos (or a list) and write, per photo, at its own size:

        out_dir/<stem>_mask.png       palette PNG: pixel = class index (0 black, 1 green, ...)
        out_dir/<stem>_overlay.jpg    the mask blended over the photo (`blend_overlay`)

    A non-empty out_dir is refused unless overwrite=True. Returns one dict per photo:
    photo, mask, overlay (paths) and class_pixels ({class index: pixels}).
    """
    if isinstance(photos, (str, Path)) and Path(photos).is_dir():
        photos = sorted(p for p in Path(photos).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                        and not p.name.startswith("."))
    photos = [Path(p) for p in ([photos] if isinstance(photos, (str, Path)) else photos)]
    if not photos:
        raise ValueError(f"no photos to predict (looked for {' '.join(IMAGE_EXTENSIONS)}).")
    stems = [p.stem for p in photos]
    if len(set(stems)) != len(stems):
        raise ValueError("two photos share a stem, so their outputs would share a name: rename one.")
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no such photo(s): {', '.join(missing[:5])}")
    out_dir = Path(out_dir)
    if any(p.parent.resolve() == out_dir.resolve() for p in photos):
        raise ValueError(f"{out_dir} holds the photos: write the masks and overlays into a folder of their own.")
    refuse_non_empty(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for path in tqdm(photos, desc="predict", unit="photo", disable=not progress):
        photo = open_image(path)
        mask = predict_mask(model, photo, image_size, threshold, resize)
        colorize(mask).save(out_dir / f"{path.stem}_mask.png")
        blend_overlay(photo, mask, alpha).save(out_dir / f"{path.stem}_overlay.jpg", quality=95)
        values, counts = np.unique(mask, return_counts=True)
        results.append({"photo": path, "mask": out_dir / f"{path.stem}_mask.png",
                        "overlay": out_dir / f"{path.stem}_overlay.jpg",
                        "class_pixels": dict(zip(values.tolist(), counts.tolist()))})
    return results
