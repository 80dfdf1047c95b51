"""cnnlib 的七个网络与《动手学深度学习》第 7 章的层列表逐元素一致（拷贝同一组权重之后）。

参照网络在本文件里按教学大纲中 d2l 的代码重新写出，只用 ``torch.nn``，不调用 cnnlib。与大纲的差别都是书中说明过的：
大纲的 NiN 少了最后一个 NiN 块之前的暂退层（d2l 原书有）、GoogLeNet 路径 4 写成了 ``c4[0]``、
简明版批量规范化多传了 ``num_dims=``（``nn.BatchNorm2d`` 没有这个参数），这里都按 d2l 原书写。

AlexNet 与 VGG 在 cnnlib 中多了一个分类器前的 ``nn.AdaptiveAvgPool2d``（与 torchvision 相同，让 cpu 配置的小输入
也能用同样的全连接层）：参照网络没有这一层，所以 224×224 时两者逐元素相等就说明这一层在书的分辨率下什么也不做。

形状相同、参数量相同的改动（例如 AlexNet 第一层的填充 1 改成 0，输出仍是 54×54；汇聚窗口 3 改成 4）只有在这里才看得出来：
输出的数值变了。
"""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import cnnlib


# ---------------------------------------------------------------------------
# d2l 第 7 章的网络（单通道输入、10 类）
# ---------------------------------------------------------------------------
def d2l_alexnet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Flatten(),
        nn.Linear(6400, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(p=0.5),
        nn.Linear(4096, 10))


def d2l_vgg11(ratio: int = 4) -> nn.Sequential:
    def vgg_block(num_convs, in_channels, out_channels):
        layers = []
        for _ in range(num_convs):
            layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), nn.ReLU()]
            in_channels = out_channels
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        return nn.Sequential(*layers)

    conv_arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
    small_conv_arch = [(pair[0], pair[1] // ratio) for pair in conv_arch]
    conv_blks, in_channels = [], 1
    for num_convs, out_channels in small_conv_arch:
        conv_blks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
    return nn.Sequential(
        *conv_blks, nn.Flatten(),
        nn.Linear(out_channels * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 10))


def d2l_nin() -> nn.Sequential:
    def nin_block(in_channels, out_channels, kernel_size, strides, padding):
        return nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size, strides, padding), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU())

    return nn.Sequential(
        nin_block(1, 96, kernel_size=11, strides=4, padding=0),
        nn.MaxPool2d(3, stride=2),
        nin_block(96, 256, kernel_size=5, strides=1, padding=2),
        nn.MaxPool2d(3, stride=2),
        nin_block(256, 384, kernel_size=3, strides=1, padding=1),
        nn.MaxPool2d(3, stride=2),
        nn.Dropout(0.5),
        nin_block(384, 10, kernel_size=3, strides=1, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten())


class D2lInception(nn.Module):
    def __init__(self, in_channels, c1, c2, c3, c4):
        super().__init__()
        self.p1_1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.p2_1 = nn.Conv2d(in_channels, c2[0], kernel_size=1)
        self.p2_2 = nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1)
        self.p3_1 = nn.Conv2d(in_channels, c3[0], kernel_size=1)
        self.p3_2 = nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2)
        self.p4_1 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.p4_2 = nn.Conv2d(in_channels, c4, kernel_size=1)

    def forward(self, x):
        p1 = F.relu(self.p1_1(x))
        p2 = F.relu(self.p2_2(F.relu(self.p2_1(x))))
        p3 = F.relu(self.p3_2(F.relu(self.p3_1(x))))
        p4 = F.relu(self.p4_2(self.p4_1(x)))
        return torch.cat((p1, p2, p3, p4), dim=1)


def d2l_googlenet() -> nn.Sequential:
    b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b2 = nn.Sequential(nn.Conv2d(64, 64, kernel_size=1), nn.ReLU(),
                       nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b3 = nn.Sequential(D2lInception(192, 64, (96, 128), (16, 32), 32),
                       D2lInception(256, 128, (128, 192), (32, 96), 64),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b4 = nn.Sequential(D2lInception(480, 192, (96, 208), (16, 48), 64),
                       D2lInception(512, 160, (112, 224), (24, 64), 64),
                       D2lInception(512, 128, (128, 256), (24, 64), 64),
                       D2lInception(512, 112, (144, 288), (32, 64), 64),
                       D2lInception(528, 256, (160, 320), (32, 128), 128),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    b5 = nn.Sequential(D2lInception(832, 256, (160, 320), (32, 128), 128),
                       D2lInception(832, 384, (192, 384), (48, 128), 128),
                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())
    return nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(1024, 10))


def d2l_lenet_bn() -> nn.Sequential:
    """7.5.5 的简明实现（去掉大纲里多余的 ``num_dims=``）。"""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5), nn.BatchNorm2d(6), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.BatchNorm2d(16), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), nn.BatchNorm1d(120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.BatchNorm1d(84), nn.Sigmoid(),
        nn.Linear(84, 10))


class D2lResidual(nn.Module):
    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
        self.conv3 = (nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
                      if use_1x1conv else None)
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3 is not None:
            X = self.conv3(X)
        return F.relu(Y + X)


def d2l_resnet18() -> nn.Sequential:
    def resnet_block(input_channels, num_channels, num_residuals, first_block=False):
        blk = []
        for i in range(num_residuals):
            if i == 0 and not first_block:
                blk.append(D2lResidual(input_channels, num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(D2lResidual(num_channels, num_channels))
        return blk

    b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    return nn.Sequential(b1,
                         nn.Sequential(*resnet_block(64, 64, 2, first_block=True)),
                         nn.Sequential(*resnet_block(64, 128, 2)),
                         nn.Sequential(*resnet_block(128, 256, 2)),
                         nn.Sequential(*resnet_block(256, 512, 2)),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))


class D2lDenseBlock(nn.Module):
    def __init__(self, num_convs, input_channels, num_channels):
        super().__init__()
        self.net = nn.Sequential(*[
            nn.Sequential(nn.BatchNorm2d(num_channels * i + input_channels), nn.ReLU(),
                          nn.Conv2d(num_channels * i + input_channels, num_channels, kernel_size=3, padding=1))
            for i in range(num_convs)])

    def forward(self, X):
        for blk in self.net:
            X = torch.cat((X, blk(X)), dim=1)
        return X


def d2l_densenet() -> nn.Sequential:
    def transition_block(input_channels, num_channels):
        return nn.Sequential(nn.BatchNorm2d(input_channels), nn.ReLU(),
                             nn.Conv2d(input_channels, num_channels, kernel_size=1),
                             nn.AvgPool2d(kernel_size=2, stride=2))

    b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
                       nn.BatchNorm2d(64), nn.ReLU(),
                       nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    num_channels, growth_rate, blks = 64, 32, []
    for i, num_convs in enumerate([4, 4, 4, 4]):
        blks.append(D2lDenseBlock(num_convs, num_channels, growth_rate))
        num_channels += num_convs * growth_rate
        if i != 3:
            blks.append(transition_block(num_channels, num_channels // 2))
            num_channels //= 2
    return nn.Sequential(b1, *blks, nn.BatchNorm2d(num_channels), nn.ReLU(),
                         nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(num_channels, 10))


# 模型名 -> 参照网络；模型名与 cnnlib.SPECS 一一对应（下面的测试核对）
REFERENCES = {
    "alexnet": d2l_alexnet, "vgg11": d2l_vgg11, "nin": d2l_nin, "googlenet": d2l_googlenet,
    "lenet_bn": d2l_lenet_bn, "resnet18": d2l_resnet18, "densenet": d2l_densenet,
}
SPECS = list(cnnlib.SPECS.values())
IDS = [s.name for s in SPECS]
NO_DROPOUT = {"googlenet", "lenet_bn", "resnet18", "densenet"}  # 训练模式下也是确定的


def copy_weights(ours: nn.Module, ref: nn.Module) -> None:
    """按顺序把 ``ours`` 的参数与浮点缓冲区拷到 ``ref``：个数与每个的元素数都必须对得上。

    从零实现的 ``BatchNorm`` 的 gamma 形状是 (1, C, 1, 1)，``nn.BatchNorm2d`` 的 weight 是 (C,)：按元素数对应。
    批量规范化的拉伸、偏移与移动统计量先换成随机值，免得它们的初值 1、0 让放错位置的批量规范化看不出来。
    """
    with torch.no_grad():
        for module in ours.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.weight.uniform_(0.5, 1.5), module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1), module.running_var.uniform_(0.5, 1.5)
            elif isinstance(module, cnnlib.BatchNorm):
                module.gamma.uniform_(0.5, 1.5), module.beta.normal_(0, 0.1)
                module.moving_mean.normal_(0, 0.1), module.moving_var.uniform_(0.5, 1.5)
        pairs = [(list(ours.parameters()), list(ref.parameters())),
                 ([b for b in ours.buffers() if b.is_floating_point()],
                  [b for b in ref.buffers() if b.is_floating_point()])]
        for src, dst in pairs:
            assert [t.numel() for t in src] == [t.numel() for t in dst], \
                "cnnlib 的网络与 d2l 的层列表的参数（或缓冲区）对不上：层数、通道数或卷积核不同"
            for s, d in zip(src, dst):
                d.copy_(s.reshape(d.shape))


def test_every_registered_model_has_a_reference():
    assert set(REFERENCES) == set(cnnlib.SPECS), "每个登记的模型都要在这里有一份按 d2l 写出的参照网络"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_equals_the_d2l_layer_list_at_the_book_resolution(spec):
    ours, ref = spec.factory(), REFERENCES[spec.name]()
    copy_weights(ours, ref)
    X = torch.randn(2, 1, spec.resolution, spec.resolution)
    modes = ("eval", "train") if spec.name in NO_DROPOUT else ("eval",)
    for mode in modes:
        ours.train(mode == "train"), ref.train(mode == "train")
        with torch.no_grad():
            got, want = ours(X), ref(X)
        # 同样的运算、同样的顺序：结果逐位相同。LeNet-BN 例外：从零实现的批量规范化按公式逐步计算，
        # nn.BatchNorm 用一个融合的核，舍入不同（与 tests/test_batchnorm.py 相同的容差）
        if spec.name == "lenet_bn":
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        else:
            assert torch.equal(got, want), (
                f"{spec.name}（{mode} 模式，{spec.resolution}×{spec.resolution}）与 d2l 的层列表不同："
                f"最大差 {(got - want).abs().max().item():.3g}")


@pytest.mark.parametrize("name", ["alexnet", "vgg11"])
def test_the_adaptive_pool_is_the_identity_at_224(name):
    """224×224 时自适应汇聚层的输入与输出逐元素相同（5×5 或 7×7 进、同样大小出）。"""
    net = cnnlib.model_spec(name).factory().eval()
    pools = [m for m in net if isinstance(m, nn.AdaptiveAvgPool2d)]
    assert len(pools) == 1
    seen = []
    hook = pools[0].register_forward_hook(lambda m, inputs, output: seen.append((inputs[0], output)))
    with torch.no_grad():
        net(torch.randn(1, 1, 224, 224))
    hook.remove()
    (x, y), = seen
    assert torch.equal(x, y), f"{name} 的自适应汇聚层在 224×224 时改变了特征图"


@pytest.mark.parametrize("resolution", [96, 128, "cpu"])
@pytest.mark.parametrize("name", ["alexnet", "vgg11"])
def test_smaller_inputs_run_through_the_same_classifier(name, resolution):
    """更小的输入（包括登记表里 cpu 配置的分辨率）也能用：自适应汇聚层把特征图变成全连接层要的大小，参数量不变。"""
    spec = cnnlib.model_spec(name)
    resolution = spec.cpu.resolution if resolution == "cpu" else resolution
    assert resolution < 224
    net = spec.factory().eval()
    with torch.no_grad():
        out = net(torch.randn(2, 1, resolution, resolution))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert cnnlib.count_parameters(net) == spec.params
