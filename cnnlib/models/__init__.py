"""第 7 章的七个网络（每节一个模块），以及本书唯一的模型登记表 :data:`SPECS`。

登记表记下每个模型在书中怎样训练（分辨率、学习率、批量、轮数）、cpu 配置的数据量和别人报告的结果。
命令行、运行配置、结果文件、对比页、测速脚本、测试与笔记本都从这里读，不另抄一份。
加一个模型（例如 ResNet-34 作为练习）= 写它的模块，再在 ``SPECS`` 里加一项。
"""

from dataclasses import dataclass
from typing import Callable

from torch import nn

from cnnlib.models.alexnet import alexnet
from cnnlib.models.batchnorm import BatchNorm, batch_norm, lenet_bn
from cnnlib.models.densenet import DenseBlock, conv_block, densenet, transition_block
from cnnlib.models.googlenet import Inception, googlenet
from cnnlib.models.nin import nin, nin_block
from cnnlib.models.resnet import Residual, conv_stack, plain_block, resnet18, resnet_block
from cnnlib.models.vgg import VGG11_ARCH, vgg, vgg11, vgg_block


@dataclass(frozen=True)
class CpuSetting:
    """cpu 配置：没有 GPU 的 2 核 CPU 上，网络在约五分钟的训练里明显学到东西的设定（见 :mod:`cnnlib.profiles`）。

    与书中设定相比可以换更小的输入分辨率与批量、只取一部分训练数据、少训练几轮；模型与学习率不变。
    每一项都按实测选取（``benchmarks/cpu_sizes.py`` 与 ``benchmarks/results/cpu-sizes.md``）。
    """
    resolution: int
    batch_size: int
    num_train: int
    num_test: int
    num_epochs: int
    why: str  # 一句话：为什么这样改（训练单元格的配置行会打印它）


@dataclass(frozen=True)
class Reported:
    """别人在其他 GPU 上、同样设定、全部数据训练 10 轮后的测试准确率。

    ``notes``：教学大纲作者的一次运行（GPU 型号不明），``notes_speed`` 是它的 examples/sec（只计训练步）；
    ``d2l``：《动手学深度学习》中文版 PyTorch 笔记本的输出（数字，或几种实现并列时的一段文字）。
    """
    notes: float
    notes_speed: float
    d2l: float | str
    source: str = "教学大纲 README 的结果表；d2l-zh 2.0 PyTorch 版第 7 章各节的训练输出"


@dataclass(frozen=True)
class ModelSpec:
    """一个模型在书中的全部设定。"""
    name: str           # 结果文件、命令行用的名字，例如 "resnet18"
    title: str          # 显示名，例如 "ResNet-18"
    section: str        # 章节号，例如 "7.6"
    notebook: str       # notebooks/ 下的文件名（不带 .ipynb）
    factory: Callable[..., nn.Module]
    resolution: int     # 训练时的输入分辨率（28 表示不缩放）
    lr: float
    batch_size: int
    cpu: CpuSetting
    reported: Reported
    params: int         # 可训练参数个数，按层公式手算（tests/test_models.py 与 count_parameters 核对）
    num_epochs: int = 10

    @property
    def resize(self) -> int | None:
        """传给 :func:`cnnlib.load_fashion_mnist` 的 ``resize``：28 时为 None（不缩放）。"""
        return None if self.resolution == 28 else self.resolution

    def __str__(self) -> str:
        return (f"{self.section} {self.title} 的书中设定：输入 {self.resolution}×{self.resolution}，"
                f"学习率 {self.lr:g}，批量 {self.batch_size}，{self.num_epochs} 轮")


# cpu 配置（CpuSetting）按 2 核 CPU 上的实测选取：训练约五分钟以内，网络明显学到东西（benchmarks/cpu_sizes.py，
# 试过的设定与结果见 benchmarks/results/cpu-sizes.md）。LeNet-BN 快两个数量级，所以就用书中的设定。
# 为什么换小输入与小批量（训练单元格的配置行打印它）：
_WHY = ("2 核 CPU 上，书中的输入与批量几分钟只够做几十次参数更新，不带批量规范化的网络这时还停在起步的平台期；"
        "更小的输入与批量让同样的时间做几百次更新")
_WHY_NIN = ("2 核 CPU 上，书中的输入与批量几分钟只够做几十次参数更新，NiN 还停在起步的平台期；输入 72×72（最后一个"
            " NiN 块的特征图是 1×1）、批量 64 时同样的时间能做近两千次更新（批量 32 时 lr 0.1 的训练常常塌缩）")
_WHY_BN = ("2 核 CPU 上，书中的输入与批量几分钟只够做几十次参数更新，批量规范化在预测时用的移动平均还跟不上，"
           "测试准确率远低于训练准确率；更小的输入与批量让同样的时间做几百次更新")

SPECS: dict[str, ModelSpec] = {s.name: s for s in (
    ModelSpec("alexnet", "AlexNet", "7.1", "alexnet", alexnet, 224, 0.01, 128,
              CpuSetting(96, 32, 8_000, 1_000, 3, _WHY), Reported(0.880, 407.4, 0.883), params=46_764_746),
    ModelSpec("vgg11", "VGG-11", "7.2", "vgg", vgg11, 224, 0.05, 128,
              CpuSetting(96, 32, 8_000, 1_000, 3, _WHY), Reported(0.917, 333.2, 0.920), params=43_093_322),
    ModelSpec("nin", "NiN", "7.3", "nin", nin, 224, 0.1, 128,
              CpuSetting(72, 64, 40_000, 1_000, 3, _WHY_NIN), Reported(0.885, 385.2, 0.790), params=1_992_166),
    ModelSpec("googlenet", "GoogLeNet", "7.4", "googlenet", googlenet, 96, 0.1, 128,
              CpuSetting(64, 32, 12_800, 1_000, 3, _WHY), Reported(0.864, 601.7, 0.886), params=5_977_530),
    ModelSpec("lenet_bn", "LeNet-BN", "7.5", "batch-norm", lenet_bn, 28, 1.0, 256,
              CpuSetting(28, 256, 60_000, 10_000, 10, ""),
              Reported(0.842, 21184.6, "0.807（从零实现）/ 0.708（nn.BatchNorm）"), params=44_878),
    ModelSpec("resnet18", "ResNet-18", "7.6", "resnet", resnet18, 96, 0.05, 256,
              CpuSetting(64, 64, 10_240, 1_000, 3, _WHY_BN), Reported(0.906, 828.8, 0.893), params=11_178_378),
    ModelSpec("densenet", "DenseNet", "7.7", "densenet", densenet, 96, 0.1, 256,
              CpuSetting(64, 64, 20_480, 1_000, 3, _WHY_BN), Reported(0.909, 820.2, 0.885), params=758_226),
)}


def model_spec(name: str) -> ModelSpec:
    """登记表中 ``name`` 的设定；名字不对时给出可用的名字。"""
    if name not in SPECS:
        raise ValueError(f"没有名为 {name!r} 的模型：可用的有 {'、'.join(SPECS)}。"
                         "要加新模型，请在 cnnlib/models/__init__.py 的 SPECS 里登记。")
    return SPECS[name]


__all__ = [
    "SPECS", "model_spec",
    "alexnet",
    "vgg_block", "vgg", "vgg11", "VGG11_ARCH",
    "nin_block", "nin",
    "Inception", "googlenet",
    "batch_norm", "BatchNorm", "lenet_bn",
    "Residual", "resnet_block", "resnet18", "plain_block", "conv_stack",
    "conv_block", "DenseBlock", "transition_block", "densenet",
]
