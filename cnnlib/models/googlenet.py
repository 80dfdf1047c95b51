"""7.4 含并行连接的网络（GoogLeNet）。

Szegedy et al. Going Deeper with Convolutions. CVPR 2015.

与原论文的差别：按《动手学深度学习》省去了局部响应归一化和两个辅助分类器。
"""

import torch
from torch import nn
from torch.nn import functional as F


class Inception(nn.Module):
    """Inception 块：四条并行路径，在通道维上拼接。

    输出通道数是 ``c1 + c2[1] + c3[1] + c4``；四条路径都保持高和宽不变。

    Args:
        in_channels: 输入通道数。
        c1: 路径 1（1×1 卷积）的输出通道数。
        c2: 路径 2 的（1×1 降维通道数, 3×3 卷积输出通道数）。
        c3: 路径 3 的（1×1 降维通道数, 5×5 卷积输出通道数）。
        c4: 路径 4（3×3 最大汇聚后接 1×1 卷积）的输出通道数。
    """

    def __init__(self, in_channels: int, c1: int, c2: tuple[int, int],
                 c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        # 命名：p<路径>_<该路径的第几层>
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return torch.cat((p1, p2, p3, p4), dim=1)


def googlenet(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """GoogLeNet：五个模块 b1–b5 加一个全连接层。书中训练时输入 96×96。"""
    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(
        nn.Conv2d(64, 64, kernel_size=1), nn.ReLU(),
        nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b3 = nn.Sequential(
        Inception(192, 64, (96, 128), (16, 32), 32),     # 3a：64+128+32+32 = 256
        Inception(256, 128, (128, 192), (32, 96), 64),   # 3b：128+192+96+64 = 480
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b4 = nn.Sequential(
        Inception(480, 192, (96, 208), (16, 48), 64),    # 4a：192+208+48+64 = 512
        Inception(512, 160, (112, 224), (24, 64), 64),   # 4b：160+224+64+64 = 512
        Inception(512, 128, (128, 256), (24, 64), 64),   # 4c：128+256+64+64 = 512
        Inception(512, 112, (144, 288), (32, 64), 64),   # 4d：112+288+64+64 = 528
        Inception(528, 256, (160, 320), (32, 128), 128),  # 4e：256+320+128+128 = 832
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b5 = nn.Sequential(
        Inception(832, 256, (160, 320), (32, 128), 128),  # 5a：256+320+128+128 = 832
        Inception(832, 384, (192, 384), (48, 128), 128),  # 5b：384+384+128+128 = 1024
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())
    return nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(1024, num_classes))
