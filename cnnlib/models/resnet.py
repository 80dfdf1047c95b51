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


# ---------------------------------------------------------------------------
# 退化（degradation）实验：同样的窄网络，有捷径与没有捷径各一份
# ---------------------------------------------------------------------------

def plain_block(input_channels: int, num_channels: int, strides: int = 1) -> nn.Sequential:
    """普通块：与 :class:`Residual` 的残差分支完全相同的两个 3×3 卷积（各带批量规范化），但没有捷径。

    ``Residual`` 计算 ``relu(g(x) + x)``，普通块计算 ``relu(g(x))``：层、参数和 ReLU 的位置都一样，
    只少了那次加法。这正是 He 等人 2016 年论文中“普通网络”（plain network）与残差网络的对照方式。
    """
    return nn.Sequential(
        nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides),
        nn.BatchNorm2d(num_channels), nn.ReLU(),
        nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(num_channels), nn.ReLU())


def conv_stack(num_convs: int, residual: bool, channels: int = 16, num_classes: int = 10,
               in_channels: int = 1) -> nn.Sequential:
    """退化实验用的窄网络：``num_convs`` 个 3×3 卷积组成的两段，有或没有捷径。

    He, Zhang, Ren, Sun (CVPR 2016) 第 4.1、4.2 节把同样深的普通网络与残差网络放在一起比较：
    在 CIFAR-10（图 1、图 6）与 ImageNet（图 4、表 2）上，更深的普通网络的**训练**误差反而更高，
    加上捷径之后更深的网络不再更差。这里按它的 CIFAR-10 网络缩小成适合 28×28 Fashion-MNIST、
    能在 CPU 上几分钟训完的版本：

    - 开头：3×3 卷积（``in_channels`` → ``channels``）+ 批量规范化 + ReLU；
    - 第一段：``num_convs // 4`` 个块，``channels`` 通道，28×28；
    - 第二段：``num_convs // 4`` 个块，第一个块用步幅 2 把高宽减半、通道加倍（14×14）；
    - 全局平均汇聚 + 全连接层。

    每个块是两个 3×3 卷积：``residual=True`` 时是 :class:`Residual`，否则是 :func:`plain_block`。
    两种网络的层完全相同，唯一的例外是下采样块：残差版的捷径要用 1×1 卷积对齐形状（论文的选项 B），
    多出这个 1×1 卷积的 ``2·channels² + 2·channels`` 个权重与偏置。论文做这组对照时用的是不带参数的
    补零捷径（选项 A）；这里为了复用本节的 ``Residual`` 而用 1×1 卷积。

    Args:
        num_convs: 块中 3×3 卷积的总数，须是 4 的正整数倍（每段 ``num_convs // 4`` 个块，每块 2 个卷积）。
            主路径上带权重的层共 ``num_convs + 2`` 个：块中的卷积，加上开头的卷积与最后的全连接层。
        residual: True 为残差网络，False 为普通网络。
        channels: 第一段的通道数，第二段加倍。
        num_classes: 类别数。
        in_channels: 输入通道数。

    Returns:
        ``nn.Sequential``：``[开头, 第一段, 第二段, 全局平均汇聚, 展平, 全连接]``。
    """
    if not isinstance(num_convs, int) or num_convs < 4 or num_convs % 4:
        raise ValueError(f"num_convs={num_convs!r} 不可用：它必须是 4 的正整数倍（例如 8 或 32），"
                         "两段各用 num_convs // 4 个块，每块 2 个卷积。")
    num_blocks = num_convs // 4

    def block(c_in: int, c_out: int, strides: int) -> nn.Module:
        if not residual:
            return plain_block(c_in, c_out, strides)
        shape_changes = c_in != c_out or strides != 1
        return Residual(c_in, c_out, use_1x1conv=shape_changes, strides=strides)

    stem = nn.Sequential(nn.Conv2d(in_channels, channels, kernel_size=3, padding=1),
                         nn.BatchNorm2d(channels), nn.ReLU())
    stage1 = nn.Sequential(*[block(channels, channels, 1) for _ in range(num_blocks)])
    stage2 = nn.Sequential(block(channels, 2 * channels, 2),
                           *[block(2 * channels, 2 * channels, 1) for _ in range(num_blocks - 1)])
    return nn.Sequential(
        stem,    # N x c x 28 x 28
        stage1,  # N x c x 28 x 28
        stage2,  # N x 2c x 14 x 14
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(2 * channels, num_classes),
    )
