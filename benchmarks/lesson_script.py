"""The source lesson's training script, re-created faithfully: the baseline every benchmark compares with.

What the lesson did, and this module does:
- a Dataset that opens each photo and mask with PIL on every access, resizes both to 256x256
  (the mask with PIL's default filter for palette images, nearest), /255, HWC -> CHW, and gives the
  mask a channel axis (a 0/1 float target; segkit's 255 = ignore is unknown to it, so ignored
  pixels count as cat: clamped to 1, as a float mask of 255 would be out of range for Dice);
- a UNet whose convolutions are layers but whose BatchNorm2d and ReLU are created inside
  forward(): BatchNorm is fresh on every call (no learned scale, batch statistics always,
  also at prediction time);
- a sigmoid inside the model, the soft Dice loss on probabilities (smooth 1), Adam at lr 1e-3,
  batch 4, every photo, no validation; `torch.save(model)` every epoch;
- prediction: the photo resized to 256, the model, probability > 0.5, the 0/1 mask resized back
  to the photo's size (nearest).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

SIZE = 256


class LessonDataset(Dataset):
    """Opens, converts and resizes with PIL on every access; the mask gets a channel axis."""

    def __init__(self, root: Path) -> None:
        self.images = sorted((Path(root) / "JPEGImages").glob("*.jpg"))
        mask_dir = next(p for p in (Path(root) / "SegmentationClassPNG", Path(root) / "SegmentationClass") if p.is_dir())
        self.masks = [mask_dir / (p.stem + ".png") for p in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = Image.open(self.images[index]).convert("RGB").resize((SIZE, SIZE))
        mask = Image.open(self.masks[index]).resize((SIZE, SIZE))
        image = torch.tensor(np.array(image).transpose(2, 0, 1) / 255.0, dtype=torch.float32)
        mask = torch.tensor(np.minimum(np.array(mask), 1), dtype=torch.float32).unsqueeze(0)
        return image, mask


class LessonUNet(nn.Module):
    """The lesson's UNet (base width 32, depth 4, padding 'same'), BatchNorm2d and ReLU made in forward."""

    def __init__(self, in_channels: int = 3, out_channels: int = 1) -> None:
        super().__init__()
        widths = [32, 64, 128, 256, 512]

        def double(cin: int, cout: int) -> nn.ModuleList:
            return nn.ModuleList([nn.Conv2d(cin, cout, 3, padding="same"), nn.Conv2d(cout, cout, 3, padding="same")])

        self.encoder = nn.ModuleList([double(in_channels, 32)] + [double(widths[i], widths[i + 1]) for i in range(4)])
        self.ups = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(4))])
        self.decoder = nn.ModuleList([double(widths[i + 1], widths[i]) for i in reversed(range(4))])
        self.out = nn.Conv2d(32, out_channels, 1)

    @staticmethod
    def block(x: torch.Tensor, convs: nn.ModuleList) -> torch.Tensor:
        for conv in convs:
            x = conv(x)
            x = nn.BatchNorm2d(x.shape[1])(x)  # the lesson's bug, kept on purpose
            x = nn.ReLU()(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, convs in enumerate(self.encoder):
            x = self.block(x, convs)
            if i < 4:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for up, convs in zip(self.ups, self.decoder):
            x = torch.cat([skips.pop(), up(x)], dim=1)
            x = self.block(x, convs)
        return torch.sigmoid(self.out(x))


def lesson_dice_loss(probs: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    intersection = (probs * target).sum()
    return 1 - (2 * intersection + smooth) / (probs.sum() + target.sum() + smooth)


def train_lesson(root: Path, budgets: list[float], out: Path | None = None, seed: int = 0,
                 log=print) -> dict[float, dict]:
    """Train as the lesson did until the largest budget (seconds of training) has passed.

    The lesson has no learning-rate schedule, so the model after 60 s of a 1200 s run is the model
    a 60 s run would give: one run yields a snapshot (state_dict) per budget. Returns
    {budget: {"state": state_dict, "seconds": when it was taken, "images": images trained on}}.
    """
    torch.manual_seed(seed)
    loader = DataLoader(LessonDataset(root), batch_size=4, shuffle=True)
    model = LessonUNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    pending, snapshots, images, epoch = sorted(budgets), {}, 0, 0
    started = time.perf_counter()
    while pending:
        epoch += 1
        running = 0.0
        for batch_images, masks in loader:
            optimizer.zero_grad()
            loss = lesson_dice_loss(model(batch_images), masks)
            loss.backward()
            optimizer.step()
            running += loss.item()
            images += len(batch_images)
            elapsed = time.perf_counter() - started
            while pending and elapsed >= pending[0]:
                snapshots[pending.pop(0)] = {"state": {k: v.clone() for k, v in model.state_dict().items()},
                                             "seconds": elapsed, "images": images}
            if not pending:
                break
        log(f"  lesson epoch {epoch}: dice loss {running / len(loader):.4f}, {time.perf_counter() - started:.0f} s")
        if out is not None:
            torch.save(model, out / "lesson_last.pth")  # the whole pickled model, as the lesson did
    return snapshots


@torch.no_grad()
def lesson_predict(model: LessonUNet, photo: Image.Image) -> np.ndarray:
    """The lesson's prediction: 256x256 in, probability > 0.5, the 0/1 mask resized back with nearest."""
    x = torch.tensor(np.array(photo.convert("RGB").resize((SIZE, SIZE))).transpose(2, 0, 1) / 255.0,
                     dtype=torch.float32).unsqueeze(0)
    mask = (model(x)[0, 0] > 0.5).numpy().astype(np.uint8)
    return np.array(Image.fromarray(mask).resize(photo.size, Image.Resampling.NEAREST))
