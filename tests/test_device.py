"""Tests for segkit.device: select_device, choose_precision, cpu_has_native_bf16, autocast.

The CUDA and MPS branches are reached on any machine by monkeypatching what PyTorch reports;
the tests marked `gpu` run the real CUDA path and are skipped where PyTorch sees no GPU.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch

from segkit import device as device_module
from segkit.device import autocast, choose_precision, cpu_has_native_bf16, precision_name, select_device

CPU = torch.device("cpu")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def no_accelerator(monkeypatch):
    """A machine where PyTorch sees neither CUDA nor MPS."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def one_cuda_gpu(monkeypatch):
    """A machine where PyTorch sees one CUDA GPU (only what select_device asks is faked)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


# ----------------------------------------------------------------------------- select_device

def test_select_device_names_the_cpu():
    assert select_device("cpu") == CPU
    assert select_device(CPU) == CPU


def test_auto_is_the_cpu_without_an_accelerator(no_accelerator):
    assert select_device("auto") == CPU
    assert select_device() == CPU  # "auto" is the default


def test_auto_prefers_cuda_then_mps(monkeypatch, one_cuda_gpu):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device("auto") == torch.device("mps")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_requested_without_cuda_says_so_and_how_to_fix_it(no_accelerator, name):
    with pytest.raises(RuntimeError, match="sees no CUDA GPU") as error:
        select_device(name)
    message = str(error.value)
    assert repr(name) in message and torch.__version__ in message
    assert "'auto' or 'cpu'" in message and "pytorch.org/get-started" in message


def test_cuda_index_beyond_the_gpus_is_refused(one_cuda_gpu):
    assert select_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(RuntimeError, match=r"there are 1 CUDA GPU\(s\)"):
        select_device("cuda:1")


def test_mps_requested_without_mps(no_accelerator):
    with pytest.raises(RuntimeError, match="MPS is not available"):
        select_device("mps")


@pytest.mark.parametrize("name", ["gpu", "cuda1", "", "CPU!", 3.5])
def test_unknown_device_names(name):
    with pytest.raises(ValueError, match="unknown device") as error:
        select_device(name)
    assert "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'" in str(error.value)


@pytest.mark.parametrize("name", ["meta", "xpu"])
def test_devices_segkit_does_not_train_on(name):
    with pytest.raises(ValueError, match="unsupported device"):
        select_device(name)


@needs_cuda
def test_real_cuda_is_selected():
    assert select_device("auto").type == "cuda"
    assert select_device("cuda") == torch.device("cuda")
    assert select_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(RuntimeError, match="CUDA GPU"):
        select_device(f"cuda:{torch.cuda.device_count()}")


# ----------------------------------------------------------------------------- choose_precision

@pytest.mark.parametrize("amp, dtype", [("off", None), ("bf16", torch.bfloat16), ("fp16", torch.float16)])
@pytest.mark.parametrize("device", ["cpu", "cuda", "mps"])
def test_explicit_amp_is_obeyed_on_every_device(amp, dtype, device):
    assert choose_precision(torch.device(device), amp, False) == (dtype, False)


def test_auto_amp_on_a_cpu_follows_native_bf16(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    assert choose_precision(CPU, "auto", False)[0] is torch.bfloat16
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: False)
    assert choose_precision(CPU, "auto", False)[0] is None  # emulated bf16 is slower than fp32


def test_auto_amp_on_cuda_is_bf16_or_fp16_on_older_gpus(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert choose_precision(cuda) == (torch.bfloat16, True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert choose_precision(cuda) == (torch.float16, True)


def test_auto_on_mps_is_fp32_in_the_default_layout(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)  # a CPU fact must not leak into MPS
    assert choose_precision(torch.device("mps")) == (None, False)


@pytest.mark.parametrize("capability, expected", [("AVX512", True), ("AVX2", True), ("DEFAULT", False),
                                                  ("NO AVX", False)])
def test_auto_channels_last_on_a_cpu_follows_its_vector_unit(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert choose_precision(CPU, "off", "auto") == (None, expected)


@pytest.mark.parametrize("device", ["cpu", "cuda", "mps"])
def test_explicit_channels_last_is_obeyed(device):
    assert choose_precision(torch.device(device), "off", True) == (None, True)
    assert choose_precision(torch.device(device), "off", False) == (None, False)


def test_choose_precision_accepts_a_device_name():
    assert choose_precision("cpu", "bf16", True) == (torch.bfloat16, True)


@pytest.mark.parametrize("amp", ["float16", "BF16", "on", None, True])
def test_bad_amp_values(amp):
    with pytest.raises(ValueError, match="amp must be 'auto', 'bf16', 'fp16' or 'off'"):
        choose_precision(CPU, amp)


@pytest.mark.parametrize("channels_last", ["yes", "true", None, "NHWC"])
def test_bad_channels_last_values(channels_last):
    with pytest.raises(ValueError, match="channels_last must be True, False or 'auto'"):
        choose_precision(CPU, "off", channels_last)


@needs_cuda
def test_real_cuda_precision():
    dtype, channels_last = choose_precision(torch.device("cuda"))
    assert dtype is (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    assert channels_last is True


# ----------------------------------------------------------------------------- cpu_has_native_bf16

@pytest.mark.skipif(not hasattr(torch.cpu, "get_capabilities"), reason="this PyTorch has no torch.cpu.get_capabilities")
def test_cpu_has_native_bf16_agrees_with_torch():
    capabilities = torch.cpu.get_capabilities()
    native = bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    assert cpu_has_native_bf16() is (native and torch.backends.mkldnn.is_available())


@pytest.mark.parametrize("capabilities, expected", [
    ({"avx512_bf16": True, "amx_bf16": False}, True),
    ({"avx512_bf16": False, "amx_bf16": True}, True),
    ({"avx512_bf16": False, "amx_bf16": False, "avx512_f": True, "avx2": True}, False),
    ({}, False),
])
def test_cpu_has_native_bf16_reads_the_bf16_instructions(monkeypatch, capabilities, expected):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities, raising=False)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    assert cpu_has_native_bf16() is expected


def test_cpu_has_native_bf16_needs_onednn(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True, "amx_bf16": True}, raising=False)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert cpu_has_native_bf16() is False


def test_cpu_has_native_bf16_on_a_torch_without_get_capabilities(monkeypatch):
    monkeypatch.delattr(torch.cpu, "get_capabilities", raising=False)
    assert cpu_has_native_bf16() is False


# ----------------------------------------------------------------------------- autocast

def test_autocast_none_is_a_no_op():
    context = autocast(CPU, None)
    assert isinstance(context, nullcontext)
    layer = torch.nn.Linear(4, 4)
    with context:
        assert not torch.is_autocast_enabled("cpu")
        assert layer(torch.ones(2, 4)).dtype == torch.float32


def test_autocast_bf16_on_the_cpu_computes_in_bf16():
    layer = torch.nn.Linear(4, 4)
    with autocast(CPU, torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")
        assert layer(torch.ones(2, 4)).dtype == torch.bfloat16
    assert layer(torch.ones(2, 4)).dtype == torch.float32  # only inside


@needs_cuda
def test_autocast_on_cuda():
    layer = torch.nn.Linear(4, 4).cuda()
    with autocast(torch.device("cuda"), torch.float16):
        assert layer(torch.ones(2, 4, device="cuda")).dtype == torch.float16


def test_precision_name():
    assert [precision_name(d) for d in (None, torch.bfloat16, torch.float16)] == ["fp32", "bf16", "fp16"]
