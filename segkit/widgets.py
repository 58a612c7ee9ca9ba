"""The threshold explorer: drag the threshold and watch the mask, and the IoU, change (ipywidgets).

It answers "which threshold should I use?" and "why are my probabilities all 0.9999?" by hand:
an over-confident model's mask hardly changes at all. The probabilities are computed once; a
slider move only thresholds them and redraws one small PNG, so it stays instant on a CPU.
"""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image

from .data import open_image
from .draw import blend_overlay, draw_contours
from .metrics import ConfusionMatrix

TRUTH_OUTLINE = (255, 255, 0)  # yellow outline of the ground truth, over the green prediction


class ThresholdExplorer(widgets.HBox):
    """Threshold and opacity sliders beside a live overlay of `probs > threshold` on the photo.

    photo: path, PIL image or uint8 array; probs: (H, W) P(cat) at the photo's size (predict_proba);
    truth: optional (H, W) mask (0, 1, 255 = ignore) of the photo, to show the IoU live.
    Parts: threshold_slider, alpha_slider, text (HTML: IoU and the cat's share of the photo),
    image (the overlay as a PNG, drawn at its own pixel size), iou (at the current threshold).
    """

    def __init__(self, photo, probs: np.ndarray, truth: np.ndarray | None = None, threshold: float = 0.5,
                 alpha: float = 0.3, display_size: int = 360) -> None:
        photo = open_image(photo)
        self.probs = np.asarray(probs, dtype=np.float32)
        self.truth = None if truth is None else np.asarray(truth, dtype=np.uint8)
        for name, array in (("probs", self.probs), ("truth", self.truth)):
            if array is not None and array.shape != (photo.height, photo.width):
                raise ValueError(f"threshold explorer: {name} is {array.shape[::-1]} (width, height) but the photo is "
                                 f"{photo.size}; predict_proba(model, photo) answers at the photo's size.")
        # The picture is drawn small, once per move; the IoU is counted at full size.
        scale = min(1.0, display_size / max(photo.size))
        size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
        self._photo = photo.resize(size, Image.Resampling.BILINEAR)
        self._probs = np.asarray(Image.fromarray(self.probs).resize(size, Image.Resampling.BILINEAR))
        self._truth = None if truth is None else np.asarray(Image.fromarray(self.truth).resize(size, Image.Resampling.NEAREST))
        style = dict(min=0.0, max=1.0, step=0.01, readout_format=".2f", style={"description_width": "initial"})
        self.threshold_slider = widgets.FloatSlider(value=threshold, description="threshold", **style)
        self.alpha_slider = widgets.FloatSlider(value=alpha, description="opacity", **style)
        self.text = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{size[0]}px", height=f"{size[1]}px"))
        legend = "green: probability > threshold" + ("; yellow: the true outline" if truth is not None else "")
        super().__init__([self.image, widgets.VBox([self.threshold_slider, self.alpha_slider, self.text,
                                                    widgets.HTML(f"<small>{legend}</small>")])])
        self.iou: float | None = None
        self.threshold_slider.observe(self._update, names="value")
        self.alpha_slider.observe(self._update, names="value")
        self._update()

    def _update(self, change=None) -> None:
        threshold = self.threshold_slider.value
        text = f"cat: {(self.probs > threshold).mean():.1%} of the photo"
        if self.truth is not None:
            confusion = ConfusionMatrix(2)
            confusion.update(torch.from_numpy((self.probs > threshold).astype(np.int64)), torch.from_numpy(self.truth))
            self.iou = confusion.foreground_iou()
            text = f"IoU <b>{self.iou:.3f}</b> &middot; " + text
        self.text.value = text
        picture = blend_overlay(self._photo, (self._probs > threshold).astype(np.uint8), self.alpha_slider.value)
        if self._truth is not None:
            picture = draw_contours(picture, self._truth, color=TRUTH_OUTLINE, width=1)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        self.image.value = buffer.getvalue()

    def _repr_mimebundle_(self, **kwargs) -> dict:
        # A saved notebook cannot show a live widget: the picture and the sentence stand in for it.
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        return bundle

    def __repr__(self) -> str:  # what a notebook shows where the widget cannot run (saved, not executed)
        iou = f", IoU {self.iou:.3f}" if self.iou is not None else ""
        return f"Threshold explorer at threshold {self.threshold_slider.value:.2f}{iou} (run the cell to use the sliders)"
