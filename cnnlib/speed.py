"""训练的速度选项：混合精度（automatic mixed precision）与 channels_last 内存布局按设备选择。

GPU 上按计算能力（compute capability）查表决定，CPU 上由实测决定，Apple MPS 上用 float32。
选择的结果与理由由 :func:`choose_speed_options` 返回，:func:`cnnlib.check_environment` 把它打印出来。
"""

import contextlib
import math
import os
import re
import time
import warnings
from typing import NamedTuple

import torch
from torch import nn

BF16_MIN_SPEEDUP = 1.3  # CPU 上 bf16 至少要比 float32 快这么多倍，"auto" 才选它
_cpu_probe: dict[str, float] = {}

# 计算能力 7.5、却没有张量核心（tensor core）的图灵（Turing）小核心：GTX 16xx（TU116/TU117）、
# MX450/MX550 与 Quadro/RTX A 之外的 T400–T1200 笔记本卡。它们的 fp16 走普通的 FP16 单元，
# 而且 GTX 16xx 上 fp16 卷积算出 NaN 的报告很多（pytorch/pytorch#58123、#77955），所以用 float32。
NO_TENSOR_CORES = re.compile(r"GTX 16\d\d|\bMX ?[45]\d0\b|\bT(?:400|500|550|600|1000|1200)\b", re.I)


class SpeedOptions(NamedTuple):
    """:func:`choose_speed_options` 的结果：精度（None 即 float32）、是否 channels_last，以及一句中文理由。"""
    amp: str | None
    channels_last: bool
    reason: str


def probe_cpu_bf16(repeats: int = 3) -> dict[str, float]:
    """在本机 CPU 上比较 float32 与 bf16 自动混合精度的训练速度，结果在进程内缓存。

    探针是一次 3×3 卷积（8×32×28×28，channels_last）的前向加反向，正是本书训练的主要运算。
    两种精度交替运行、各取最快的一次（机器上别的进程只会让某一次变慢，不会让它变快）。
    没有 bf16 指令的 CPU 上 bf16 慢几倍，差距一目了然时提前结束（实测用时见
    ``benchmarks/results/cpu-probe.txt``）。怎样由这两个用时做决定，见 :func:`choose_cpu_precision`。

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
            with autocast(torch.device("cpu"), "bf16" if name == "bf16" else None):
                y = conv(X)
            y.float().sum().backward()
            if r:
                best[name] = min(best[name], time.perf_counter() - t)
        ratio = best["fp32"] / best["bf16"]
        if r >= 2 and not 0.5 < ratio < 2:  # 两次都差两倍以上：结论不会再变
            break
    _cpu_probe.update(best, speedup=best["fp32"] / best["bf16"])
    return dict(_cpu_probe)


def choose_cpu_precision(fp32_seconds: float, bf16_seconds: float) -> str | None:
    """CPU 上的决定规则，只看两个实测用时：bf16 至少快 ``BF16_MIN_SPEEDUP`` 倍时返回 ``"bf16"``，否则 None。

    Args:
        fp32_seconds, bf16_seconds: 同一个训练步在两种精度下的用时（:func:`probe_cpu_bf16` 测得）。
    """
    return "bf16" if fp32_seconds >= BF16_MIN_SPEEDUP * bf16_seconds else None


def _forced_precision() -> str | None:
    """环境变量 ``CNNLIB_AMP``：``"auto"``（没设）、``"bf16"``、``"fp16"`` 或 None（fp32）。"""
    forced = os.environ.get("CNNLIB_AMP", "").strip().lower()
    if not forced:
        return "auto"
    if forced not in ("bf16", "fp16", "fp32"):
        raise ValueError(f"环境变量 CNNLIB_AMP={forced!r} 不可用：请设为 bf16、fp16（只用于 CUDA GPU）或 fp32，"
                         "或者删掉它让 cnnlib 按设备选择。")
    return None if forced == "fp32" else forced


def cuda_speed_options(capability: tuple[int, int], name: str = "") -> SpeedOptions:
    """一块 CUDA GPU 在 ``amp="auto"`` 时得到什么：只看计算能力与型号名，不碰 GPU（测试里可以直接调用）。

    Args:
        capability: ``torch.cuda.get_device_capability`` 的 ``(major, minor)``，例如 T4 是 ``(7, 5)``。
        name: 型号名，例如 ``"Tesla T4"``；用来认出没有张量核心的 GTX 16xx 等。
    """
    cc = f"{capability[0]}.{capability[1]}"
    if tuple(capability) >= (8, 0):
        return SpeedOptions("bf16", True, f"计算能力 {cc} ≥ 8.0：张量核心原生支持 bf16，"
                                          "cuDNN 有 bf16 卷积；bf16 与 float32 的数值范围相同，不需要梯度缩放")
    if tuple(capability) >= (7, 0) and not NO_TENSOR_CORES.search(name):
        return SpeedOptions("fp16", True, f"计算能力 {cc}：张量核心能算 fp16、不能算 bf16"
                                          "（bf16 卷积在 8.0 以下没有 cuDNN 内核，只能走慢得多的通用实现），"
                                          "所以用 fp16 加梯度缩放（GradScaler）防止梯度下溢")
    if tuple(capability) >= (7, 0):
        return SpeedOptions(None, False, f"计算能力 {cc}，但 {name} 没有张量核心：fp16 快不了多少，"
                                         "这类卡上 fp16 卷积算出 NaN 的报告也很多，所以用 float32")
    return SpeedOptions(None, False, f"计算能力 {cc} < 7.0：没有张量核心，fp16/bf16 都不会更快，"
                                     "channels_last 也没有好处，所以用 float32")


def choose_speed_options(device: torch.device | str, amp: str | None = "auto",
                         channels_last: bool | str = "auto") -> SpeedOptions:
    """把 ``"auto"`` 换成按设备选定的值，并说明理由。

    ``amp="auto"`` 时各设备得到什么（``CNNLIB_AMP=bf16|fp16|fp32`` 可以覆盖，显式参数又优先于它）：

    ========================================  ==============  =============  =====================================
    设备（计算能力）                          精度            channels_last  为什么
    ========================================  ==============  =============  =====================================
    A100、H100、L4、RTX 30xx/40xx（≥ 8.0）   bf16            开             张量核心原生 bf16，不需要梯度缩放
    V100（7.0）、T4、RTX 20xx（7.5）          fp16 + 梯度缩放  开             张量核心只有 fp16；bf16 卷积在 8.0 以下
                                                                             没有 cuDNN 内核，比 fp16 慢几倍
    GTX 16xx、MX450/550、T400–T1200（7.5）    float32         关             没有张量核心；GTX 16xx 上 fp16 常出 NaN
    P100（6.0）、GTX 10xx（6.1）及更老        float32         关             没有张量核心，半精度不会更快
    Apple MPS                                 float32         关             较老的 torch 在 MPS 上没有 autocast
    CPU                                       实测决定        开             bf16 至少快 ``BF16_MIN_SPEEDUP`` 倍才用
                                                                             （:func:`choose_cpu_precision`）
    ========================================  ==============  =============  =====================================

    GPU 上 channels_last 只和 fp16/bf16 一起开：NHWC 布局的好处来自张量核心的卷积内核。
    读的是参数 ``device`` 那块 GPU 的计算能力（``torch.cuda.get_device_properties(device)``），
    不看 ``torch.cuda.is_bf16_supported()``：它默认把“能建 bf16 张量”（模拟）也算作支持，
    在 T4、V100、P100 上都返回 True，而且只看当前设备。

    Args:
        device: 训练用的设备。
        amp: ``"auto"``、``"bf16"``、``"fp16"`` 或 None（float32）。
        channels_last: ``"auto"``、True 或 False。

    Returns:
        :class:`SpeedOptions`：``amp``、``channels_last`` 与理由 ``reason``。
    """
    device = torch.device(device)
    props = torch.cuda.get_device_properties(device) if device.type == "cuda" else None
    rule = cuda_speed_options((props.major, props.minor), props.name) if props is not None else None
    reason = "按参数 amp 指定"
    if amp == "auto":
        amp = _forced_precision()
        reason = "按环境变量 CNNLIB_AMP 指定"
    if amp == "auto":
        if rule is not None:
            amp, reason = rule.amp, rule.reason
        elif device.type == "cpu":
            probe = probe_cpu_bf16()
            amp = choose_cpu_precision(probe["fp32"], probe["bf16"])
            reason = (f"本机实测 bf16 比 float32 快 {probe['speedup']:.2f} 倍，"
                      f"{'达到' if amp else '不到'}阈值 {BF16_MIN_SPEEDUP} 倍")
        else:
            amp, reason = None, (f"{device.type} 上用 float32：较老的 torch（例如 2.3）在 MPS 上没有 autocast，"
                                 "较新的也未经本书测试")
    if amp not in (None, "bf16", "fp16"):
        raise ValueError(f"amp={amp!r} 不可用：请用 'auto'、'bf16'、'fp16' 或 None（关闭混合精度）。")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' 只用于 CUDA GPU，当前设备是 {device}：请用 'bf16' 或 None"
                         "（如果它来自环境变量 CNNLIB_AMP，请改成 bf16 或 fp32）。")
    if amp == "bf16" and props is not None and (props.major, props.minor) < (8, 0):
        warnings.warn(f"{props.name}（计算能力 {props.major}.{props.minor}）没有原生 bf16：卷积会走慢得多的"
                      "通用实现。请用 amp='auto'（这块卡上是 fp16 加梯度缩放）或 amp=None。", stacklevel=2)
    if channels_last == "auto":
        if rule is not None:
            channels_last = amp is not None and rule.channels_last
        else:
            channels_last = device.type == "cpu"
    return SpeedOptions(amp, bool(channels_last), reason)


def resolve_speed_options(device: torch.device, amp: str | None = "auto",
                          channels_last: bool | str = "auto") -> tuple[str | None, bool]:
    """把 ``"auto"`` 换成按设备选定的默认值，返回 ``(amp, channels_last)``；规则与理由见 :func:`choose_speed_options`。"""
    chosen = choose_speed_options(device, amp, channels_last)
    return chosen.amp, chosen.channels_last


def autocast(device: torch.device, amp: str | None):
    """``amp`` 为 None 时是一个什么也不做的 ``contextlib.nullcontext()``，否则是 ``torch.autocast``。

    关闭时不建 autocast 对象：``torch.autocast(..., enabled=False)`` 也会先检查设备类型，
    torch 2.3 的 MPS 上因此报错（nanoGPT 的 ``train.py`` 也这样写）。
    """
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def to_device(X: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """把一批图像搬到设备上；需要时换成 channels_last 的内存布局。"""
    X = X.to(device, non_blocking=True)
    if channels_last and X.dim() == 4:
        X = X.contiguous(memory_format=torch.channels_last)
    return X
