"""segkit.draw: the palette, colorize (palette PNGs), blend_overlay and draw_contours."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from segkit.data import read_mask
from segkit.draw import blend_overlay, colorize, default_palette, draw_contours

BLACK, GREEN, RED = (0, 0, 0), (0, 128, 0), (128, 0, 0)


def random_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def voc_colormap(n: int = 256) -> list[tuple[int, int, int]]:
    """The Pascal VOC devkit's labelcolormap (VOCdevkit/VOCcode/VOClabelcolormap.m), transcribed."""
    colours = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colours.append((r, g, b))
    return colours


# --------------------------------------------------------------------------------------------
# default_palette
# --------------------------------------------------------------------------------------------

def test_default_palette_is_the_lessons_colours_then_voc():
    palette = default_palette()
    assert len(palette) == 256 and len(set(palette)) == 256
    assert palette[0] == BLACK and palette[1] == GREEN and palette[2] == RED
    voc = voc_colormap()
    assert palette[3:] == voc[3:]
    # A few VOC colours as published (class 3 bird, 4 boat, 15 person, 255 the void border).
    assert palette[3] == (128, 128, 0) and palette[4] == (0, 0, 128)
    assert palette[15] == (192, 128, 128) and palette[255] == (224, 224, 192)


def test_default_palette_is_a_fresh_list_each_time():
    palette = default_palette()
    palette[1] = (1, 2, 3)
    assert default_palette()[1] == GREEN


# --------------------------------------------------------------------------------------------
# colorize
# --------------------------------------------------------------------------------------------

def test_colorize_keeps_indices_in_a_palette_image(tmp_path):
    mask = np.array([[0, 1, 2], [3, 15, 255]], dtype=np.uint8)
    for source in (mask, mask.astype(np.int64), torch.from_numpy(mask).long()):
        image = colorize(source)
        assert image.mode == "P" and image.size == (3, 2)
        np.testing.assert_array_equal(np.asarray(image), mask)
        rgb = np.asarray(image.convert("RGB"))
        palette = default_palette()
        assert [tuple(rgb[y, x]) for y in range(2) for x in range(3)] == [palette[v] for v in mask.ravel()]
    image.save(tmp_path / "m.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "m.png"), mask)  # the file keeps the indices
    with Image.open(tmp_path / "m.png") as saved:
        assert saved.mode == "P"


def test_colorize_accepts_boolean_masks():
    image = colorize(np.array([[True, False]]))
    np.testing.assert_array_equal(np.asarray(image), [[1, 0]])
    assert tuple(np.asarray(image.convert("RGB"))[0, 0]) == GREEN


def test_colorize_custom_palette_replaces_only_its_first_colours():
    image = colorize(np.array([[0, 1, 2]]), palette=[(1, 2, 3), (4, 5, 6)])
    assert np.asarray(image.convert("RGB")).tolist() == [[[1, 2, 3], [4, 5, 6], list(RED)]]
    np.testing.assert_array_equal(np.asarray(image), [[0, 1, 2]])


def test_colorize_refuses_what_is_not_a_mask():
    with pytest.raises(ValueError, match="probabilities_to_mask"):
        colorize(np.full((2, 2), 0.3, dtype=np.float32))
    with pytest.raises(ValueError, match="0..255"):
        colorize(np.array([[0, 300]]))
    with pytest.raises(ValueError, match="0..255"):
        colorize(np.array([[-1, 0]]))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        colorize(np.zeros((2, 3, 4), dtype=np.uint8))


# --------------------------------------------------------------------------------------------
# blend_overlay
# --------------------------------------------------------------------------------------------

def test_blend_overlay_pixel_math_by_hand():
    photo = np.array([[[100, 100, 100], [200, 50, 10]], [[0, 0, 0], [255, 255, 255]]], dtype=np.uint8)
    mask = np.array([[1, 0], [2, 255]])
    out = blend_overlay(photo, mask, alpha=0.5)
    assert out.mode == "RGB" and out.size == (2, 2)
    # 0.5 * photo + 0.5 * colour where labelled; background and ignore pixels untouched.
    assert np.asarray(out).tolist() == [[[50, 114, 50], [200, 50, 10]], [[64, 0, 0], [255, 255, 255]]]
    np.testing.assert_array_equal(np.asarray(blend_overlay(photo, mask, alpha=0.0)), photo)
    full = np.asarray(blend_overlay(photo, mask, alpha=1.0))
    assert tuple(full[0, 0]) == GREEN and tuple(full[1, 0]) == RED
    assert full[0, 1].tolist() == [200, 50, 10] and full[1, 1].tolist() == [255, 255, 255]


@pytest.mark.parametrize("alpha", [0.3, 0.75])
def test_blend_overlay_is_image_blend_on_labelled_pixels_only(alpha):
    photo = random_photo(16, 21)
    rng = np.random.default_rng(1)
    mask = rng.integers(0, 4, (16, 21)).astype(np.uint8)
    mask[rng.random((16, 21)) < 0.2] = 255
    out = np.asarray(blend_overlay(photo, mask, alpha=alpha))
    reference = np.asarray(Image.blend(Image.fromarray(photo), colorize(mask).convert("RGB"), alpha))
    labelled = (mask != 0) & (mask != 255)
    assert labelled.any() and (mask == 255).any() and (mask == 0).any()
    np.testing.assert_array_equal(out[labelled], reference[labelled])
    np.testing.assert_array_equal(out[~labelled], photo[~labelled])


def test_blend_overlay_takes_a_path_and_a_custom_palette(tmp_path):
    photo = random_photo(5, 6)
    Image.fromarray(photo).save(tmp_path / "p.png")
    mask = np.ones((5, 6), dtype=np.uint8)
    out = np.asarray(blend_overlay(tmp_path / "p.png", mask, alpha=1.0, palette=[BLACK, (10, 20, 30)]))
    assert (out == (10, 20, 30)).all()


def test_blend_overlay_checks_alpha_and_sizes():
    for alpha in (-0.1, 1.5, 30):
        with pytest.raises(ValueError, match="alpha"):
            blend_overlay(random_photo(2, 2), np.zeros((2, 2), dtype=np.uint8), alpha=alpha)
    with pytest.raises(ValueError, match=r"256x256.*20x10.*predict_mask.*NEAREST"):
        blend_overlay(random_photo(10, 20), np.zeros((256, 256), dtype=np.uint8))
    with pytest.raises(ValueError, match="probabilities_to_mask"):
        blend_overlay(random_photo(2, 2), np.full((2, 2), 0.9))


# --------------------------------------------------------------------------------------------
# draw_contours
# --------------------------------------------------------------------------------------------

def square_ring(size: int, start: int, stop: int, width: int) -> np.ndarray:
    inside = np.zeros((size, size), dtype=bool)
    inside[start:stop, start:stop] = True
    core = np.zeros((size, size), dtype=bool)
    core[start + width:stop - width, start + width:stop - width] = True
    return inside & ~core


@pytest.mark.parametrize("width", [1, 2, 3])
def test_draw_contours_outlines_inside_the_region_with_the_given_width(width):
    photo = np.full((16, 16, 3), 200, dtype=np.uint8)
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[4:12, 4:12] = 1
    out = np.asarray(draw_contours(photo, mask, width=width))
    changed = (out != photo).any(axis=2)
    np.testing.assert_array_equal(changed, square_ring(16, 4, 12, width))
    assert (out[changed] == GREEN).all()
    yellow = np.asarray(draw_contours(photo, mask, color=(255, 255, 0), width=width))
    assert ((yellow != photo).any(axis=2) == changed).all() and (yellow[changed] == (255, 255, 0)).all()


def test_draw_contours_fills_a_region_thinner_than_the_line():
    photo = np.full((9, 9, 3), 200, dtype=np.uint8)
    mask = np.zeros((9, 9), dtype=np.uint8)
    mask[3:6, 3:6] = 1  # 3 pixels wide: a 2-pixel outline from each side covers it
    changed = (np.asarray(draw_contours(photo, mask, width=2)) != photo).any(axis=2)
    np.testing.assert_array_equal(changed, mask == 1)


def test_draw_contours_per_class_colours_not_along_the_photos_border():
    photo = np.full((10, 10, 3), 200, dtype=np.uint8)
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[:, :5] = 1  # touches the photo's top, bottom and left edges
    mask[2:8, 5:9] = 2
    out = np.asarray(draw_contours(photo, mask, width=1))
    changed = (out != photo).any(axis=2)
    expected_one = np.zeros((10, 10), dtype=bool)
    expected_one[:, 4] = True  # only the side facing other classes
    np.testing.assert_array_equal(changed & (mask == 1), expected_one)
    assert (out[expected_one] == GREEN).all()
    ring = np.zeros((10, 10), dtype=bool)
    ring[2:8, 5:9] = True
    ring[3:7, 6:8] = False
    np.testing.assert_array_equal(changed & (mask == 2), ring)
    assert (out[ring] == RED).all()
    assert not (changed & (mask == 0)).any()


def test_draw_contours_leaves_background_and_ignore_alone():
    photo = random_photo(10, 10)
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[2:8, 2:8] = 255
    np.testing.assert_array_equal(np.asarray(draw_contours(photo, mask)), photo)
    np.testing.assert_array_equal(np.asarray(draw_contours(photo, np.zeros((10, 10), dtype=np.uint8))), photo)


def test_draw_contours_custom_palette_and_errors():
    photo = np.full((8, 8, 3), 200, dtype=np.uint8)
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[2:6, 2:6] = 1
    out = np.asarray(draw_contours(photo, mask, width=1, palette=[BLACK, (9, 8, 7)]))
    assert (out[square_ring(8, 2, 6, 1)] == (9, 8, 7)).all()
    with pytest.raises(ValueError, match=r"20x10.*10x20.*predict_mask"):
        draw_contours(random_photo(20, 10), np.zeros((10, 20), dtype=np.uint8))
    with pytest.raises(ValueError, match="probabilities_to_mask"):
        draw_contours(photo, mask.astype(np.float32))
