"""7.6 残差网络（ResNet）。

He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016.
"""

import torch
from torch import nn
from torch.nn import functional as F


class Residual(nn.Module):
    """残差块：``relu(g(x) + x)``，g 是两个 3×3 卷积（各带批量规范化）。

    Args:
        input_channels: 输入通道数。
        num_channels: 输出通道数。
        use_1x1conv: 输入与输出的形状不同（通道数变了，或步幅 > 1）时，
            捷径上用 1×1 卷积把 x 变成与 g(x) 相同的形状才能相加。
        strides: 第一个卷积（以及 1×1 捷径）的步幅。
    """

    def __init__(self, input_channels: int, num_channels: int, use_1x1conv: bool = False,
                 strides: int = 1) -> None:
        super().__init__()
        if not use_1x1conv and (input_channels != num_channels or strides != 1):
            raise ValueError(
                f"Residual({input_channels}, {num_channels}, strides={strides}) 的输入与输出形状不同，"
                "捷径上的 x 无法直接相加：请传 use_1x1conv=True。")
        # 卷积后紧跟批量规范化，卷积的偏置其实会被减均值抵消；与 d2l 一致保留它，参数量便于对照
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
                      if use_1x1conv else None)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)


def resnet_block(input_channels: int, num_channels: int, num_residuals: int,
                 first_block: bool = False) -> nn.Sequential:
    """由 ``num_residuals`` 个残差块组成的一个模块。

    除第一个模块外，每个模块的第一个残差块把通道数加倍、高和宽减半（用 1×1 捷径）。
    第一个模块紧跟在步幅为 2 的最大汇聚层之后，不再缩小尺寸。
    """
    blk: list[nn.Module] = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blk.append(Residual(num_channels, num_channels))
    return nn.Sequential(*blk)


def resnet18(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """ResNet-18：1 个 7×7 卷积 + 4 个模块 × 2 个残差块 × 2 个卷积 + 1 个全连接层 = 18 层。

    书中训练时输入 96×96。
    """
    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    return nn.Sequential(
        b1,
        resnet_block(64, 64, 2, first_block=True),
        resnet_block(64, 128, 2),
        resnet_block(128, 256, 2),
        resnet_block(256, 512, 2),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(512, num_classes),
    )
