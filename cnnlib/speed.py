"""训练的速度选项：混合精度与 channels_last 按设备选择，CPU 上由实测决定。"""

import math
import os
import time

import torch
from torch import nn

BF16_MIN_SPEEDUP = 1.3  # CPU 上 bf16 至少要比 float32 快这么多倍，"auto" 才选它
_cpu_probe: dict[str, float] = {}


def probe_cpu_bf16(repeats: int = 3) -> dict[str, float]:
    """在本机 CPU 上比较 float32 与 bf16 自动混合精度的训练速度，结果在进程内缓存。

    探针是一次 3×3 卷积（8×32×28×28，channels_last）的前向加反向，正是本书训练的主要运算。
    两种精度交替运行、各取最快的一次（机器上别的进程只会让某一次变慢，不会让它变快）。
    没有 bf16 指令的 CPU 上 bf16 慢几倍，差距一目了然时提前结束（实测用时见
    ``benchmarks/results/cpu-probe.txt``）。

    Returns:
        ``{"fp32": 秒, "bf16": 秒, "speedup": fp32 用时 / bf16 用时}``。
    """
    if _cpu_probe:
        return dict(_cpu_probe)
    with torch.random.fork_rng(devices=[]):  # 不动全局随机数状态：探针之后的初始化与没有探针时相同
        torch.manual_seed(0)
        conv = nn.Conv2d(32, 32, 3, padding=1).to(memory_format=torch.channels_last)
        X = torch.randn(8, 32, 28, 28).contiguous(memory_format=torch.channels_last)
    best = {"fp32": math.inf, "bf16": math.inf}
    for r in range(repeats + 1):  # 第 0 次是预热（oneDNN 选核、分配内存），不计
        for name in best:
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
                y = conv(X)
            y.float().sum().backward()
            if r:
                best[name] = min(best[name], time.perf_counter() - t)
        ratio = best["fp32"] / best["bf16"]
        if r >= 2 and not 0.5 < ratio < 2:  # 两次都差两倍以上：结论不会再变
            break
    _cpu_probe.update(best, speedup=best["fp32"] / best["bf16"])
    return dict(_cpu_probe)


def _cpu_precision() -> str | None:
    """CPU 上 ``amp="auto"`` 的选择：环境变量 ``CNNLIB_AMP`` 优先，否则由 :func:`probe_cpu_bf16` 实测决定。"""
    forced = os.environ.get("CNNLIB_AMP", "").strip().lower()
    if forced:
        if forced not in ("bf16", "fp32"):
            raise ValueError(f"环境变量 CNNLIB_AMP={forced!r} 不可用：请设为 bf16 或 fp32，或者删掉它让 cnnlib 实测选择。")
        return "bf16" if forced == "bf16" else None
    return "bf16" if probe_cpu_bf16()["speedup"] >= BF16_MIN_SPEEDUP else None


def resolve_speed_options(device: torch.device, amp: str | None = "auto",
                          channels_last: bool | str = "auto") -> tuple[str | None, bool]:
    """把 ``"auto"`` 换成按设备选定的默认值。

    - CUDA：Ampere 及更新的 GPU 用 bf16，更老的（如 Colab 的 T4）用 fp16 加梯度缩放；channels_last 开。
    - CPU：在本机实测（:func:`probe_cpu_bf16`），bf16 至少快 ``BF16_MIN_SPEEDUP`` 倍时用 bf16，否则 float32；
      环境变量 ``CNNLIB_AMP=bf16|fp32`` 可以覆盖。CPU 之间差别很大（有没有 bf16 指令），所以不写死。
      channels_last 开。
    - Apple MPS：float32，不用 channels_last。
    """
    if amp == "auto":
        if device.type == "cuda":
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif device.type == "cpu":
            amp = _cpu_precision()
        else:
            amp = None
    if amp not in (None, "bf16", "fp16"):
        raise ValueError(f"amp={amp!r} 不可用：请用 'auto'、'bf16'、'fp16' 或 None（关闭混合精度）。")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' 只用于 CUDA GPU，当前设备是 {device}：请用 'bf16' 或 None。")
    if channels_last == "auto":
        channels_last = device.type in ("cuda", "cpu")
    return amp, bool(channels_last)


def autocast(device: torch.device, amp: str | None):
    """``amp`` 为 None 时不做任何事的 ``torch.autocast``。"""
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype, enabled=amp is not None)


def to_device(X: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """把一批图像搬到设备上；需要时换成 channels_last 的内存布局。"""
    X = X.to(device, non_blocking=True)
    if channels_last and X.dim() == 4:
        X = X.contiguous(memory_format=torch.channels_last)
    return X
