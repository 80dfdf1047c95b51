"""运行配置（run profile）：同一本笔记本在 GPU、笔记本电脑 CPU 和 CI 上都能跑完，而且跑出有意义的结果。

- ``full``：书中的设定（登记表 :data:`cnnlib.SPECS`）：全部 60,000/10,000 张图像、书中的分辨率、批量与学习率、10 轮。
- ``cpu``：为没有 GPU 的 2 核 CPU 设计，让每个网络在约五分钟的训练里明显学到东西（登记表的 ``cpu``，
  :class:`cnnlib.models.CpuSetting`）：更小的输入分辨率（分类器前的自适应汇聚层或全局平均汇聚让网络接受它）、
  更小的批量（同样的计算量换来更多次参数更新）、各类均衡的训练子集与更少的轮数。模型和学习率不变。
  每项设定都按实测选取，见 ``benchmarks/results/cpu-sizes.md``。
- ``smoke``：几百张图像、1 轮，分辨率与批量同 ``cpu``，供 CI 检查笔记本能否运行。

有 GPU 时默认 ``full``，否则 ``cpu``；环境变量 ``CNNLIB_PROFILE`` 可以覆盖。形状追踪、参数量与 FLOPs 表、
示意图和完整结果始终按书中的设定给出；运行配置只决定这一次训练怎样跑。
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
    """一个模型在某个运行配置下怎样训练：数据量、轮数、输入分辨率、批量与学习率。"""
    name: str
    model: str
    num_train: int
    num_test: int
    num_epochs: int
    resolution: int
    batch_size: int
    lr: float
    why: str = ""          # 与书中设定不同的原因（cpu 配置）
    fraction: float = 1.0  # CNNLIB_CPU_FRACTION（只作用于 cpu 配置）

    @property
    def resize(self) -> int | None:
        """传给 :func:`cnnlib.load_fashion_mnist` 的 ``resize``：28 时为 None（不缩放）。"""
        return None if self.resolution == 28 else self.resolution

    @property
    def is_book_setting(self) -> bool:
        """分辨率、批量与学习率都是书中的值（数据量与轮数可以不同）。"""
        spec = model_spec(self.model)
        return (self.resolution, self.batch_size, self.lr) == (spec.resolution, spec.batch_size, spec.lr)

    def __str__(self) -> str:
        line = (f"运行配置 {self.name}：训练集 {self.num_train:,}/{FULL_TRAIN:,} 张，"
                f"测试集 {self.num_test:,}/{FULL_TEST:,} 张，{self.num_epochs} 轮，"
                f"输入 {self.resolution}×{self.resolution}，批量 {self.batch_size}，学习率 {self.lr:g}")
        spec = model_spec(self.model)
        changed = [f"输入 {spec.resolution}×{spec.resolution}"] if self.resolution != spec.resolution else []
        changed += [f"批量 {spec.batch_size}"] if self.batch_size != spec.batch_size else []
        if changed:
            line += f"\n  与书中设定（{'、'.join(changed)}）不同：{self.why}"
        if self.fraction != 1:
            line += f"\n  CNNLIB_CPU_FRACTION={self.fraction:g}：数据量按这个比例缩小了（轮数不变）"
        return line


def default_profile_name() -> str:
    """``CNNLIB_PROFILE`` 优先；否则有 GPU 时为 ``full``，没有时为 ``cpu``。"""
    name = os.environ.get("CNNLIB_PROFILE", "").strip()
    if name:
        return name
    return "cpu" if try_gpu().type == "cpu" else "full"


def cpu_fraction() -> float:
    """环境变量 ``CNNLIB_CPU_FRACTION``（0 到 1，默认 1）：在较慢的 CPU 上按比例缩小 cpu 配置的数据量。

    cpu 配置（:data:`cnnlib.SPECS` 的 ``cpu``）是在一台 2 核 CPU 上实测选的（哪台 CPU、多快，见
    ``benchmarks/results/cpu-sizes.md``）；更慢的 CPU 上可以用它缩短训练，代价是参数更新次数也随之减少。
    轮数不变；训练输出的配置行写明比例与实际用了多少张。
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
    """返回 ``model`` 在运行配置 ``name`` 下怎样训练。

    Args:
        model: 登记表 :data:`cnnlib.SPECS` 中的模型名，例如 ``"alexnet"``。
        num_epochs: 书中的轮数（``full`` 配置使用它；``cpu``、``smoke`` 不超过各自的轮数）；
            None 时用登记表中的值。
        name: ``"full"``、``"cpu"`` 或 ``"smoke"``；None 时见 :func:`default_profile_name`。
    """
    spec = model_spec(model)
    name = name or default_profile_name()
    if name not in PROFILE_NAMES:
        raise ValueError(f"运行配置 {name!r} 不存在：请用 {'、'.join(PROFILE_NAMES)} 之一"
                         "（检查参数 name 或环境变量 CNNLIB_PROFILE）。")
    num_epochs = spec.num_epochs if num_epochs is None else num_epochs
    if name == "full":
        return RunProfile(name, model, FULL_TRAIN, FULL_TEST, num_epochs, spec.resolution, spec.batch_size, spec.lr)
    cpu = spec.cpu
    if name == "smoke":
        return RunProfile(name, model, *SMOKE_SIZE[:2], min(SMOKE_SIZE[2], num_epochs), cpu.resolution,
                          cpu.batch_size, spec.lr, why=cpu.why)
    fraction = cpu_fraction()
    return RunProfile(name, model, max(SMOKE_SIZE[0], round(cpu.num_train * fraction)),
                      max(SMOKE_SIZE[1], round(cpu.num_test * fraction)),
                      min(cpu.num_epochs, num_epochs), cpu.resolution, cpu.batch_size, spec.lr,
                      why=cpu.why, fraction=fraction)
