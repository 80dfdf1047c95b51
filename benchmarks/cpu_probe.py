"""在本机 CPU 上运行 cnnlib 选择精度用的探针，并打印 CPU 的相关指令集标志。

    python benchmarks/cpu_probe.py

``amp="auto"`` 在 CPU 上就是按这个探针选择 bf16 或 float32（见 ``cnnlib.speed.probe_cpu_bf16``）；
设了环境变量 ``CNNLIB_AMP`` 时由它决定，最后一行会说明。``tests/test_train.py`` 运行这个脚本。
"""

import os
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import cnnlib  # noqa: E402
from cnnlib.speed import BF16_MIN_SPEEDUP  # noqa: E402

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_description() -> str:
    """CPU 型号与本书关心的指令集标志（读 /proc/cpuinfo；其他系统上只给 platform 的描述）。"""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.startswith("flags")), []))
    return f"{model}；标志 " + " ".join(f"{f}{'✓' if f in flags else '✗'}" for f in FLAGS)


def main() -> int:
    print(f"CPU：{cpu_description()}；torch {torch.__version__}，{torch.get_num_threads()} 个线程")
    probe = cnnlib.probe_cpu_bf16()
    amp, _ = cnnlib.resolve_speed_options(torch.device("cpu"))
    print(f"探针（3×3 卷积 8×32×28×28 前向+反向，交替、取最快）：fp32 {probe['fp32'] * 1e3:.2f} ms，"
          f"bf16 {probe['bf16'] * 1e3:.2f} ms，bf16 快 {probe['speedup']:.2f} 倍")
    forced = os.environ.get("CNNLIB_AMP", "").strip()
    why = f"环境变量 CNNLIB_AMP={forced} 决定，不看探针" if forced else f"阈值 {BF16_MIN_SPEEDUP} 倍"
    print(f"{why} → amp=\"auto\" 选择 {amp or 'fp32'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
