"""The benchmarks' own code is correct (their timings are not tested: they are printed, not asserted).

The speed claims in README.md rest on two things checked here: the re-created source lesson is
faithful (BatchNorm made in forward, sigmoid + soft Dice, its own prediction path), and the
transposed-conv lever of speed_levers.py computes exactly what nn.ConvTranspose2d computes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_train  # noqa: E402
import lesson_script  # noqa: E402
import speed_levers  # noqa: E402


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("height, width", [(8, 8), (9, 13)])
def test_shuffle_upsampling_equals_conv_transpose(channels_last: bool, height: int, width: int) -> None:
    torch.manual_seed(0)
    # float64: the two add up the same products in another order, and fp32 rounding would
    # blur the comparison of the bias gradient (a sum over every pixel)
    reference = nn.ConvTranspose2d(6, 4, kernel_size=2, stride=2).double()
    shuffle = speed_levers.ConvTranspose2x2AsShuffle(6, 4, kernel_size=2, stride=2).double()
    shuffle.load_state_dict(reference.state_dict())
    x = torch.randn(2, 6, height, width, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x_ref, x_new = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ref, out_new = reference(x_ref), shuffle(x_new)
    assert out_new.shape == (2, 4, 2 * height, 2 * width)
    torch.testing.assert_close(out_new, out_ref)
    grad = torch.randn_like(out_ref)
    out_ref.backward(grad)
    out_new.backward(grad)
    torch.testing.assert_close(x_new.grad, x_ref.grad)
    torch.testing.assert_close(shuffle.weight.grad, reference.weight.grad)
    torch.testing.assert_close(shuffle.bias.grad, reference.bias.grad)


def test_lesson_unet_keeps_the_lessons_batchnorm_bug() -> None:
    model = lesson_script.LessonUNet()
    # BatchNorm made in forward: no BN weights or running statistics in the state_dict.
    assert not any("running_mean" in key or key.endswith("bn.weight") for key in model.state_dict())
    out = model(torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 1, 32, 32)
    assert 0.0 <= out.min() and out.max() <= 1.0  # sigmoid inside the model, as in the lesson
    # batch statistics even in eval mode: the same photo gives another answer next to another photo
    model.eval()
    with torch.no_grad():
        alone = model(torch.rand(1, 3, 32, 32).mul(0).add(0.5))
        batch = model(torch.cat([torch.full((1, 3, 32, 32), 0.5), torch.rand(1, 3, 32, 32)]))
    assert not torch.allclose(alone[0], batch[0])


def test_lesson_dice_loss_matches_the_formula() -> None:
    probs = torch.tensor([[0.9, 0.2], [0.6, 0.0]])
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    intersection = 0.9 + 0.6
    expected = 1 - (2 * intersection + 1) / (probs.sum() + target.sum() + 1)
    assert lesson_script.lesson_dice_loss(probs, target).item() == pytest.approx(expected.item())


def test_lesson_training_snapshots_each_budget_and_predicts_at_the_photos_size(tmp_path: Path) -> None:
    root = bench_train.make_photos(tmp_path / "photos", 4, width=200, height=150)
    snapshots = lesson_script.train_lesson(root, [0.0, 0.5], tmp_path, log=lambda text: None)
    assert set(snapshots) == {0.0, 0.5} and snapshots[0.5]["images"] >= snapshots[0.0]["images"] >= 4
    assert (tmp_path / "lesson_last.pth").is_file()  # the whole pickled model, as the lesson saved it
    model = lesson_script.LessonUNet()
    model.load_state_dict(snapshots[0.5]["state"])
    photo = Image.open(next((root / "JPEGImages").iterdir()))
    mask = lesson_script.lesson_predict(model, photo)
    assert mask.shape == (photo.height, photo.width) and set(np.unique(mask).tolist()) <= {0, 1}


def test_whole_program_harness_runs_each_program(tmp_path: Path) -> None:
    root = bench_train.make_photos(tmp_path / "photos", 4)
    assert set(bench_train.PROGRAMS) == {"lesson", "segkit", "segkit-all"}
    out = tmp_path / "lesson"
    out.mkdir()
    lesson = bench_train.lesson_program(root, 1, out)
    assert lesson["images"] == 4 and (out / "lesson_epoch_1.pth").is_file()
    out = tmp_path / "segkit-all"
    out.mkdir()
    result = bench_train.PROGRAMS["segkit-all"](root, 1, out)
    assert result["images"] == 4  # every photo, as the lesson: the same job
    history = json.loads((out / "history.json").read_text())
    assert history[0]["val_foreground_iou"] is None  # no validation
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
