"""UNet: shapes for any input size (padded, then cropped back), any number of input channels,
BatchNorm as real submodules (state_dict, .to, eval mode), parameter counts by hand."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segkit.model import DoubleConv, Down, Up, UNet, count_parameters


def double_conv_params(cin: int, cout: int) -> int:
    # two 3x3 convs without bias + two BatchNorms (weight and bias each)
    return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout


def unet_params(in_channels=3, num_classes=1, base_features=32, depth=4, up_mode="transpose") -> int:
    """The parameter count of segkit's UNet, counted by hand from the architecture drawing."""
    widths = [base_features * 2**level for level in range(depth + 1)]
    total = double_conv_params(in_channels, widths[0])
    total += sum(double_conv_params(widths[i], widths[i + 1]) for i in range(depth))
    for i in range(depth):  # Up(widths[i+1] -> widths[i])
        cin = widths[i + 1]
        if up_mode == "transpose":  # 2x2 transposed conv with bias, halving the channels
            total += cin * (cin // 2) * 4 + cin // 2
        else:  # 1x1 conv with bias after the (parameter-free) bilinear upsampling
            total += cin * (cin // 2) + cin // 2
        total += double_conv_params(cin, widths[i])
    return total + widths[0] * num_classes + num_classes  # 1x1 output conv with bias


def test_default_parameter_count_by_hand():
    assert unet_params() == 7_763_041  # the lesson's UNet: 32 base features, depth 4, RGB, one class
    assert count_parameters(UNet()) == 7_763_041


@pytest.mark.parametrize(
    "config",
    [
        dict(in_channels=1, num_classes=2, base_features=4, depth=2),
        dict(in_channels=400, num_classes=5, base_features=8, depth=3),
        dict(in_channels=3, num_classes=3, base_features=6, depth=1, up_mode="bilinear"),
        dict(in_channels=4, num_classes=1, base_features=16, depth=4, up_mode="bilinear"),
    ],
)
def test_parameter_count_by_hand_for_other_configs(config):
    model = UNet(**config)
    assert count_parameters(model) == unet_params(**config)


def test_count_parameters_counts_trainable_only():
    model = UNet(base_features=4, depth=2)
    everything = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == everything
    for p in model.inc.parameters():  # freeze the first block, as in fine-tuning
        p.requires_grad_(False)
    assert count_parameters(model) == everything - double_conv_params(3, 4)


@pytest.mark.parametrize("height,width", [(64, 64), (97, 131), (225, 224), (17, 5), (1, 1)])
def test_any_input_size(height, width):
    model = UNet(base_features=4, depth=4).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, height, width))
    assert out.shape == (2, 1, height, width)


@pytest.mark.parametrize("height,width", [(13, 21), (16, 9), (8, 8)])
def test_odd_sizes_are_zero_padded_bottom_right_then_cropped(height, width):
    """The output at an odd size is the top-left corner of the output for the zero-padded input."""
    torch.manual_seed(0)
    model = UNet(base_features=4, depth=3).eval()  # multiple of 8
    x = torch.rand(1, 3, height, width)
    padded = F.pad(x, (0, -width % 8, 0, -height % 8))
    with torch.no_grad():
        out, reference = model(x), model(padded)
    assert out.shape == (1, 1, height, width)
    torch.testing.assert_close(out, reference[..., :height, :width])


def test_900x900_the_learner_question():
    model = UNet(base_features=2).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 900, 900)).shape == (1, 1, 900, 900)


@pytest.mark.parametrize("up_mode", ["transpose", "bilinear"])
@pytest.mark.parametrize("in_channels,num_classes", [(1, 1), (400, 5)])
def test_input_channels_and_classes(up_mode, in_channels, num_classes):
    """Grayscale (1) or a data cube (400) in, one logit map per class out; every channel matters."""
    torch.manual_seed(0)
    model = UNet(in_channels=in_channels, num_classes=num_classes, base_features=4, depth=3, up_mode=up_mode).eval()
    assert model.inc.block[0].weight.shape == (4, in_channels, 3, 3)
    x = torch.rand(2, in_channels, 33, 20)
    with torch.no_grad():
        out = model(x)
        changed = x.clone()
        changed[:, -1] += 1.0  # the last input channel reaches the output
        assert not torch.allclose(model(changed), out)
    assert out.shape == (2, num_classes, 33, 20)


def test_outputs_raw_logits_that_learn():
    """No sigmoid inside: the logits leave [0, 1], and a few steps of BCE fit a tiny mask."""
    torch.manual_seed(0)
    model = UNet(base_features=4, depth=2)
    x = torch.rand(2, 3, 16, 16)
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:12, 4:12] = 1
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.min() < 0 or out.max() > 1


# ---------------------------------------------------------------- BatchNorm: real submodules


def batchnorms(model: nn.Module) -> list[nn.BatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


@pytest.mark.parametrize("depth", [2, 3])
def test_batchnorm_is_registered_and_in_state_dict(depth):
    model = UNet(base_features=4, depth=depth)
    bns = batchnorms(model)
    # 2 per DoubleConv: inc + `depth` downs + `depth` ups
    assert len(bns) == 2 * (1 + 2 * depth)
    state = model.state_dict()
    names = [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    for name in names:
        for suffix in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            assert f"{name}.{suffix}" in state
    assert sum(k.endswith(".running_var") for k in state) == len(bns)
    assert torch.equal(state["inc.block.1.running_var"], torch.ones(4))
    # the optimizer sees BatchNorm's learned scale and shift
    params = {id(p) for p in model.parameters()}
    assert all(id(bn.weight) in params and id(bn.bias) in params for bn in bns)
    # ReLUs are modules too (one idea per block, visible in print(model))
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == len(bns)


def test_state_dict_carries_running_statistics():
    torch.manual_seed(0)
    model = UNet(base_features=4, depth=2)
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, 16, 16) * 5 + 3)  # one training step's statistics
    assert int(model.inc.block[1].num_batches_tracked) == 1
    assert not torch.equal(model.inc.block[1].running_mean, torch.zeros(4))
    clone = UNet(**model.config)
    clone.load_state_dict(model.state_dict())
    for a, b in zip(batchnorms(model), batchnorms(clone)):
        assert torch.equal(a.running_mean, b.running_mean) and torch.equal(a.running_var, b.running_var)


def test_to_float64_reaches_batchnorm_buffers():
    """Mended: the old test passed vacuously when there were no buffers at all (all([]) is True)."""
    torch.manual_seed(0)
    model = UNet(base_features=4, depth=2)
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 3, 16, 16))
    model.eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
    assert model.to(torch.float64) is model
    bns = batchnorms(model)
    assert len(bns) == 10
    for bn in bns:
        assert bn.running_mean.dtype == torch.float64 and bn.running_var.dtype == torch.float64
        assert bn.weight.dtype == torch.float64
        assert bn.num_batches_tracked.dtype == torch.int64  # an integer buffer keeps its dtype
    with torch.no_grad():
        out = model(x.double())  # eval mode reads the running statistics: they must be float64 too
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected.double(), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_to_cuda_moves_batchnorm_buffers():
    model = UNet(base_features=4, depth=2).cuda()
    assert all(b.device.type == "cuda" for b in model.buffers())
    assert sum(1 for _ in model.buffers()) == 3 * len(batchnorms(model))
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 17, 19, device="cuda")).shape == (1, 1, 17, 19)


def test_eval_uses_running_stats_and_train_uses_the_batch():
    torch.manual_seed(0)
    model = UNet(base_features=4, depth=2)
    x = torch.rand(4, 3, 16, 16) * 5 + 3
    model.train()
    with torch.no_grad():
        model(x)  # updates running stats
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        single = model(x[:1])
        batch = model(x)
    # In eval mode an image's output must not depend on the rest of the batch, and nothing is updated.
    torch.testing.assert_close(single, batch[:1])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    # In train mode BatchNorm normalises with the batch's own statistics, and updates the running ones.
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(x[:1]), model(x)[:1])
    assert int(model.inc.block[1].num_batches_tracked) == 3
    assert not torch.equal(model.inc.block[1].running_mean, before["inc.block.1.running_mean"])


def test_config_rebuilds_the_same_model():
    """Mended: UNet(**config) must rebuild a model that takes the weights and gives the same outputs."""
    torch.manual_seed(0)
    config = dict(in_channels=1, num_classes=3, base_features=8, depth=3, up_mode="bilinear")
    model = UNet(**config)
    model.train()
    with torch.no_grad():
        model(torch.rand(2, 1, 24, 24))
    clone = UNet(**model.config)
    clone.load_state_dict(model.state_dict())  # strict: same layers, same shapes
    model.eval(), clone.eval()
    x = torch.rand(1, 1, 24, 20)
    with torch.no_grad():
        assert torch.equal(clone(x), model(x))
    # a different architecture does not take these weights
    with pytest.raises(RuntimeError):
        UNet(**{**model.config, "up_mode": "transpose"}).load_state_dict(model.state_dict())


# ---------------------------------------------------------------- errors and parts


def test_bad_input_messages():
    model = UNet(base_features=4, depth=2)
    with pytest.raises(ValueError, match=r"UNet expects input of shape \(N, 3, H, W\), got \(3, 16, 16\)\. "
                                         r"For one image, add the batch axis: x\.unsqueeze\(0\)\."):
        model(torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\), got \(1, 4, 16, 16\)"):
        model(torch.rand(1, 4, 16, 16))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\), got \(1, 3, 8, 8\)"):
        UNet(in_channels=1, base_features=4, depth=2)(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(up_mode="nearest"), "up_mode must be 'transpose' or 'bilinear', got 'nearest'"),
        (dict(num_classes=0), "num_classes must be a positive int, got 0"),
        (dict(in_channels=3.0), "in_channels must be a positive int, got 3.0"),
        (dict(base_features=-4), "base_features must be a positive int"),
        (dict(depth=0), "depth must be a positive int"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet(**kwargs)


def test_parts_keep_halve_and_double_the_size():
    assert DoubleConv(3, 8)(torch.rand(1, 3, 7, 9)).shape == (1, 8, 7, 9)
    assert Down(8, 16)(torch.rand(1, 8, 8, 10)).shape == (1, 16, 4, 5)
    for mode in ("transpose", "bilinear"):
        assert Up(16, 8, mode)(torch.rand(1, 16, 4, 5), torch.rand(1, 8, 8, 10)).shape == (1, 8, 8, 10)
    with pytest.raises(ValueError, match="up_mode"):
        Up(16, 8, "nearest")
