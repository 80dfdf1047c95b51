"""画第 7 章的架构示意图，写成 book/figures/ 下的 SVG。

用法（在仓库根目录）::

    python book/diagrams.py

SVG 是直接拼出来的文本：方框、箭头和文字都是矢量，文件小，改起来也直接。
生成的 SVG 与本脚本一起提交；文件名是稳定的，笔记本会引用它们。
图中的形状与通道数取自 cnnlib 中的模型（Fashion-MNIST 单通道输入）；
改动 cnnlib 的模型时，记得同步这里的数字。
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

FIGURES = Path(__file__).resolve().parent / "figures"

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
    """一张 SVG 图：按顺序收集图元，最后写成文件。"""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
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
        marker = ' marker-end="url(#arrow)"' if head else ""
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
                '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
                f'fill="{LINE}"/></marker></defs>\n'
                f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>\n')
        return head + "\n".join(self.items) + "\n</svg>\n"

    def save(self, name: str) -> Path:
        FIGURES.mkdir(parents=True, exist_ok=True)
        path = FIGURES / name
        path.write_text(self.svg(), encoding="utf-8")
        return path


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
# 7.1 LeNet 与 AlexNet
# ---------------------------------------------------------------------------
# 每行：(种类, 标题, 细节, 输出形状)。LeNet 是第 6 章的版本（28×28 输入、填充 2）；
# None 表示 LeNet 在这一行没有对应的层，好让两列中对应的层对齐。
LENET_ROWS = [
    ("io", "输入图像", None, "1×28×28"),
    ("conv", "卷积 5×5，6 通道", "填充 2 · sigmoid", "6×28×28"),
    ("pool", "平均汇聚 2×2", "步幅 2", "6×14×14"),
    ("conv", "卷积 5×5，16 通道", "sigmoid", "16×10×10"),
    ("pool", "平均汇聚 2×2", "步幅 2", "16×5×5"),
    None, None, None, None,
    ("fc", "全连接 120", "sigmoid", "120"),
    ("fc", "全连接 84", "sigmoid", "84"),
    ("fc", "全连接 10", "输出", "10"),
]
ALEXNET_ROWS = [
    ("io", "输入图像", None, "1×224×224"),
    ("conv", "卷积 11×11，96 通道", "步幅 4，填充 1 · ReLU", "96×54×54"),
    ("pool", "最大汇聚 3×3", "步幅 2", "96×26×26"),
    ("conv", "卷积 5×5，256 通道", "填充 2 · ReLU", "256×26×26"),
    ("pool", "最大汇聚 3×3", "步幅 2", "256×12×12"),
    ("conv", "卷积 3×3，384 通道", "填充 1 · ReLU", "384×12×12"),
    ("conv", "卷积 3×3，384 通道", "填充 1 · ReLU", "384×12×12"),
    ("conv", "卷积 3×3，256 通道", "填充 1 · ReLU", "256×12×12"),
    ("pool", "最大汇聚 3×3", "步幅 2", "256×5×5"),
    ("fc", "全连接 4096", "ReLU · 暂退 0.5", "4096"),
    ("fc", "全连接 4096", "ReLU · 暂退 0.5", "4096"),
    ("fc", "全连接 10", "输出", "10"),
]


def alexnet_vs_lenet() -> Diagram:
    pitch, h, top = 58, 42, 78
    lenet_cx, alexnet_cx = 150, 455
    d = Diagram(690, top + pitch * len(ALEXNET_ROWS) + 78)
    columns = [(lenet_cx, 200, "LeNet", "第 6 章，28×28 输入", LENET_ROWS),
               (alexnet_cx, 224, "AlexNet", "Fashion-MNIST 放大到 224×224", ALEXNET_ROWS)]
    for cx, w, name, sub, rows in columns:
        d.text(cx, 26, name, size=18, weight="bold")
        d.text(cx, 50, sub, size=12.5, color=MUTED)
        column(d, cx, top, pitch, w, h, rows)
    # LeNet 列里的空档：AlexNet 多出来的层
    middle = (top + 4 * pitch + h + top + 9 * pitch) / 2
    d.text(lenet_cx + 14, middle - 10, "AlexNet 在这里多了", size=12, anchor="start", color=MUTED)
    d.text(lenet_cx + 14, middle + 10, "三个卷积层和一个汇聚层", size=12, anchor="start", color=MUTED)
    # 展平：两列进入全连接层之前
    for cx, flat in ((lenet_cx, "展平 → 400"), (alexnet_cx, "展平 → 6400")):
        d.text(cx + 8, top + 9 * pitch - (pitch - h) / 2, flat, size=11.5, anchor="start", color=MUTED)
    notes(d, top + pitch * len(ALEXNET_ROWS) + 10, [
        "方框右侧是该层输出的形状（通道×高×宽）。AlexNet 用 ReLU 代替 sigmoid，",
        "用最大汇聚代替平均汇聚，在全连接层后用暂退法（dropout）；",
        "它比 LeNet 深得多、宽得多，参数主要集中在前两个全连接层。",
    ])
    return d


# ---------------------------------------------------------------------------
# 7.2 VGG 块与 VGG-11
# ---------------------------------------------------------------------------
def vgg_block() -> Diagram:
    d = Diagram(690, 640)
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

    # 右：VGG-11 由五个块和三个全连接层组成
    cx, w, h, pitch, top = 470, 200, 40, 54, 80
    d.text(cx, 26, "VGG-11", size=18, weight="bold")
    d.text(cx, 50, "8 个卷积层 + 3 个全连接层", size=12.5, color=MUTED)
    rows = [
        ("io", "输入图像", None, "1×224×224"),
        ("conv", "VGG 块 1", "1 个卷积，64 通道", "64×112×112"),
        ("conv", "VGG 块 2", "1 个卷积，128 通道", "128×56×56"),
        ("conv", "VGG 块 3", "2 个卷积，256 通道", "256×28×28"),
        ("conv", "VGG 块 4", "2 个卷积，512 通道", "512×14×14"),
        ("conv", "VGG 块 5", "2 个卷积，512 通道", "512×7×7"),
        ("fc", "全连接 4096", "ReLU · 暂退 0.5", "4096"),
        ("fc", "全连接 4096", "ReLU · 暂退 0.5", "4096"),
        ("fc", "全连接 10", "输出", "10"),
    ]
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
    d = Diagram(690, 670)
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

    cx, w, h, pitch, top = 460, 220, 40, 52, 80
    d.text(cx, 26, "NiN", size=18, weight="bold")
    d.text(cx, 50, "没有全连接层", size=12.5, color=MUTED)
    rows = [
        ("io", "输入图像", None, "1×224×224"),
        ("conv", "NiN 块，96 通道", "11×11，步幅 4，填充 0", "96×54×54"),
        ("pool", "最大汇聚 3×3", "步幅 2", "96×26×26"),
        ("conv", "NiN 块，256 通道", "5×5，填充 2", "256×26×26"),
        ("pool", "最大汇聚 3×3", "步幅 2", "256×12×12"),
        ("conv", "NiN 块，384 通道", "3×3，填充 1", "384×12×12"),
        ("pool", "最大汇聚 3×3", "步幅 2", "384×5×5"),
        ("drop", "暂退法 0.5", None, "384×5×5"),
        ("conv", "NiN 块，10 通道", "3×3，填充 1：每类一个通道", "10×5×5"),
        ("pool", "全局平均汇聚", "每个通道平均成一个数", "10×1×1"),
        ("io", "展平", "10 个类别的分数", "10"),
    ]
    column(d, cx, top, pitch, w, h, rows)
    return d


# ---------------------------------------------------------------------------
# 7.4 Inception 块
# ---------------------------------------------------------------------------
def inception() -> Diagram:
    d = Diagram(690, 580)
    center = 345
    d.text(center, 26, "Inception 块", size=18, weight="bold")
    d.text(center, 50, "以 GoogLeNet 的第一个 Inception 块为例：Inception(192, 64, (96, 128), (16, 32), 32)",
           size=12.5, color=MUTED)
    w, h = 150, 48
    xs = [95, 265, 435, 605]
    inp = d.box(center, 78, 240, 42, "io", "输入", "192 通道 × h × w")
    row1, row2 = 180, 270
    p1 = d.box(xs[0], row1, w, h, "conv1", "卷积 1×1，64", "ReLU")
    p2a = d.box(xs[1], row1, w, h, "conv1", "卷积 1×1，96", "ReLU")
    p2b = d.box(xs[1], row2, w, h, "conv", "卷积 3×3，128", "填充 1 · ReLU")
    p3a = d.box(xs[2], row1, w, h, "conv1", "卷积 1×1，16", "ReLU")
    p3b = d.box(xs[2], row2, w, h, "conv", "卷积 5×5，32", "填充 2 · ReLU")
    p4a = d.box(xs[3], row1, w, h, "pool", "最大汇聚 3×3", "步幅 1，填充 1")
    p4b = d.box(xs[3], row2, w, h, "conv1", "卷积 1×1，32", "ReLU")
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
    cat = d.box(center, 380, 280, 44, "op", "在通道维上拼接", "64 + 128 + 32 + 32 = 256")
    merge_y = 352
    for box in (p1, p2b, p3b, p4b):
        d.arrow(box.bottom, (box.cx, merge_y), head=False)
    d.arrow((xs[0], merge_y), (xs[3], merge_y), head=False)
    d.arrow((center, merge_y), cat.top)
    out = d.box(center, 452, 240, 42, "io", "输出", "256 通道 × h × w")
    d.arrow(cat.bottom, out.top)
    # 每路的输出通道数
    for box, c in ((p1, 64), (p2b, 128), (p3b, 32), (p4b, 32)):
        d.text(box.cx + 8, merge_y - 13 if box is p1 else box.bottom[1] + 13, f"{c} 通道", size=11.5,
               anchor="start", color=MUTED)
    notes(d, 518, [
        "四条路径都保持高和宽不变，只是输出的通道数不同。路径 2、3 先用 1×1 卷积",
        "把 192 个通道压到 96 和 16 个，再做较贵的 3×3 与 5×5 卷积，计算量和参数量都小得多。",
    ])
    return d


# ---------------------------------------------------------------------------
# 7.6 残差块
# ---------------------------------------------------------------------------
def _residual_panel(d: Diagram, cx: float, shortcut_1x1: bool) -> None:
    w, h, pitch, top = 200, 40, 60, 100
    c_in, c_out = (64, 128) if shortcut_1x1 else (64, 64)
    stride = "，步幅 2" if shortcut_1x1 else ""
    inp = d.box(cx, top, w, h, "io", "输入 x", f"{c_in} × h × w")
    rows = [
        d.box(cx, top + 1 * pitch + 20, w, h, "conv", f"卷积 3×3，{c_out} 通道", f"填充 1{stride}"),
        d.box(cx, top + 2 * pitch + 20, w, h, "norm", "批量规范化"),
        d.box(cx, top + 3 * pitch + 20, w, h, "act", "ReLU"),
        d.box(cx, top + 4 * pitch + 20, w, h, "conv", f"卷积 3×3，{c_out} 通道", "填充 1"),
        d.box(cx, top + 5 * pitch + 20, w, h, "norm", "批量规范化"),
    ]
    chain(d, [inp] + rows)
    plus_y = top + 6 * pitch + 40
    plus = d.circle(cx, plus_y, 15, "+")
    d.arrow(rows[-1].bottom, plus.top)
    relu = d.box(cx, plus_y + 45, w, h, "act", "ReLU")
    d.arrow(plus.bottom, relu.top)
    shape = f"{c_out} × h/2 × w/2" if shortcut_1x1 else f"{c_out} × h × w"
    out = d.box(cx, plus_y + 45 + pitch, w, h, "io", "输出", shape)
    d.arrow(relu.bottom, out.top)
    # 主路径 g(x) 的标注
    d.text(cx - 14, plus_y - 30, "g(x)", size=13, anchor="end", color=MUTED, italic=True)
    # 捷径
    branch_y = inp.bottom[1] + 14
    if shortcut_1x1:
        x_side = cx + w / 2 + 70
        sc = d.box(x_side, top + 3 * pitch + 20, 110, 52, "conv1", "卷积 1×1", f"{c_out} 通道，步幅 2")
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
    d = Diagram(710, 730)
    d.text(150, 26, "残差块", size=18, weight="bold")
    d.text(150, 50, "Residual(64, 64)：输入与输出形状相同", size=12.5, color=MUTED)
    d.text(500, 26, "带 1×1 卷积捷径的残差块", size=18, weight="bold")
    d.text(500, 50, "Residual(64, 128, use_1x1conv=True, strides=2)", size=12.5, color=MUTED)
    _residual_panel(d, 140, shortcut_1x1=False)
    _residual_panel(d, 455, shortcut_1x1=True)
    notes(d, 668, [
        "输出 = ReLU(g(x) + x)：网络只需学习残差 g(x) = f(x) − x；若 g(x) = 0，这个块就是恒等映射。",
        "右图的形状变了，x 不能直接相加，所以捷径上先用步幅 2 的 1×1 卷积把它变成 128 × h/2 × w/2。",
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
        d.rect(x, y, w, h, SEGMENT_COLORS[i], stroke="#ffffff")
        d.text(x + w / 2, y + h / 2, str(c), size=11, color="#1f2937")
        x += w
    return sum(parts) * scale


def densenet() -> Diagram:
    center = 345
    d = Diagram(690, 720)
    d.text(center, 26, "稠密块与过渡层", size=18, weight="bold")
    d.text(center, 50, "DenseNet 的第一个稠密块 DenseBlock(4, 64, 32)，增长率 32；随后是 transition_block(192, 96)",
           size=12.5, color=MUTED)
    x0, scale, bar_h = 40, 1.3, 22
    y, pitch = 96, 92
    conv_cx, conv_w = 530, 250
    num_convs = 4
    d.frame(x0 - 18, 72, 650, num_convs * pitch + bar_h + 40, "稠密块")
    parts = [64]
    for i in range(num_convs):
        width = _feature_bar(d, x0, y, parts, scale, bar_h)
        total = sum(parts)
        d.text(x0 + width + 10, y + bar_h / 2, f"{total} 通道", size=12.5, anchor="start",
               color=INK, weight="bold")
        # 卷积块：读取整条（全部前面的特征），产生 32 个新通道
        box_y = y + 40
        conv = d.box(conv_cx, box_y, conv_w, 44, "norm", f"卷积块 {i + 1}：BN · ReLU · 3×3 卷积",
                     f"输入 {total} 通道 → 输出 32 通道")
        d.arrow((x0 + width + 75, y + bar_h / 2), (conv_cx, y + bar_h / 2), conv.top)
        # 新通道拼到下一条的末尾；旧的通道原样传下
        next_y = y + pitch
        new_x = x0 + width + 32 * scale / 2
        d.arrow(conv.left, (new_x, conv.left[1]), (new_x, next_y - 2))
        d.arrow((x0 + width / 2, y + bar_h), (x0 + width / 2, next_y - 2))
        if i == 0:
            d.text(x0 + width / 2 + 8, (y + bar_h + next_y) / 2, "原样保留", size=11.5, anchor="start",
                   color=MUTED)
        parts = parts + [32]
        y = next_y
    width = _feature_bar(d, x0, y, parts, scale, bar_h)
    d.text(x0 + width + 10, y + bar_h / 2, "192 通道 × h × w", size=12.5, anchor="start",
           color=INK, weight="bold")
    # 过渡层
    t_y = y + bar_h + 40
    trans = d.box(center, t_y, 540, 48, "conv1", "过渡层：BN · ReLU · 1×1 卷积（192 → 96 通道） · 2×2 平均汇聚",
                  "通道数减半，高和宽也减半，控制模型的复杂度")
    d.arrow((x0 + width / 2, y + bar_h), (x0 + width / 2, t_y - 14), (center, t_y - 14), trans.top)
    out_y = t_y + 48 + 30
    d.arrow(trans.bottom, (center, out_y))
    d.rect(center - 96 * scale / 2, out_y, 96 * scale, bar_h, "#c7d2de", stroke="#ffffff")
    d.text(center, out_y + bar_h / 2, "96", size=11, color="#1f2937")
    d.text(center + 96 * scale / 2 + 10, out_y + bar_h / 2, "96 通道 × h/2 × w/2", size=12.5,
           anchor="start", color=INK, weight="bold")
    notes(d, out_y + 56, [
        "每个卷积块的输入是前面所有输出在通道维上的拼接（不是相加），",
        "所以每经过一个卷积块，通道数就增加一个增长率（32）。",
    ])
    return d


DIAGRAMS = {
    "alexnet-vs-lenet.svg": alexnet_vs_lenet,
    "vgg-block.svg": vgg_block,
    "nin-block.svg": nin_block,
    "inception.svg": inception,
    "residual.svg": residual,
    "densenet.svg": densenet,
}


def main() -> None:
    for name, draw in DIAGRAMS.items():
        path = draw().save(name)
        print(f"写出 {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
