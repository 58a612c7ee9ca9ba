"""Where to compute and in which number format: the one place segkit decides it.

    device = select_device("auto")                 # CUDA GPU, else Apple MPS, else CPU
    dtype, channels_last = choose_precision(device)
    with autocast(device, dtype): logits = model(images)

What "auto" picks (training the lesson UNet; figures in benchmarks/README.md):
    CUDA GPU: bf16 autocast (fp16 + a GradScaler on GPUs older than Ampere), channels_last.
    CPU with bf16 instructions (AVX512-BF16 or AMX): bf16 autocast and channels_last, about 2x
        fp32. Other CPUs only emulate bf16, which is slower than fp32: they stay in fp32.
    Apple MPS: fp32, default layout.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch


def select_device(device: str | torch.device = "auto") -> torch.device:
    """"auto": CUDA if available, else Apple MPS, else CPU. Or name one: "cpu", "cuda", "cuda:1", "mps"."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r}, but PyTorch sees no CUDA GPU (torch {torch.__version__}, built for CUDA "
                           f"{torch.version.cuda}). Use 'auto' or 'cpu', or install the PyTorch build that matches "
                           "your driver: https://pytorch.org/get-started/locally/")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise RuntimeError(f"device={device!r}, but there are {torch.cuda.device_count()} CUDA GPU(s).")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device={device!r}, but Apple MPS is not available here; use 'auto' or 'cpu'.")
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'.")
    return chosen


def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16)."""
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return torch.backends.mkldnn.is_available() and bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def choose_precision(device: torch.device, amp: str = "auto",
                     channels_last: bool | str = "auto") -> tuple[torch.dtype | None, bool]:
    """(autocast dtype, or None for fp32; channels_last) for `device`, per the table in the module docstring.

    amp: "auto", "bf16", "fp16" or "off". channels_last: True, False or "auto".
    """
    device = torch.device(device)
    if amp == "auto":
        if device.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None
    elif amp in ("bf16", "fp16", "off"):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}[amp]
    else:
        raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'off', got {amp!r}")
    if channels_last == "auto":
        # oneDNN computes convolutions in NHWC on x86 CPUs (AVX2 and up), and so do tensor cores on GPUs.
        channels_last = device.type == "cuda" or (
            device.type == "cpu" and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"))
    elif channels_last not in (True, False):
        raise ValueError(f"channels_last must be True, False or 'auto', got {channels_last!r}")
    return dtype, bool(channels_last)


def autocast(device: torch.device, dtype: torch.dtype | None):
    """torch.autocast for `dtype` on `device`, or a context that does nothing for fp32 (dtype None)."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
