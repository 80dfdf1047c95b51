"""书中写出的层尺寸：七个模型在各自的训练分辨率下，每个顶层与块内各层的输出形状（去掉批量维）。

这些数是从正文里抄来的字面值，不是运行代码得到的：
- AlexNet：7.1.2 节“输出尺寸：逐层推算”的表（54、26、26、12、12、12、12、5，展平 6400）；
- VGG-11：7.2 节，``ratio=4`` 时通道为 16、32、64、128，每个 3×3 卷积不改变尺寸，每个汇聚减半（224→112→…→7），
  第一个全连接层的输入 128·7·7 = 6272；
- NiN：7.3 节的推算 224→54→26→26→12→12→5→5→1；
- GoogLeNet：7.4.4 节的模块表（b1 64×24×24，b2 192×12×12，b3 480×6×6，b4 832×3×3，b5 1024）与 7.4.2 节的
  九个 Inception 块的通道表，块内四条路径都保持高宽（7.4.1 节）；
- LeNet-BN：7.5 节，28→24→12→8→4，展平 256；
- ResNet-18：7.6.3 节的模块表与推算（7×7 卷积 48，汇聚 24，24→12→6→3）；
- DenseNet：7.7.4 节的通道表（192、96、224、112、240、120、248，高宽 24、12、6、3）。
b1 里 7×7 卷积之后的 48 来自 7.6.3 节的推算；GoogLeNet 与 DenseNet 用同样的 b1 开头。

tests/test_models.py 核对模型与这里一致，tests/test_diagrams.py 核对示意图上的形状，
tests/mutation_check.py 改动模型里的填充、步幅或卷积核，确认有测试失败。
"""

from __future__ import annotations

from dataclasses import dataclass, field


def fm(c: int, side: int) -> tuple[int, int, int]:
    """``c`` 个通道、``side``×``side`` 的特征图（feature map）。"""
    return (c, side, side)


@dataclass
class BookShapes:
    """一个模型在书中的尺寸。

    ``top``：每个顶层按顺序的（类名, 输出形状），一层不漏；``inner``：块内的层，键是 ``named_modules`` 的名字。
    """
    top: list[tuple[str, tuple[int, ...]]]
    inner: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _fc_head(n_in: int) -> list[tuple[str, tuple[int, ...]]]:
    """AlexNet 与 VGG 的分类部分：展平后 4096 → 4096 → 10，两个隐藏层各带 ReLU 与暂退法。"""
    return [("Flatten", (n_in,)),
            ("Linear", (4096,)), ("ReLU", (4096,)), ("Dropout", (4096,)),
            ("Linear", (4096,)), ("ReLU", (4096,)), ("Dropout", (4096,)),
            ("Linear", (10,))]


# ---- 7.1 AlexNet，224×224 ----
ALEXNET = BookShapes(top=[
    ("Conv2d", fm(96, 54)), ("ReLU", fm(96, 54)), ("MaxPool2d", fm(96, 26)),
    ("Conv2d", fm(256, 26)), ("ReLU", fm(256, 26)), ("MaxPool2d", fm(256, 12)),
    ("Conv2d", fm(384, 12)), ("ReLU", fm(384, 12)),
    ("Conv2d", fm(384, 12)), ("ReLU", fm(384, 12)),
    ("Conv2d", fm(256, 12)), ("ReLU", fm(256, 12)), ("MaxPool2d", fm(256, 5)),
    # 自适应汇聚层：224×224 时 5×5 进、5×5 出（见 cnnlib/models/alexnet.py 的说明）
    ("AdaptiveAvgPool2d", fm(256, 5)),
    *_fc_head(6400),
])


# ---- 7.2 VGG-11（ratio=4），224×224 ----
def _vgg_block(index: int, num_convs: int, c: int, side: int) -> dict[str, tuple[int, ...]]:
    """块 ``index``：``num_convs`` 个 3×3 卷积保持 side×side，最后的 2×2 汇聚减半。"""
    inner = {f"{index}.{2 * j}": fm(c, side) for j in range(num_convs)}
    inner[f"{index}.{2 * num_convs}"] = fm(c, side // 2)
    return inner


VGG11 = BookShapes(
    top=[("Sequential", fm(16, 112)), ("Sequential", fm(32, 56)), ("Sequential", fm(64, 28)),
         ("Sequential", fm(128, 14)), ("Sequential", fm(128, 7)),
         ("AdaptiveAvgPool2d", fm(128, 7)),  # 224×224 时 7×7 进、7×7 出
         *_fc_head(6272)],
    inner={**_vgg_block(0, 1, 16, 224), **_vgg_block(1, 1, 32, 112), **_vgg_block(2, 2, 64, 56),
           **_vgg_block(3, 2, 128, 28), **_vgg_block(4, 2, 128, 14)})


# ---- 7.3 NiN，224×224 ----
def _nin_block(index: int, c: int, side: int) -> dict[str, tuple[int, ...]]:
    """NiN 块：k×k 卷积之后两个 1×1 卷积，三者输出同样的形状。"""
    return {f"{index}.{j}": fm(c, side) for j in (0, 2, 4)}


NIN = BookShapes(
    top=[("Sequential", fm(96, 54)), ("MaxPool2d", fm(96, 26)),
         ("Sequential", fm(256, 26)), ("MaxPool2d", fm(256, 12)),
         ("Sequential", fm(384, 12)), ("MaxPool2d", fm(384, 5)),
         ("Dropout", fm(384, 5)),
         ("Sequential", fm(10, 5)), ("AdaptiveAvgPool2d", fm(10, 1)), ("Flatten", (10,))],
    inner={**_nin_block(0, 96, 54), **_nin_block(2, 256, 26), **_nin_block(4, 384, 12), **_nin_block(7, 10, 5)})


# ---- 7.4 GoogLeNet，96×96 ----
# 7.4.2 节的通道表：块名、输入通道、c1、c2、c3、c4（输出 = c1 + c2[1] + c3[1] + c4）
INCEPTIONS = [
    ("3a", 192, 64, (96, 128), (16, 32), 32),
    ("3b", 256, 128, (128, 192), (32, 96), 64),
    ("4a", 480, 192, (96, 208), (16, 48), 64),
    ("4b", 512, 160, (112, 224), (24, 64), 64),
    ("4c", 512, 128, (128, 256), (24, 64), 64),
    ("4d", 512, 112, (144, 288), (32, 64), 64),
    ("4e", 528, 256, (160, 320), (32, 128), 128),
    ("5a", 832, 256, (160, 320), (32, 128), 128),
    ("5b", 832, 384, (192, 384), (48, 128), 128),
]
# 7.4.2 节表中最后一列写出的输出通道
INCEPTION_OUTPUTS = {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528, "4e": 832,
                     "5a": 832, "5b": 1024}


def _inception(path: str, row: tuple, side: int) -> dict[str, tuple[int, ...]]:
    """一个 Inception 块：四条路径的每一层都保持 side×side。"""
    name, c_in, c1, c2, c3, c4 = row
    return {path: fm(INCEPTION_OUTPUTS[name], side),
            f"{path}.p1_1": fm(c1, side),
            f"{path}.p2_1": fm(c2[0], side), f"{path}.p2_2": fm(c2[1], side),
            f"{path}.p3_1": fm(c3[0], side), f"{path}.p3_2": fm(c3[1], side),
            f"{path}.p4_1": fm(c_in, side), f"{path}.p4_2": fm(c4, side)}


def _stem(with_bn: bool) -> dict[str, tuple[int, ...]]:
    """b1：7×7 卷积（步幅 2，填充 3）96→48，3×3 最大汇聚（步幅 2，填充 1）48→24。"""
    if with_bn:  # ResNet 与 DenseNet：卷积、批量规范化、ReLU、汇聚
        return {"0.0": fm(64, 48), "0.1": fm(64, 48), "0.3": fm(64, 24)}
    return {"0.0": fm(64, 48), "0.2": fm(64, 24)}


GOOGLENET = BookShapes(
    top=[("Sequential", fm(64, 24)), ("Sequential", fm(192, 12)), ("Sequential", fm(480, 6)),
         ("Sequential", fm(832, 3)), ("Sequential", (1024,)), ("Linear", (10,))],
    inner={**_stem(with_bn=False),
           "1.0": fm(64, 24), "1.2": fm(192, 24), "1.4": fm(192, 12),               # b2
           **_inception("2.0", INCEPTIONS[0], 12), **_inception("2.1", INCEPTIONS[1], 12),
           "2.2": fm(480, 6),                                                        # b3
           **{k: v for i in range(5) for k, v in _inception(f"3.{i}", INCEPTIONS[2 + i], 6).items()},
           "3.5": fm(832, 3),                                                        # b4
           **_inception("4.0", INCEPTIONS[7], 3), **_inception("4.1", INCEPTIONS[8], 3),
           "4.2": fm(1024, 1), "4.3": (1024,)})                                      # b5


# ---- 7.5 LeNet-BN，28×28 ----
LENET_BN = BookShapes(top=[
    ("Conv2d", fm(6, 24)), ("BatchNorm", fm(6, 24)), ("Sigmoid", fm(6, 24)), ("AvgPool2d", fm(6, 12)),
    ("Conv2d", fm(16, 8)), ("BatchNorm", fm(16, 8)), ("Sigmoid", fm(16, 8)), ("AvgPool2d", fm(16, 4)),
    ("Flatten", (256,)),
    ("Linear", (120,)), ("BatchNorm", (120,)), ("Sigmoid", (120,)),
    ("Linear", (84,)), ("BatchNorm", (84,)), ("Sigmoid", (84,)),
    ("Linear", (10,)),
])


# ---- 7.6 ResNet-18，96×96 ----
def _residual(path: str, c: int, side: int, shortcut: bool) -> dict[str, tuple[int, ...]]:
    inner = {path: fm(c, side), f"{path}.conv1": fm(c, side), f"{path}.bn1": fm(c, side),
             f"{path}.conv2": fm(c, side), f"{path}.bn2": fm(c, side)}
    if shortcut:  # 1×1 捷径：与 g(x) 同形状
        inner[f"{path}.conv3"] = fm(c, side)
    return inner


RESNET18 = BookShapes(
    top=[("Sequential", fm(64, 24)), ("Sequential", fm(64, 24)), ("Sequential", fm(128, 12)),
         ("Sequential", fm(256, 6)), ("Sequential", fm(512, 3)),
         ("AdaptiveAvgPool2d", fm(512, 1)), ("Flatten", (512,)), ("Linear", (10,))],
    inner={**_stem(with_bn=True),
           **_residual("1.0", 64, 24, False), **_residual("1.1", 64, 24, False),
           **_residual("2.0", 128, 12, True), **_residual("2.1", 128, 12, False),
           **_residual("3.0", 256, 6, True), **_residual("3.1", 256, 6, False),
           **_residual("4.0", 512, 3, True), **_residual("4.1", 512, 3, False)})


# ---- 7.7 DenseNet，96×96 ----
def _dense_block(index: int, c0: int, side: int) -> dict[str, tuple[int, ...]]:
    """4 个卷积块、增长率 32：第 j 个卷积块的批量规范化看到 c0 + 32j 个通道，卷积输出 32 个。"""
    inner = {str(index): fm(c0 + 4 * 32, side)}
    for j in range(4):
        inner[f"{index}.net.{j}.0"] = fm(c0 + 32 * j, side)
        inner[f"{index}.net.{j}.2"] = fm(32, side)
    return inner


def _transition(index: int, c_in: int, side: int) -> dict[str, tuple[int, ...]]:
    """过渡层：批量规范化、ReLU、1×1 卷积（通道减半）、2×2 平均汇聚（高宽减半）。"""
    return {f"{index}.0": fm(c_in, side), f"{index}.2": fm(c_in // 2, side), f"{index}.3": fm(c_in // 2, side // 2)}


DENSENET = BookShapes(
    top=[("Sequential", fm(64, 24)),
         ("DenseBlock", fm(192, 24)), ("Sequential", fm(96, 12)),
         ("DenseBlock", fm(224, 12)), ("Sequential", fm(112, 6)),
         ("DenseBlock", fm(240, 6)), ("Sequential", fm(120, 3)),
         ("DenseBlock", fm(248, 3)),
         ("BatchNorm2d", fm(248, 3)), ("ReLU", fm(248, 3)),
         ("AdaptiveAvgPool2d", fm(248, 1)), ("Flatten", (248,)), ("Linear", (10,))],
    inner={**_stem(with_bn=True),
           **_dense_block(1, 64, 24), **_transition(2, 192, 24),
           **_dense_block(3, 96, 12), **_transition(4, 224, 12),
           **_dense_block(5, 112, 6), **_transition(6, 240, 6),
           **_dense_block(7, 120, 3)})


# 七个模型，键与 cnnlib.SPECS 相同：test_models.py 要求两者一一对应，新模型要先在这里写下书中的尺寸
BOOK_SHAPES: dict[str, BookShapes] = {
    "alexnet": ALEXNET, "vgg11": VGG11, "nin": NIN, "googlenet": GOOGLENET,
    "lenet_bn": LENET_BN, "resnet18": RESNET18, "densenet": DENSENET,
}
