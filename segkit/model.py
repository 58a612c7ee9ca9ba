"""UNet, built from small named parts (as in milesial/Pytorch-UNet).

    input (N, 3, H, W)
      |- DoubleConv  32 ------------------------------(skip)----------------.
      Down           64 --------------------------(skip)-------------.      |
      Down          128 ----------------------(skip)-------------.   |      |
      Down          256 ------------------(skip)-------------.   |   |      |
      Down          512  (the bottleneck)                    |   |   |      |
      Up            256  <- upsample, concatenate skip ------'   |   |      |
      Up            128  <-----------------------------------------'  |      |
      Up             64  <--------------------------------------------'      |
      Up             32  <---------------------------------------------------'
      OutConv  num_classes logits (N, num_classes, H, W)

Every layer with state (BatchNorm's weights and running statistics) is created in
`__init__`, never in `forward`: that is what makes `model.to(device)`, `state_dict()` and
`model.eval()` work. (The source lesson created BatchNorm inside `forward`, so it was
never moved to the GPU, never learned, and never used running statistics.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class DoubleConv(nn.Module):
    """(3x3 conv -> BatchNorm -> ReLU) twice. Keeps H and W (padding=1, the lesson's 'same')."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            # No conv bias: the BatchNorm right after subtracts the mean, which would cancel it.
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Down(nn.Module):
    """2x2 max-pool (halves H and W) then DoubleConv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class Up(nn.Module):
    """Upsample x2, concatenate the encoder's output of the same size (the skip), DoubleConv.

    `mode="transpose"`: a learned 2x2 transposed conv that also halves the channels (the lesson).
    `mode="bilinear"`: fixed bilinear upsampling then a 1x1 conv to halve the channels
    (fewer parameters, no checkerboard artefacts).
    """

    def __init__(self, in_channels: int, out_channels: int, mode: str = "transpose") -> None:
        super().__init__()
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        elif mode == "bilinear":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, in_channels // 2, kernel_size=1),
            )
        else:
            raise ValueError(f"up_mode must be 'transpose' or 'bilinear', got {mode!r}")
        # After concatenation: in_channels // 2 from below + in_channels // 2 from the skip.
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return self.conv(torch.cat([skip, x], dim=1))


class OutConv(nn.Module):
    """1x1 conv: features -> one logit per class and pixel."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UNet(nn.Module):
    """UNet for semantic segmentation.

    Args:
        in_channels: channels of the input (3 for RGB photos, 1 for grayscale, 400 for a data cube).
        num_classes: output channels. 1 for "cat vs background" (sigmoid); K + 1 for K classes
            plus background (softmax). Background is a class in the multi-class case.
        base_features: channels of the first level; each level down doubles them.
        depth: number of Down (and Up) steps. The input is padded to a multiple of 2**depth.
        up_mode: "transpose" (the lesson) or "bilinear".

    Input: (N, in_channels, H, W) float, any H and W.
    Output: (N, num_classes, H, W) logits (no sigmoid/softmax: the losses want logits).
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        base_features: int = 32,
        depth: int = 4,
        up_mode: str = "transpose",
    ) -> None:
        super().__init__()
        for name, value in [("in_channels", in_channels), ("num_classes", num_classes),
                            ("base_features", base_features), ("depth", depth)]:
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"UNet: {name} must be a positive int, got {value!r}")
        if up_mode not in ("transpose", "bilinear"):
            raise ValueError(f"UNet: up_mode must be 'transpose' or 'bilinear', got {up_mode!r}")
        self.config = dict(in_channels=in_channels, num_classes=num_classes,
                           base_features=base_features, depth=depth, up_mode=up_mode)

        widths = [base_features * 2**level for level in range(depth + 1)]  # 32, 64, 128, 256, 512
        self.inc = DoubleConv(in_channels, widths[0])
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(depth))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i], up_mode) for i in reversed(range(depth)))
        self.outc = OutConv(widths[0], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config["in_channels"]:
            raise ValueError(
                f"UNet expects input of shape (N, {self.config['in_channels']}, H, W), got "
                f"{tuple(x.shape)}. For one image, add the batch axis: x.unsqueeze(0)."
            )
        height, width = x.shape[-2:]
        # Each Down halves H and W, each Up doubles them: sizes that are not a multiple of
        # 2**depth would come back one pixel off and break torch.cat (e.g. 225 vs 224).
        # Pad up to the next multiple, then crop the output back to the input's size.
        multiple = 2 ** self.config["depth"]
        pad_h, pad_w = -height % multiple, -width % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))

        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()  # the bottleneck
        for up in self.ups:
            x = up(x, skips.pop())
        return self.outc(x)[..., :height, :width]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
