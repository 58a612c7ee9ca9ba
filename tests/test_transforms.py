"""Tests for segkit.transforms: the photo and its mask move together; colour touches the photo only.

The test photos encode their own mask (white where the mask is 1, black where it is 0), so a
photo and mask that drift apart show up pixel by pixel, whatever random draw the transform made.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from segkit.data import IGNORE_INDEX, SegmentationFolder
from segkit.transforms import JointTransforms, train_transforms

# ---------------------------------------------------------------------------- helpers


def encoded_pair(height: int = 48, width: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """A photo whose colour encodes its mask: white where mask == 1, black where 0, grey on an
    ignore patch. The shapes are asymmetric, so a flip or a rotation of one side only shows."""
    mask = torch.zeros(height, width, dtype=torch.int64)
    mask[6:20, 5:width - 8] = 1  # off-centre bar, top
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    mask[(yy - (height * 2) // 3) ** 2 + (xx - 14) ** 2 < 64] = 1  # disc, bottom left
    mask[height - 8:, width - 18:] = IGNORE_INDEX  # an ignore patch, bottom right
    image = torch.zeros(3, height, width)
    image[:, mask == 1] = 1.0
    image[:, mask == IGNORE_INDEX] = 0.5
    return image, mask


def misaligned_pixels(image: torch.Tensor, mask: torch.Tensor) -> int:
    """Pixels away from any class boundary (and the frame) whose brightness disagrees with their mask."""
    padded = torch.nn.functional.pad(mask[None, None].float(), (2, 2, 2, 2), value=-1.0)
    local_max = torch.nn.functional.max_pool2d(padded, 5, stride=1)[0, 0]
    local_min = -torch.nn.functional.max_pool2d(-padded, 5, stride=1)[0, 0]
    interior = local_max == local_min  # the whole 5x5 neighbourhood has one label: no interpolation blur
    brightness = image.mean(0)
    wrong_cat = interior & (mask == 1) & (brightness < 0.75)
    wrong_background = interior & (mask == 0) & (brightness > 0.25)
    wrong_ignore = interior & (mask == IGNORE_INDEX) & (brightness > 0.75)  # grey patch or black fill
    return int((wrong_cat | wrong_background | wrong_ignore).sum())


def check_output(image_in, mask_in, image, mask) -> None:
    """What every augmented pair must be: same size, same dtypes, plain tensors, photo in [0, 1]."""
    assert type(image) is torch.Tensor and type(mask) is torch.Tensor
    assert image.shape == image_in.shape and image.dtype == torch.float32
    assert mask.shape == mask_in.shape and mask.dtype == torch.int64
    assert 0.0 <= image.min() and image.max() <= 1.0


# ---------------------------------------------------------------------------- the trap

def test_misalignment_check_catches_the_plain_tensor_trap():
    image, mask = encoded_pair()
    assert misaligned_pixels(image, mask) == 0
    flipped_image, untouched_mask = v2.RandomHorizontalFlip(p=1.0)(image, mask)  # two plain tensors
    assert torch.equal(untouched_mask, mask)  # v2 left the mask alone: the trap
    assert misaligned_pixels(flipped_image, untouched_mask) > 100  # so the checks below can fail


def test_joint_transforms_move_plain_tensor_masks():
    image, mask = encoded_pair()
    flip = JointTransforms([v2.RandomHorizontalFlip(p=1.0)], [])
    out_image, out_mask = flip(image, mask)  # plain tensors in: wrapped inside
    check_output(image, mask, out_image, out_mask)
    assert torch.equal(out_image, image.flip(-1)) and torch.equal(out_mask, mask.flip(-1))


def test_joint_transforms_colour_list_skips_the_mask():
    image, mask = encoded_pair()
    invert = JointTransforms([], [v2.RandomInvert(p=1.0)])
    out_image, out_mask = invert(image, mask)
    assert torch.allclose(out_image, 1.0 - image) and torch.equal(out_mask, mask)


# ---------------------------------------------------------------------------- train_transforms

def test_everything_off_is_the_identity():
    image, mask = encoded_pair(40, 56)
    identity = train_transforms(hflip=0, scale=None, degrees=0, color_jitter=0)
    out_image, out_mask = identity(image, mask)
    check_output(image, mask, out_image, out_mask)
    assert torch.equal(out_image, image) and torch.equal(out_mask, mask)


def test_hflip_flips_both_exactly():
    image, mask = encoded_pair(40, 56)
    flip = train_transforms(hflip=1.0, scale=None, degrees=0, color_jitter=0)
    out_image, out_mask = flip(image, mask)
    assert torch.equal(out_image, image.flip(-1)) and torch.equal(out_mask, mask.flip(-1))
    half = train_transforms(hflip=0.5, scale=None, degrees=0, color_jitter=0)
    torch.manual_seed(0)
    flipped = [torch.equal(half(image, mask)[1], mask.flip(-1)) for _ in range(20)]
    assert 3 <= sum(flipped) <= 17  # sometimes, not always


STEPS = {
    "flip": dict(hflip=0.5, scale=None, degrees=0, color_jitter=0),
    "zoom": dict(hflip=0, scale=(0.35, 1.0), degrees=0, color_jitter=0),
    "rotation": dict(hflip=0, scale=None, degrees=30, color_jitter=0),
    "all": dict(hflip=0.5, scale=(0.35, 1.0), degrees=25, color_jitter=0.2),
}


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("height,width", [(48, 48), (40, 56)])
def test_photo_and_mask_stay_aligned(step, height, width):
    image, mask = encoded_pair(height, width)
    augment = train_transforms(**STEPS[step])
    torch.manual_seed(0)
    changed = 0
    for _ in range(12):
        out_image, out_mask = augment(image, mask)
        check_output(image, mask, out_image, out_mask)  # the output keeps the input's size
        assert set(torch.unique(out_mask).tolist()) <= {0, 1, IGNORE_INDEX}  # nearest: no invented classes
        assert misaligned_pixels(out_image, out_mask) == 0
        assert (out_mask == 1).sum() > 30  # the check had something to look at
        changed += not torch.equal(out_mask, mask)
    assert changed >= 4  # the step did something


def test_mask_values_stay_within_the_original_set():
    """Classes 0 and 2 in 2-pixel stripes: any averaging of the mask would invent class 1."""
    stripes = (((torch.arange(64) // 2) % 2) * 2).expand(64, 64).clone()
    stripes[:8, :8] = IGNORE_INDEX
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    augment = train_transforms(hflip=0.5, scale=(0.35, 1.0), degrees=30, color_jitter=0.2)
    torch.manual_seed(1)
    for _ in range(15):
        _, out_mask = augment(image, stripes)
        assert set(torch.unique(out_mask).tolist()) <= {0, 2, IGNORE_INDEX}
        assert {0, 2} <= set(torch.unique(out_mask).tolist())


def test_zoom_enlarges_and_keeps_the_size():
    """scale=(0.25, 0.25): a crop of a quarter of the area, about half the width, blown up to the
    full size: 4-pixel stripes come out 7 to 9 pixels wide."""
    stripes = ((torch.arange(64) // 4) % 2).expand(48, 64).clone()  # 16 stripes, 15 edges per row
    image = stripes.float().expand(3, 48, 64).clone()
    zoom = train_transforms(hflip=0, scale=(0.25, 0.25), degrees=0, color_jitter=0)
    torch.manual_seed(0)
    for _ in range(10):
        out_image, out_mask = zoom(image, stripes)
        check_output(image, stripes, out_image, out_mask)
        edges = int((out_mask[24, 1:] != out_mask[24, :-1]).sum())
        assert 5 <= edges <= 10
        assert misaligned_pixels(out_image, out_mask) == 0


def test_rotation_fills_the_mask_with_ignore_and_the_photo_with_black():
    image, mask = torch.ones(3, 32, 32), torch.ones(32, 32, dtype=torch.int64)  # a white cat, all over
    rotate = train_transforms(hflip=0, scale=None, degrees=40, color_jitter=0)
    torch.manual_seed(0)
    corners_filled = 0
    for _ in range(15):
        out_image, out_mask = rotate(image, mask)
        check_output(image, mask, out_image, out_mask)
        assert set(torch.unique(out_mask).tolist()) <= {1, IGNORE_INDEX}  # never a new background 0
        assert out_mask[16, 16] == 1
        assert misaligned_pixels(out_image, out_mask) == 0  # ignore corners black, the photo white
        corners = torch.stack([out_mask[0, 0], out_mask[0, -1], out_mask[-1, 0], out_mask[-1, -1]])
        if (corners == IGNORE_INDEX).all():
            corners_filled += 1
            assert (out_image[:, 0, 0] < 0.5).all() and (out_image[:, -1, -1] < 0.5).all()  # black came in
    assert corners_filled >= 10  # every rotation by more than a degree or two


def test_colour_jitter_touches_the_photo_only():
    image, mask = encoded_pair()
    image = image * 0.6 + 0.2  # room to move both ways
    image[0] *= 0.5  # some colour for saturation and hue to act on
    jitter = train_transforms(hflip=0, scale=None, degrees=0, color_jitter=0.5)
    torch.manual_seed(1)
    for _ in range(5):
        out_image, out_mask = jitter(image, mask)
        check_output(image, mask, out_image, out_mask)
        assert torch.equal(out_mask, mask)
        assert (out_image - image).abs().max() > 0.02


# ---------------------------------------------------------------------------- with the Dataset

def test_train_transforms_in_a_segmentation_folder(tmp_path):
    """The folder hands tv_tensors to the transforms: the pair still comes out aligned and plain."""
    image, mask = encoded_pair(40, 56)
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationClass").mkdir()
    photo = (image.permute(1, 2, 0) * 255).round().byte().numpy()
    Image.fromarray(photo).save(tmp_path / "JPEGImages" / "x.png")
    Image.fromarray(mask.numpy().astype(np.uint8)).save(tmp_path / "SegmentationClass" / "x.png")
    ds = SegmentationFolder(tmp_path, image_size=None, transforms=train_transforms(degrees=25))
    torch.manual_seed(0)
    seen = set()
    for _ in range(8):
        out_image, out_mask = ds[0]
        check_output(image, mask, out_image, out_mask)
        assert set(torch.unique(out_mask).tolist()) <= {0, 1, IGNORE_INDEX}
        assert misaligned_pixels(out_image, out_mask) == 0
        seen.add(tuple(out_mask.flatten().tolist()))
    assert len(seen) >= 6  # a new draw on every access
