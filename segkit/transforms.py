"""Augmentation that moves a photo and its mask together, built on torchvision.transforms.v2.

    transforms = train_transforms()               # flip, zoom, small rotation, colour jitter
    image, mask = transforms(image, mask)         # (3, H, W) float in [0, 1], (H, W) int64

torchvision's v2 transforms know a photo from a mask by its type: a tv_tensors.Mask is resized
and rotated with nearest-neighbour (class indices are never averaged), and colour jitter leaves
it alone. A plain tensor next to an image counts as "not mine" and is returned untouched, so a
flipped photo would keep an unflipped mask: that is why JointTransforms wraps both first.
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from .data import IGNORE_INDEX


class JointTransforms:
    """(image (3, H, W) float, mask (H, W) int64) -> the same, augmented; the output keeps the input's size.

    geometric: v2 transforms applied to both; color: v2 transforms applied to the photo only.
    Either list may be empty (v2.Compose refuses an empty list, so an empty step is v2.Identity).
    """

    def __init__(self, geometric: list[v2.Transform], color: list[v2.Transform]) -> None:
        self.geometric = v2.Compose(geometric) if geometric else v2.Identity()
        self.color = v2.Compose(color) if color else v2.Identity()

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.geometric(tv_tensors.Image(image), tv_tensors.Mask(mask))
        image = self.color(image).as_subclass(torch.Tensor).clamp(0.0, 1.0)
        return image, mask.as_subclass(torch.Tensor)

    def __repr__(self) -> str:
        def steps(compose):
            return [repr(t) for t in getattr(compose, "transforms", [])] or ["nothing"]
        return ("JointTransforms\n  photo and mask: " + "\n                  ".join(steps(self.geometric))
                + "\n  photo only:     " + "\n                  ".join(steps(self.color)))


def train_transforms(hflip: float = 0.5, scale: tuple[float, float] | None = (0.75, 1.0), degrees: float = 10,
                     color_jitter: float = 0.2) -> JointTransforms:
    """The training augmentation (set any argument to 0 or None to switch that step off).

    hflip: probability of a left-right flip (a cat facing left is still a cat).
    scale: zoom: crop a random part of the photo covering this fraction of its area (aspect ratio
        3:4 to 4:3) and resize it back to the input size, so cats come in many sizes.
    degrees: rotate by up to +-degrees; corners that come in are black on the photo and 255
        (ignore) on the mask, not 0: nobody labelled them background.
    color_jitter: brightness, contrast and saturation times 1 +- color_jitter, hue +- color_jitter / 4.
    """
    geometric: list[v2.Transform] = []
    if hflip:
        geometric.append(v2.RandomHorizontalFlip(p=hflip))
    if scale is not None:
        geometric.append(RandomZoom(scale))
    if degrees:
        geometric.append(v2.RandomRotation(degrees, interpolation=v2.InterpolationMode.BILINEAR,
                                           fill={tv_tensors.Image: 0, tv_tensors.Mask: IGNORE_INDEX}))
    color = [v2.ColorJitter(color_jitter, color_jitter, color_jitter, color_jitter / 4)] if color_jitter else []
    return JointTransforms(geometric, color)


class RandomZoom(v2.RandomResizedCrop):
    """v2.RandomResizedCrop whose output size is the input's own size (v2's needs a fixed one)."""

    def __init__(self, scale: tuple[float, float]) -> None:
        super().__init__(size=1, scale=scale, antialias=True)

    def make_params(self, flat_inputs: list) -> dict:
        params = super().make_params(flat_inputs)  # top, left, height, width of the crop
        params["size"] = list(v2.query_size(flat_inputs))
        return params

    def transform(self, inpt, params: dict):
        return v2.functional.resized_crop(inpt, **params, interpolation=self.interpolation, antialias=True)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, ratio=(3/4, 4/3), back to the input's size"
