"""Colours for class-index masks.

One palette everywhere in segkit: the Pascal-VOC colour map, except that class 1 is green
(0, 128, 0), as in the source lesson's cat overlay, and class 2 takes VOC's red (128, 0, 0).
Index 0 (background) is black and 255 (ignore) is VOC's off-white (224, 224, 192).
"""

from __future__ import annotations


def voc_colormap(n: int = 256) -> list[tuple[int, int, int]]:
    """The Pascal-VOC colour map: class index -> (R, G, B), bits of the index spread over channels."""
    colors = []
    for index in range(n):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colors.append((r, g, b))
    return colors


def default_palette() -> list[tuple[int, int, int]]:
    """256 colours: VOC's map with classes 1 and 2 swapped so that 1 (the lesson's cat) is green."""
    colors = voc_colormap(256)
    colors[1], colors[2] = colors[2], colors[1]
    return colors


def flat_palette(colors: list[tuple[int, int, int]] | None = None) -> list[int]:
    """The palette as Pillow's `putpalette` wants it: [r0, g0, b0, r1, ...], padded to 256 colours."""
    colors = list(colors) if colors is not None else default_palette()
    colors = colors + [(0, 0, 0)] * (256 - len(colors))
    return [channel for color in colors[:256] for channel in color]
