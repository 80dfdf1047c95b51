"""7.3 网络中的网络（NiN）。

Lin, Chen, Yan. Network In Network. ICLR 2014.
"""

from torch import nn


def nin_block(in_channels: int, out_channels: int, kernel_size: int, strides: int,
              padding: int) -> nn.Sequential:
    """NiN 块：一个普通卷积，后接两个 1×1 卷积（逐像素的全连接层），每层后面都有 ReLU。"""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )


def nin(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """NiN，输入 224×224。没有全连接层：最后一个块输出 ``num_classes`` 个通道，再做全局平均汇聚。"""
    return nn.Sequential(
        # 第一个块的填充是 0（与 AlexNet 的第一层不同）：224 -> 54
        nin_block(in_channels, 96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),  # N x 96 x 26 x 26
        nin_block(96, 256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),  # N x 256 x 12 x 12
        nin_block(256, 384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),  # N x 384 x 5 x 5
        # 与 d2l 相同，最后一个 NiN 块之前有暂退法
        nn.Dropout(0.5),
        nin_block(384, num_classes, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),  # N x num_classes x 1 x 1
        nn.Flatten(),
    )
