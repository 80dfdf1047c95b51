"""运行配置（run profile）：同一本笔记本在 GPU、笔记本电脑 CPU 和 CI 上都能跑完，而且跑出有意义的结果。

- ``full``：书中的设定（登记表 :data:`cnnlib.SPECS`）：全部 60,000/10,000 张图像、书中的分辨率、批量与学习率、10 轮。
- ``cpu``：为没有 GPU 的 2 核 CPU 设计，让每个网络在约五分钟的训练里明显学到东西（登记表的 ``cpu``，
  :class:`cnnlib.models.CpuSetting`）：更小的输入分辨率（分类器前的自适应汇聚层或全局平均汇聚让网络接受它）、
  更小的批量（同样的计算量换来更多次参数更新）、各类均衡的训练子集与更少的轮数。模型和学习率不变。
  每项设定都按实测选取，见 ``benchmarks/results/cpu-sizes.md``。
- ``smoke``：几百张图像、1 轮，分辨率与批量同 ``cpu``，供 CI 检查笔记本能否运行。

有 GPU 时默认 ``full``，否则 ``cpu``；环境变量 ``CNNLIB_PROFILE`` 可以覆盖。形状追踪、参数量与 FLOPs 表、
示意图和完整结果始终按书中的设定给出；运行配置只决定这一次训练怎样跑。训练之后，:func:`describe_run`
从训练记录打印这一次做了多少次参数更新、用了多久、与书中设定有哪些不同。
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from cnnlib.data import TEXT_LABELS_ZH
from cnnlib.device import try_gpu
from cnnlib.models import model_spec
from cnnlib.results import BOOK_INIT

if TYPE_CHECKING:
    from cnnlib.history import History

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
    def updates(self) -> int:
        """这个配置一共做多少次参数更新（每轮 ⌈训练样本数 / 批量⌉ 次，最后一个批量可以不满）。"""
        return _per_epoch(self.num_train, self.batch_size) * self.num_epochs

    @property
    def is_book_setting(self) -> bool:
        """分辨率、批量与学习率都是书中的值（数据量与轮数可以不同）。"""
        spec = model_spec(self.model)
        return (self.resolution, self.batch_size, self.lr) == (spec.resolution, spec.batch_size, spec.lr)

    def __str__(self) -> str:
        line = (f"运行配置 {self.name}：训练集 {self.num_train:,}/{FULL_TRAIN:,} 张，"
                f"测试集 {self.num_test:,}/{FULL_TEST:,} 张，{self.num_epochs} 轮，"
                f"输入 {self.resolution}×{self.resolution}，批量 {self.batch_size}，学习率 {self.lr:g}，"
                f"共 {self.updates:,} 次参数更新")
        spec = model_spec(self.model)
        changed = [f"输入 {spec.resolution}×{spec.resolution}"] if self.resolution != spec.resolution else []
        changed += [f"批量 {spec.batch_size}"] if self.batch_size != spec.batch_size else []
        if changed:
            line += f"\n  与书中设定（{'、'.join(changed)}）不同：{self.why}"
        if self.fraction != 1:
            line += f"\n  CNNLIB_CPU_FRACTION={self.fraction:g}：数据量按这个比例缩小了（轮数不变）"
        return line


def _per_epoch(num_train: int, batch_size: int) -> int:
    """每轮的参数更新次数 ⌈训练样本数 / 批量⌉：最后一个批量可以不满，也做一次更新。"""
    return -(-num_train // batch_size)


class RunReport(NamedTuple):
    """:func:`describe_run` 的结果。"""
    updates: int            # 一共做了多少次参数更新
    differences: list[str]  # 与书中设定不同的各项；空列表表示这次运行就是书中的设定
    lines: list[str]        # 打印的几行


def describe_run(history: History, profile: RunProfile) -> RunReport:
    """打印一次训练做了多少次参数更新、用了多久、在哪台设备上，以及它与书中设定有哪些不同。

    每一项都从训练记录 ``history`` 读出（它记下了实际的数据量、轮数、分辨率、批量、学习率与初始化）；
    较早的记录没有分辨率、批量或学习率时，改用 ``profile`` 的值。书中设定来自登记表（``profile.model``）。
    每轮的参数更新次数是 ⌈训练样本数 / 批量⌉（分布式训练时两者都是各进程之和）。

    Args:
        history: :func:`cnnlib.train` 返回的记录。
        profile: 这次训练用的运行配置（:func:`get_profile`），它指明是哪个模型。

    Returns:
        :class:`RunReport`：参数更新次数、与书中设定不同的各项与打印的几行。
    """
    if not history.epochs:
        raise ValueError("这份训练记录是空的（没有完成任何一轮），没有可以描述的运行：请先训练至少一轮。")
    spec = model_spec(profile.model)
    resolution = history.resolution or profile.resolution
    batch_size = history.batch_size or profile.batch_size
    lr = profile.lr if history.lr is None else history.lr
    per_epoch = _per_epoch(history.num_train, batch_size)
    updates = per_epoch * history.epochs
    stopped = "；训练被中断" if history.interrupted else ""
    lines = [f"本次运行（{history.device}，{history.precision or 'fp32'}，运行配置 {history.profile or profile.name}）："
             f"训练 {history.num_train:,} 张 × {history.epochs} 轮，批量 {batch_size}：每轮 {per_epoch} 个小批量，"
             f"共 {updates:,} 次参数更新；总墙钟时间 {history.wall_time:.0f} 秒（含取数据与评估）{stopped}"]
    num_classes = len(TEXT_LABELS_ZH)
    lines.append(f"逐轮的训练损失 {'、'.join(f'{l:.3f}' for l in history.train_loss)}"
                 f"（ln {num_classes} ≈ {math.log(num_classes):.3f} 是对 {num_classes} 类均匀猜测的损失）；"
                 f"最后一轮的测试准确率 {history.test_acc[-1]:.3f}（随机猜测约 {1 / num_classes:.1f}）")
    differences = []
    if history.total_train and history.num_train < history.total_train:
        differences.append(f"训练集 {history.num_train:,}/{history.total_train:,} 张")
    if history.total_test and history.num_test < history.total_test:
        differences.append(f"测试集 {history.num_test:,}/{history.total_test:,} 张")
    if history.epochs != spec.num_epochs:
        differences.append(f"{history.epochs} 轮（书中 {spec.num_epochs} 轮）")
    if resolution != spec.resolution:
        differences.append(f"输入 {resolution}×{resolution}（书中 {spec.resolution}×{spec.resolution}）")
    if batch_size != spec.batch_size:
        differences.append(f"批量 {batch_size}（书中 {spec.batch_size}）")
    if lr != spec.lr:
        differences.append(f"学习率 {lr:g}（书中 {spec.lr:g}）")
    if history.init is not None and history.init != BOOK_INIT:
        differences.append(f"初始化 {history.init}（书中 {BOOK_INIT}）")
    if differences:
        lines.append("与书中设定不同：" + "；".join(differences)
                     + "。所以它的测试准确率不能与书中设定的结果或别人报告的值直接比较。")
    else:
        lines.append("这次运行就是书中的设定：测试准确率可以与书中设定的结果和别人报告的值比较"
                     "（比较时要考虑单次运行最后一轮的起伏，见本节的种子表）。")
    print("\n".join(lines))
    return RunReport(updates, differences, lines)


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
