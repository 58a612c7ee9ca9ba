"""Interactive widgets for notebooks (ipywidgets).

`threshold_explorer` answers "which threshold should I use?" and "why are my probabilities all
0.9999?" by hand: drag the threshold and watch the mask (and the IoU, when the truth is known)
change, or not change at all for an over-confident model.

The probabilities are computed once, before the widget exists; a slider move only thresholds
them and redraws a PNG, so the widget stays instant even on a CPU.
"""

from __future__ import annotations

import html
import io
import math

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from segkit.metrics import IGNORE_INDEX, binary_iou
from segkit.predict import blend_overlay, draw_contours, load_image, load_mask, predict_proba

__all__ = ["ThresholdExplorer", "threshold_explorer", "threshold_explorer_for"]

TRUTH_OUTLINE = (255, 255, 0)  # yellow outline of the ground truth, over the green prediction


def _binary_probs(probs) -> np.ndarray:
    """(H, W), (1, H, W) or two-class (2, H, W) probabilities -> float32 (H, W) P(foreground)."""
    if isinstance(probs, torch.Tensor):
        probs = probs.detach().float().cpu().numpy()
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim == 3 and probs.shape[0] in (1, 2):
        probs = probs[-1]  # (1, H, W): the only channel; (2, H, W): class 1 of a 2-class softmax
    if probs.ndim != 2:
        raise ValueError(
            f"threshold_explorer: expected binary probabilities (H, W), got shape {probs.shape}. A threshold "
            "only applies to one foreground class; a multi-class model picks the argmax (predict_mask)."
        )
    if probs.size and (not np.isfinite(probs).all() or probs.min() < 0 or probs.max() > 1):
        raise ValueError("threshold_explorer: probabilities must be in [0, 1]; for logits apply torch.sigmoid first.")
    return probs


class ThresholdExplorer(widgets.VBox):
    """Sliders for threshold and alpha over a live overlay of `probs > threshold` on the photo.

    Parts, for use from Python (and tests):
        threshold_slider, alpha_slider   ipywidgets.FloatSlider; set `.value` to change them
        iou_label                        ipywidgets.HTML: threshold, IoU (when truth given), foreground share
        image_widget                     ipywidgets.Image: the overlay as PNG bytes (`.value`)
        iou                              float IoU at the current threshold (None without truth; NaN if undefined)
        mask                             uint8 (H, W) mask at the current threshold, at the photo's size

    The picture is the prediction blended over the photo (green), with the ground truth outlined
    in yellow when given. It is drawn at most `display_size` pixels wide/high; the IoU is computed
    at full resolution.
    """

    def __init__(self, image, probs, truth=None, threshold: float = 0.5, alpha: float = 0.3,
                 display_size: int = 512, palette=None) -> None:
        if not isinstance(display_size, int) or display_size < 1:
            raise ValueError(f"threshold_explorer: display_size must be a positive int (pixels), got {display_size!r}")
        photo = load_image(image)
        self.probs = _binary_probs(probs)
        if self.probs.shape != (photo.height, photo.width):
            raise ValueError(
                f"threshold_explorer: probabilities are {self.probs.shape[1]}x{self.probs.shape[0]} but the photo is "
                f"{photo.width}x{photo.height} (width x height). predict_proba(model, photo) returns them at the "
                "photo's size."
            )
        self.truth = None
        if truth is not None:
            self.truth = load_mask(truth, allow_float=True)
            if self.truth.shape != self.probs.shape:
                raise ValueError(
                    f"threshold_explorer: the truth mask is {self.truth.shape[1]}x{self.truth.shape[0]} but the photo "
                    f"is {photo.width}x{photo.height}; pass the mask made from this photo, at its size."
                )
            found = set(np.unique(self.truth).tolist()) - {0, 1, IGNORE_INDEX}
            if found:
                raise ValueError(f"threshold_explorer: the truth must hold 0, 1 or {IGNORE_INDEX}, found classes {sorted(found)}.")
        for name, value in (("threshold", threshold), ("alpha", alpha)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"threshold_explorer: {name} must be in [0, 1], got {value}")
        self.palette = palette

        # Everything the picture needs at display size, computed once.
        scale = min(1.0, display_size / max(photo.width, photo.height))
        size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
        if size != photo.size:
            self._photo = photo.resize(size, Image.Resampling.BILINEAR)
            small = F.interpolate(torch.from_numpy(self.probs)[None, None], size=(size[1], size[0]),
                                  mode="bilinear", align_corners=False, antialias=True)
            self._probs_small = small[0, 0].clamp(0, 1).numpy()
            self._truth_small = (None if self.truth is None else
                                 np.asarray(Image.fromarray(self.truth).resize(size, Image.Resampling.NEAREST)))
        else:
            self._photo, self._probs_small, self._truth_small = photo, self.probs, self.truth

        slider = dict(min=0.0, max=1.0, step=0.01, continuous_update=True, readout_format=".2f",
                      style={"description_width": "initial"})
        self.threshold_slider = widgets.FloatSlider(value=threshold, description="threshold", **slider)
        self.alpha_slider = widgets.FloatSlider(value=alpha, description="mask opacity (alpha)", **slider)
        self.iou_label = widgets.HTML()
        self.image_widget = widgets.Image(format="png")
        caption = "green: prediction (probability > threshold)" + (
            "; yellow outline: ground truth" if self.truth is not None else "")
        super().__init__(children=[
            widgets.HBox([self.threshold_slider, self.alpha_slider]),
            self.iou_label,
            self.image_widget,
            widgets.HTML(f"<small>{html.escape(caption)}</small>"),
        ])
        self.iou: float | None = None
        self.threshold_slider.observe(self._on_threshold, names="value")
        self.alpha_slider.observe(self._on_alpha, names="value")
        self._on_threshold()

    @property
    def threshold(self) -> float:
        return float(self.threshold_slider.value)

    @property
    def mask(self) -> np.ndarray:
        """uint8 (H, W) prediction at the current threshold, full resolution (1 where probs > threshold)."""
        return (self.probs > self.threshold).astype(np.uint8)

    def _on_threshold(self, change=None) -> None:
        t = self.threshold
        share = float((self.probs > t).mean()) if self.probs.size else 0.0
        text = f"threshold <b>{t:.2f}</b> &middot; foreground {share:.1%} of pixels"
        if self.truth is not None:
            self.iou = binary_iou(self.probs, self.truth, threshold=t)
            iou_text = "n/a (no foreground in truth or prediction)" if math.isnan(self.iou) else f"{self.iou:.3f}"
            text = f"IoU <b>{iou_text}</b> &middot; " + text
        self.iou_label.value = text
        self._redraw()

    def _on_alpha(self, change=None) -> None:
        self._redraw()

    def _redraw(self) -> None:
        mask = (self._probs_small > self.threshold).astype(np.uint8)
        picture = blend_overlay(self._photo, mask, alpha=float(self.alpha_slider.value), palette=self.palette)
        if self._truth_small is not None:
            picture = draw_contours(picture, self._truth_small, color=TRUTH_OUTLINE, width=2)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        self.image_widget.value = buffer.getvalue()


def threshold_explorer(image, probs, truth=None, threshold: float = 0.5, alpha: float = 0.3,
                       display_size: int = 512, palette=None) -> ThresholdExplorer:
    """A widget to try thresholds on precomputed binary probabilities (see `ThresholdExplorer`).

    image: the photo (path, PIL, array or tensor); probs: (H, W) P(foreground) at the photo's size,
    e.g. `predict_proba(model, photo)`; truth: optional (H, W) mask (0, 1, 255 = ignore) or mask
    file, to show the IoU live. Show it by making it the last expression of a cell.
    """
    return ThresholdExplorer(image, probs, truth=truth, threshold=threshold, alpha=alpha,
                             display_size=display_size, palette=palette)


def threshold_explorer_for(model, image, truth=None, image_size: int | None = 256, device=None,
                           resize: str = "stretch", **kwargs) -> ThresholdExplorer:
    """`threshold_explorer` for a binary model: runs `predict_proba(model, image, image_size)` once first."""
    photo = load_image(image)
    probs = predict_proba(model, photo, image_size=image_size, device=device, resize=resize)
    return threshold_explorer(photo, probs, truth=truth, **kwargs)
