"""Load a segmentation dataset from a folder: photos, masks, resizing, augmentation, splits, loaders.

The folder has the Pascal-VOC layout that `segkit export` (and labelme's `labelme2voc.py`) write:

    root/
        JPEGImages/<stem>.jpg            the photos (.jpg .jpeg .png .bmp .tif .tiff)
        SegmentationClass/<stem>.png     one mask per photo: pixel value = class index
        class_names.txt                  optional, one class name per line, line i = class i

Older labelme versions (and the source lesson) put the masks in `SegmentationClassPNG/`; both work.

What comes out of `SegmentationFolder[i]`:
    image  float32 (3, H, W), values in [0, 1]
    mask   int64 (H, W) of class indices; 0 = background, 255 = ignore (not counted in loss or metrics)
    (binary_target=True: the mask as float32 (1, H, W), the lesson's target for a 1-channel model)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .metrics import IGNORE_INDEX

IMAGE_DIR = "JPEGImages"
MASK_DIRS = ("SegmentationClass", "SegmentationClassPNG")  # first one that holds masks wins
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")  # lossless only: JPEG would blur class indices
RESIZE_MODES = ("stretch", "letterbox")

_LAYOUT_HELP = (
    "Expected layout:\n"
    "    ROOT/JPEGImages/<stem>.jpg\n"
    "    ROOT/SegmentationClass/<stem>.png   (or ROOT/SegmentationClassPNG/<stem>.png)\n"
    "Make it from labelme JSON files with `segkit export INPUT_DIR OUTPUT_DIR --labels labels.txt`."
)


# --------------------------------------------------------------------------------------------
# Sizes and letterboxing
# --------------------------------------------------------------------------------------------

def _as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """An int S means (S, S); a pair is (height, width), as in torchvision."""
    if isinstance(size, int):
        height = width = size
    else:
        height, width = (int(s) for s in size)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {size!r}")
    return height, width


def _letterbox_geometry(orig_size: tuple[int, int], size: int | Sequence[int]) -> tuple[int, int, int, int]:
    """(new_width, new_height, left, top) of the photo inside the letterboxed canvas."""
    orig_width, orig_height = orig_size
    out_height, out_width = _as_hw(size)
    scale = min(out_width / orig_width, out_height / orig_height)
    new_width = max(1, min(out_width, round(orig_width * scale)))
    new_height = max(1, min(out_height, round(orig_height * scale)))
    return new_width, new_height, (out_width - new_width) // 2, (out_height - new_height) // 2


def letterbox(
    image: Image.Image,
    size: int | Sequence[int],
    fill: int | tuple[int, ...] = 0,
    resample: int = Image.Resampling.BILINEAR,
) -> Image.Image:
    """Resize `image` to fit inside `size` keeping its aspect ratio, centred on a canvas filled with `fill`.

    size: int S (an S x S square) or (height, width). Use resample=Image.Resampling.NEAREST for masks.
    `unletterbox_box` gives the box that holds the photo, to undo this after prediction.
    """
    new_width, new_height, left, top = _letterbox_geometry(image.size, size)
    out_height, out_width = _as_hw(size)
    resized = image.resize((new_width, new_height), resample)
    canvas = Image.new(image.mode, (out_width, out_height), fill)
    if image.mode == "P":
        canvas.putpalette(image.getpalette())
    canvas.paste(resized, (left, top))
    return canvas


def unletterbox_box(orig_size: tuple[int, int], size: int | Sequence[int]) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of the photo inside `letterbox(photo, size)`.

    orig_size: the photo's (width, height), i.e. PIL's `photo.size`. To map a prediction back:
    `pred.crop(box).resize(photo.size, Image.Resampling.NEAREST)` (or index an array with the box).
    """
    new_width, new_height, left, top = _letterbox_geometry(orig_size, size)
    return left, top, left + new_width, top + new_height


# --------------------------------------------------------------------------------------------
# Reading images and masks
# --------------------------------------------------------------------------------------------

def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image -> 8-bit RGB.

    Alpha is dropped (the colours under it are kept). 16- and 32-bit grayscale is scaled down to
    0..255: PIL's own convert("RGB") would clip it, turning most of a 16-bit photo white.
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I;16"):
        values = np.asarray(image, dtype=np.float64) / 257.0  # 65535 -> 255
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        # These modes carry no bit depth; values above 255 can only mean a 16-bit range
        # (16-bit PNGs were opened as "I" by older Pillow versions).
        if values.max(initial=0) > 255:
            values = values / 257.0
        return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        image = image.convert("RGBA")  # palette + transparency must go through RGBA, PIL says so
    return image.convert("RGB")


def mask_to_array(mask: Image.Image, path: str | Path = "mask") -> np.ndarray:
    """A mask image -> uint8 (H, W) class indices.

    A palette ("P") PNG stores the class index in each pixel and the colours only in its palette:
    the index is what we want, so the image is NOT converted to RGB. An RGB mask is refused: its
    pixels are colours, and which colour means which class is not written in the file.
    """
    if mask.mode in ("P", "L", "1"):
        return np.asarray(mask).astype(np.uint8)
    if mask.mode in ("I", "F") or mask.mode.startswith("I;16"):
        values = np.asarray(mask)
        if values.min(initial=0) < 0 or values.max(initial=0) > 255:
            raise ValueError(
                f"{path}: mask values must be class indices 0..255 (255 = ignore), found "
                f"{values.min()}..{values.max()}. Save masks as 8-bit palette or grayscale PNGs."
            )
        return values.astype(np.uint8)
    if mask.mode in ("RGB", "RGBA"):
        raise ValueError(
            f"{path}: this mask is an {mask.mode} colour image, not an index mask. Masks must store the "
            "class index in each pixel (8-bit palette 'P' or grayscale 'L' PNG), as `segkit export` and "
            "labelme2voc.py write them. Re-export from the labelme JSON files, or map each colour to its "
            "class index and save with segkit.export.save_palette_mask."
        )
    raise ValueError(f"{path}: unsupported mask mode {mask.mode!r}; save masks as 8-bit palette ('P') PNGs.")


def _list_files(folder: Path, extensions: Sequence[str]) -> dict[str, Path]:
    """stem -> path for the files in `folder` with one of `extensions` (hidden files skipped)."""
    files: dict[str, Path] = {}
    duplicates = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in extensions:
            continue
        if path.stem in files:
            duplicates.append(f"{files[path.stem].name} / {path.name}")
        files[path.stem] = path
    if duplicates:
        raise ValueError(
            f"{folder}: several files share a stem, so it is unclear which one to use: "
            f"{', '.join(duplicates[:10])}. Keep one file per stem."
        )
    return files


def _find_mask_dir(root: Path) -> Path:
    for name in MASK_DIRS:
        folder = root / name
        if folder.is_dir() and any(p.suffix.lower() in MASK_EXTENSIONS for p in folder.iterdir()):
            return folder
    present = [name for name in MASK_DIRS if (root / name).is_dir()]
    if present:
        raise FileNotFoundError(
            f"{root / present[0]} holds no mask images ({' '.join(MASK_EXTENSIONS)}); very old labelme "
            f"versions wrote .npy files there and the PNG masks to SegmentationClassPNG/.\n{_LAYOUT_HELP}"
        )
    raise FileNotFoundError(f"{root}: no SegmentationClass/ or SegmentationClassPNG/ folder.\n{_LAYOUT_HELP}")


def _read_stems_file(path: str | Path) -> list[str]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.split()[0] for line in lines if line.strip()]


def _name_list(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > limit else shown


def find_pairs(root: str | Path, stems: Sequence[str] | str | Path | None = None) -> tuple[Path, list[tuple[str, Path, Path]]]:
    """Pair photos and masks by stem: (mask folder, [(stem, image_path, mask_path), ...] sorted by stem).

    stems: only these stems (a list, or a text file with one stem per line, e.g. Pascal VOC's
    ImageSets/Segmentation/train.txt); None = every file, and then every photo needs a mask and
    every mask a photo.
    """
    root = Path(root)
    image_dir = root / IMAGE_DIR
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{root}: no JPEGImages/ folder.\n{_LAYOUT_HELP}")
    mask_dir = _find_mask_dir(root)
    images = _list_files(image_dir, IMAGE_EXTENSIONS)
    masks = _list_files(mask_dir, MASK_EXTENSIONS)

    if stems is None:
        no_mask = sorted(set(images) - set(masks))
        no_image = sorted(set(masks) - set(images))
        if no_mask or no_image:
            lines = [f"{root}: photos and masks do not pair up by file name (stem)."]
            if no_mask:
                lines.append(f"  {len(no_mask)} photo(s) in {image_dir.name}/ without a mask: {_name_list(no_mask)}")
            if no_image:
                lines.append(f"  {len(no_image)} mask(s) in {mask_dir.name}/ without a photo: {_name_list(no_image)}")
            lines.append(
                "Fix: give each photo and its mask the same stem (cat1.jpg <-> cat1.png), remove the extra "
                "files, re-run `segkit export`, or pass stems=[...] to use only some of them."
            )
            raise ValueError("\n".join(lines))
        selected = sorted(images)
    else:
        selected = _read_stems_file(stems) if isinstance(stems, (str, Path)) else [str(s) for s in stems]
        missing = [s for s in selected if s not in images or s not in masks]
        if missing:
            raise ValueError(
                f"{root}: {len(missing)} requested stem(s) lack a photo in {image_dir.name}/ or a mask in "
                f"{mask_dir.name}/: {_name_list(missing)}"
            )
    return mask_dir, [(stem, images[stem], masks[stem]) for stem in selected]


def read_class_names(root: str | Path) -> list[str] | None:
    """Class names from root/class_names.txt (line i = class i), or None when there is no such file."""
    path = Path(root) / "class_names.txt"
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [name for name in names if name != "__ignore__"]  # ignore is 255, not a line index


def _apply_joint_transforms(transforms: Callable, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a joint (image, mask) transform, with the mask wrapped as tv_tensors.Mask.

    torchvision.transforms.v2 treats a plain tensor next to an image as "not mine" and returns it
    untouched: a plain mask would silently stay unflipped while its photo is flipped. Wrapping both
    tells every v2 transform what each tensor is (bilinear for the image, nearest for the mask).
    """
    image, mask = transforms(tv_tensors.Image(image), tv_tensors.Mask(mask))
    return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor)


# --------------------------------------------------------------------------------------------
# The dataset
# --------------------------------------------------------------------------------------------

class SegmentationFolder(Dataset):
    """Photos and class-index masks from a VOC-layout folder (see the module docstring).

    Args:
        root: the folder holding JPEGImages/ and SegmentationClass/ (or SegmentationClassPNG/).
        image_size: int S -> S x S; (height, width); None keeps each photo's own size (then batches
            need batch_size=1 or photos of equal size).
        resize: "stretch" squashes the photo to the size (the lesson); "letterbox" keeps the aspect
            ratio and pads with black, the mask padded with 255 = ignore.
        transforms: callable (image, mask) -> (image, mask) run after resizing on tensors, e.g.
            `train_transforms()` or any torchvision.transforms.v2 transform. The mask reaches it
            wrapped as tv_tensors.Mask, so geometric v2 transforms move it with the photo.
        cache: keep decoded, resized photos and masks in memory (uint8): the big speed-up on CPU for
            small datasets. Transforms still run on every access, so augmentation stays random.
        binary_target: return the mask as float32 (1, H, W) (values 0, 1 and 255 = ignore), the
            target of a 1-channel sigmoid model as in the lesson.
        stems: use only these stems (list or a text file of stems); None = all pairs.

    Item: (image float32 (3, H, W) in [0, 1], mask int64 (H, W)), or with binary_target the mask
    float32 (1, H, W).
    """

    def __init__(
        self,
        root: str | Path,
        image_size: int | tuple[int, int] | None = 256,
        resize: str = "stretch",
        transforms: Callable | None = None,
        cache: bool = False,
        binary_target: bool = False,
        stems: Sequence[str] | str | Path | None = None,
    ) -> None:
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {resize!r}")
        self.root = Path(root)
        self.image_size = None if image_size is None else _as_hw(image_size)
        self.resize = resize
        self.transforms = transforms
        self.cache = cache
        self.binary_target = binary_target
        self.mask_dir, pairs = find_pairs(self.root, stems)
        if not pairs:
            raise ValueError(f"{self.root}: no photo/mask pairs{' for the given stems' if stems is not None else ''}.")
        self.stems: list[str] = [stem for stem, _, _ in pairs]
        self.image_files: list[Path] = [image for _, image, _ in pairs]
        self.mask_files: list[Path] = [mask for _, _, mask in pairs]
        self.class_names: list[str] | None = read_class_names(self.root)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._warned_black_white = False

    def __len__(self) -> int:
        return len(self.stems)

    def load_arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Photo uint8 (H, W, 3) and mask uint8 (H, W), resized; no transforms, no scaling."""
        image_path, mask_path = self.image_files[index], self.mask_files[index]

        # 1. Open. exif_transpose turns phone photos upright, as labelme showed them when they
        #    were labelled, so the polygons (and hence the mask) match.
        with Image.open(image_path) as raw:
            image = ImageOps.exif_transpose(raw)
            image.load()
        with Image.open(mask_path) as raw_mask:
            mask_mode = raw_mask.mode
            mask_array = mask_to_array(raw_mask, mask_path)  # class indices, palette NOT applied

        # 2. Convert to RGB (grayscale, palette, RGBA, 16-bit ... all become 3 x 8-bit channels).
        image = to_rgb(image)
        mask = Image.fromarray(mask_array)  # uint8 (H, W) -> mode "L"
        if image.size != mask.size:
            raise ValueError(
                f"photo and mask differ in size: {image_path} is {image.size[0]}x{image.size[1]}, "
                f"{mask_path} is {mask.size[0]}x{mask.size[1]} (width x height). The mask must be made "
                "from this very photo: re-export it from the labelme JSON."
            )
        self._check_black_white(mask_array, mask_mode, mask_path)

        # 3. Resize. The mask only ever with NEAREST: bilinear would average class 0 and class 2
        #    into a class 1 that is not there, and 255 (ignore) into nonsense at every edge.
        if self.image_size is not None:
            height, width = self.image_size
            if self.resize == "letterbox":
                image = letterbox(image, self.image_size, fill=0, resample=Image.Resampling.BILINEAR)
                mask = letterbox(mask, self.image_size, fill=IGNORE_INDEX, resample=Image.Resampling.NEAREST)
            else:
                image = image.resize((width, height), Image.Resampling.BILINEAR)
                mask = mask.resize((width, height), Image.Resampling.NEAREST)

        # 4. To numpy: (H, W, 3) and (H, W) uint8.
        return np.array(image, dtype=np.uint8), np.array(mask, dtype=np.uint8)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = range(len(self))[index]  # negative indices work, out of range raises IndexError
        if self.cache and index in self._cache:
            image_array, mask_array = self._cache[index]
        else:
            image_array, mask_array = self.load_arrays(index)
            if self.cache:
                self._cache[index] = (image_array, mask_array)

        # 5. Scale to [0, 1]: floats in [0, 1] keep the first layer's activations, and so the
        #    gradients, in a sane range; raw 0..255 values would need a much smaller learning rate.
        image = torch.from_numpy(image_array).float() / 255.0
        # 6. HWC -> CHW: PyTorch convolutions want channels first, (3, H, W).
        image = image.permute(2, 0, 1).contiguous()
        mask = torch.from_numpy(mask_array).long()  # (H, W) class indices, 255 = ignore

        if self.transforms is not None:
            image, mask = _apply_joint_transforms(self.transforms, image, mask)

        if self.binary_target:
            labels = set(torch.unique(mask).tolist()) - {0, 1, IGNORE_INDEX}
            if labels:
                raise ValueError(
                    f"{self.mask_files[index]}: binary_target=True expects masks of 0, 1 and {IGNORE_INDEX}, "
                    f"found classes {sorted(labels)}. Use binary_target=False and a model with one output "
                    "per class (background included)."
                )
            return image, mask.unsqueeze(0).float()  # (1, H, W), the lesson's target
        return image, mask

    def _check_black_white(self, mask_array: np.ndarray, mode: str, path: Path) -> None:
        # A black/white grayscale mask (white = object) would read as "everything ignored".
        if self._warned_black_white or mode != "L":
            return
        values = np.unique(mask_array)
        if IGNORE_INDEX in values and set(values.tolist()) <= {0, IGNORE_INDEX}:
            self._warned_black_white = True
            warnings.warn(
                f"{path} holds only 0 and 255. segkit reads 255 as 'ignore', not as 'object'. If white "
                "means object, convert the masks to class indices first, e.g. (mask > 127) -> 1.",
                stacklevel=3,
            )

    def __repr__(self) -> str:
        size = "original" if self.image_size is None else f"{self.image_size[0]}x{self.image_size[1]}"
        lines = [
            f"{type(self).__name__}(root='{self.root}', {len(self)} pairs",
            f"    masks: {self.mask_dir.name}/, image_size: {size} ({self.resize}), cache: {self.cache}, "
            f"binary_target: {self.binary_target}",
            f"    class_names: {self.class_names}",
            f"    stems: {_name_list(self.stems, 5)}",
        ]
        if self.transforms is not None:
            lines.append("    transforms: " + repr(self.transforms).replace("\n", "\n    "))
        return "\n".join(lines) + ")"


# --------------------------------------------------------------------------------------------
# Joint augmentation
# --------------------------------------------------------------------------------------------

class RandomZoom(v2.RandomResizedCrop):
    """Crop a random part covering `scale` of the area (aspect ratio within `ratio`) and resize it
    to `size`, or back to the input's own size when size is None.

    v2.RandomResizedCrop alone needs a fixed output size. Photos are resized bilinear,
    tv_tensors.Mask inputs nearest (torchvision picks the kernel by type).
    """

    def __init__(self, scale: tuple[float, float] = (0.75, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                 size: int | tuple[int, int] | None = None) -> None:
        super().__init__(_as_hw(size) if size is not None else 1, scale=scale, ratio=ratio, antialias=True)
        self.keep_input_size = size is None

    def make_params(self, flat_inputs: list) -> dict:
        params = super().make_params(flat_inputs)  # top, left, height, width of the crop
        params["size"] = list(v2.query_size(flat_inputs) if self.keep_input_size else self.size)
        return params

    def transform(self, inpt, params: dict):
        return TF.resized_crop(inpt, **params, interpolation=self.interpolation, antialias=self.antialias)

    def extra_repr(self) -> str:
        size = "input size" if self.keep_input_size else tuple(self.size)
        ratio = tuple(round(r, 3) for r in self.ratio)
        return f"scale={tuple(self.scale)}, ratio={ratio}, size={size}"


class JointTransforms:
    """Augment a photo and its mask together: (image (3, H, W) float, mask (H, W) int) -> same.

    Geometric transforms (flip, zoom, rotation) move photo and mask alike; colour jitter touches the
    photo only. Plain tensors are fine: they are wrapped as tv_tensors.Image / tv_tensors.Mask here.
    """

    def __init__(self, geometric: v2.Compose, color: v2.Transform | None) -> None:
        self.geometric = geometric
        self.color = color

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.geometric(tv_tensors.Image(image), tv_tensors.Mask(mask))
        if self.color is not None:
            image = self.color(image)
        image = image.as_subclass(torch.Tensor).clamp(0.0, 1.0)
        return image, mask.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        return f"JointTransforms(\n  geometric (image and mask): {self.geometric}\n  colour (image only): {self.color}\n)"


def train_transforms(
    image_size: int | tuple[int, int] | None = None,
    hflip: float = 0.5,
    scale: tuple[float, float] | None = (0.75, 1.0),
    degrees: float | tuple[float, float] = 10,
    color_jitter: float = 0.2,
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> JointTransforms:
    """Training augmentation for (image, mask) pairs, built from torchvision.transforms.v2.

    hflip: probability of a left-right flip. scale: the random crop keeps this fraction of the area
    (then it is resized to image_size, or to the input size when image_size is None); None = no zoom.
    degrees: rotation range (+-degrees, or a (min, max) pair); corners that rotate in are black on
    the photo and 255 = ignore on the mask, not 0, which would claim "background" where there is no
    photo. color_jitter: brightness, contrast and saturation factor range (1 +- color_jitter), hue
    +- color_jitter / 4, photo only. Set any of them to 0 to switch it off.
    """
    steps: list[v2.Transform] = []
    if hflip > 0:
        steps.append(v2.RandomHorizontalFlip(p=hflip))
    if scale is not None:
        steps.append(RandomZoom(scale=scale, ratio=ratio, size=image_size))
    elif image_size is not None:
        steps.append(v2.Resize(_as_hw(image_size), antialias=True))  # nearest for the Mask, by type
    if degrees:
        steps.append(v2.RandomRotation(degrees, interpolation=v2.InterpolationMode.BILINEAR,
                                       fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}))
    color = None
    if color_jitter:
        color = v2.ColorJitter(brightness=color_jitter, contrast=color_jitter, saturation=color_jitter,
                               hue=min(color_jitter / 4, 0.5))
    return JointTransforms(v2.Compose(steps or [v2.Identity()]), color)


# --------------------------------------------------------------------------------------------
# Splits and loaders
# --------------------------------------------------------------------------------------------

def train_val_split(n_or_dataset: int | Dataset, val_fraction: float = 0.2, seed: int = 0) -> tuple[list[int], list[int]]:
    """Shuffle indices 0..n-1 with `seed` and cut off a validation part: (train_indices, val_indices).

    Same n, fraction and seed -> same split, on every machine. With val_fraction > 0 and at least
    two items, val gets at least one item and train keeps at least one. Both lists are sorted.
    """
    n = n_or_dataset if isinstance(n_or_dataset, int) else len(n_or_dataset)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    else:
        n_val = 0
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(order[n_val:]), sorted(order[:n_val])


def split_folder(
    root: str | Path,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_transforms: Callable | None = None,
    val_transforms: Callable | None = None,
    stems: Sequence[str] | str | Path | None = None,
    **kwargs,
) -> tuple[SegmentationFolder, SegmentationFolder | None]:
    """Two SegmentationFolders on the same root with disjoint stems: (train_ds, val_ds).

    Each split has its own transforms (augment train, not val). Other keyword arguments
    (image_size, resize, cache, binary_target) go to both. val_ds is None when val_fraction is 0.
    """
    _, pairs = find_pairs(root, stems)
    all_stems = [stem for stem, _, _ in pairs]
    train_idx, val_idx = train_val_split(len(all_stems), val_fraction, seed)
    train_ds = SegmentationFolder(root, transforms=train_transforms, stems=[all_stems[i] for i in train_idx], **kwargs)
    val_ds = None
    if val_idx:
        val_ds = SegmentationFolder(root, transforms=val_transforms, stems=[all_stems[i] for i in val_idx], **kwargs)
    return train_ds, val_ds


def make_loader(
    dataset: Dataset,
    batch_size: int = 4,
    shuffle: bool = True,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    drop_last: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A DataLoader with sensible defaults for this course.

    pin_memory only when training on CUDA (device None: when CUDA is available), where it speeds
    up copies to the GPU; elsewhere it only costs memory. Worker processes stay alive between
    epochs (persistent_workers), so a cache=True dataset is filled once per worker. Shuffling uses
    its own generator seeded with `seed`, so the batch order is reproducible.
    """
    if drop_last and len(dataset) < batch_size:
        raise ValueError(
            f"drop_last=True with {len(dataset)} items and batch_size={batch_size} gives no batches at all; "
            "lower batch_size or set drop_last=False."
        )
    if device is None:
        on_cuda = torch.cuda.is_available()
    else:
        on_cuda = torch.device(device).type == "cuda"
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        pin_memory=on_cuda,
        persistent_workers=num_workers > 0,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
    )
