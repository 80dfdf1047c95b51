"""7.1 AlexNet。

Krizhevsky, Sutskever, Hinton. ImageNet Classification with Deep Convolutional
Neural Networks. NeurIPS 2012.

与原论文的差别：Fashion-MNIST 是单通道灰度图，类别只有 10 个；原论文把网络拆在两块
GPU 上，还用了局部响应归一化（LRN），这里按《动手学深度学习》的做法都省去了。
"""

from torch import nn


def alexnet(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """AlexNet，输入 224×224。

    Args:
        num_classes: 类别数。
        in_channels: 输入通道数（灰度图为 1）。

    Returns:
        可以逐层遍历的 ``nn.Sequential``。
    """
    return nn.Sequential(
        # 大卷积核、大步幅：先把 224×224 迅速缩小到 54×54
        nn.Conv2d(in_channels, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),  # N x 96 x 26 x 26
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),  # N x 256 x 12 x 12
        # 三个 3×3 卷积，不再缩小尺寸，只加深
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),  # N x 256 x 5 x 5
        # 与 torchvision 的 AlexNet 一样，在分类器前放一个自适应汇聚层：224×224 时它什么也不做（5×5 进、5×5 出），
        # 输入更小时（如 cpu 配置的 96×96）把特征图变成 5×5，全连接层不变
        nn.AdaptiveAvgPool2d((5, 5)),
        nn.Flatten(),
        # 全连接层占了绝大部分参数，用暂退法（dropout）抑制过拟合
        nn.Linear(256 * 5 * 5, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, num_classes),
    )
