"""Tests for segkit.data: reading photos and masks, preprocess, resize_mask, the folder, splits, loaders.

Every photo and mask is made inside the test (tmp_path), a few pixels big. Expected values are
worked out by hand (letterbox boxes, /257, /255) or from the data the test made (the class
indices it wrote, the colours it painted), not by calling the PIL function segkit calls.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from segkit.data import (
    IGNORE_INDEX,
    SegmentationFolder,
    find_pairs,
    letterbox_box,
    make_loader,
    open_image,
    preprocess,
    read_class_names,
    read_mask,
    resize_mask,
    split_folder,
    to_rgb,
)

# ---------------------------------------------------------------------------- helpers

# A palette whose colours are NOT the indices: reading colours instead of indices cannot pass.
PALETTE = [(0, 0, 0), (0, 128, 0), (128, 0, 0), (0, 0, 200)] + [(i, 255 - i, 77) for i in range(4, 256)]


def save_palette_mask(mask: np.ndarray, path: Path) -> None:
    image = Image.fromarray(mask.astype(np.uint8))
    image.putpalette([c for colour in PALETTE for c in colour])
    image.save(path)


def make_folder(root: Path, stems=("a", "b", "c"), size=(40, 30), mask_dir="SegmentationClass",
                class_names=("_background_", "cat")) -> Path:
    """A VOC folder. Photo i is a flat grey 20 * (i + 1) with a bright rectangle = class 1 in its
    left part (so a left-right flip shows); row 0 is 255."""
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(parents=True, exist_ok=True)
    width, height = size
    for i, stem in enumerate(stems):
        mask = np.zeros((height, width), np.uint8)
        mask[4 + i: height - 6, 2: width // 2 + i] = 1
        mask[0, :] = IGNORE_INDEX
        photo = np.full((height, width, 3), 20 * (i + 1), np.uint8)
        photo[mask == 1] = (230, 180, 90)
        Image.fromarray(photo).save(root / "JPEGImages" / f"{stem}.png")
        save_palette_mask(mask, root / mask_dir / f"{stem}.png")
    if class_names:
        (root / "class_names.txt").write_text("\n".join(class_names) + "\n")
    return root


def single_pair(root: Path, photo: Image.Image, mask: np.ndarray | Image.Image, stem="x", photo_ext=".png") -> Path:
    (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (root / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    photo.save(root / "JPEGImages" / f"{stem}{photo_ext}")
    if isinstance(mask, np.ndarray):
        save_palette_mask(mask, root / "SegmentationClass" / f"{stem}.png")
    else:
        mask.save(root / "SegmentationClass" / f"{stem}.png")
    return root


def halves(width: int, height: int) -> Image.Image:
    """Left half red, right half blue: shows where the photo's left went."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2] = (255, 0, 0)
    array[:, width // 2:] = (0, 0, 255)
    return Image.fromarray(array)


RAMP = np.tile(np.linspace(0, 255, 8).round().astype(np.uint8), (5, 1))  # (5, 8) grey ramp 0..255


# ---------------------------------------------------------------------------- to_rgb

@pytest.mark.parametrize("mode", ["L", "RGBA", "LA", "P", "PA", "CMYK", "YCbCr", "HSV", "RGB"])
def test_to_rgb_eight_bit_modes_keep_grey_values(mode):
    image = Image.fromarray(RAMP).convert(mode)
    assert image.mode == mode
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == (8, 5)
    got = np.asarray(rgb).astype(int)
    for channel in range(3):
        np.testing.assert_allclose(got[..., channel], RAMP, atol=2)  # YCbCr/HSV round trips: +-1


def test_to_rgb_one_bit_is_black_and_white():
    bits = np.array([[True, False, True], [False, False, True]])
    got = np.asarray(to_rgb(Image.fromarray(bits)))
    np.testing.assert_array_equal(got[..., 0], np.where(bits, 255, 0))
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L", "I"])
def test_to_rgb_sixteen_bit_divided_by_257_not_clipped(mode):
    values = np.array([[0, 1000, 25700, 32768], [40000, 60000, 65278, 65535]])
    expected = np.array([[0, 4, 100, 128], [156, 233, 254, 255]])  # round(v / 257), worked out by hand
    if mode == "I":
        image = Image.fromarray(values.astype(np.int32))
    else:
        dtype = {"I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2"}[mode]
        image = Image.frombytes(mode, (4, 2), values.astype(dtype).tobytes())
    assert image.mode == mode
    got = np.asarray(to_rgb(image))
    assert got.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(got[..., channel], expected)


def test_to_rgb_sixteen_bit_dark_photo_stays_dark():
    """A 16-bit photo whose values are all under 256 is still 16-bit: nearly black, not 8-bit grey."""
    image = Image.frombytes("I;16", (2, 1), np.array([200, 255], "<u2").tobytes())
    np.testing.assert_array_equal(np.asarray(to_rgb(image))[..., 0], [[1, 1]])


@pytest.mark.parametrize("mode", ["I", "F"])
def test_to_rgb_eight_bit_range_in_wide_modes_kept(mode):
    values = np.array([[0, 7, 128, 255]], np.float64)
    image = Image.fromarray(values.astype(np.int32 if mode == "I" else np.float32))
    assert image.mode == mode
    np.testing.assert_array_equal(np.asarray(to_rgb(image))[..., 1], values.astype(np.uint8))


@pytest.mark.parametrize("transparency", [0, bytes([0, 128, 255])])  # one index; an alpha per index
def test_to_rgb_palette_with_transparency_keeps_colours_under_it(tmp_path, transparency):
    image = Image.fromarray(np.array([[0, 1], [1, 2]], np.uint8)).convert("P")
    image.putpalette([10, 20, 30, 200, 100, 50, 0, 0, 255] + [0] * (253 * 3))
    image.save(tmp_path / "icon.png", transparency=transparency)
    with Image.open(tmp_path / "icon.png") as saved, warnings.catch_warnings():
        assert saved.mode == "P" and saved.info["transparency"] == transparency
        warnings.simplefilter("error")  # Pillow warns when a palette + alpha table goes straight to RGB
        got = np.asarray(to_rgb(saved))
    assert got[0, 0].tolist() == [10, 20, 30]  # the colour under the transparency, not black
    assert got[0, 1].tolist() == [200, 100, 50] and got[1, 1].tolist() == [0, 0, 255]


def test_to_rgb_rgba_keeps_colours_under_alpha():
    image_rgba = Image.new("RGBA", (2, 1), (10, 20, 30, 0))
    image_rgba.putpixel((1, 0), (1, 2, 3, 255))
    assert np.asarray(to_rgb(image_rgba))[0].tolist() == [[10, 20, 30], [1, 2, 3]]


# ---------------------------------------------------------------------------- open_image

def test_open_image_path_applies_exif_orientation(tmp_path):
    stored = halves(32, 16)  # 32 wide, 16 high; left half red
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": shown 16 wide, 32 high
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    upright = open_image(tmp_path / "phone.jpg")
    assert upright.mode == "RGB" and upright.size == (16, 32)
    array = np.asarray(upright).astype(int)
    # clockwise: the stored left (red) half is now the top half, the blue half the bottom one
    assert np.abs(array[4:12, 4:12] - (255, 0, 0)).max() < 40
    assert np.abs(array[20:28, 4:12] - (0, 0, 255)).max() < 40
    assert open_image(str(tmp_path / "phone.jpg")).size == (16, 32)  # str paths as well


def test_open_image_sixteen_bit_png_file(tmp_path):
    Image.fromarray(np.array([[0, 32768, 65535]], np.uint16)).save(tmp_path / "deep.png")
    assert np.asarray(open_image(tmp_path / "deep.png"))[0, :, 0].tolist() == [0, 128, 255]


def test_open_image_arrays_and_pil_images():
    grey = np.array([[0, 10], [200, 255]], np.uint8)
    got = np.asarray(open_image(grey))
    assert got.shape == (2, 2, 3) and all((got[..., c] == grey).all() for c in range(3))
    colour = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(open_image(colour)), colour)
    assert open_image(Image.fromarray(grey).convert("LA")).mode == "RGB"


@pytest.mark.parametrize("array", [
    np.zeros((4, 4, 3), np.float32),  # floats in [0, 1]
    np.zeros((4, 4), np.int64),
    np.zeros((3, 4, 4), np.uint8),  # channels first
    np.zeros((4, 4, 4), np.uint8),  # RGBA array
    np.zeros((4, 4, 3, 1), np.uint8),
])
def test_open_image_rejects_wrong_arrays_with_the_fix(array):
    with pytest.raises(ValueError, match=r"uint8 \(H, W\) or \(H, W, 3\)") as info:
        open_image(array)
    assert str(array.dtype) in str(info.value) and str(array.shape) in str(info.value)


def test_open_image_rejects_other_types():
    with pytest.raises(TypeError, match="Tensor"):
        open_image(torch.zeros(3, 4, 4))
    with pytest.raises(TypeError, match="list"):
        open_image([[0, 1]])


def test_open_image_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.jpg"):
        open_image(tmp_path / "nowhere.jpg")
    (tmp_path / "notes.jpg").write_text("not a photo")
    with pytest.raises(ValueError, match=r"notes\.jpg: Pillow cannot read"):
        open_image(tmp_path / "notes.jpg")
    halves(64, 64).save(tmp_path / "whole.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])  # a truncated download
    with pytest.raises(ValueError, match=r"cut\.jpg"):
        open_image(tmp_path / "cut.jpg")


# ---------------------------------------------------------------------------- read_mask

def test_read_mask_palette_png_gives_indices_not_colours(tmp_path):
    mask = np.array([[0, 1, 2], [255, 3, 0]], np.uint8)
    save_palette_mask(mask, tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as image:
        assert image.mode == "P"
    got = read_mask(tmp_path / "m.png")
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, mask)


@pytest.mark.parametrize("mode", ["L", "I;16", "I"])
def test_read_mask_grey_modes(tmp_path, mode):
    mask = np.array([[0, 1, 2], [255, 7, 0]], np.uint8)
    image = Image.fromarray(mask if mode == "L" else mask.astype(np.uint16 if mode == "I;16" else np.int32))
    assert image.mode == mode
    path = tmp_path / ("m.tif" if mode == "I" else "m.png")
    image.save(path)
    got = read_mask(path)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, mask)


def test_read_mask_one_bit_is_zero_one(tmp_path):
    bits = np.array([[True, False], [False, True]])
    Image.fromarray(bits).save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), bits.astype(np.uint8))


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA"])
def test_read_mask_refuses_colour_masks(tmp_path, mode):
    Image.new(mode, (4, 4)).save(tmp_path / "coloured.png")
    with pytest.raises(ValueError, match="not a mask of class indices") as info:
        read_mask(tmp_path / "coloured.png")
    assert "coloured.png" in str(info.value) and "segkit export" in str(info.value)


def test_read_mask_refuses_sixteen_bit_values_above_255(tmp_path):
    Image.fromarray(np.array([[0, 300]], np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ValueError, match="deep.png"):
        read_mask(tmp_path / "deep.png")


def test_read_mask_warns_on_black_and_white_only(tmp_path):
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(tmp_path / "bw.png")
    with pytest.warns(UserWarning, match=r"only 0 and 255.*store it as 1") as record:
        got = read_mask(tmp_path / "bw.png")
    assert "bw.png" in str(record[0].message)
    np.testing.assert_array_equal(got, [[0, 255], [255, 0]])  # read as it is, only warned about


def test_read_mask_no_warning_for_real_masks(tmp_path):
    Image.fromarray(np.array([[0, 1], [255, 0]], np.uint8)).save(tmp_path / "ok.png")
    save_palette_mask(np.array([[0, 255]], np.uint8), tmp_path / "palette.png")  # export's format: fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_mask(tmp_path / "ok.png")
        read_mask(tmp_path / "palette.png")


# ---------------------------------------------------------------------------- letterbox_box

@pytest.mark.parametrize("photo_size,size,box", [
    ((200, 100), 64, (0, 16, 64, 48)),  # wide: bars top and bottom
    ((100, 200), 64, (16, 0, 48, 64)),  # tall: bars left and right
    ((50, 50), 64, (0, 0, 64, 64)),  # square: no bars
    ((300, 100), (40, 60), (0, 10, 60, 30)),  # size is (height, width)
    ((30, 20), 16, (0, 2, 16, 13)),  # 10.67 rows round to 11; top = (16 - 11) // 2
    ((1000, 1), 64, (0, 31, 64, 32)),  # never thinner than one pixel
])
def test_letterbox_box(photo_size, size, box):
    assert letterbox_box(photo_size, size) == box


# ---------------------------------------------------------------------------- preprocess

def test_preprocess_dtype_layout_and_exact_division_by_255():
    array = np.zeros((4, 6, 3), np.uint8)
    array[0, 0] = (255, 0, 128)
    array[3, 5] = (1, 2, 3)
    tensor = preprocess(Image.fromarray(array), None)
    assert tensor.dtype == torch.float32 and tensor.shape == (3, 4, 6)  # channels first, photo's own size
    expected = torch.from_numpy(array).permute(2, 0, 1).float() / 255.0
    assert torch.equal(tensor, expected)  # exactly /255: prediction must scale as training did
    assert tensor[:, 0, 0].tolist() == [1.0, 0.0, pytest.approx(128 / 255)]


def test_preprocess_accepts_any_mode():
    tensor = preprocess(Image.fromarray(RAMP), None)
    assert tensor.shape == (3, 5, 8)
    assert torch.equal(tensor[0], tensor[2]) and torch.equal(tensor[0], torch.from_numpy(RAMP).float() / 255)
    deep = Image.fromarray(np.full((2, 2), 65535, np.uint16))
    assert torch.equal(preprocess(deep, None), torch.ones(3, 2, 2))  # 16-bit white is white


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_preprocess_size_int_and_height_width(resize):
    photo = halves(40, 20)
    assert preprocess(photo, 16, resize).shape == (3, 16, 16)
    assert preprocess(photo, (12, 24), resize).shape == (3, 12, 24)


def test_preprocess_stretch_fills_the_frame():
    tensor = preprocess(halves(40, 20), 16, "stretch")
    assert torch.allclose(tensor[:, :, :7], torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 16, 7))
    assert torch.allclose(tensor[:, :, 9:], torch.tensor([0.0, 0.0, 1.0])[:, None, None].expand(3, 16, 7))


@pytest.mark.parametrize("photo_size,size,box", [
    ((40, 20), 32, (0, 8, 32, 24)),  # wide photo: black bars top and bottom
    ((20, 40), 32, (8, 0, 24, 32)),  # tall photo: black bars left and right
    ((40, 20), (20, 60), (10, 0, 50, 20)),  # (height, width) target
])
def test_preprocess_letterbox_keeps_aspect_ratio_and_pads_black(photo_size, size, box):
    photo = Image.new("RGB", photo_size, (255, 255, 255))
    tensor = preprocess(photo, size, "letterbox")
    left, top, right, bottom = box
    inside = torch.zeros(tensor.shape[1:], dtype=torch.bool)
    inside[top:bottom, left:right] = True
    assert (tensor[:, inside] == 1.0).all()
    assert (tensor[:, ~inside] == 0.0).all()


def test_preprocess_letterbox_keeps_left_on_the_left():
    tensor = preprocess(halves(40, 20), 32, "letterbox")
    assert tensor[:, 16, 4].tolist() == [1.0, 0.0, 0.0] and tensor[:, 16, 28].tolist() == [0.0, 0.0, 1.0]


def test_preprocess_bad_arguments():
    with pytest.raises(ValueError, match="letterbox"):
        preprocess(halves(8, 8), 4, "crop")
    with pytest.raises(ValueError, match="positive"):
        preprocess(halves(8, 8), 0)


# ---------------------------------------------------------------------------- resize_mask

def test_resize_mask_size_none_is_unchanged():
    mask = np.array([[0, 1], [2, 255]], np.uint8)
    np.testing.assert_array_equal(resize_mask(mask, None), mask)


def test_resize_mask_integer_upscale_repeats_pixels():
    mask = np.array([[0, 1, 2], [255, 2, 0]], np.uint8)
    got = resize_mask(mask, (4, 6))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, mask.repeat(2, axis=0).repeat(2, axis=1))


@pytest.mark.parametrize("size", [16, 50, (20, 30), (7, 61)])
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_resize_mask_is_nearest_only(size, resize):
    """A 0/2 checker: any averaging of two classes invents class 1, which is not there."""
    checker = (((np.indices((23, 37)).sum(0) // 2) % 2) * 2).astype(np.uint8)
    got = resize_mask(checker, size, resize)
    height, width = (size, size) if isinstance(size, int) else size
    assert got.shape == (height, width) and got.dtype == np.uint8
    allowed = {0, 2, IGNORE_INDEX} if resize == "letterbox" else {0, 2}
    assert set(np.unique(got).tolist()) <= allowed
    assert {0, 2} <= set(np.unique(got).tolist())


def test_resize_mask_stretch_keeps_regions_in_place():
    mask = np.zeros((20, 40), np.uint8)
    mask[:, :20] = 1
    mask[:10, 20:] = 2
    got = resize_mask(mask, 8)
    assert (got[:, :4] == 1).all() and (got[:4, 4:] == 2).all() and (got[4:, 4:] == 0).all()


def test_resize_mask_letterbox_pads_with_ignore_where_the_photo_is_black():
    mask = np.zeros((20, 40), np.uint8)
    mask[:, 20:] = 1
    got = resize_mask(mask, 32, "letterbox")
    left, top, right, bottom = letterbox_box((40, 20), 32)
    assert (top, bottom) == (8, 24)
    assert (got[:top] == IGNORE_INDEX).all() and (got[bottom:] == IGNORE_INDEX).all()
    assert (got[top:bottom, :16] == 0).all() and (got[top:bottom, 16:] == 1).all()
    # the bars are where preprocess paints black
    image = preprocess(Image.new("RGB", (40, 20), (255, 255, 255)), 32, "letterbox")
    np.testing.assert_array_equal(got == IGNORE_INDEX, (image == 0).all(0).numpy())


def test_resize_mask_bad_mode():
    with pytest.raises(ValueError, match="stretch"):
        resize_mask(np.zeros((4, 4), np.uint8), 2, "nearest")


# ---------------------------------------------------------------------------- find_pairs

def test_find_pairs_sorted_by_stem(tmp_path):
    root = make_folder(tmp_path, stems=("b", "c", "a"))
    (root / "JPEGImages" / "notes.txt").write_text("not a photo")
    (root / "JPEGImages" / ".DS_Store").write_bytes(b"\0")
    (root / "SegmentationClass" / "readme.json").write_text("{}")
    pairs = find_pairs(root)
    assert [stem for stem, _, _ in pairs] == ["a", "b", "c"]
    for stem, photo, mask in pairs:
        assert photo == root / "JPEGImages" / f"{stem}.png"
        assert mask == root / "SegmentationClass" / f"{stem}.png"


def test_find_pairs_upper_case_extensions(tmp_path):
    root = single_pair(tmp_path, halves(4, 4), np.zeros((4, 4), np.uint8), stem="IMG_1", photo_ext=".JPG")
    assert find_pairs(root)[0][1].name == "IMG_1.JPG"


def test_find_pairs_segmentationclasspng_fallback(tmp_path):
    root = make_folder(tmp_path, mask_dir="SegmentationClassPNG")
    assert {mask.parent.name for _, _, mask in find_pairs(root)} == {"SegmentationClassPNG"}
    # old labelme: SegmentationClass/ holds .npy arrays, the PNGs are in SegmentationClassPNG/
    (root / "SegmentationClass").mkdir()
    np.save(root / "SegmentationClass" / "a.npy", np.zeros((30, 40), np.int32))
    assert {mask.parent.name for _, _, mask in find_pairs(root)} == {"SegmentationClassPNG"}


def test_find_pairs_prefers_segmentationclass(tmp_path):
    root = make_folder(tmp_path, mask_dir="SegmentationClassPNG")
    make_folder(tmp_path, mask_dir="SegmentationClass")
    assert {mask.parent.name for _, _, mask in find_pairs(root)} == {"SegmentationClass"}


def test_find_pairs_lists_unpaired_files(tmp_path):
    root = make_folder(tmp_path, stems=("a", "b"))
    Image.new("RGB", (40, 30)).save(root / "JPEGImages" / "lonely_photo.jpg")
    for i in range(12):
        save_palette_mask(np.zeros((30, 40), np.uint8), root / "SegmentationClass" / f"orphan{i:02d}.png")
    with pytest.raises(ValueError) as info:
        find_pairs(root)
    message = str(info.value)
    assert "13 file(s) without a partner" in message
    assert "lonely_photo" in message and "orphan00" in message and "orphan08" in message
    assert "orphan09" not in message  # the first ten (sorted) only
    assert "segkit export" in message
    with pytest.raises(ValueError, match="lonely_photo"):
        SegmentationFolder(root)


def test_find_pairs_duplicate_stems(tmp_path):
    root = make_folder(tmp_path, stems=("a",))
    Image.new("RGB", (40, 30)).save(root / "JPEGImages" / "a.jpg")
    with pytest.raises(ValueError, match=r"a\.jpg and .*a\.png share a stem"):
        find_pairs(root)


def test_find_pairs_labelme_folder_hint(tmp_path):
    (tmp_path / "cat1.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="labelme JSON") as info:
        find_pairs(tmp_path)
    assert f"segkit export {tmp_path} {tmp_path}-voc" in str(info.value)


def test_find_pairs_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="JPEGImages") as info:
        find_pairs(tmp_path / "nowhere")
    assert "segkit export" in str(info.value)
    (tmp_path / "JPEGImages").mkdir()
    halves(4, 4).save(tmp_path / "JPEGImages" / "a.png")
    with pytest.raises(FileNotFoundError, match="SegmentationClass"):
        find_pairs(tmp_path)
    (tmp_path / "SegmentationClass").mkdir()
    halves(4, 4).save(tmp_path / "SegmentationClass" / "a.jpg")  # JPEG would blur class indices: not a mask
    with pytest.raises(FileNotFoundError, match="SegmentationClass"):
        find_pairs(tmp_path)


# ---------------------------------------------------------------------------- class names

def test_read_class_names(tmp_path):
    assert read_class_names(tmp_path) is None
    (tmp_path / "class_names.txt").write_text("_background_\n\ncat \n dog\n\n", encoding="utf-8")
    assert read_class_names(tmp_path) == ["_background_", "cat", "dog"]


# ---------------------------------------------------------------------------- SegmentationFolder

def test_folder_items_are_preprocess_and_resize_mask(tmp_path):
    root = make_folder(tmp_path, stems=("b", "a", "c"))
    for resize in ("stretch", "letterbox"):
        ds = SegmentationFolder(root, image_size=(16, 24), resize=resize)
        assert len(ds) == 3 and ds.stems == ["a", "b", "c"]
        assert ds.class_names == ["_background_", "cat"]
        for i in range(3):
            image, mask = ds[i]
            assert image.dtype == torch.float32 and image.shape == (3, 16, 24)
            assert mask.dtype == torch.int64 and mask.shape == (16, 24)
            # the ONE preprocessing: exactly what prediction computes from the same file
            assert torch.equal(image, preprocess(open_image(ds.image_files[i]), (16, 24), resize))
            expected = resize_mask(read_mask(ds.mask_files[i]), (16, 24), resize)
            assert torch.equal(mask, torch.from_numpy(expected).long())
    assert "3 photos" in repr(ds) and "letterbox" in repr(ds)


def test_folder_photo_grey_level_follows_its_stem(tmp_path):
    """Item i is photo i: pairs are not shuffled against each other."""
    ds = SegmentationFolder(make_folder(tmp_path, stems=("c", "a", "b")), image_size=None)
    # make_folder painted stem number k (in the order given) grey 20 * (k + 1)
    greys = {"c": 20, "a": 40, "b": 60}
    for i, stem in enumerate(ds.stems):
        image, mask = ds[i]
        assert image.shape == (3, 30, 40)
        assert round(float(image[0, 29, 0]) * 255) == greys[stem]  # a background corner
        assert (image[:, mask == 1] == torch.tensor([230, 180, 90])[:, None] / 255).all()
        assert (mask[0] == IGNORE_INDEX).all()


def test_folder_palette_masks_read_as_indices(tmp_path):
    mask = np.zeros((6, 6), np.uint8)
    mask[1:3, 1:3], mask[4:, 4:], mask[0, 5] = 1, 3, 255
    ds = SegmentationFolder(single_pair(tmp_path, halves(6, 6), mask), image_size=None)
    assert torch.equal(ds[0][1], torch.from_numpy(mask).long())


def test_folder_class_names_none_without_file(tmp_path):
    assert SegmentationFolder(make_folder(tmp_path, class_names=None), image_size=16).class_names is None


def test_folder_cache_identical_without_rereading(tmp_path):
    root = make_folder(tmp_path)
    ds = SegmentationFolder(root, image_size=16)
    first = [ds[i] for i in range(len(ds))]
    for path in list((root / "JPEGImages").iterdir()) + list((root / "SegmentationClass").iterdir()):
        path.unlink()  # only the first epoch reads files
    for i, (image, mask) in enumerate(first):
        again_image, again_mask = ds[i]
        assert torch.equal(image, again_image) and torch.equal(mask, again_mask)
        assert again_image.dtype == torch.float32 and again_mask.dtype == torch.int64
    assert torch.equal(ds[-1][0], first[-1][0])  # negative indices
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(FileNotFoundError):
        SegmentationFolder(root, image_size=16)


def test_folder_cache_survives_in_place_transforms(tmp_path):
    def vandal(image, mask):
        image.zero_()
        mask.fill_(7)
        return image, mask

    root = make_folder(tmp_path)
    ds = SegmentationFolder(root, image_size=16, transforms=vandal)
    ds[0]
    ds.transforms = None
    image, mask = ds[0]
    plain = SegmentationFolder(root, image_size=16)[0]
    assert torch.equal(image, plain[0]) and torch.equal(mask, plain[1])


def test_folder_transforms_run_on_every_access(tmp_path):
    calls = []

    def flip_and_count(image, mask):
        calls.append(1)
        return image.flip(-1), mask.flip(-1)

    root = make_folder(tmp_path)
    plain = SegmentationFolder(root, image_size=16)
    ds = SegmentationFolder(root, image_size=16, transforms=flip_and_count)
    assert not torch.equal(plain[1][1], plain[1][1].flip(-1))  # a flip shows
    for _ in range(3):
        image, mask = ds[1]
        assert torch.equal(image, plain[1][0].flip(-1)) and torch.equal(mask, plain[1][1].flip(-1))
    assert len(calls) == 3


def test_folder_random_transforms_differ_between_accesses(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[:, :2] = 1  # not symmetric: a flip shows
    root = single_pair(tmp_path, halves(8, 8), mask)
    ds = SegmentationFolder(root, image_size=None, transforms=v2.RandomHorizontalFlip(p=0.5))
    torch.manual_seed(0)
    masks = {tuple(ds[0][1].flatten().tolist()) for _ in range(20)}
    assert len(masks) == 2  # flipped and not: the cache holds the photo before augmentation


def test_folder_moves_the_mask_with_any_v2_transform(tmp_path):
    """The plain-tensor trap: given two plain tensors, v2 flips the photo only. The folder types them."""
    root = make_folder(tmp_path)
    plain = SegmentationFolder(root, image_size=16)
    flipped = SegmentationFolder(root, image_size=16, transforms=v2.RandomHorizontalFlip(p=1.0))
    image, mask = plain[1]
    assert not torch.equal(mask, mask.flip(-1))  # a flip shows
    flipped_image, flipped_mask = flipped[1]
    assert torch.equal(flipped_image, image.flip(-1)) and torch.equal(flipped_mask, mask.flip(-1))
    assert type(flipped_image) is torch.Tensor and type(flipped_mask) is torch.Tensor  # plain again
    assert flipped_mask.dtype == torch.int64


def test_folder_image_size_none_and_height_width(tmp_path):
    root = make_folder(tmp_path, size=(40, 30))
    image, mask = SegmentationFolder(root, image_size=None)[0]
    assert image.shape == (3, 30, 40) and mask.shape == (30, 40)
    ds = SegmentationFolder(root, image_size=(24, 32))
    assert ds.image_size == (24, 32)
    image, mask = ds[0]
    assert image.shape == (3, 24, 32) and mask.shape == (24, 32)


def test_folder_read_at_the_photos_own_size(tmp_path):
    root = make_folder(tmp_path, size=(40, 30))
    ds = SegmentationFolder(root, image_size=16)
    photo, mask = ds.read(0)
    assert isinstance(photo, Image.Image) and photo.mode == "RGB" and photo.size == (40, 30)
    assert mask.dtype == np.uint8 and mask.shape == (30, 40)
    np.testing.assert_array_equal(mask, read_mask(root / "SegmentationClass" / "a.png"))


def test_folder_read_turns_exif_photos_upright(tmp_path):
    stored = halves(12, 8)
    exif = stored.getexif()
    exif[0x0112] = 6  # displayed 8 wide, 12 high, as labelme shows it and labels it
    (tmp_path / "JPEGImages").mkdir()
    stored.save(tmp_path / "JPEGImages" / "x.jpg", exif=exif)
    (tmp_path / "SegmentationClass").mkdir()
    save_palette_mask(np.zeros((12, 8), np.uint8), tmp_path / "SegmentationClass" / "x.png")
    root = tmp_path
    image, mask = SegmentationFolder(root, image_size=None)[0]
    assert image.shape == (3, 12, 8) and mask.shape == (12, 8)


def test_folder_size_mismatch_names_both_files(tmp_path):
    root = single_pair(tmp_path, Image.new("RGB", (10, 8)), np.zeros((8, 9), np.uint8), photo_ext=".jpg")
    ds = SegmentationFolder(root)
    for action in (lambda: ds.read(0), lambda: ds[0]):
        with pytest.raises(ValueError) as info:
            action()
        message = str(info.value)
        assert str(root / "JPEGImages" / "x.jpg") in message
        assert str(root / "SegmentationClass" / "x.png") in message
        assert "10x8" in message and "9x8" in message


def test_folder_stems_selection(tmp_path):
    root = make_folder(tmp_path, stems=("a", "b", "c"))
    ds = SegmentationFolder(root, image_size=None, stems=["c", "a"])
    assert ds.stems == ["c", "a"] and len(ds) == 2
    assert [p.name for p in ds.image_files] == ["c.png", "a.png"]
    whole = SegmentationFolder(root, image_size=None)
    assert torch.equal(ds[0][1], whole[2][1]) and torch.equal(ds[1][0], whole[0][0])
    with pytest.raises(ValueError, match="zebra"):
        SegmentationFolder(root, stems=["a", "zebra"])


def test_folder_letterbox_pads_mask_with_ignore(tmp_path):
    root = single_pair(tmp_path, Image.new("RGB", (40, 20), (255, 255, 255)), np.ones((20, 40), np.uint8))
    image, mask = SegmentationFolder(root, image_size=32, resize="letterbox")[0]
    assert (mask[8:24] == 1).all() and (mask[:8] == IGNORE_INDEX).all() and (mask[24:] == IGNORE_INDEX).all()
    assert (image[:, 8:24] == 1.0).all() and (image[:, :8] == 0).all() and (image[:, 24:] == 0).all()


def test_folder_bad_resize_mode(tmp_path):
    with pytest.raises(ValueError, match="letterbox"):
        SegmentationFolder(make_folder(tmp_path), resize="crop")


# ---------------------------------------------------------------------------- split_folder

def test_split_folder_deterministic_disjoint_and_complete(tmp_path):
    root = make_folder(tmp_path, stems=[f"s{i}" for i in range(10)], size=(12, 12))
    train, val = split_folder(root, val_fraction=0.3, seed=1, image_size=8)
    assert len(train) == 7 and len(val) == 3
    assert not set(train.stems) & set(val.stems)
    assert sorted(train.stems + val.stems) == [f"s{i}" for i in range(10)]
    assert train.stems == sorted(train.stems) and val.stems == sorted(val.stems)
    again_train, again_val = split_folder(root, val_fraction=0.3, seed=1)
    assert again_train.stems == train.stems and again_val.stems == val.stems
    others = {tuple(split_folder(root, val_fraction=0.3, seed=seed)[1].stems) for seed in range(2, 6)}
    assert others - {tuple(val.stems)}  # another seed, another draw


def test_split_folder_only_train_is_augmented(tmp_path):
    root = make_folder(tmp_path, stems=[f"s{i}" for i in range(5)], size=(12, 12))
    augment = v2.RandomHorizontalFlip(p=1.0)
    train, val = split_folder(root, 0.4, transforms=augment, image_size=(8, 10), resize="letterbox")
    assert train.transforms is augment and val.transforms is None
    assert train.image_size == val.image_size == (8, 10)
    assert train.resize == val.resize == "letterbox"
    plain = SegmentationFolder(root, image_size=(8, 10), resize="letterbox")
    index = plain.stems.index(train.stems[0])
    assert not torch.equal(plain[index][1], plain[index][1].flip(-1))  # a flip shows
    assert torch.equal(train[0][1], plain[index][1].flip(-1))
    index = plain.stems.index(val.stems[0])
    assert torch.equal(val[0][1], plain[index][1])


def test_split_folder_edge_cases(tmp_path):
    root = make_folder(tmp_path / "two", stems=("a", "b"), size=(8, 8))
    train, val = split_folder(root, val_fraction=0.0)
    assert val is None and train.stems == ["a", "b"]
    assert [len(part) for part in split_folder(root, 0.01)] == [1, 1]  # at least one to validate on
    assert [len(part) for part in split_folder(root, 0.9)] == [1, 1]  # at least one to train on
    one = make_folder(tmp_path / "one", stems=("a",), size=(8, 8))
    train, val = split_folder(one, 0.5)
    assert train.stems == ["a"] and val is None
    for fraction in (1.0, -0.1):
        with pytest.raises(ValueError, match="val_fraction"):
            split_folder(root, fraction)


# ---------------------------------------------------------------------------- make_loader

def numbered_folder(root: Path, n: int) -> SegmentationFolder:
    """Photo k is a flat grey k * 10, so a batch tells which photos it holds."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    for k in range(n):
        Image.new("RGB", (6, 6), (k * 10,) * 3).save(root / "JPEGImages" / f"p{k:02d}.png")
        save_palette_mask(np.full((6, 6), k % 2, np.uint8), root / "SegmentationClass" / f"p{k:02d}.png")
    return SegmentationFolder(root, image_size=None)


def order(loader) -> list[int]:
    return [round(float(image[0, 0, 0]) * 255 / 10) for images, _ in loader for image in images]


def test_make_loader_batches_and_drop_last_rule(tmp_path):
    ds = numbered_folder(tmp_path, 5)
    images, masks = next(iter(make_loader(ds, batch_size=2)))
    assert images.shape == (2, 3, 6, 6) and images.dtype == torch.float32
    assert masks.shape == (2, 6, 6) and masks.dtype == torch.int64
    # training: a last batch smaller than batch_size is dropped ...
    assert [len(b[0]) for b in make_loader(ds, batch_size=2)] == [2, 2]
    # ... unless that would leave no batch at all
    assert [len(b[0]) for b in make_loader(ds, batch_size=8)] == [5]
    assert [len(b[0]) for b in make_loader(ds, batch_size=5)] == [5]
    # evaluation: every photo, in order
    loader = make_loader(ds, batch_size=2, shuffle=False)
    assert [len(b[0]) for b in loader] == [2, 2, 1]
    assert order(loader) == [0, 1, 2, 3, 4]
    assert torch.equal(next(iter(loader))[1][1], ds[1][1])


def test_make_loader_seeded_order(tmp_path):
    ds = numbered_folder(tmp_path, 8)
    torch.manual_seed(123)
    first = order(make_loader(ds, batch_size=1, seed=5))
    torch.manual_seed(456)  # the global seed does not matter: the loader has its own generator
    assert order(make_loader(ds, batch_size=1, seed=5)) == first
    assert sorted(first) == list(range(8)) and first != list(range(8))  # shuffled, every photo once
    assert order(make_loader(ds, batch_size=1, seed=6)) != first
    loader = make_loader(ds, batch_size=1, seed=5)
    epochs = [order(loader) for _ in range(3)]
    assert epochs[0] == first and epochs[1] != epochs[0]  # a new order every epoch, from the same start


def test_make_loader_workers_give_the_same_batches(tmp_path):
    ds = numbered_folder(tmp_path, 6)
    loader = make_loader(ds, batch_size=2, seed=3, workers=1)
    assert loader.num_workers == 1 and loader.persistent_workers  # workers stay up between epochs
    same = make_loader(ds, batch_size=2, seed=3)
    assert same.num_workers == 0
    for (images, masks), (images_0, masks_0) in zip(loader, same, strict=True):
        assert torch.equal(images, images_0) and torch.equal(masks, masks_0)
