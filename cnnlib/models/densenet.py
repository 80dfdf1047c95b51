"""7.7 稠密连接网络（DenseNet）。

Huang, Liu, van der Maaten, Weinberger. Densely Connected Convolutional
Networks. CVPR 2017.
"""

import torch
from torch import nn


def conv_block(input_channels: int, num_channels: int) -> nn.Sequential:
    """ResNet 改良版的“批量规范化 → ReLU → 3×3 卷积”结构。"""
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    """稠密块：每个卷积块的输入是前面所有输出在通道维上的拼接。

    输出通道数 = ``input_channels + num_convs * num_channels``，
    ``num_channels`` 叫作增长率（growth rate）。
    """

    def __init__(self, num_convs: int, input_channels: int, num_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(*[
            conv_block(input_channels + i * num_channels, num_channels) for i in range(num_convs)])

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        for blk in self.net:
            Y = blk(X)
            X = torch.cat((X, Y), dim=1)  # 拼接而不是相加：这是与 ResNet 的关键区别
        return X


def transition_block(input_channels: int, num_channels: int) -> nn.Sequential:
    """过渡层：1×1 卷积减少通道数，2×2 平均汇聚把高和宽减半。"""
    return nn.Sequential(
        nn.BatchNorm2d(input_channels), nn.ReLU(),
        nn.Conv2d(input_channels, num_channels, kernel_size=1),
        nn.AvgPool2d(kernel_size=2, stride=2))


def densenet(num_classes: int = 10, in_channels: int = 1, growth_rate: int = 32,
             num_convs_in_dense_blocks: tuple[int, ...] = (4, 4, 4, 4)) -> nn.Sequential:
    """DenseNet：与 ResNet 相同的 b1，四个稠密块，块间用过渡层把通道数减半。书中训练时输入 96×96。"""
    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    num_channels = 64
    blks: list[nn.Module] = []
    for i, num_convs in enumerate(num_convs_in_dense_blocks):
        blks.append(DenseBlock(num_convs, num_channels, growth_rate))
        num_channels += num_convs * growth_rate
        if i != len(num_convs_in_dense_blocks) - 1:
            blks.append(transition_block(num_channels, num_channels // 2))
            num_channels //= 2
    return nn.Sequential(
        b1, *blks,
        nn.BatchNorm2d(num_channels), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(num_channels, num_classes),
    )
