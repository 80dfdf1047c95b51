"""设备选择与设备描述：CUDA 优先，其次 Apple MPS，最后 CPU。"""

import functools
import platform
import re
import subprocess
from pathlib import Path

import torch

# 本书关心的 CPU 指令集标志（Linux /proc/cpuinfo 里的名字 → 显示名）：AVX2 与 AVX-512 决定 float32 卷积的速度，
# AVX-512-BF16 与 AMX 决定 bf16 是否比 float32 快（见 cnnlib.speed.probe_cpu_bf16）
CPU_FLAGS = (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512-BF16"), ("amx_bf16", "AMX"))


def try_gpu(i: int = 0) -> torch.device:
    """返回第 ``i`` 块 GPU（CUDA 或 Apple MPS）；没有 GPU 时返回 CPU。"""
    if torch.cuda.is_available() and i < torch.cuda.device_count():
        return torch.device(f"cuda:{i}")
    if i == 0 and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def parse_cpuinfo(text: str) -> tuple[str, tuple[str, ...]]:
    """从 Linux ``/proc/cpuinfo`` 的文本中取出 CPU 型号与 :data:`CPU_FLAGS` 中有的标志（显示名）。"""
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if not model and key in ("model name", "Model", "Hardware", "cpu model"):
            model = value.strip()
        elif not flags and key in ("flags", "Features"):
            flags = set(value.lower().split())
    return model, tuple(label for flag, label in CPU_FLAGS if flag in flags)


def _short_cpu_model(model: str) -> str:
    """去掉商标符号与主频，例如 ``Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz`` → ``Intel Xeon Gold 6338``。"""
    model = re.sub(r"\((?:R|TM|tm|r)\)", "", model)
    model = re.sub(r"\s+CPU\b|@\s*[\d.]+\s*GHz", "", model)
    return " ".join(model.split())


@functools.lru_cache(maxsize=1)
def cpu_info() -> tuple[str, tuple[str, ...]]:
    """本机 CPU 的型号与相关指令集标志，例如 ``("Intel Xeon Platinum 8480+", ("AVX2", "AVX-512", "AMX"))``。

    Linux 读 ``/proc/cpuinfo``，macOS 问 ``sysctl``，其他系统用 ``platform.processor()``；
    读不到标志时退回 PyTorch 自己检测到的向量指令级别（``torch.backends.cpu.get_cpu_capability()``）。
    """
    model, flags = "", ()
    if platform.system() == "Linux":
        try:
            model, flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text(errors="replace"))
        except OSError:
            pass
    elif platform.system() == "Darwin":
        def sysctl(key: str) -> str:
            try:
                return subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                return ""
        model = sysctl("machdep.cpu.brand_string").strip()
        features = (sysctl("machdep.cpu.features") + " " + sysctl("machdep.cpu.leaf7_features")).lower()
        _, flags = parse_cpuinfo("flags: " + features.replace("avx512bf16", "avx512_bf16"))
    if not flags:
        get_level = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
        level = get_level() if get_level is not None else ""
        flags = {"AVX512": ("AVX2", "AVX-512"), "AVX2": ("AVX2",)}.get(str(level).upper(), ())
    model = _short_cpu_model(model or platform.processor() or platform.machine()) or "未知型号"
    return model, tuple(flags)


def device_name(device: torch.device | str) -> str:
    """人能读懂的设备名，例如 ``Tesla T4`` 或 ``cpu (Intel Xeon Platinum 8480+, 2 threads; AVX2, AVX-512, AMX)``。

    CPU 的名字写明型号、线程数与相关指令集标志：CPU 上的速度与精度选择都取决于它们，
    每个结果文件和总结行因此能说清是在哪种 CPU 上跑的。
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).name
    if device.type == "mps":
        return "Apple MPS"
    model, flags = cpu_info()
    features = f"; {', '.join(flags)}" if flags else ""
    return f"cpu ({model}, {torch.get_num_threads()} threads{features})"
