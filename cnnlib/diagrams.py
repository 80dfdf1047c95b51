"""第 7 章的架构示意图：cnnlib 直接画成 SVG 文本，笔记本用 :func:`show_diagram` 显示。

示意图由 cnnlib 画，而不是作为图片文件放在仓库里，是为了让一本笔记本单独打开（例如在 Colab 上）
时也能显示它们。SVG 是直接拼出来的文本：方框、箭头和文字都是矢量，改起来也直接。

图中的层、通道数与输出形状取自 cnnlib 中的模型（Fashion-MNIST 单通道输入）：模型在 ``meta``
设备上建立（不分配内存），用 :func:`cnnlib.layer_shapes` 逐层推出形状。改了模型，图跟着变。
只有第 6 章的 LeNet 不在 cnnlib 中，它在本模块里按 d2l 6.6 节写出，同样由 PyTorch 推出形状。

网站上的概览页用同样的图：``book/diagrams.py`` 把它们写成 ``book/figures/*.svg``。
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Callable
from xml.sax.saxutils import escape

import torch
from torch import nn

from cnnlib.models import Residual, alexnet, densenet, googlenet, nin, resnet18, vgg11
from cnnlib.summary import layer_shapes

# 中文字体按优先顺序：Linux（fonts-noto-cjk）、macOS、Windows，最后交给浏览器
FONT = ("'Noto Sans CJK SC', 'Source Han Sans SC', 'Noto Sans SC', 'PingFang SC', "
        "'Hiragino Sans GB', 'Microsoft YaHei', sans-serif")
INK = "#2b2f36"    # 正文
MUTED = "#6b7280"  # 形状与注释
LINE = "#4b5563"   # 箭头

# 层的种类 -> (填充色, 边框色)
KINDS = {
    "io": ("#f3f4f6", "#9ca3af"),
    "conv": ("#e3eefb", "#3b78c3"),
    "conv1": ("#dff3f1", "#2a9087"),  # 1×1 卷积
    "pool": ("#fdf0da", "#d08a1e"),
    "fc": ("#e5f4e8", "#3d9651"),
    "norm": ("#efe6f7", "#8550b3"),
    "act": ("#fbe7e8", "#c9505b"),
    "drop": ("#f3f4f6", "#9ca3af"),
    "op": ("#ffffff", "#4b5563"),
}
CHINESE_NUMERALS = "零一两三四五六七八九"


@dataclass
class Box:
    """画好的方框：记住位置，方便连箭头。"""
    cx: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> tuple[float, float]:
        return self.cx, self.y

    @property
    def bottom(self) -> tuple[float, float]:
        return self.cx, self.y + self.h

    @property
    def left(self) -> tuple[float, float]:
        return self.cx - self.w / 2, self.y + self.h / 2

    @property
    def right(self) -> tuple[float, float]:
        return self.cx + self.w / 2, self.y + self.h / 2


class Diagram:
    """一张 SVG 图：按顺序收集图元，最后拼成文本。

    ``name`` 用在箭头标记的 id 里：同一页上内嵌多张图时，各图的 id 不会相撞。
    """

    def __init__(self, name: str, width: int, height: int) -> None:
        self.name, self.width, self.height = name, width, height
        self.items: list[str] = []

    # ---- 基本图元 ----
    def text(self, x: float, y: float, s: str, size: float = 13, anchor: str = "middle",
             color: str = INK, weight: str = "normal", italic: bool = False) -> None:
        style = ' font-style="italic"' if italic else ""
        bold = ' font-weight="bold"' if weight == "bold" else ""
        self.items.append(
            f'<text x="{x:.1f}" y="{y:.1f}" dy="0.35em" font-size="{size}" text-anchor="{anchor}" '
            f'fill="{color}"{bold}{style}>{escape(s)}</text>')

    def box(self, cx: float, y: float, w: float, h: float, kind: str, title: str,
            detail: str | None = None) -> Box:
        """圆角方框，居中写一行标题、可选的一行细节。"""
        fill, stroke = KINDS[kind]
        dash = ' stroke-dasharray="5 3"' if kind == "drop" else ""
        self.items.append(
            f'<rect x="{cx - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="7" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>')
        if detail:
            self.text(cx, y + h * 0.34, title, size=14, weight="bold")
            self.text(cx, y + h * 0.72, detail, size=11.5, color=MUTED)
        else:
            self.text(cx, y + h / 2, title, size=14, weight="bold")
        return Box(cx, y, w, h)

    def circle(self, cx: float, cy: float, r: float, symbol: str) -> Box:
        """运算节点，例如相加的 +。"""
        self.items.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r}" fill="#ffffff" '
                          f'stroke="{LINE}" stroke-width="1.6"/>')
        self.text(cx, cy - 1, symbol, size=20, weight="bold")
        return Box(cx, cy - r, 2 * r, 2 * r)

    def arrow(self, *points: tuple[float, float], dashed: bool = False, head: bool = True,
              color: str = LINE) -> None:
        """折线箭头，终点带箭头。"""
        d = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(points))
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        marker = f' marker-end="url(#arrow-{self.name})"' if head else ""
        self.items.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.6"'
                          f'{dash}{marker}/>')

    def frame(self, x: float, y: float, w: float, h: float, label: str) -> None:
        """虚线框住一组层（一个块），左上角写块名。"""
        self.items.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="10" '
                          f'fill="#fafbfc" stroke="#aab2bf" stroke-width="1.2" stroke-dasharray="6 4"/>')
        self.text(x + 12, y + 14, label, size=12.5, anchor="start", color=MUTED, weight="bold")

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str = "none") -> None:
        self.items.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                          f'fill="{fill}" stroke="{stroke}" stroke-width="1"/>')

    # ---- 输出 ----
    def svg(self) -> str:
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" font-family="{FONT}">\n'
                f'<defs><marker id="arrow-{self.name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
                f'fill="{LINE}"/></marker></defs>\n'
                f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>\n')
        return head + "\n".join(self.items) + "\n</svg>\n"


def chain(d: Diagram, boxes: list[Box]) -> None:
    """把上下相邻的方框用竖直箭头连起来。"""
    for a, b in zip(boxes, boxes[1:]):
        d.arrow(a.bottom, b.top)


def shape_note(d: Diagram, box: Box, shape: str) -> None:
    """在方框右侧写它的输出形状。"""
    x, y = box.right
    d.text(x + 10, y, shape, size=12, anchor="start", color=MUTED)


def column(d: Diagram, cx: float, top: float, pitch: float, w: float, h: float, rows: list) -> None:
    """一列从上到下用箭头相连的层；每行是 (种类, 标题, 说明, 输出形状)，None 表示空出这一格。"""
    boxes = []
    for i, row in enumerate(rows):
        if row is None:
            continue
        kind, title, detail, shape = row
        box = d.box(cx, top + i * pitch, w, h, kind, title, detail)
        shape_note(d, box, shape)
        boxes.append(box)
    chain(d, boxes)


def notes(d: Diagram, y: float, lines: list[str], x: float = 24) -> None:
    for i, line in enumerate(lines):
        d.text(x, y + 19 * i, line, size=12.5, anchor="start", color=MUTED)


# ---------------------------------------------------------------------------
# 从模型读出图中的层：每层一行 (种类, 标题, 细节, 输出形状)
# ---------------------------------------------------------------------------
def on_meta(factory: Callable[[], nn.Module]) -> nn.Module:
    """在 ``meta`` 设备上建立模型：只有形状，没有数值，大模型也不占内存、不花时间。"""
    with torch.device("meta"):
        return factory()


def _int(v) -> int:
    return v[0] if isinstance(v, tuple) else v  # Conv2d 的参数是元组，汇聚层的是整数


def _shape(shape: tuple[int, ...]) -> str:
    """去掉批量维，例如 (1, 96, 54, 54) -> "96×54×54"。"""
    return "×".join(str(n) for n in shape[1:])


def _geometry(layer: nn.Module, padding: bool = False) -> list[str]:
    """步幅与填充（默认值省略；``padding=True`` 时填充 0 也写出）。"""
    s, p = _int(layer.stride), _int(layer.padding)
    return ([f"步幅 {s}"] if s != 1 else []) + ([f"填充 {p}"] if p or padding else [])


def layer_rows(net: nn.Sequential, resolution: int, block=None, flatten_row: bool = False):
    """把 ``net`` 的顶层逐个变成图中的一行。

    卷积、汇聚、全连接层各占一行；紧跟其后的激活函数与全连接层后的暂退法写进该行的细节。
    ``block(layer)`` 描述一个子模块（例如一个 VGG 块），返回 (种类, 标题, 细节)。

    Returns:
        (各行, 展平后的长度)；第一行是输入图像。
    """
    shapes = layer_shapes(net, resolution)
    rows = [["io", "输入图像", None, f"1×{resolution}×{resolution}"]]
    extras: list[list[str]] = [[]]  # 每行细节里 “·” 之后的部分
    flat = None
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for layer, (_, shape) in zip(net, shapes):
        row = None
        if isinstance(layer, nn.Conv2d):
            k = _int(layer.kernel_size)
            row = ["conv", f"卷积 {k}×{k}，{layer.out_channels} 通道", "，".join(_geometry(layer))]
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            k = _int(layer.kernel_size)
            kind = "最大汇聚" if isinstance(layer, nn.MaxPool2d) else "平均汇聚"
            row = ["pool", f"{kind} {k}×{k}", "，".join(_geometry(layer))]
        elif isinstance(layer, nn.AdaptiveAvgPool2d) and shape[-2:] != (1, 1):
            pass  # AlexNet/VGG 分类器前的自适应汇聚：在书中的分辨率下什么也不做，图中不画
        elif isinstance(layer, nn.AdaptiveAvgPool2d):
            row = ["pool", "全局平均汇聚", "每个通道平均成一个数"]
        elif isinstance(layer, nn.Linear):
            last = layer is linears[-1]
            row = ["fc", f"全连接 {layer.out_features}", "输出" if last else ""]
        elif isinstance(layer, (nn.ReLU, nn.Sigmoid)):
            extras[-1].append("ReLU" if isinstance(layer, nn.ReLU) else "sigmoid")
        elif isinstance(layer, nn.Dropout) and rows[-1][0] == "fc":
            extras[-1].append(f"暂退 {layer.p:g}")
        elif isinstance(layer, nn.Dropout):
            row = ["drop", f"暂退法 {layer.p:g}", None]
        elif isinstance(layer, nn.Flatten) and flatten_row:
            row = ["io", "展平", f"{shape[1]} 个类别的分数"]
        elif isinstance(layer, nn.Flatten):
            flat = shape[1]
        elif block is not None:
            row = list(block(layer))
        else:
            raise ValueError(f"示意图不认识 {type(layer).__name__} 这种层：请在 layer_rows 中说明怎样画它。")
        if row is not None:
            rows.append(row + [_shape(shape)])
            extras.append([])
    out = []
    for (kind, title, detail, shape), extra in zip(rows, extras):
        detail = " · ".join([detail] * bool(detail) + extra) or None
        out.append((kind, title, detail, shape))
    return out, flat


# ---------------------------------------------------------------------------
# 7.1 LeNet 与 AlexNet
# ---------------------------------------------------------------------------
def lenet() -> nn.Sequential:
    """第 6 章（d2l 6.6 节）的 LeNet：28×28 输入，第一层填充 2，sigmoid 与平均汇聚。只用来画对比图。"""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))


def alexnet_vs_lenet() -> Diagram:
    lenet_rows, lenet_flat = layer_rows(on_meta(lenet), 28)
    alexnet_rows, alexnet_flat = layer_rows(on_meta(alexnet), 224)
    # LeNet 在全连接层之前空出几格，让两列中对应的层对齐
    first_fc = next(i for i, row in enumerate(lenet_rows) if row[0] == "fc")
    gap = len(alexnet_rows) - len(lenet_rows)
    lenet_rows[first_fc:first_fc] = [None] * gap

    def count(rows, kind):
        return sum(1 for row in rows if row and row[0] == kind)

    more_convs = count(alexnet_rows, "conv") - count(lenet_rows, "conv")
    more_pools = count(alexnet_rows, "pool") - count(lenet_rows, "pool")

    pitch, h, top = 58, 42, 78
    lenet_cx, alexnet_cx = 150, 455
    d = Diagram("alexnet-vs-lenet", 690, top + pitch * len(alexnet_rows) + 78)
    columns = [(lenet_cx, 200, "LeNet", "第 6 章，28×28 输入", lenet_rows),
               (alexnet_cx, 224, "AlexNet", "Fashion-MNIST 放大到 224×224", alexnet_rows)]
    for cx, w, name, sub, rows in columns:
        d.text(cx, 26, name, size=18, weight="bold")
        d.text(cx, 50, sub, size=12.5, color=MUTED)
        column(d, cx, top, pitch, w, h, rows)
    # LeNet 列里的空档：AlexNet 多出来的层
    middle = (top + (first_fc - 1) * pitch + h + top + (first_fc + gap) * pitch) / 2
    d.text(lenet_cx + 14, middle - 10, "AlexNet 在这里多了", size=12, anchor="start", color=MUTED)
    d.text(lenet_cx + 14, middle + 10,
           f"{CHINESE_NUMERALS[more_convs]}个卷积层和{CHINESE_NUMERALS[more_pools]}个汇聚层",
           size=12, anchor="start", color=MUTED)
    # 展平：两列进入全连接层之前
    fc_row = first_fc + gap
    for cx, flat in ((lenet_cx, lenet_flat), (alexnet_cx, alexnet_flat)):
        d.text(cx + 8, top + fc_row * pitch - (pitch - h) / 2, f"展平 → {flat}", size=11.5, anchor="start",
               color=MUTED)
    notes(d, top + pitch * len(alexnet_rows) + 10, [
        "方框右侧是该层输出的形状（通道×高×宽）。AlexNet 用 ReLU 代替 sigmoid，",
        "用最大汇聚代替平均汇聚，在全连接层后用暂退法（dropout）；",
        "它比 LeNet 深得多、宽得多，参数主要集中在前两个全连接层。",
    ])
    return d


# ---------------------------------------------------------------------------
# 7.2 VGG 块与 VGG-11
# ---------------------------------------------------------------------------
def vgg_block() -> Diagram:
    d = Diagram("vgg-block", 690, 640)
    # 左：一个 VGG 块
    cx, w, h = 145, 210, 44
    d.text(cx, 26, "VGG 块", size=18, weight="bold")
    d.text(cx, 50, "若干个 3×3 卷积 + 一个最大汇聚", size=12.5, color=MUTED)
    inp = d.box(cx, 80, w, h, "io", "输入", "in_channels × h × w")
    d.frame(cx - w / 2 - 22, 150, w + 44, 196, "重复 num_convs 次")
    c1 = d.box(cx, 180, w, h, "conv", "卷积 3×3，out_channels", "填充 1：高和宽不变")
    a1 = d.box(cx, 268, w, h, "act", "ReLU")
    pool = d.box(cx, 380, w, h, "pool", "最大汇聚 2×2", "步幅 2：高和宽减半")
    out = d.box(cx, 468, w, h, "io", "输出", "out_channels × h/2 × w/2")
    chain(d, [inp, c1, a1, pool, out])
    # 重复的回路
    x_loop = cx + w / 2 + 12
    d.arrow(a1.right, (x_loop, a1.right[1]), (x_loop, c1.right[1]), c1.right, color=MUTED)

    # 右：完整的 VGG-11（ratio=1，论文的通道数），每个 VGG 块一行
    net = on_meta(lambda: vgg11(ratio=1))
    blocks = [m for m in net if isinstance(m, nn.Sequential)]

    def describe(blk: nn.Sequential) -> tuple[str, str, str]:
        convs = [m for m in blk if isinstance(m, nn.Conv2d)]
        return "conv", f"VGG 块 {blocks.index(blk) + 1}", f"{len(convs)} 个卷积，{convs[0].out_channels} 通道"

    rows, _ = layer_rows(net, 224, block=describe)
    num_convs = sum(1 for m in net.modules() if isinstance(m, nn.Conv2d))
    num_fc = sum(1 for m in net.modules() if isinstance(m, nn.Linear))
    cx, w, h, pitch, top = 470, 200, 40, 54, 80
    d.text(cx, 26, f"VGG-{num_convs + num_fc}", size=18, weight="bold")
    d.text(cx, 50, f"{num_convs} 个卷积层 + {num_fc} 个全连接层", size=12.5, color=MUTED)
    column(d, cx, top, pitch, w, h, rows)
    notes(d, 584, [
        "两个 3×3 卷积叠起来，感受野与一个 5×5 卷积相同，参数却只有 2×9c² = 18c²（5×5 要 25c²），",
        "中间还多一次非线性。书中训练用 vgg11(ratio=4)：卷积通道数都除以 4，全连接层仍是 4096 宽。",
    ])
    return d


# ---------------------------------------------------------------------------
# 7.3 NiN 块与 NiN
# ---------------------------------------------------------------------------
def nin_block() -> Diagram:
    d = Diagram("nin-block", 690, 670)
    cx, w, h = 145, 210, 46
    d.text(cx, 26, "NiN 块", size=18, weight="bold")
    d.text(cx, 50, "一个普通卷积 + 两个 1×1 卷积", size=12.5, color=MUTED)
    inp = d.box(cx, 80, w, h, "io", "输入", "c_in × h × w")
    c1 = d.box(cx, 160, w, h, "conv", "卷积 k×k，c 通道", "步幅 s，填充 p · ReLU")
    c2 = d.box(cx, 240, w, h, "conv1", "卷积 1×1，c 通道", "ReLU")
    c3 = d.box(cx, 320, w, h, "conv1", "卷积 1×1，c 通道", "ReLU")
    out = d.box(cx, 400, w, h, "io", "输出", "c × h' × w'")
    chain(d, [inp, c1, c2, c3, out])
    notes(d, 490, [
        "1×1 卷积 = 在每个像素位置上，",
        "对通道做一次全连接层（权重在",
        "所有位置共享）。两个 1×1 卷积",
        "就像在每个像素上跑一个小的",
        "多层感知机。",
    ], x=cx - w / 2)

    # 右：cnnlib.nin()，每个 NiN 块一行
    net = on_meta(nin)
    last_block = [m for m in net if isinstance(m, nn.Sequential)][-1]

    def describe(blk: nn.Sequential) -> tuple[str, str, str]:
        conv = blk[0]
        k, c = _int(conv.kernel_size), conv.out_channels
        detail = "，".join([f"{k}×{k}"] + _geometry(conv, padding=True))
        if blk is last_block:  # 它的输出通道数就是类别数，之后只有全局平均汇聚与展平
            detail += "：每类一个通道"
        return "conv", f"NiN 块，{c} 通道", detail

    rows, _ = layer_rows(net, 224, block=describe, flatten_row=True)
    cx, w, h, pitch, top = 460, 220, 40, 52, 80
    d.text(cx, 26, "NiN", size=18, weight="bold")
    d.text(cx, 50, "没有全连接层", size=12.5, color=MUTED)
    column(d, cx, top, pitch, w, h, rows)
    return d


# ---------------------------------------------------------------------------
# 7.4 Inception 块
# ---------------------------------------------------------------------------
def inception() -> Diagram:
    blk = on_meta(googlenet)[2][0]  # 模块 b3 的第一个 Inception 块
    c_in = blk.p1_1.in_channels
    c1, c2, c3, c4 = (blk.p1_1.out_channels, (blk.p2_1.out_channels, blk.p2_2.out_channels),
                      (blk.p3_1.out_channels, blk.p3_2.out_channels), blk.p4_2.out_channels)
    c_out = c1 + c2[1] + c3[1] + c4
    k2, k3, k4 = _int(blk.p2_2.kernel_size), _int(blk.p3_2.kernel_size), _int(blk.p4_1.kernel_size)

    d = Diagram("inception", 690, 580)
    center = 345
    d.text(center, 26, "Inception 块", size=18, weight="bold")
    d.text(center, 50, f"以 GoogLeNet 的第一个 Inception 块为例：Inception({c_in}, {c1}, {c2}, {c3}, {c4})",
           size=12.5, color=MUTED)
    w, h = 150, 48
    xs = [95, 265, 435, 605]
    inp = d.box(center, 78, 240, 42, "io", "输入", f"{c_in} 通道 × h × w")
    row1, row2 = 180, 270
    p1 = d.box(xs[0], row1, w, h, "conv1", f"卷积 1×1，{c1}", "ReLU")
    p2a = d.box(xs[1], row1, w, h, "conv1", f"卷积 1×1，{c2[0]}", "ReLU")
    p2b = d.box(xs[1], row2, w, h, "conv", f"卷积 {k2}×{k2}，{c2[1]}",
                f"填充 {_int(blk.p2_2.padding)} · ReLU")
    p3a = d.box(xs[2], row1, w, h, "conv1", f"卷积 1×1，{c3[0]}", "ReLU")
    p3b = d.box(xs[2], row2, w, h, "conv", f"卷积 {k3}×{k3}，{c3[1]}",
                f"填充 {_int(blk.p3_2.padding)} · ReLU")
    p4a = d.box(xs[3], row1, w, h, "pool", f"最大汇聚 {k4}×{k4}",
                f"步幅 {_int(blk.p4_1.stride)}，填充 {_int(blk.p4_1.padding)}")
    p4b = d.box(xs[3], row2, w, h, "conv1", f"卷积 1×1，{c4}", "ReLU")
    for i, x in enumerate(xs):
        d.text(x, row1 - 22, f"路径 {i + 1}", size=12.5, color=MUTED, weight="bold")
    # 输入分成四路
    split_y = 140
    d.arrow(inp.bottom, (center, split_y), head=False)
    for box in (p1, p2a, p3a, p4a):
        d.arrow((center, split_y), (box.cx, split_y), box.top)
    d.arrow(p2a.bottom, p2b.top)
    d.arrow(p3a.bottom, p3b.top)
    d.arrow(p4a.bottom, p4b.top)
    # 四路汇合到通道拼接
    cat = d.box(center, 380, 280, 44, "op", "在通道维上拼接", f"{c1} + {c2[1]} + {c3[1]} + {c4} = {c_out}")
    merge_y = 352
    for box in (p1, p2b, p3b, p4b):
        d.arrow(box.bottom, (box.cx, merge_y), head=False)
    d.arrow((xs[0], merge_y), (xs[3], merge_y), head=False)
    d.arrow((center, merge_y), cat.top)
    out = d.box(center, 452, 240, 42, "io", "输出", f"{c_out} 通道 × h × w")
    d.arrow(cat.bottom, out.top)
    # 每路的输出通道数
    for box, c in ((p1, c1), (p2b, c2[1]), (p3b, c3[1]), (p4b, c4)):
        d.text(box.cx + 8, merge_y - 13 if box is p1 else box.bottom[1] + 13, f"{c} 通道", size=11.5,
               anchor="start", color=MUTED)
    notes(d, 518, [
        "四条路径都保持高和宽不变，只是输出的通道数不同。路径 2、3 先用 1×1 卷积",
        f"把 {c_in} 个通道压到 {c2[0]} 和 {c3[0]} 个，再做较贵的 {k2}×{k2} 与 {k3}×{k3} 卷积，"
        "计算量和参数量都小得多。",
    ])
    return d


# ---------------------------------------------------------------------------
# 7.6 残差块
# ---------------------------------------------------------------------------
def _residual_panel(d: Diagram, cx: float, blk: Residual) -> None:
    w, h, pitch, top = 200, 40, 60, 100
    c_in, c_out, s = blk.conv1.in_channels, blk.conv1.out_channels, _int(blk.conv1.stride)
    k = _int(blk.conv1.kernel_size)
    stride = f"，步幅 {s}" if s != 1 else ""
    inp = d.box(cx, top, w, h, "io", "输入 x", f"{c_in} × h × w")
    rows = [
        d.box(cx, top + 1 * pitch + 20, w, h, "conv", f"卷积 {k}×{k}，{c_out} 通道",
              f"填充 {_int(blk.conv1.padding)}{stride}"),
        d.box(cx, top + 2 * pitch + 20, w, h, "norm", "批量规范化"),
        d.box(cx, top + 3 * pitch + 20, w, h, "act", "ReLU"),
        d.box(cx, top + 4 * pitch + 20, w, h, "conv", f"卷积 {k}×{k}，{c_out} 通道",
              f"填充 {_int(blk.conv2.padding)}"),
        d.box(cx, top + 5 * pitch + 20, w, h, "norm", "批量规范化"),
    ]
    chain(d, [inp] + rows)
    plus_y = top + 6 * pitch + 40
    plus = d.circle(cx, plus_y, 15, "+")
    d.arrow(rows[-1].bottom, plus.top)
    relu = d.box(cx, plus_y + 45, w, h, "act", "ReLU")
    d.arrow(plus.bottom, relu.top)
    shape = f"{c_out} × h/{s} × w/{s}" if s != 1 else f"{c_out} × h × w"
    out = d.box(cx, plus_y + 45 + pitch, w, h, "io", "输出", shape)
    d.arrow(relu.bottom, out.top)
    # 主路径 g(x) 的标注
    d.text(cx - 14, plus_y - 30, "g(x)", size=13, anchor="end", color=MUTED, italic=True)
    # 捷径
    branch_y = inp.bottom[1] + 14
    if blk.conv3 is not None:
        x_side = cx + w / 2 + 70
        sc = d.box(x_side, top + 3 * pitch + 20, 110, 52, "conv1", "卷积 1×1",
                   f"{blk.conv3.out_channels} 通道，步幅 {_int(blk.conv3.stride)}")
        d.arrow((cx, branch_y), (x_side, branch_y), sc.top)
        d.arrow(sc.bottom, (x_side, plus_y), plus.right)
        d.text(x_side + 8, sc.bottom[1] + 28, "把 x 变成", size=11.5, anchor="start", color=MUTED)
        d.text(x_side + 8, sc.bottom[1] + 46, "g(x) 的形状", size=11.5, anchor="start", color=MUTED)
    else:
        x_side = cx + w / 2 + 45
        d.arrow((cx, branch_y), (x_side, branch_y), (x_side, plus_y), plus.right)
        middle = (branch_y + plus_y) / 2
        d.text(x_side + 8, middle - 10, "x", size=13, anchor="start", color=MUTED, italic=True)
        d.text(x_side + 8, middle + 10, "恒等捷径", size=12, anchor="start", color=MUTED)


def residual() -> Diagram:
    net = on_meta(resnet18)
    same, down = net[1][0], net[2][0]  # 第一个模块的第一个块（恒等捷径）与第二个模块的第一个块（1×1 捷径）
    c_in, c_out, s = down.conv1.in_channels, down.conv1.out_channels, _int(down.conv1.stride)
    d = Diagram("residual", 710, 730)
    d.text(150, 26, "残差块", size=18, weight="bold")
    d.text(150, 50, f"Residual({same.conv1.in_channels}, {same.conv1.out_channels})：输入与输出形状相同",
           size=12.5, color=MUTED)
    d.text(500, 26, "带 1×1 卷积捷径的残差块", size=18, weight="bold")
    d.text(500, 50, f"Residual({c_in}, {c_out}, use_1x1conv=True, strides={s})", size=12.5, color=MUTED)
    _residual_panel(d, 140, same)
    _residual_panel(d, 455, down)
    notes(d, 668, [
        "输出 = ReLU(g(x) + x)：网络只需学习残差 g(x) = f(x) − x；若 g(x) = 0，这个块就是恒等映射。",
        f"右图的形状变了，x 不能直接相加，所以捷径上先用步幅 {s} 的 1×1 卷积把它变成 {c_out} × h/{s} × w/{s}。",
    ])
    return d


# ---------------------------------------------------------------------------
# 7.7 稠密块与过渡层
# ---------------------------------------------------------------------------
SEGMENT_COLORS = ["#9fb3c8", "#f4a259", "#5fb49c", "#e76f51", "#8e7dbe"]


def _feature_bar(d: Diagram, x: float, y: float, parts: list[int], scale: float, h: float = 22) -> float:
    """一条按通道数画的特征图条：每段是一个来源，颜色区分。返回条的宽度。"""
    for i, c in enumerate(parts):
        w = c * scale
        d.rect(x, y, w, h, SEGMENT_COLORS[i % len(SEGMENT_COLORS)], stroke="#ffffff")
        d.text(x + w / 2, y + h / 2, str(c), size=11, color="#1f2937")
        x += w
    return sum(parts) * scale


def densenet_diagram() -> Diagram:
    net = on_meta(densenet)
    dense, trans = net[1], net[2]  # 第一个稠密块与其后的过渡层
    convs = [blk[2] for blk in dense.net]  # 每个卷积块：BN、ReLU、3×3 卷积
    c0, growth, num_convs = convs[0].in_channels, convs[0].out_channels, len(convs)
    c_dense, c_trans = c0 + num_convs * growth, trans[2].out_channels

    center = 345
    d = Diagram("densenet", 690, 720)
    d.text(center, 26, "稠密块与过渡层", size=18, weight="bold")
    d.text(center, 50, f"DenseNet 的第一个稠密块 DenseBlock({num_convs}, {c0}, {growth})，增长率 {growth}；"
           f"随后是 transition_block({c_dense}, {c_trans})", size=12.5, color=MUTED)
    x0, scale, bar_h = 40, 1.3, 22
    y, pitch = 96, 92
    conv_cx, conv_w = 530, 250
    d.frame(x0 - 18, 72, 650, num_convs * pitch + bar_h + 40, "稠密块")
    parts = [c0]
    for i in range(num_convs):
        width = _feature_bar(d, x0, y, parts, scale, bar_h)
        total = sum(parts)
        d.text(x0 + width + 10, y + bar_h / 2, f"{total} 通道", size=12.5, anchor="start",
               color=INK, weight="bold")
        # 卷积块：读取整条（全部前面的特征），产生 growth 个新通道
        box_y = y + 40
        conv = d.box(conv_cx, box_y, conv_w, 44, "norm", f"卷积块 {i + 1}：BN · ReLU · 3×3 卷积",
                     f"输入 {total} 通道 → 输出 {growth} 通道")
        d.arrow((x0 + width + 75, y + bar_h / 2), (conv_cx, y + bar_h / 2), conv.top)
        # 新通道拼到下一条的末尾；旧的通道原样传下
        next_y = y + pitch
        new_x = x0 + width + growth * scale / 2
        d.arrow(conv.left, (new_x, conv.left[1]), (new_x, next_y - 2))
        d.arrow((x0 + width / 2, y + bar_h), (x0 + width / 2, next_y - 2))
        if i == 0:
            d.text(x0 + width / 2 + 8, (y + bar_h + next_y) / 2, "原样保留", size=11.5, anchor="start",
                   color=MUTED)
        parts = parts + [growth]
        y = next_y
    width = _feature_bar(d, x0, y, parts, scale, bar_h)
    d.text(x0 + width + 10, y + bar_h / 2, f"{c_dense} 通道 × h × w", size=12.5, anchor="start",
           color=INK, weight="bold")
    # 过渡层
    t_y = y + bar_h + 40
    trans_box = d.box(center, t_y, 540, 48, "conv1",
                      f"过渡层：BN · ReLU · 1×1 卷积（{c_dense} → {c_trans} 通道） · 2×2 平均汇聚",
                      "通道数减半，高和宽也减半，控制模型的复杂度")
    d.arrow((x0 + width / 2, y + bar_h), (x0 + width / 2, t_y - 14), (center, t_y - 14), trans_box.top)
    out_y = t_y + 48 + 30
    d.arrow(trans_box.bottom, (center, out_y))
    d.rect(center - c_trans * scale / 2, out_y, c_trans * scale, bar_h, "#c7d2de", stroke="#ffffff")
    d.text(center, out_y + bar_h / 2, str(c_trans), size=11, color="#1f2937")
    d.text(center + c_trans * scale / 2 + 10, out_y + bar_h / 2, f"{c_trans} 通道 × h/2 × w/2", size=12.5,
           anchor="start", color=INK, weight="bold")
    notes(d, out_y + 56, [
        "每个卷积块的输入是前面所有输出在通道维上的拼接（不是相加），",
        f"所以每经过一个卷积块，通道数就增加一个增长率（{growth}）。",
    ])
    return d


# 名字 -> (说明, 画图函数)；名字也是 book/figures/ 下的文件名（不带 .svg），说明是图片的替代文字
DIAGRAMS: dict[str, tuple[str, Callable[[], Diagram]]] = {
    "alexnet-vs-lenet": ("LeNet 与 AlexNet 的逐层结构对比", alexnet_vs_lenet),
    "vgg-block": ("VGG 块（左）与完整 VGG-11 的结构（右）", vgg_block),
    "nin-block": ("NiN 块（左）与完整 NiN 的结构（右）", nin_block),
    "inception": ("Inception 块的四条并行路径：以 GoogLeNet 的第一个 Inception 块为例", inception),
    "residual": ("两种残差块：左为恒等捷径，右为带 1×1 卷积的捷径", residual),
    "densenet": ("稠密块中通道数的增长与过渡层", densenet_diagram),
}


def diagram_svg(name: str) -> str:
    """示意图 ``name`` 的 SVG 文本（``name`` 见 :data:`DIAGRAMS`，例如 ``"residual"``）。"""
    if name not in DIAGRAMS:
        raise ValueError(f"没有名为 {name!r} 的示意图：可用的有 {'、'.join(DIAGRAMS)}。")
    return DIAGRAMS[name][1]().svg()


def show_diagram(name: str):
    """在笔记本中显示示意图 ``name``，例如 ``cnnlib.show_diagram("residual")``。

    返回 ``IPython.display.SVG``（没有 IPython 时返回 SVG 文本）。它另外带一份 HTML 表示：
    ``<img>`` 里嵌着同一张 SVG。JupyterLab 不显示不受信任的笔记本中保存的 SVG 输出（要先运行这个单元），
    却显示 HTML 里的图片，所以从 GitHub 或 Colab 下载的笔记本一打开就能看到图；Colab 与
    Jupyter Book 构建的网站也用这份 HTML。
    """
    svg, alt = diagram_svg(name), escape(DIAGRAMS[name][0], {'"': "&quot;"})
    try:
        from IPython.display import SVG
    except ImportError:
        return svg

    class DiagramSVG(SVG):
        def _repr_html_(self) -> str:
            data = base64.b64encode(self.data.encode("utf-8")).decode("ascii")
            return (f'<img src="data:image/svg+xml;base64,{data}" alt="{alt}" '
                    'style="max-width: 100%; height: auto"/>')

    return DiagramSVG(data=svg)
