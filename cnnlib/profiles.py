"""运行配置（run profile）：同一本笔记本在 GPU、笔记本电脑 CPU 和 CI 上都能跑完。

运行配置只改变用多少数据、训练几轮，从不改变模型、分辨率、批量大小或学习率。

- ``full``：书中的设定，全部 60,000/10,000 张图像，10 轮。
- ``cpu``：同样的模型与分辨率，取各类均衡的子集，使每本笔记本在 2 核 CPU 上
  训练约 6 分钟以内。带批量规范化的网络（LeNet-BN、ResNet-18、DenseNet）在这点预算内
  就能学到有意义的准确率（用 ``CNNLIB_CPU_FRACTION`` 缩小数据量时未必）；没有批量规范化、
  用书中 lr 的深层网络（NiN、GoogLeNet）只做了一两百次参数更新，可能还停在起步的
  平台期，也可能在离开平台期后塌缩成只预测一个类别（见 7.3、7.4 节）。
- ``smoke``：几百张图像、1 轮，供 CI 检查笔记本能否运行。

有 GPU 时默认 ``full``，否则 ``cpu``；环境变量 ``CNNLIB_PROFILE`` 可以覆盖。
"""

import os
from dataclasses import dataclass

from cnnlib.device import try_gpu
from cnnlib.models import model_spec

FULL_TRAIN, FULL_TEST = 60_000, 10_000
PROFILE_NAMES = ("full", "cpu", "smoke")

SMOKE_SIZE = (256, 128, 1)


@dataclass(frozen=True)
class RunProfile:
    """一个模型在某个运行配置下的数据量与轮数。"""
    name: str
    model: str
    num_train: int
    num_test: int
    num_epochs: int

    def __str__(self) -> str:
        return (f"运行配置 {self.name}：训练集 {self.num_train:,}/{FULL_TRAIN:,} 张，"
                f"测试集 {self.num_test:,}/{FULL_TEST:,} 张，{self.num_epochs} 轮")


def default_profile_name() -> str:
    """``CNNLIB_PROFILE`` 优先；否则有 GPU 时为 ``full``，没有时为 ``cpu``。"""
    name = os.environ.get("CNNLIB_PROFILE", "").strip()
    if name:
        return name
    return "cpu" if try_gpu().type == "cpu" else "full"


def cpu_fraction() -> float:
    """环境变量 ``CNNLIB_CPU_FRACTION``（0 到 1，默认 1）：在较慢的 CPU 上按比例缩小 cpu 配置的数据量。

    cpu 配置的数据量（:data:`cnnlib.SPECS` 的 ``cpu``）是按一台带 AVX-512 的 2 核 CPU 选的，
    只有 AVX2 的 CPU 上同样的数据量要慢几倍（测量见 ``benchmarks/results/cpu-sizes.md``）。
    轮数不变；训练输出的配置行写明实际用了多少张。
    """
    raw = os.environ.get("CNNLIB_CPU_FRACTION", "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 1:
        raise ValueError(f"环境变量 CNNLIB_CPU_FRACTION={raw!r} 不可用：请设为 0 到 1 之间的小数，"
                         "例如 0.25；删掉它则用 cpu 配置的全部数据量。")
    return value


def get_profile(model: str, num_epochs: int | None = None, name: str | None = None) -> RunProfile:
    """返回 ``model`` 在运行配置 ``name`` 下的数据量与轮数。

    Args:
        model: 登记表 :data:`cnnlib.SPECS` 中的模型名，例如 ``"alexnet"``。
        num_epochs: 书中的轮数（``full`` 配置使用它）；None 时用登记表中的值。
        name: ``"full"``、``"cpu"`` 或 ``"smoke"``；None 时见 :func:`default_profile_name`。
    """
    spec = model_spec(model)
    name = name or default_profile_name()
    if name not in PROFILE_NAMES:
        raise ValueError(f"运行配置 {name!r} 不存在：请用 {'、'.join(PROFILE_NAMES)} 之一"
                         "（检查参数 name 或环境变量 CNNLIB_PROFILE）。")
    num_epochs = spec.num_epochs if num_epochs is None else num_epochs
    if name == "full":
        return RunProfile(name, model, FULL_TRAIN, FULL_TEST, num_epochs)
    if name == "smoke":
        return RunProfile(name, model, *SMOKE_SIZE[:2], min(SMOKE_SIZE[2], num_epochs))
    fraction = cpu_fraction()
    return RunProfile(name, model, max(SMOKE_SIZE[0], round(spec.cpu.num_train * fraction)),
                      max(SMOKE_SIZE[1], round(spec.cpu.num_test * fraction)),
                      min(spec.cpu.num_epochs, num_epochs))
