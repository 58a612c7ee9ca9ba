"""Photos and masks: reading them, the ONE preprocessing step, the Dataset, splits and loaders.

A dataset folder has the Pascal-VOC layout that `segkit export` (and labelme's labelme2voc.py) write:

    root/JPEGImages/<stem>.jpg           the photos (.jpg .jpeg .png .bmp .tif .tiff)
    root/SegmentationClass/<stem>.png    one mask per photo: pixel value = class index, 255 = ignore
    root/class_names.txt                 optional: line i = the name of class i, _background_ first

(Older labelme versions, and the source lesson, name the mask folder SegmentationClassPNG/.)

`preprocess` turns a photo into what the network reads. Training (`SegmentationFolder`) and
prediction (`segkit.predict`) both call it, so they cannot drift apart:

    photo (any PIL mode) -> RGB -> resize to (H, W) -> float32 (3, H, W) in [0, 1]

One mask format everywhere in segkit: int64 (H, W), or (N, H, W) for a batch, of class indices;
0 = background, 255 = ignore (counted by no loss and no metric).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors

IGNORE_INDEX = 255
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")  # lossless only: JPEG would blur class indices
RESIZE_MODES = ("stretch", "letterbox")
Size = int | tuple[int, int]

_LAYOUT = ("Expected ROOT/JPEGImages/<stem>.jpg and ROOT/SegmentationClass/<stem>.png (or "
           "SegmentationClassPNG/). Make them from labelme files with `segkit export LABELME_DIR ROOT "
           "--labels labels.txt`.")


# ------------------------------------------------------------------------------ reading files

def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image -> 8-bit RGB. 16-bit grey is divided by 257 (PIL alone would clip it to white)."""
    if image.mode.startswith("I;16") or (image.mode in ("I", "F") and np.asarray(image).max(initial=0) > 255):
        values = np.asarray(image, dtype=np.float64) / 257.0  # 65535 -> 255
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    elif image.mode in ("I", "F"):
        image = Image.fromarray(np.clip(np.rint(np.asarray(image, np.float64)), 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # Pillow asks palette + transparency to go through RGBA
    return image.convert("RGB")  # RGBA: the colours under the alpha are kept


def open_image(image: str | Path | Image.Image | np.ndarray) -> Image.Image:
    """A photo as an upright 8-bit RGB PIL image.

    image: a path (turned upright by its EXIF orientation, as phones and labelme show it), a PIL
    image of any mode, or a uint8 numpy array (H, W) or (H, W, 3).
    """
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such photo (relative paths start at {Path.cwd()}).")
        try:
            with Image.open(path) as raw:
                upright = ImageOps.exif_transpose(raw)
                upright.load()
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"{path}: Pillow cannot read this file as an image ({error}).") from None
        return to_rgb(upright)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
            raise ValueError(f"a photo array must be uint8 (H, W) or (H, W, 3), got {image.dtype} {image.shape}. "
                             "A (3, H, W) tensor in [0, 1]: (t.permute(1, 2, 0) * 255).byte().numpy().")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a path, PIL image or uint8 numpy array, got {type(image).__name__}.")
    return to_rgb(image)


def read_mask(path: str | Path) -> np.ndarray:
    """A mask file -> uint8 (H, W) class indices. A palette PNG's indices are read, not its colours."""
    with Image.open(path) as mask:
        if mask.mode in ("P", "L", "1"):
            values = np.array(mask, dtype=np.uint8)
            if mask.mode == "L" and set(np.unique(values).tolist()) == {0, IGNORE_INDEX}:
                warnings.warn(f"{path} holds only 0 and 255, and 255 means 'ignore'. If white means the "
                              "object, store it as 1: (mask > 127).astype(np.uint8).", stacklevel=2)
            return values
        if mask.mode in ("I", "I;16", "I;16B", "I;16L"):
            values = np.asarray(mask)
            if values.min(initial=0) >= 0 and values.max(initial=0) <= 255:
                return values.astype(np.uint8)
        raise ValueError(
            f"{path}: a {mask.mode} image is not a mask of class indices. Masks store the class index in "
            "each pixel (8-bit palette or grayscale PNG, 255 = ignore), as `segkit export` writes them: "
            "re-export them from the labelme JSON files."
        )


# ------------------------------------------------------------------------------ the preprocessing

def as_hw(size: Size) -> tuple[int, int]:
    """An int S means (S, S); a pair is (height, width), as in torchvision."""
    height, width = (size, size) if isinstance(size, int) else (int(s) for s in size)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {size!r}")
    return height, width


def letterbox_box(photo_size: tuple[int, int], size: Size) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a photo of PIL size (width, height) letterboxed into `size`."""
    width, height = photo_size
    out_height, out_width = as_hw(size)
    scale = min(out_width / width, out_height / height)
    new_width = max(1, min(out_width, round(width * scale)))
    new_height = max(1, min(out_height, round(height * scale)))
    left, top = (out_width - new_width) // 2, (out_height - new_height) // 2
    return left, top, left + new_width, top + new_height


def _resize(image: Image.Image, size: Size, resize: str, resample: int, fill: int) -> Image.Image:
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
    height, width = as_hw(size)
    if resize == "stretch":
        return image.resize((width, height), resample)
    left, top, right, bottom = letterbox_box(image.size, size)
    canvas = Image.new(image.mode, (width, height), fill)
    canvas.paste(image.resize((right - left, bottom - top), resample), (left, top))
    return canvas


def preprocess(image: Image.Image, size: Size | None, resize: str = "stretch") -> torch.Tensor:
    """A photo -> what the network reads: float32 (3, H, W) in [0, 1].

    size: the network's input size (int S = S x S, or (height, width)); None keeps the photo's.
    resize: "stretch" squashes the photo to the size (the lesson); "letterbox" keeps its aspect
    ratio and pads with black. Why divide by 255: colour jitter and imshow expect floats in
    [0, 1], and prediction must scale photos exactly as training did.
    """
    image = to_rgb(image)
    if size is not None:
        image = _resize(image, size, resize, Image.Resampling.BILINEAR, fill=0)
    # HWC uint8 -> CHW float: PyTorch's convolutions want channels first.
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0


def resize_mask(mask: np.ndarray, size: Size | None, resize: str = "stretch") -> np.ndarray:
    """A uint8 (H, W) mask resized like `preprocess` resizes its photo, with NEAREST only.

    Bilinear would average class 0 and class 2 into a class 1 that is not there. Letterbox bars
    are 255 = ignore: there is no photo there to be background.
    """
    if size is None:
        return mask
    return np.array(_resize(Image.fromarray(mask), size, resize, Image.Resampling.NEAREST, fill=IGNORE_INDEX))


# ------------------------------------------------------------------------------ the folder

def _files(folder: Path, extensions: Sequence[str]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in extensions:
            if path.stem in files:
                raise ValueError(f"{files[path.stem]} and {path} share a stem: keep one file per stem.")
            files[path.stem] = path
    return files


def find_pairs(root: str | Path) -> list[tuple[str, Path, Path]]:
    """(stem, photo, mask) for every photo of a VOC folder, sorted by stem; unpaired files are an error."""
    root = Path(root)
    if not (root / "JPEGImages").is_dir():
        if any(root.glob("*.json")):
            raise FileNotFoundError(f"{root} holds labelme JSON files, not the VOC layout. Export it first: "
                                    f"segkit export {root} {root}-voc --labels {root}/labels.txt")
        raise FileNotFoundError(f"{root}: no JPEGImages/ folder. {_LAYOUT}")
    mask_dir = next((root / name for name in ("SegmentationClass", "SegmentationClassPNG")
                     if (root / name).is_dir() and _files(root / name, MASK_EXTENSIONS)), None)
    if mask_dir is None:
        raise FileNotFoundError(f"{root}: no SegmentationClass/ folder with PNG masks. {_LAYOUT}")
    photos, masks = _files(root / "JPEGImages", IMAGE_EXTENSIONS), _files(mask_dir, MASK_EXTENSIONS)
    lonely = sorted(set(photos) ^ set(masks))
    if lonely:
        raise ValueError(f"{root}: {len(lonely)} file(s) without a partner (same stem in JPEGImages/ and "
                         f"{mask_dir.name}/): {', '.join(lonely[:10])}. Re-run `segkit export` or remove them.")
    if not photos:
        raise ValueError(f"{root}: no photos. {_LAYOUT}")
    return [(stem, photos[stem], masks[stem]) for stem in sorted(photos)]


def read_class_names(root: str | Path) -> list[str] | None:
    """root/class_names.txt as a list (line i = class i), or None when there is no such file."""
    path = Path(root) / "class_names.txt"
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [name for name in names if name != "__ignore__"]  # a labels.txt copied here: ignore is 255, not a line


class SegmentationFolder(Dataset):
    """Photos and masks of a VOC folder (see the module docstring), for training and evaluation.

    Args:
        root: the folder holding JPEGImages/ and SegmentationClass/.
        image_size: the network's input size, int S (S x S) or (height, width); None keeps each photo's.
        resize: "stretch" (the lesson) or "letterbox" (see `preprocess`).
        transforms: callable (image, mask) -> (image, mask) run on every access after
            preprocessing, e.g. `segkit.transforms.train_transforms()`. It gets them as
            tv_tensors.Image and tv_tensors.Mask, so any torchvision v2 transform moves both.
        stems: use only these stems (default: every pair in the folder).

    Item i: (image float32 (3, H, W) in [0, 1], mask int64 (H, W)). Decoded, resized photos and
    masks are kept in memory (uint8), so only the first epoch reads files. `read(i)` gives the
    photo and mask at their own size, which is where `evaluate` measures.
    """

    def __init__(self, root: str | Path, image_size: Size | None = 256, resize: str = "stretch",
                 transforms: Callable | None = None, stems: Sequence[str] | None = None) -> None:
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        self.root = Path(root)
        self.image_size = None if image_size is None else as_hw(image_size)
        self.resize, self.transforms = resize, transforms
        pairs = find_pairs(self.root)
        if stems is not None:
            by_stem = {stem: (stem, photo, mask) for stem, photo, mask in pairs}
            missing = [s for s in stems if s not in by_stem]
            if missing:
                raise ValueError(f"{self.root}: no photo/mask pair for stem(s) {', '.join(missing[:10])}.")
            pairs = [by_stem[s] for s in stems]
        self.stems = [stem for stem, _, _ in pairs]
        self.image_files = [photo for _, photo, _ in pairs]
        self.mask_files = [mask for _, _, mask in pairs]
        self.class_names = read_class_names(self.root)
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self.stems)

    def read(self, index: int) -> tuple[Image.Image, np.ndarray]:
        """Photo (RGB PIL, upright) and mask (uint8 (H, W)) at the photo's own size."""
        photo, mask = open_image(self.image_files[index]), read_mask(self.mask_files[index])
        if mask.shape != (photo.height, photo.width):
            raise ValueError(f"{self.image_files[index]} is {photo.width}x{photo.height} but its mask "
                             f"{self.mask_files[index]} is {mask.shape[1]}x{mask.shape[0]}: re-export the mask "
                             "from the labelme JSON of this very photo.")
        return photo, mask

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = range(len(self))[index]  # negative indices work; out of range raises IndexError
        if index not in self._cache:
            photo, mask = self.read(index)
            image = (preprocess(photo, self.image_size, self.resize) * 255).round().to(torch.uint8)
            self._cache[index] = image, torch.from_numpy(resize_mask(mask, self.image_size, self.resize))
        image, mask = self._cache[index]
        image, mask = image.float() / 255.0, mask.long()
        if self.transforms is not None:
            # Typed, so that any torchvision v2 transform moves the mask with the photo: given two
            # plain tensors, v2 flips the first and returns the second untouched, without an error.
            image, mask = self.transforms(tv_tensors.Image(image), tv_tensors.Mask(mask))
            image, mask = image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)
        return image, mask

    def __repr__(self) -> str:
        size = "own size" if self.image_size is None else "x".join(map(str, self.image_size))
        return (f"SegmentationFolder('{self.root}', {len(self)} photos, image_size={size}, resize={self.resize!r}, "
                f"class_names={self.class_names}, transforms={self.transforms})")


def split_folder(root: str | Path, val_fraction: float = 0.2, seed: int = 0, transforms: Callable | None = None,
                 **kwargs) -> tuple[SegmentationFolder, SegmentationFolder | None]:
    """(train, val) SegmentationFolders over disjoint stems, drawn at random with `seed`.

    Only the training part gets `transforms` (augment training photos, never validation photos).
    Other keyword arguments (image_size, resize) go to both. val is None when val_fraction is 0.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    stems = [stem for stem, _, _ in find_pairs(root)]
    n_val = min(max(round(len(stems) * val_fraction), 1), len(stems) - 1) if val_fraction and len(stems) > 1 else 0
    order = torch.randperm(len(stems), generator=torch.Generator().manual_seed(seed)).tolist()
    train = SegmentationFolder(root, transforms=transforms, stems=[stems[i] for i in sorted(order[n_val:])], **kwargs)
    val = SegmentationFolder(root, stems=[stems[i] for i in sorted(order[:n_val])], **kwargs) if n_val else None
    return train, val


def make_loader(dataset: Dataset, batch_size: int = 8, shuffle: bool = True, seed: int = 0,
                workers: int = 0) -> DataLoader:
    """Batches for training (shuffled, seeded; a last batch smaller than batch_size is dropped,
    since BatchNorm's statistics over one or two photos are noise) or, shuffle=False, for evaluation."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle and len(dataset) > batch_size,
                      generator=torch.Generator().manual_seed(seed) if shuffle else None, num_workers=workers,
                      persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
