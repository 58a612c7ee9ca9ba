"""Run a trained UNet on photos, and draw what it found.

The lesson's steps, as functions:

    photo --load_image--> RGB --resize to 256--> model --sigmoid/softmax--> probabilities
          --upsample to the photo's own size--> predict_proba --threshold/argmax--> predict_mask
    predict_mask --colorize--> palette image (0 black, 1 green) --blend_overlay--> photo + 30% colour

Order matters at the end. The probabilities are upsampled (bilinear) to the photo's size FIRST and
thresholded (binary) or argmax-ed (multi-class) AFTER: the mask's edges then follow the smooth
probability map at full resolution. The reverse, a 256x256 mask blown up to 1024x640, gives blocky
edges, and interpolating class indices with anything but nearest invents classes (halfway between
class 0 and class 2 is class 1). So no class-index mask is ever resized here.

Shapes and values:
    probabilities  binary model (1 output channel): float32 (H, W) in [0, 1], P(foreground)
                   multi-class model (C >= 2):       float32 (C, H, W), sums to 1 over C
    mask           uint8 (H, W) of class indices, 0 = background (255 = ignore in ground truths)
H, W are always the photo's own size (after EXIF rotation), never the network's input size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError
from torch import nn

from segkit.data import IMAGE_EXTENSIONS, letterbox, mask_to_array, to_rgb, unletterbox_box
from segkit.metrics import IGNORE_INDEX
from segkit.palette import default_palette, flat_palette, voc_colormap

__all__ = [
    "LESSON_PALETTE",
    "voc_palette",
    "load_image",
    "load_mask",
    "predict_proba",
    "predict_proba_batch",
    "probs_to_mask",
    "predict_mask",
    "predict_batch",
    "predict_folder",
    "colorize",
    "blend_overlay",
    "draw_contours",
]

LESSON_PALETTE: list[tuple[int, int, int]] = [(0, 0, 0), (0, 128, 0)]
"""The lesson's two colours: 0 = background black, 1 = cat green. `default_palette()` starts the same."""

RESIZE_MODES = ("stretch", "letterbox")
_OUTPUT_SUFFIXES = ("_mask", "_overlay")


def voc_palette(n: int = 256) -> list[tuple[int, int, int]]:
    """The plain Pascal-VOC colour map (class 1 red). segkit draws with `default_palette()` (class 1 green)."""
    return voc_colormap(n)


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def load_image(image) -> Image.Image:
    """A photo in any common form -> 8-bit RGB PIL image.

    image: a path (str or Path; EXIF orientation applied, as phones and labelme show photos),
        a PIL image of any mode (RGBA, L, P, I;16, ...), a numpy array (H, W), (H, W, 1),
        (H, W, 3) or (H, W, 4) of uint8 0..255 or float 0..1 (alpha dropped), or a torch tensor
        (3, H, W) / (1, H, W) / (H, W) of float 0..1 or uint8 (what a SegmentationFolder returns).
    """
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such photo. Check the path (relative paths start at {Path.cwd()}).")
        try:
            with Image.open(path) as raw:
                upright = ImageOps.exif_transpose(raw)
                upright.load()
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{path}: Pillow cannot read this file as an image ({err}). Is it a photo?") from None
        return to_rgb(upright)
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        if tensor.ndim == 3 and tensor.shape[0] in (1, 3):
            tensor = tensor.permute(1, 2, 0)  # CHW -> HWC
        elif not (tensor.ndim == 2):
            raise ValueError(
                f"load_image: a tensor photo must be (3, H, W), (1, H, W) or (H, W), got {tuple(tensor.shape)}. "
                "For one image out of a batch, index it: images[0]."
            )
        return _array_to_image(tensor.float().numpy() if tensor.is_floating_point() else tensor.numpy())
    if isinstance(image, np.ndarray):
        return _array_to_image(image)
    raise TypeError(
        f"load_image: expected a path, PIL image, numpy array or torch tensor, got {type(image).__name__}."
    )


def _array_to_image(array: np.ndarray) -> Image.Image:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 0..255 / float 0..1 -> RGB PIL image."""
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[..., :3] if array.shape[2] != 1 else array[..., 0]
    elif array.ndim != 2:
        raise ValueError(
            f"load_image: an array photo must be (H, W) or (H, W, 3) (channels last), got shape {array.shape}. "
            "A (3, H, W) array is channels-first: use array.transpose(1, 2, 0)."
        )
    if array.dtype == np.uint8:
        pixels = array
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("load_image: the float array holds NaN or infinity.")
        if array.size and (array.min() < 0 or array.max() > 1):
            raise ValueError(
                f"load_image: a float array photo must hold values in [0, 1], found {array.min():g}..{array.max():g}. "
                "For 0..255 values use array.astype(np.uint8); otherwise divide by the maximum first."
            )
        pixels = np.rint(array * 255.0).astype(np.uint8)
    else:
        raise TypeError(
            f"load_image: an array photo must be uint8 (0..255) or float (0..1), got {array.dtype}. "
            "If the values are 0..255, use array.astype(np.uint8)."
        )
    pixels = np.ascontiguousarray(pixels)
    return Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB").convert("RGB")


def load_mask(mask, *, allow_float: bool = False) -> np.ndarray:
    """A class-index mask in any common form -> uint8 (H, W).

    mask: a path to a palette/grayscale PNG (pixel = class index, the palette is NOT applied),
        a PIL image, a numpy array or a torch tensor (H, W) or (1, H, W) of integers 0..255
        (255 = ignore), or bool (True = class 1).
    allow_float: also accept a float mask whose values are all whole numbers (e.g. the float
        (1, H, W) target of `SegmentationFolder(binary_target=True)`). Probabilities are refused.
    """
    if isinstance(mask, (str, Path)):
        path = Path(mask)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such mask file.")
        with Image.open(path) as raw:
            raw.load()
            return mask_to_array(raw, path)
    if isinstance(mask, Image.Image):
        return mask_to_array(mask)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"expected a mask as numpy array, torch tensor, PIL image or path, got {type(mask).__name__}.")
    if mask.ndim == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if mask.ndim != 2:
        raise ValueError(
            f"a mask must be (H, W) class indices, got shape {mask.shape}. For a batch, pass one mask: masks[0]; "
            "for (C, H, W) probabilities, use probs_to_mask(probs) or predict_mask."
        )
    if mask.dtype == bool:
        return mask.astype(np.uint8)
    if np.issubdtype(mask.dtype, np.floating):
        whole = np.isfinite(mask).all() and np.array_equal(mask, np.round(mask))
        if not (allow_float and whole):
            raise TypeError(
                f"a mask must hold integer class indices, got {mask.dtype}. Probabilities? Threshold them first: "
                "probs_to_mask(probs, threshold=0.5), or call predict_mask. Class indices stored as floats: "
                "mask.long() (torch) or mask.astype(np.uint8) (numpy)."
            )
    elif not np.issubdtype(mask.dtype, np.integer):
        raise TypeError(f"a mask must hold integer class indices, got {mask.dtype}.")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(
            f"mask values must be class indices in 0..255 (255 = ignore), found {mask.min():g}..{mask.max():g}."
        )
    return mask.astype(np.uint8)


def _as_palette(palette) -> list[tuple[int, int, int]]:
    """A list of (r, g, b) (or a (K, 3) array) -> 256 colours; 255 (ignore) keeps its default colour."""
    if palette is None:
        return default_palette()
    colors = [tuple(int(c) for c in color) for color in np.asarray(palette).reshape(-1, 3)]
    if any(not 0 <= c <= 255 for color in colors for c in color):
        raise ValueError("palette colours must be (r, g, b) with each channel in 0..255.")
    filler = default_palette()
    return colors[:256] + filler[len(colors):] if len(colors) < 256 else colors[:256]


def _check_mask_in_palette(mask: np.ndarray, palette, where: str) -> None:
    if palette is None:
        return
    n = len(np.asarray(palette).reshape(-1, 3))
    values = np.unique(mask)
    outside = [int(v) for v in values if v >= n and v != IGNORE_INDEX]
    if outside:
        raise ValueError(
            f"{where}: the mask holds class(es) {outside[:10]} but the palette has only {n} colours "
            f"(classes 0..{n - 1}). Add colours, or pass palette=None for segkit's 256-colour default."
        )


# --------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------

def _resolve_device(model: nn.Module, device) -> torch.device:
    """None: where the model's weights are. Otherwise that device ("auto": cuda, mps, cpu); the model moves there."""
    params = next(model.parameters(), None)
    current = params.device if params is not None else torch.device("cpu")
    if device is None:
        return current
    from segkit.train import select_device  # lazy: train imports much more than prediction needs

    device = select_device(device)  # checks the name and that the device exists, with a clear error
    if device.type != current.type or (device.index is not None and device != current):
        model.to(device)
    return device


def _image_size_hw(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, int) and not isinstance(image_size, bool):
        height = width = image_size
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2:
        height, width = (int(s) for s in image_size)
    else:
        raise ValueError(f"image_size must be an int S (S x S), a (height, width) pair or None, got {image_size!r}")
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size!r}")
    return height, width


def _network_input(photo: Image.Image, size: tuple[int, int] | None, resize: str) -> Image.Image:
    """The photo as the network saw its training images (same resampling as SegmentationFolder)."""
    if size is None:
        return photo
    if resize == "letterbox":
        return letterbox(photo, size, fill=0, resample=Image.Resampling.BILINEAR)
    return photo.resize((size[1], size[0]), Image.Resampling.BILINEAR)


def _run_model(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """(N, 3, h, w) float in [0, 1] -> (N, C, h', w') probabilities, float32."""
    logits = model(batch)
    if isinstance(logits, dict):  # torchvision segmentation models return {"out": logits, ...}
        logits = logits["out"]
    if logits.ndim != 4:
        raise ValueError(f"the model returned shape {tuple(logits.shape)}; expected (N, C, H, W) logits.")
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


def _to_original_size(probs: torch.Tensor, photo_size: tuple[int, int], net_size, resize: str) -> np.ndarray:
    """(C, h, w) probabilities -> (C, H, W) float32 numpy at the photo's (width, height)."""
    width, height = photo_size
    if resize == "letterbox" and net_size is not None:
        # Cut the black bars off first: only the box that holds the photo maps back onto it.
        left, top, right, bottom = unletterbox_box(photo_size, net_size)
        probs = probs[:, top:bottom, left:right]
    if probs.shape[-2:] != (height, width):
        shrinking = probs.shape[-2] > height or probs.shape[-1] > width
        # Bilinear on probabilities: a convex mix of values in [0, 1] (that sum to 1) stays one.
        probs = F.interpolate(probs[None], size=(height, width), mode="bilinear", align_corners=False,
                              antialias=shrinking and probs.device.type in ("cpu", "cuda"))[0]
    return np.ascontiguousarray(probs.clamp_(0.0, 1.0).cpu().numpy(), dtype=np.float32)


def predict_proba_batch(
    model: nn.Module,
    images: Sequence,
    image_size: int | tuple[int, int] | None = 256,
    device=None,
    resize: str = "stretch",
    batch_size: int = 8,
) -> list[np.ndarray]:
    """Probabilities for several photos, each at its own original size (see `predict_proba`).

    Photos go through the network `batch_size` at a time (all resized to image_size, so they stack);
    with image_size=None each photo runs alone at its own size.
    """
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"expected a torch nn.Module (e.g. segkit.UNet), got {type(model).__name__}. "
            "To use a checkpoint file: model, _ = segkit.load_checkpoint(path)."
        )
    in_channels = getattr(model, "config", {}).get("in_channels", 3)
    if in_channels != 3:
        raise ValueError(f"this model takes {in_channels} input channels; photo prediction needs an RGB (3-channel) model.")
    net_size = _image_size_hw(image_size)
    device = _resolve_device(model, device)
    params = next(model.parameters(), None)
    dtype = params.dtype if params is not None and params.is_floating_point() else torch.float32
    if net_size is None:
        batch_size = 1  # photos of different sizes do not stack

    photos = [load_image(image) for image in images]
    results: list[np.ndarray] = []
    was_training = model.training
    model.eval()  # BatchNorm uses its running statistics, as it must for a single photo
    try:
        with torch.inference_mode():
            for start in range(0, len(photos), batch_size):
                chunk = photos[start:start + batch_size]
                arrays = [np.asarray(_network_input(photo, net_size, resize)) for photo in chunk]
                batch = torch.from_numpy(np.stack(arrays)).to(device).permute(0, 3, 1, 2)
                batch = batch.to(dtype) / 255.0  # same [0, 1] scaling as in training
                probs = _run_model(model, batch)
                for photo, photo_probs in zip(chunk, probs):
                    results.append(_to_original_size(photo_probs, photo.size, net_size, resize))
    finally:
        model.train(was_training)  # a learner predicting mid-training keeps a model in training mode
    return [p[0] if p.shape[0] == 1 else p for p in results]


def predict_proba(
    model: nn.Module,
    image,
    image_size: int | tuple[int, int] | None = 256,
    device=None,
    resize: str = "stretch",
) -> np.ndarray:
    """The model's probabilities for one photo, at the photo's ORIGINAL size.

    image: path, PIL image, numpy array or tensor (see `load_image`).
    image_size: the side the network sees (the training size, 256 in the lesson), or a
        (height, width) pair; None runs at the photo's own size (UNet pads it internally).
    device: None = where the model is; "cuda", "cpu", "auto", ... moves the model there.
    resize: "stretch" (the lesson: squash to a square) or "letterbox" (keep the aspect ratio,
        black bars; they are cut off again before upsampling). Use what the model was trained with.

    Returns float32 (H, W) foreground probabilities in [0, 1] for a binary model (1 output channel),
    float32 (C, H, W) softmax probabilities for a multi-class model. The model is run in eval mode
    under torch.inference_mode; its train/eval mode is restored afterwards.
    """
    return predict_proba_batch(model, [image], image_size=image_size, device=device, resize=resize)[0]


def probs_to_mask(probs, threshold: float = 0.5) -> np.ndarray:
    """Probabilities -> uint8 (H, W) class indices.

    (H, W) foreground probabilities: 1 where probs > threshold, else 0 (as ``binary_iou`` counts).
    (C, H, W) with C >= 2: argmax over C (the threshold is not used).
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    probs = np.asarray(probs)
    if probs.ndim == 3 and probs.shape[0] == 1:
        probs = probs[0]
    if probs.ndim == 2:
        return (probs > threshold).astype(np.uint8)
    if probs.ndim == 3:
        if probs.shape[0] > 255:
            raise ValueError(f"{probs.shape[0]} classes do not fit a uint8 mask (at most 255 classes; 255 = ignore).")
        return probs.argmax(axis=0).astype(np.uint8)
    raise ValueError(f"expected (H, W) or (C, H, W) probabilities, got shape {probs.shape}.")


def predict_mask(
    model: nn.Module,
    image,
    threshold: float = 0.5,
    image_size: int | tuple[int, int] | None = 256,
    device=None,
    resize: str = "stretch",
) -> np.ndarray:
    """uint8 (H, W) class indices for one photo, at the photo's ORIGINAL size.

    Binary model: 1 where P(foreground) > threshold (the lesson: cat if above 0.5). Multi-class:
    argmax over the classes (threshold unused). Both after upsampling the probabilities to the
    photo's size (see the module docstring). Arguments as in `predict_proba`.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    return probs_to_mask(predict_proba(model, image, image_size, device, resize), threshold)


def predict_batch(
    model: nn.Module,
    images: Sequence,
    threshold: float = 0.5,
    image_size: int | tuple[int, int] | None = 256,
    device=None,
    resize: str = "stretch",
    batch_size: int = 8,
) -> list[np.ndarray]:
    """`predict_mask` for several photos, run through the network `batch_size` at a time.

    Returns one uint8 (H_i, W_i) mask per photo, each at that photo's own size.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    probs = predict_proba_batch(model, images, image_size, device, resize, batch_size)
    return [probs_to_mask(p, threshold) for p in probs]


def _collect_photos(folder_or_files, out_dir: Path) -> list[Path]:
    """The photos to predict, sorted; non-images and segkit's own earlier outputs skipped."""
    if isinstance(folder_or_files, (str, Path)):
        source = Path(folder_or_files)
        if source.is_dir():
            candidates = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
            photos = [p for p in candidates if p.suffix.lower() in IMAGE_EXTENSIONS]
            # Outputs written into the input folder by an earlier run are not photos to predict.
            if source.resolve() == out_dir.resolve():
                photos = [p for p in photos if not p.stem.endswith(_OUTPUT_SUFFIXES)]
            if not photos:
                raise ValueError(
                    f"{source}: no photos to predict (looked for {' '.join(IMAGE_EXTENSIONS)}; "
                    f"{len(candidates)} other file(s) skipped). Put the photos directly in this folder."
                )
            return photos
        if source.is_file():
            return [source]
        raise FileNotFoundError(f"{source}: no such photo or folder.")
    photos = [Path(p) for p in folder_or_files]
    if not photos:
        raise ValueError("predict_folder: the list of photos is empty.")
    missing = [str(p) for p in photos if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"predict_folder: no such photo(s): {', '.join(missing[:10])}")
    return photos


def predict_folder(
    model: nn.Module,
    folder_or_files: str | Path | Iterable[str | Path],
    out_dir: str | Path,
    threshold: float = 0.5,
    alpha: float = 0.3,
    image_size: int | tuple[int, int] | None = 256,
    overwrite: bool = False,
    progress: bool = True,
    device=None,
    resize: str = "stretch",
    batch_size: int = 4,
    overlay_format: str = "jpg",
) -> list[dict]:
    """Predict every photo of a folder (or a list of photos) and write, per photo, at its own size:

        out_dir/<stem>_mask.png       palette PNG, pixel = class index (0 black, 1 green, ...)
        out_dir/<stem>_overlay.jpg    the photo with the mask blended in (see `blend_overlay`)

    Files in the folder that are not images (.json, .txt, ...) are skipped. Existing outputs are
    never replaced unless overwrite=True; that is checked for every photo before anything is
    written. overlay_format: "jpg" (small) or "png" (lossless).

    Returns one dict per photo: image, mask, overlay (Paths), width, height, and class_pixels
    ({class index: pixel count} of the predicted mask).
    """
    from tqdm.auto import tqdm

    if overlay_format not in ("jpg", "png"):
        raise ValueError(f"overlay_format must be 'jpg' or 'png', got {overlay_format!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out_dir = Path(out_dir)
    photos = _collect_photos(folder_or_files, out_dir)

    stems: dict[str, Path] = {}
    for photo in photos:
        if photo.stem in stems:
            raise ValueError(
                f"{stems[photo.stem]} and {photo} share the stem {photo.stem!r}, so their outputs would have "
                "the same names. Rename one of them."
            )
        stems[photo.stem] = photo
    targets = [(photo, out_dir / f"{photo.stem}_mask.png", out_dir / f"{photo.stem}_overlay.{overlay_format}")
               for photo in photos]
    if not overwrite:
        existing = [str(path) for _, mask, overlay in targets for path in (mask, overlay) if path.exists()]
        if existing:
            raise FileExistsError(
                f"{len(existing)} output file(s) exist already, e.g. {', '.join(existing[:3])}. "
                "Pass overwrite=True (CLI: --overwrite) to replace them, or choose another output folder."
            )
    out_dir.mkdir(parents=True, exist_ok=True)

    results = []
    bar = tqdm(total=len(photos), desc="predict", unit="photo", disable=not progress)
    try:
        for start in range(0, len(targets), batch_size):
            chunk = targets[start:start + batch_size]
            # Decode each photo once: it is both the network's input and the overlay's background.
            images = [load_image(photo) for photo, _, _ in chunk]
            masks = predict_batch(model, images, threshold, image_size, device, resize, batch_size)
            for (photo, mask_path, overlay_path), image, mask in zip(chunk, images, masks):
                colorize(mask).save(mask_path)
                overlay = blend_overlay(image, mask, alpha=alpha)
                if overlay_format == "jpg":
                    overlay.save(overlay_path, quality=95)
                else:
                    overlay.save(overlay_path)
                values, counts = np.unique(mask, return_counts=True)
                results.append({
                    "image": photo, "mask": mask_path, "overlay": overlay_path,
                    "width": image.width, "height": image.height,
                    "class_pixels": {int(v): int(c) for v, c in zip(values, counts)},
                })
                bar.update(1)
    finally:
        bar.close()
    return results


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------

def colorize(mask, palette=None) -> Image.Image:
    """A class-index mask -> "P" (palette) PIL image: pixel value = class index, colours from the palette.

    mask: (H, W) integer numpy array or torch tensor (or (1, H, W)), values 0..255 (255 = ignore).
    palette: list of (r, g, b) per class; None = `default_palette()` (0 black, 1 green (0, 128, 0)
        as in the lesson, then VOC colours). Saved as PNG, the file keeps the class indices
        (read it back with `load_mask`) and shows the colours in any image viewer.
    """
    array = load_mask(mask)
    _check_mask_in_palette(array, palette, "colorize")
    image = Image.fromarray(array)  # mode "L"
    image.putpalette(flat_palette(_as_palette(palette)))  # "L" + palette -> "P", indices unchanged
    return image


def _check_same_size(photo: Image.Image, mask: np.ndarray, where: str) -> None:
    if mask.shape != (photo.height, photo.width):
        raise ValueError(
            f"{where}: the mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {photo.width}x{photo.height} "
            "(width x height). Use predict_mask(model, photo), which returns the mask at the photo's own size, "
            "or resize the mask with NEAREST: Image.fromarray(mask).resize(photo.size, Image.Resampling.NEAREST)."
        )


def blend_overlay(image, mask, alpha: float = 0.3, palette=None, blend_background: bool = False) -> Image.Image:
    """The photo with each class's colour mixed in at `alpha` (the lesson: 30%), as an RGB PIL image.

    Where mask > 0 (and != 255), pixel = (1 - alpha) * photo + alpha * class colour, computed by
    PIL's Image.blend exactly as the lesson did. Background (0) and ignore (255) pixels keep the
    photo as it is. Why not blend everywhere: the lesson's `Image.blend(photo, colour_mask, 0.3)`
    also mixes 30% of black into the background, darkening the whole photo, which makes the
    mistakes (green where there is no cat, a cat with no green) harder to see. blend_background=True
    reproduces the lesson's picture exactly.

    image: path, PIL, array or tensor (see `load_image`); mask: (H, W) class indices of the SAME size.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    photo = load_image(image)
    array = load_mask(mask)
    _check_same_size(photo, array, "blend_overlay")
    colours = colorize(array, palette).convert("RGB")
    blended = Image.blend(photo, colours, alpha)
    if blend_background:
        return blended
    labelled = Image.fromarray(((array != 0) & (array != IGNORE_INDEX)).astype(np.uint8) * 255)
    return Image.composite(blended, photo, labelled)


def draw_contours(image, mask, color: tuple[int, int, int] | None = None, width: int = 2,
                  palette=None) -> Image.Image:
    """The photo with the outline of every class region drawn on it, as an RGB PIL image.

    An outline is the band of a region's pixels within `width` pixels of its edge, i.e. the region
    minus the region eroded by a (2 * width + 1)-pixel square (PIL's MinFilter, no OpenCV). Outlines lie inside their regions,
    so two touching classes each show their own. The photo's border is not an edge: a cat cut off
    by the frame has no line drawn along the frame. Background (0) and ignore (255) get no outline.

    color: one (r, g, b) for every class; None = each class in its palette colour.
    """
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive int (pixels), got {width!r}")
    if color is not None and (len(color) != 3 or not all(0 <= int(c) <= 255 for c in color)):
        raise ValueError(f"color must be an (r, g, b) triple of 0..255 values, got {color!r}")
    photo = load_image(image)
    array = load_mask(mask)
    _check_same_size(photo, array, "draw_contours")
    _check_mask_in_palette(array, palette, "draw_contours")
    colours = _as_palette(palette)
    out = np.array(photo)
    for class_index in np.unique(array):
        if class_index in (0, IGNORE_INDEX):
            continue
        region = array == class_index
        eroded = Image.fromarray(region.astype(np.uint8) * 255)
        for _ in range(width):  # width 3x3 erosions = one (2 * width + 1) square erosion, but cheaper
            eroded = eroded.filter(ImageFilter.MinFilter(3))
        outline = region & ~(np.asarray(eroded) > 0)
        out[outline] = color if color is not None else colours[class_index]
    return Image.fromarray(out)
