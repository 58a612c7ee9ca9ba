"""Tests for segkit.data: pairing, reading, resizing, augmentation, splits, loaders."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from segkit.data import (
    SegmentationFolder,
    find_pairs,
    letterbox,
    make_loader,
    mask_to_array,
    split_folder,
    to_rgb,
    train_transforms,
    train_val_split,
    unletterbox_box,
)
from segkit.palette import flat_palette


# ---------------------------------------------------------------------------- helpers

def save_mask(mask: np.ndarray, path: Path) -> None:
    image = Image.fromarray(mask.astype(np.uint8))
    image.putpalette(flat_palette())
    image.save(path)


def make_folder(root: Path, stems=("a", "b", "c"), size=(40, 30), mask_dir="SegmentationClass",
                class_names=("_background_", "cat")) -> Path:
    """A VOC folder: photos with a random colour background and a bright rectangle = class 1."""
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    width, height = size
    rng = np.random.default_rng(0)
    for i, stem in enumerate(stems):
        mask = np.zeros((height, width), np.uint8)
        mask[5 + i: 20, 8: 30 - i] = 1
        mask[0, :] = 255
        photo = rng.integers(0, 100, (height, width, 3), dtype=np.uint8)
        photo[mask == 1] = (230, 180, 90)
        Image.fromarray(photo).save(root / "JPEGImages" / f"{stem}.png")
        save_mask(mask, root / mask_dir / f"{stem}.png")
    if class_names:
        (root / "class_names.txt").write_text("\n".join(class_names) + "\n")
    return root


def single_pair(root: Path, image: Image.Image, mask: Image.Image | np.ndarray, stem="x",
                image_ext=".png") -> Path:
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    image.save(root / "JPEGImages" / f"{stem}{image_ext}")
    if isinstance(mask, np.ndarray):
        save_mask(mask, root / "SegmentationClass" / f"{stem}.png")
    else:
        mask.save(root / "SegmentationClass" / f"{stem}.png")
    return root


# ---------------------------------------------------------------------------- pairing

def test_pairs_by_stem_sorted_and_reads_class_names(tmp_path):
    root = make_folder(tmp_path, stems=("b", "a", "c"))
    ds = SegmentationFolder(root, image_size=16)
    assert ds.stems == ["a", "b", "c"]
    assert [p.name for p in ds.image_files] == ["a.png", "b.png", "c.png"]
    assert [p.name for p in ds.mask_files] == ["a.png", "b.png", "c.png"]
    assert ds.class_names == ["_background_", "cat"]
    assert len(ds) == 3
    text = repr(ds)
    assert "3 pairs" in text and "SegmentationClass/" in text and "cat" in text


def test_class_names_none_without_file(tmp_path):
    ds = SegmentationFolder(make_folder(tmp_path, class_names=None), image_size=16)
    assert ds.class_names is None


def test_unpaired_files_error_lists_both_sides(tmp_path):
    root = make_folder(tmp_path, stems=("a", "b"))
    Image.new("RGB", (40, 30)).save(root / "JPEGImages" / "lonely_photo.jpg")
    for i in range(12):
        save_mask(np.zeros((30, 40), np.uint8), root / "SegmentationClass" / f"orphan{i:02d}.png")
    with pytest.raises(ValueError) as info:
        SegmentationFolder(root)
    message = str(info.value)
    assert "1 photo(s) in JPEGImages/ without a mask: lonely_photo" in message
    assert "12 mask(s) in SegmentationClass/ without a photo" in message
    assert "orphan00" in message and "orphan09" in message
    assert "orphan11" not in message  # only the first ten are listed ...
    assert "(12 in all)" in message  # ... plus the count
    assert "Fix:" in message


def test_stems_restrict_and_missing_stem_error(tmp_path):
    root = make_folder(tmp_path, stems=("a", "b", "c"))
    Image.new("RGB", (40, 30)).save(root / "JPEGImages" / "unlabelled.jpg")  # fine when stems are given
    ds = SegmentationFolder(root, image_size=16, stems=["c", "a"])
    assert ds.stems == ["c", "a"]
    (tmp_path / "train.txt").write_text("b\nc\n")
    assert SegmentationFolder(root, image_size=16, stems=tmp_path / "train.txt").stems == ["b", "c"]
    with pytest.raises(ValueError, match="unlabelled"):
        SegmentationFolder(root, stems=["a", "unlabelled"])


def test_masks_in_segmentationclasspng(tmp_path):
    root = make_folder(tmp_path, mask_dir="SegmentationClassPNG")
    ds = SegmentationFolder(root, image_size=16)
    assert ds.mask_dir.name == "SegmentationClassPNG"
    image, mask = ds[0]
    assert image.shape == (3, 16, 16) and mask.shape == (16, 16)


def test_old_labelme_layout_npy_in_segmentationclass(tmp_path):
    root = make_folder(tmp_path, mask_dir="SegmentationClassPNG")
    (root / "SegmentationClass").mkdir()
    np.save(root / "SegmentationClass" / "a.npy", np.zeros((30, 40), np.int32))
    assert SegmentationFolder(root, image_size=16).mask_dir.name == "SegmentationClassPNG"


def test_missing_folders_errors(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(FileNotFoundError, match="SegmentationClassPNG"):
        SegmentationFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        SegmentationFolder(tmp_path / "nowhere")


def test_duplicate_stems_rejected(tmp_path):
    root = make_folder(tmp_path, stems=("a",))
    Image.new("RGB", (40, 30)).save(root / "JPEGImages" / "a.jpg")
    with pytest.raises(ValueError, match=r"a\.jpg / a\.png|a\.png / a\.jpg"):
        SegmentationFolder(root)


# ---------------------------------------------------------------------------- reading

def test_image_range_dtype_and_exact_division_by_255(tmp_path):
    photo = np.zeros((4, 6, 3), np.uint8)
    photo[0, 0] = (255, 0, 128)
    root = single_pair(tmp_path, Image.fromarray(photo), np.zeros((4, 6), np.uint8))
    image, mask = SegmentationFolder(root, image_size=None)[0]
    assert image.dtype == torch.float32 and image.shape == (3, 4, 6)
    assert mask.dtype == torch.int64 and mask.shape == (4, 6)
    assert 0.0 <= image.min() and image.max() <= 1.0
    # channels first: pixel (0, 0) is read along dim 0
    assert torch.allclose(image[:, 0, 0], torch.tensor([1.0, 0.0, 128 / 255]))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "P+transparency", "1", "CMYK", "I;16", "I"])
def test_every_image_mode_becomes_rgb(tmp_path, mode):
    gray = np.tile(np.linspace(0, 255, 8).astype(np.uint8), (5, 1))  # 0..255 ramp, (5, 8)
    if mode == "I;16":
        image = Image.fromarray(gray.astype(np.uint16) * 257)  # 16-bit: 255 -> 65535
        expected = gray
    elif mode == "I":
        image = Image.fromarray(gray.astype(np.int32) * 257)
        expected = gray
    elif mode == "1":
        image = Image.fromarray(gray > 127)
        expected = np.where(gray > 127, 255, 0)
    elif mode.startswith("P"):
        image = Image.fromarray(gray).convert("P")  # grayscale palette
        if mode == "P+transparency":
            image.info["transparency"] = 0
        expected = gray
    else:
        image = Image.fromarray(gray).convert(mode)
        expected = gray
    assert image.mode == ("P" if mode.startswith("P") else mode)
    ext = ".tif" if mode in ("CMYK", "I") else ".png"
    root = single_pair(tmp_path, image, np.zeros((5, 8), np.uint8), image_ext=ext)
    tensor, _ = SegmentationFolder(root, image_size=None)[0]
    assert tensor.shape == (3, 5, 8)
    got = (tensor * 255).round().to(torch.int64).numpy()
    for channel in range(3):
        np.testing.assert_allclose(got[channel], expected, atol=1)


def test_16bit_is_scaled_not_clipped():
    half = Image.fromarray(np.full((2, 2), 32768, np.uint16))
    assert half.mode == "I;16"
    assert np.asarray(half.convert("L")).max() == 255  # PIL's own conversion clips: the trap
    assert np.asarray(to_rgb(half))[0, 0].tolist() == [128, 128, 128]


def test_exif_orientation_applied(tmp_path):
    photo = Image.new("RGB", (6, 4), (255, 0, 0))
    exif = photo.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed: shown as 4 wide, 6 high
    (tmp_path / "JPEGImages").mkdir()
    photo.save(tmp_path / "JPEGImages" / "x.jpg", exif=exif)
    (tmp_path / "SegmentationClass").mkdir()
    save_mask(np.zeros((6, 4), np.uint8), tmp_path / "SegmentationClass" / "x.png")
    image, mask = SegmentationFolder(tmp_path, image_size=None)[0]
    assert image.shape == (3, 6, 4) and mask.shape == (6, 4)


def test_palette_mask_reads_indices_not_colours(tmp_path):
    mask = np.array([[0, 1, 2], [255, 1, 0]], np.uint8)
    path = tmp_path / "m.png"
    save_mask(mask, path)
    with Image.open(path) as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(mask_to_array(image, path), mask)
    gray = Image.fromarray(mask)
    np.testing.assert_array_equal(mask_to_array(gray), mask)


def test_rgb_mask_rejected(tmp_path):
    root = single_pair(tmp_path, Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), (0, 128, 0)))
    with pytest.raises(ValueError, match=r"RGB colour image, not an index mask") as info:
        SegmentationFolder(root, image_size=None)[0]
    assert "x.png" in str(info.value)


def test_size_mismatch_names_both_files(tmp_path):
    root = single_pair(tmp_path, Image.new("RGB", (10, 8)), np.zeros((8, 9), np.uint8), image_ext=".jpg")
    with pytest.raises(ValueError) as info:
        SegmentationFolder(root)[0]
    message = str(info.value)
    assert str(root / "JPEGImages" / "x.jpg") in message
    assert str(root / "SegmentationClass" / "x.png") in message
    assert "10x8" in message and "9x8" in message


def test_black_white_mask_warns(tmp_path):
    mask = Image.fromarray(np.where(np.arange(64).reshape(8, 8) > 30, 255, 0).astype(np.uint8))
    root = single_pair(tmp_path, Image.new("RGB", (8, 8)), mask)
    with pytest.warns(UserWarning, match="255 as 'ignore'"):
        SegmentationFolder(root, image_size=None)[0]


# ---------------------------------------------------------------------------- resizing

def test_mask_resize_is_nearest_only(tmp_path):
    rng = np.random.default_rng(1)
    mask = rng.choice(np.array([0, 1, 255], np.uint8), size=(23, 37))
    checker = ((np.indices((23, 37)).sum(0) // 3) % 2).astype(np.uint8)  # 3-pixel checker of 0/1
    photo = Image.fromarray(rng.integers(0, 255, (23, 37, 3), dtype=np.uint8))
    for stem, array in (("random", mask), ("checker", checker)):
        single_pair(tmp_path, photo, array, stem=stem)
    for size in (16, 50, (20, 30)):
        ds = SegmentationFolder(tmp_path, image_size=size)
        for index, array in ((ds.stems.index("random"), mask), (ds.stems.index("checker"), checker)):
            _, got = ds[index]
            height, width = (size, size) if isinstance(size, int) else size
            expected = np.asarray(Image.fromarray(array).resize((width, height), Image.Resampling.NEAREST))
            np.testing.assert_array_equal(got.numpy(), expected)
            assert set(np.unique(got.numpy())) <= set(np.unique(array).tolist())


def test_image_size_none_keeps_size_and_tuple_is_height_width(tmp_path):
    root = make_folder(tmp_path, size=(40, 30))
    image, mask = SegmentationFolder(root, image_size=None)[0]
    assert image.shape == (3, 30, 40) and mask.shape == (30, 40)
    image, mask = SegmentationFolder(root, image_size=(24, 32))[0]
    assert image.shape == (3, 24, 32) and mask.shape == (24, 32)


@pytest.mark.parametrize("orig_size,size,box", [
    ((200, 100), 64, (0, 16, 64, 48)),     # wide: bars top and bottom
    ((100, 200), 64, (16, 0, 48, 64)),     # tall: bars left and right
    ((50, 50), 64, (0, 0, 64, 64)),        # square: no bars
    ((300, 100), (40, 60), (0, 10, 60, 30)),  # (height, width) target
])
def test_letterbox_geometry(orig_size, size, box):
    assert unletterbox_box(orig_size, size) == box
    photo = Image.new("RGB", orig_size, (200, 100, 50))
    boxed = np.asarray(letterbox(photo, size, fill=0))
    height, width = (size, size) if isinstance(size, int) else size
    assert boxed.shape == (height, width, 3)
    left, top, right, bottom = box
    assert (boxed[top:bottom, left:right] == (200, 100, 50)).all()
    outside = np.ones((height, width), bool)
    outside[top:bottom, left:right] = False
    assert (boxed[outside] == 0).all()


def test_letterbox_dataset_pads_mask_with_ignore(tmp_path):
    mask = np.ones((20, 40), np.uint8)
    root = single_pair(tmp_path, Image.new("RGB", (40, 20), (255, 255, 255)), mask)
    image, got = SegmentationFolder(root, image_size=32, resize="letterbox")[0]
    left, top, right, bottom = unletterbox_box((40, 20), 32)
    assert (top, bottom) == (8, 24)
    assert (got[top:bottom] == 1).all()
    assert (got[:top] == 255).all() and (got[bottom:] == 255).all()
    assert (image[:, top:bottom] == 1.0).all()
    assert (image[:, :top] == 0).all() and (image[:, bottom:] == 0).all()


def test_bad_resize_mode(tmp_path):
    with pytest.raises(ValueError, match="letterbox"):
        SegmentationFolder(make_folder(tmp_path), resize="crop")


# ---------------------------------------------------------------------------- targets and cache

def test_binary_target_shape_dtype_and_ignore(tmp_path):
    ds = SegmentationFolder(make_folder(tmp_path), image_size=16, binary_target=True)
    image, target = ds[0]
    assert image.shape == (3, 16, 16)
    assert target.shape == (1, 16, 16) and target.dtype == torch.float32
    assert set(torch.unique(target).tolist()) == {0.0, 1.0, 255.0}


def test_binary_target_rejects_other_classes(tmp_path):
    root = single_pair(tmp_path, Image.new("RGB", (8, 8)), np.full((8, 8), 2, np.uint8))
    with pytest.raises(ValueError, match=r"classes \[2\]"):
        SegmentationFolder(root, image_size=None, binary_target=True)[0]


def test_cache_returns_identical_items_without_rereading(tmp_path):
    root = make_folder(tmp_path)
    cached = SegmentationFolder(root, image_size=16, cache=True)
    plain = SegmentationFolder(root, image_size=16)
    first = [cached[i] for i in range(len(cached))]
    for path in list((root / "JPEGImages").iterdir()) + list((root / "SegmentationClass").iterdir()):
        path.unlink()  # a cached dataset no longer needs the files
    for i, (image, mask) in enumerate(first):
        again_image, again_mask = cached[i]
        assert torch.equal(image, again_image) and torch.equal(mask, again_mask)
    with pytest.raises(FileNotFoundError):
        plain[0]
    assert torch.equal(cached[-1][0], first[-1][0])
    with pytest.raises(IndexError):
        cached[3]


# ---------------------------------------------------------------------------- augmentation

def encoded_pair(size=48):
    """A photo whose colour encodes its mask: white where mask == 1, black where 0 (an asymmetric shape)."""
    mask = torch.zeros(size, size, dtype=torch.int64)
    mask[6:20, 5:40] = 1  # off-centre bar, top
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    mask[(yy - 34) ** 2 + (xx - 14) ** 2 < 64] = 1  # disc, bottom left
    mask[40:, 30:] = 255  # an ignore patch
    image = torch.zeros(3, size, size)
    image[:, mask == 1] = 1.0
    image[:, mask == 255] = 0.5
    return image, mask


def misaligned_pixels(image: torch.Tensor, mask: torch.Tensor) -> int:
    """Pixels away from any class boundary (and the frame) whose brightness disagrees with their mask."""
    labels = mask.clone()
    # pad with a non-label: next to the frame the photo may blend with what rotated in from outside
    padded = torch.nn.functional.pad(labels[None, None].float(), (2, 2, 2, 2), value=-1.0)
    local_max = torch.nn.functional.max_pool2d(padded, 5, stride=1)[0, 0]
    local_min = -torch.nn.functional.max_pool2d(-padded, 5, stride=1)[0, 0]
    interior = local_max == local_min  # whole 5x5 neighbourhood has one label: no interpolation blur
    brightness = image.mean(0)
    wrong_cat = interior & (labels == 1) & (brightness < 0.5)
    wrong_background = interior & (labels == 0) & (brightness > 0.5)
    return int((wrong_cat | wrong_background).sum())


def test_misalignment_check_catches_the_plain_tensor_trap():
    image, mask = encoded_pair()
    flip = v2.RandomHorizontalFlip(p=1.0)
    flipped_image, untouched_mask = flip(image, mask)  # plain tensors: the mask is silently left alone
    assert torch.equal(untouched_mask, mask)
    assert misaligned_pixels(flipped_image, untouched_mask) > 100  # so the check below can fail
    assert misaligned_pixels(image, mask) == 0


def test_augmentations_keep_image_and_mask_aligned():
    image, mask = encoded_pair()
    augment = train_transforms(image_size=40, hflip=0.5, scale=(0.5, 1.0), degrees=25, color_jitter=0.2)
    torch.manual_seed(0)
    changed = 0
    for _ in range(25):
        out_image, out_mask = augment(image, mask)  # plain tensors in, handled inside
        assert type(out_image) is torch.Tensor and type(out_mask) is torch.Tensor
        assert out_image.shape == (3, 40, 40) and out_image.dtype == torch.float32
        assert out_mask.shape == (40, 40) and out_mask.dtype == torch.int64
        assert 0.0 <= out_image.min() and out_image.max() <= 1.0
        assert set(torch.unique(out_mask).tolist()) <= {0, 1, 255}  # nearest: no invented classes
        assert misaligned_pixels(out_image, out_mask) == 0
        assert (out_mask == 1).sum() > 50
        changed += not torch.equal(out_mask, mask[:40, :40])
    assert changed >= 20


def test_rotation_fills_mask_with_ignore_and_image_with_black():
    image = torch.ones(3, 32, 32)
    mask = torch.zeros(32, 32, dtype=torch.int64)
    rotate = train_transforms(hflip=0, scale=None, degrees=(45, 45), color_jitter=0)
    out_image, out_mask = rotate(image, mask)
    assert out_mask[0, 0] == 255 and out_mask[-1, -1] == 255 and out_mask[16, 16] == 0
    assert torch.all(out_image[:, 0, 0] == 0)
    assert set(torch.unique(out_mask).tolist()) == {0, 255}


def test_flip_moves_plain_tensor_mask():
    image, mask = encoded_pair()
    flip = train_transforms(hflip=1.0, scale=None, degrees=0, color_jitter=0)
    out_image, out_mask = flip(image, mask)
    assert torch.equal(out_mask, mask.flip(-1)) and torch.equal(out_image, image.flip(-1))


def test_color_jitter_touches_image_only():
    image, mask = encoded_pair()
    image = image * 0.6 + 0.2
    jitter = train_transforms(hflip=0, scale=None, degrees=0, color_jitter=0.5)
    torch.manual_seed(1)
    out_image, out_mask = jitter(image, mask)
    assert torch.equal(out_mask, mask)
    assert not torch.allclose(out_image, image)


def test_dataset_wraps_mask_for_any_v2_transform(tmp_path):
    root = make_folder(tmp_path)
    plain = SegmentationFolder(root, image_size=16)
    flipped = SegmentationFolder(root, image_size=16, transforms=v2.RandomHorizontalFlip(p=1.0))
    image, mask = plain[1]
    flipped_image, flipped_mask = flipped[1]
    assert torch.equal(flipped_mask, mask.flip(-1)) and torch.equal(flipped_image, image.flip(-1))
    assert type(flipped_mask) is torch.Tensor and flipped_mask.dtype == torch.int64


def test_dataset_transforms_then_binary_target(tmp_path):
    ds = SegmentationFolder(make_folder(tmp_path), image_size=24, binary_target=True,
                            transforms=train_transforms(degrees=30))
    torch.manual_seed(0)
    image, target = ds[0]
    assert image.shape == (3, 24, 24) and target.shape == (1, 24, 24) and target.dtype == torch.float32
    assert set(torch.unique(target).tolist()) <= {0.0, 1.0, 255.0}


# ---------------------------------------------------------------------------- splits and loaders

def test_train_val_split_deterministic_and_disjoint():
    train, val = train_val_split(50, 0.2, seed=3)
    assert (train, val) == train_val_split(50, 0.2, seed=3)
    assert train_val_split(50, 0.2, seed=4) != (train, val)
    assert len(val) == 10 and len(train) == 40
    assert sorted(train + val) == list(range(50))
    assert train == sorted(train) and val == sorted(val)


def test_train_val_split_edge_cases(tmp_path):
    assert train_val_split(10, 0.0) == (list(range(10)), [])
    train, val = train_val_split(3, 0.01)
    assert len(val) == 1 and len(train) == 2
    assert train_val_split(2, 0.9)[1] != [] and len(train_val_split(2, 0.9)[0]) == 1
    assert train_val_split(1, 0.5) == ([0], [])
    ds = SegmentationFolder(make_folder(tmp_path), image_size=8)
    assert train_val_split(ds, 0.34, seed=0) == train_val_split(3, 0.34, seed=0)
    with pytest.raises(ValueError):
        train_val_split(10, 1.0)


def test_split_folder_disjoint_with_own_transforms(tmp_path):
    root = make_folder(tmp_path, stems=[f"s{i}" for i in range(10)])
    augment = train_transforms()
    train_ds, val_ds = split_folder(root, val_fraction=0.3, seed=1, train_transforms=augment, image_size=16)
    assert len(train_ds) == 7 and len(val_ds) == 3
    assert not set(train_ds.stems) & set(val_ds.stems)
    assert train_ds.transforms is augment and val_ds.transforms is None
    assert train_ds.image_size == val_ds.image_size == (16, 16)
    again_train, again_val = split_folder(root, val_fraction=0.3, seed=1)
    assert again_train.stems == train_ds.stems and again_val.stems == val_ds.stems
    assert split_folder(root, val_fraction=0.0)[1] is None


def test_make_loader_batches(tmp_path):
    ds = SegmentationFolder(make_folder(tmp_path, stems=[f"s{i}" for i in range(5)]), image_size=16)
    loader = make_loader(ds, batch_size=2, device="cpu")
    assert not loader.pin_memory
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [2, 2, 1]
    images, masks = batches[0]
    assert images.shape == (2, 3, 16, 16) and images.dtype == torch.float32
    assert masks.shape == (2, 16, 16) and masks.dtype == torch.int64
    # the same seed gives the same order
    order = [m.sum().item() for _, ms in make_loader(ds, batch_size=1, seed=5, device="cpu") for m in ms]
    again = [m.sum().item() for _, ms in make_loader(ds, batch_size=1, seed=5, device="cpu") for m in ms]
    assert order == again
    assert len(list(make_loader(ds, batch_size=2, drop_last=True, device="cpu"))) == 2
    assert make_loader(ds, device="cuda").pin_memory
    with pytest.raises(ValueError, match="no batches"):
        make_loader(ds, batch_size=8, drop_last=True)


def test_make_loader_with_workers(tmp_path):
    ds = SegmentationFolder(make_folder(tmp_path), image_size=16, cache=True)
    loader = make_loader(ds, batch_size=3, shuffle=False, num_workers=1, device="cpu")
    assert loader.persistent_workers
    (images, masks), = list(loader)
    assert images.shape == (3, 3, 16, 16) and masks.shape == (3, 16, 16)
    assert torch.equal(masks[0], ds[0][1])
