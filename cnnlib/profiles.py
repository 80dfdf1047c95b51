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

FULL_TRAIN, FULL_TEST = 60_000, 10_000
PROFILE_NAMES = ("full", "cpu", "smoke")

# cpu 配置下每个模型的（训练样本数, 测试样本数, 轮数）。按在 2 核 CPU（float32、
# channels_last）上实测的训练速度选取，使训练与评估合计不超过约 6 分钟：AlexNet 约 42 张/秒
# （benchmarks/results/alexnet-cpu.txt），其余按同一台机器上训练步的相对速度估计——
# VGG-11 约为 AlexNet 的 0.75 倍，NiN 1.3 倍，GoogLeNet 3.5 倍，ResNet-18 2 倍，
# DenseNet 2.3 倍，LeNet-BN 约 250 倍（所以它用全部数据）。
CPU_SIZES: dict[str, tuple[int, int, int]] = {
    "alexnet": (4_000, 500, 3),
    "vgg11": (2_800, 500, 3),
    "nin": (5_000, 500, 3),
    "googlenet": (10_000, 1_000, 3),
    "lenet_bn": (FULL_TRAIN, FULL_TEST, 10),
    "resnet18": (6_000, 1_000, 3),
    "densenet": (6_400, 1_000, 3),
}
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

    ``CPU_SIZES`` 是按一台带 AVX-512 的 2 核 CPU 选的；只有 AVX2 的 CPU 上同样的数据量要慢三四倍。
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


def get_profile(model: str, num_epochs: int = 10, name: str | None = None) -> RunProfile:
    """返回 ``model`` 在运行配置 ``name`` 下的数据量与轮数。

    Args:
        model: 模型名，``CPU_SIZES`` 中的一个，例如 ``"alexnet"``。
        num_epochs: 书中的轮数（``full`` 配置使用它）。
        name: ``"full"``、``"cpu"`` 或 ``"smoke"``；None 时见 :func:`default_profile_name`。
    """
    name = name or default_profile_name()
    if name not in PROFILE_NAMES:
        raise ValueError(f"运行配置 {name!r} 不存在：请用 {'、'.join(PROFILE_NAMES)} 之一"
                         "（检查参数 name 或环境变量 CNNLIB_PROFILE）。")
    if model not in CPU_SIZES:
        raise ValueError(f"模型名 {model!r} 没有运行配置：可用的有 {'、'.join(CPU_SIZES)}。")
    if name == "full":
        return RunProfile(name, model, FULL_TRAIN, FULL_TEST, num_epochs)
    num_train, num_test, epochs = CPU_SIZES[model] if name == "cpu" else SMOKE_SIZE
    if name == "cpu":
        fraction = cpu_fraction()
        num_train = max(SMOKE_SIZE[0], round(num_train * fraction))
        num_test = max(SMOKE_SIZE[1], round(num_test * fraction))
    return RunProfile(name, model, num_train, num_test, min(epochs, num_epochs))
