"""UNet: shapes for any input size, BatchNorm as real submodules, parameter count by hand."""

import pytest
import torch
from torch import nn

from segkit.model import DoubleConv, UNet, count_parameters


def double_conv_params(cin: int, cout: int) -> int:
    # two 3x3 convs without bias + two BatchNorms (weight and bias each)
    return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout


def test_default_parameter_count_by_hand():
    widths = [32, 64, 128, 256, 512]
    expected = double_conv_params(3, 32)
    expected += sum(double_conv_params(widths[i], widths[i + 1]) for i in range(4))
    for i in range(4):  # Up(widths[i+1] -> widths[i]): 2x2 transposed conv (with bias) + DoubleConv
        cin = widths[i + 1]
        expected += cin * (cin // 2) * 4 + cin // 2 + double_conv_params(cin, widths[i])
    expected += 32 * 1 + 1  # 1x1 output conv
    assert expected == 7_763_041
    assert count_parameters(UNet()) == expected


@pytest.mark.parametrize("height,width", [(64, 64), (97, 131), (225, 224), (17, 5), (1, 1)])
def test_any_input_size(height, width):
    model = UNet(base_features=4, depth=4).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, height, width))
    assert out.shape == (2, 1, height, width)


def test_900x900_the_learner_question():
    model = UNet(base_features=2).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 900, 900)).shape == (1, 1, 900, 900)


@pytest.mark.parametrize("up_mode", ["transpose", "bilinear"])
def test_channels_and_classes(up_mode):
    model = UNet(in_channels=400, num_classes=5, base_features=4, depth=3, up_mode=up_mode)
    assert model(torch.rand(2, 400, 33, 20)).shape == (2, 5, 33, 20)


def test_batchnorm_is_registered_and_in_state_dict():
    model = UNet(base_features=4, depth=2)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    # 2 per DoubleConv: inc + 2 downs + 2 ups = 5 DoubleConvs
    assert len(bns) == 10
    keys = model.state_dict().keys()
    assert "inc.block.1.weight" in keys and "inc.block.1.running_mean" in keys
    assert sum(k.endswith("running_var") for k in keys) == 10
    # ReLUs are modules too (one idea per block, visible in print(model))
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 10


def test_eval_uses_running_stats():
    torch.manual_seed(0)
    model = UNet(base_features=4, depth=2)
    x = torch.rand(4, 3, 16, 16) * 5 + 3
    model.train()
    model(x)  # updates running stats
    model.eval()
    with torch.no_grad():
        single = model(x[:1])
        batch = model(x)
    # In eval mode an image's output must not depend on the rest of the batch.
    torch.testing.assert_close(single, batch[:1])
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(x[:1]), model(x)[:1])


def test_to_moves_batchnorm_buffers():
    model = UNet(base_features=4, depth=2).to(torch.float64)
    assert all(b.dtype in (torch.float64, torch.int64) for b in model.buffers())


def test_config_rebuilds_same_architecture():
    model = UNet(in_channels=1, num_classes=3, base_features=8, depth=3, up_mode="bilinear")
    clone = UNet(**model.config)
    clone.load_state_dict(model.state_dict())
    assert model.config == dict(in_channels=1, num_classes=3, base_features=8, depth=3, up_mode="bilinear")


def test_bad_input_messages():
    model = UNet(base_features=4, depth=2)
    with pytest.raises(ValueError, match=r"unsqueeze\(0\)"):
        model(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.rand(1, 4, 16, 16))
    with pytest.raises(ValueError, match="up_mode"):
        UNet(up_mode="nearest")
    with pytest.raises(ValueError, match="num_classes"):
        UNet(num_classes=0)


def test_double_conv_keeps_size():
    assert DoubleConv(3, 8)(torch.rand(1, 3, 7, 9)).shape == (1, 8, 7, 9)
