"""7.2 使用块的网络（VGG）。

Simonyan, Zisserman. Very Deep Convolutional Networks for Large-Scale Image
Recognition. ICLR 2015.
"""

from torch import nn

# VGG-11：五个块，每项是（卷积层数, 输出通道数）
VGG11_ARCH: tuple[tuple[int, int], ...] = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


def vgg_block(num_convs: int, in_channels: int, out_channels: int) -> nn.Sequential:
    """VGG 块：``num_convs`` 个 3×3 卷积（填充 1，尺寸不变）加一个 2×2 最大汇聚（尺寸减半）。"""
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        layers.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))
        layers.append(nn.ReLU())
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


def vgg(conv_arch, num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """由 ``conv_arch`` 描述的 VGG 网络，输入 224×224。

    Args:
        conv_arch: 每个块的（卷积层数, 输出通道数）。
        num_classes: 类别数。
        in_channels: 输入通道数。

    Returns:
        ``nn.Sequential``：若干 VGG 块，再接三个全连接层。
    """
    conv_blks = []
    for num_convs, out_channels in conv_arch:
        conv_blks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    # 五个块把 224 减半五次，剩 7×7。全连接层保持 4096 宽：即使卷积通道缩小了，
    # 书中的小 VGG 也只缩卷积通道（见 vgg11 的说明）
    # 与 torchvision 的 VGG 一样，分类器前的自适应汇聚层在 224×224 时什么也不做（7×7 进、7×7 出），
    # 输入更小时（如 cpu 配置）把特征图变成 7×7，全连接层不变
    return nn.Sequential(
        *conv_blks, nn.AdaptiveAvgPool2d((7, 7)), nn.Flatten(),
        nn.Linear(in_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, num_classes),
    )


def vgg11(ratio: int = 4, num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """书中训练用的小 VGG-11：卷积通道数除以 ``ratio``，全连接层仍是 4096。

    只缩卷积通道，是因为计算量几乎全在卷积层（与通道数的平方成正比），
    而全连接层的计算量本来就小。
    """
    if ratio < 1 or 64 % ratio:
        raise ValueError(f"ratio={ratio!r} 不可用：它必须是能整除 64 的正整数，例如 1、2、4、8。")
    small_arch = tuple((num_convs, channels // ratio) for num_convs, channels in VGG11_ARCH)
    return vgg(small_arch, num_classes=num_classes, in_channels=in_channels)
