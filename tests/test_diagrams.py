"""架构示意图（cnnlib/diagrams.py）：图上画的就是书中的模型。

结构检查：从 SVG 里解析出方框（标题、细节、右侧的输出形状），与本文件自己读出的模型各层比较——卷积核、通道数、
步幅与填充读自 cnnlib 的模型对象，输出形状是 tests/book_sizes.py 里书中写出的字面值。这里不调用 diagrams.py 的
遍历（``layer_rows``、``layer_shapes``），所以它画错一层、漏画一层、把形状写错，这里都会失败。

book/figures/ 里提交的 SVG 与 ``diagram_svg`` 的比较只是新鲜度检查（freshness check）：它由同一份代码生成
（``make figures``），只能说明提交的文件没有过期，不能说明图是对的。
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import pytest
from torch import nn

import cnnlib
from book_sizes import ALEXNET, INCEPTIONS, INCEPTION_OUTPUTS, NIN, BookShapes
from cnnlib.diagrams import DIAGRAMS, diagram_svg

ROOT = Path(__file__).resolve().parents[1]
SVG_NS = "{http://www.w3.org/2000/svg}"


# ---------------------------------------------------------------------------
# 解析 SVG：方框 = 圆角矩形（rx="7"）+ 框内居中的标题与细节 + 框右侧 10 像素处的输出形状
# ---------------------------------------------------------------------------
@dataclass
class Box:
    x: float
    y: float
    w: float
    h: float
    texts: list[str] = field(default_factory=list)  # 标题，可能还有一行细节
    note: str | None = None                         # 右侧的输出形状

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def title(self) -> str:
        return self.texts[0] if self.texts else ""

    @property
    def detail(self) -> str:
        return self.texts[1] if len(self.texts) > 1 else ""


@dataclass
class Figure:
    boxes: list[Box]
    free: list[tuple[float, float, str, float]]  # 不属于方框的文字：(x, y, 文字, 字号)

    def column(self, header: str) -> list[Box]:
        """标题（18 号字）为 ``header`` 的那一列方框，从上到下。"""
        x = next(x for x, _, text, size in self.free if text == header and size == 18)
        return [b for b in self.boxes if abs(b.cx - x) < 30]

    def texts(self) -> list[str]:
        return [t for b in self.boxes for t in b.texts] + [t for _, _, t, _ in self.free]


def parse(svg: str) -> Figure:
    root = ElementTree.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg" and int(root.get("width")) > 0
    boxes: list[Box] = []
    free = []
    for el in root:
        if el.tag == f"{SVG_NS}rect" and el.get("rx") == "7":
            boxes.append(Box(*(float(el.get(k)) for k in ("x", "y", "width", "height"))))
        elif el.tag == f"{SVG_NS}text":
            x, y, text = float(el.get("x")), float(el.get("y")), el.text or ""
            inside = [b for b in boxes if abs(x - b.cx) < 0.1 and b.y <= y <= b.y + b.h]
            beside = [b for b in boxes if abs(x - (b.x + b.w + 10)) < 0.1 and abs(y - (b.y + b.h / 2)) < 0.1]
            if inside and el.get("text-anchor") == "middle":
                inside[-1].texts.append(text)
            elif beside and el.get("text-anchor") == "start":
                beside[-1].note = text
            else:
                free.append((x, y, text, float(el.get("font-size"))))
    return Figure(boxes, free)


def shape(s: tuple[int, ...]) -> str:
    return "×".join(map(str, s))


def k_of(layer: nn.Module) -> int:
    k = layer.kernel_size
    return k[0] if isinstance(k, tuple) else k


def geometry_ok(detail: str, layer: nn.Module, always_padding: bool = False) -> bool:
    """细节里写出的步幅与填充就是模型里的：步幅不为 1 时写“步幅 s”，填充不为 0（或总要写）时写“填充 p”。"""
    s = layer.stride[0] if isinstance(layer.stride, tuple) else layer.stride
    p = layer.padding[0] if isinstance(layer.padding, tuple) else layer.padding
    wrote_stride = f"步幅 {s}" in detail if s != 1 else "步幅" not in detail
    wrote_padding = f"填充 {p}" in detail if (p or always_padding) else "填充" not in detail
    return wrote_stride and wrote_padding


def expected_column(net: nn.Sequential, book: BookShapes, resolution: int, block=None,
                    flatten_row: bool = False) -> list:
    """按模型的顶层逐个写出图中应有的方框：(标题, 检查细节的函数, 输出形状)。

    ReLU、全连接层后的暂退法写进上一行的细节，不单独成框；224×224 时什么也不做的自适应汇聚层
    （AlexNet、VGG 的 5×5、7×7）不画：书中的结构表里没有它。
    """
    rows = [("输入图像", None, f"1×{resolution}×{resolution}")]
    previous = None
    for layer, (type_name, out) in zip(net, book.top, strict=True):
        assert type(layer).__name__ == type_name, (layer, type_name)
        if isinstance(layer, nn.Conv2d):
            rows.append((f"卷积 {k_of(layer)}×{k_of(layer)}，{layer.out_channels} 通道",
                         lambda d, layer=layer: geometry_ok(d, layer), shape(out)))
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            kind = "最大汇聚" if isinstance(layer, nn.MaxPool2d) else "平均汇聚"
            rows.append((f"{kind} {k_of(layer)}×{k_of(layer)}", lambda d, layer=layer: geometry_ok(d, layer),
                         shape(out)))
        elif isinstance(layer, nn.AdaptiveAvgPool2d):
            if out[1:] == (1, 1):
                rows.append(("全局平均汇聚", None, shape(out)))
            else:
                assert out == previous, f"{layer} 在书的分辨率下改变了形状：图里该怎样画它，请在这里写明"
        elif isinstance(layer, nn.Linear):
            rows.append((f"全连接 {layer.out_features}", None, shape(out)))
        elif isinstance(layer, nn.Dropout) and not rows[-1][0].startswith("全连接"):
            rows.append((f"暂退法 {layer.p:g}", None, shape(out)))  # 单独的暂退层（NiN）
        elif isinstance(layer, nn.Sequential):
            title, check = block(layer)
            rows.append((title, check, shape(out)))
        elif isinstance(layer, nn.Flatten) and flatten_row:
            rows.append(("展平", None, shape(out)))  # NiN 没有全连接层：展平之后就是类别分数
        previous = out
    return rows


def assert_column(boxes: list[Box], rows: list, where: str) -> None:
    titles = [b.title for b in boxes]
    assert titles == [title for title, _, _ in rows], f"{where}：图中的方框 {titles}"
    for box, (title, check, note) in zip(boxes, rows):
        assert box.note == note, f"{where} 的“{title}”：图上写 {box.note}，书中是 {note}"
        if check is not None:
            assert check(box.detail), f"{where} 的“{title}”：细节“{box.detail}”与模型的步幅、填充不符"


# ---------------------------------------------------------------------------
# 每张图
# ---------------------------------------------------------------------------
def test_alexnet_and_lenet_columns_are_the_two_networks():
    fig = parse(diagram_svg("alexnet-vs-lenet"))
    assert_column(fig.column("AlexNet"), expected_column(cnnlib.alexnet(), ALEXNET, 224), "AlexNet 一列")
    # 第 6 章（d2l 6.6 节）的 LeNet：7.1.5 节写出 28→28→14→10→5，展平后 16×5×5 = 400
    lenet = [("输入图像", "1×28×28"), ("卷积 5×5，6 通道", "6×28×28"), ("平均汇聚 2×2", "6×14×14"),
             ("卷积 5×5，16 通道", "16×10×10"), ("平均汇聚 2×2", "16×5×5"),
             ("全连接 120", "120"), ("全连接 84", "84"), ("全连接 10", "10")]
    assert [(b.title, b.note) for b in fig.column("LeNet")] == lenet
    texts = fig.texts()
    assert "展平 → 6400" in texts and "展平 → 400" in texts
    # 7.1.2 节：“AlexNet 在两个‘卷积 + 汇聚’之后多了三个卷积层和一个汇聚层”
    assert "三个卷积层和一个汇聚层" in texts


def test_vgg_figure_is_the_full_vgg11():
    fig = parse(diagram_svg("vgg-block"))
    net = cnnlib.vgg11(ratio=1)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    header = f"VGG-{len(convs) + len(linears)}"
    assert header == "VGG-11" and f"{len(convs)} 个卷积层 + {len(linears)} 个全连接层" in fig.texts()
    blocks = [m for m in net if isinstance(m, nn.Sequential)]
    # 完整 VGG-11（ratio=1）在 224×224 上：64→128→256→512→512 通道，每块高宽减半（7.2.3 节）
    sides = [112, 56, 28, 14, 7]
    rows = [("输入图像", "1×224×224")]
    for i, (blk, side) in enumerate(zip(blocks, sides)):
        block_convs = [m for m in blk if isinstance(m, nn.Conv2d)]
        rows.append((f"VGG 块 {i + 1}", f"{block_convs[0].out_channels}×{side}×{side}"))
    rows += [(f"全连接 {m.out_features}", str(m.out_features)) for m in linears]
    boxes = fig.column(header)
    assert [(b.title, b.note) for b in boxes] == rows
    details = [b.detail for b in boxes[1:6]]
    assert details == [f"{sum(isinstance(m, nn.Conv2d) for m in blk)} 个卷积，{c} 通道"
                       for blk, c in zip(blocks, (64, 128, 256, 512, 512))]
    # 左边的 VGG 块：3×3 卷积、填充 1；2×2 汇聚、步幅 2（读自 cnnlib.vgg_block）
    conv, _, pool = cnnlib.vgg_block(1, 1, 8)
    left = {b.title: b.detail for b in fig.column("VGG 块")}
    assert f"填充 {conv.padding[0]}" in left[f"卷积 {conv.kernel_size[0]}×{conv.kernel_size[0]}，out_channels"]
    assert f"步幅 {pool.stride}" in left[f"最大汇聚 {pool.kernel_size}×{pool.kernel_size}"]


def test_nin_figure_is_cnnlib_nin():
    fig = parse(diagram_svg("nin-block"))

    def block(blk: nn.Sequential):
        conv = blk[0]
        return (f"NiN 块，{conv.out_channels} 通道",
                lambda d: d.startswith(f"{k_of(conv)}×{k_of(conv)}，") and geometry_ok(d, conv, always_padding=True))

    assert_column(fig.column("NiN"), expected_column(cnnlib.nin(), NIN, 224, block=block, flatten_row=True),
                  "NiN 一列")


def test_inception_figure_is_block_3a():
    fig = parse(diagram_svg("inception"))
    blk = cnnlib.googlenet()[2][0]
    name, c_in, c1, c2, c3, c4 = INCEPTIONS[0]  # 7.4.2 节的表：3a
    assert name == "3a" and blk.p1_1.in_channels == c_in
    assert f"以 GoogLeNet 的第一个 Inception 块为例：Inception({c_in}, {c1}, {c2}, {c3}, {c4})" in fig.texts()
    titles = {b.title: b.detail for b in fig.boxes}
    # 每条路径的层：通道数读自模型，与书中的表一致
    for conv, c in ((blk.p1_1, c1), (blk.p2_1, c2[0]), (blk.p2_2, c2[1]), (blk.p3_1, c3[0]),
                    (blk.p3_2, c3[1]), (blk.p4_2, c4)):
        assert conv.out_channels == c
        title = f"卷积 {k_of(conv)}×{k_of(conv)}，{c}"
        assert title in titles, f"图中没有“{title}”：{list(titles)}"
        if k_of(conv) > 1:
            assert titles[title] == f"填充 {conv.padding[0]} · ReLU"
    pool = blk.p4_1
    assert titles[f"最大汇聚 {pool.kernel_size}×{pool.kernel_size}"] == f"步幅 {pool.stride}，填充 {pool.padding}"
    out = INCEPTION_OUTPUTS[name]
    assert titles["在通道维上拼接"] == f"{c1} + {c2[1]} + {c3[1]} + {c4} = {out}"
    assert titles["输出"] == f"{out} 通道 × h × w" and titles["输入"] == f"{c_in} 通道 × h × w"


def test_residual_figure_is_two_blocks_of_resnet18():
    fig = parse(diagram_svg("residual"))
    net = cnnlib.resnet18()
    headers = {text: x for x, _, text, size in fig.free if size == 18}

    def nearest(box: Box) -> str:  # 方框属于离它最近的那个标题的一栏
        return min(headers, key=lambda h: abs(headers[h] - box.cx))

    for header, blk in (("残差块", net[1][0]), ("带 1×1 卷积捷径的残差块", net[2][0])):
        c_in, c_out = blk.conv1.in_channels, blk.conv1.out_channels
        s = blk.conv1.stride[0]
        shortcut = blk.conv3 is not None
        subtitle = (f"Residual({c_in}, {c_out}, use_1x1conv=True, strides={s})" if shortcut
                    else f"Residual({c_in}, {c_out})：输入与输出形状相同")
        assert subtitle in fig.texts()
        panel = [b for b in fig.boxes if nearest(b) == header]
        main = [b for b in panel if abs(b.cx - panel[0].cx) < 0.1]
        stride = f"，步幅 {s}" if s != 1 else ""
        assert [(b.title, b.detail) for b in main] == [
            ("输入 x", f"{c_in} × h × w"),
            (f"卷积 3×3，{c_out} 通道", f"填充 {blk.conv1.padding[0]}{stride}"), ("批量规范化", ""), ("ReLU", ""),
            (f"卷积 3×3，{c_out} 通道", f"填充 {blk.conv2.padding[0]}"), ("批量规范化", ""), ("ReLU", ""),
            ("输出", f"{c_out} × h/{s} × w/{s}" if s != 1 else f"{c_out} × h × w")]
        side = [(b.title, b.detail) for b in panel if b not in main]
        assert side == ([("卷积 1×1", f"{blk.conv3.out_channels} 通道，步幅 {blk.conv3.stride[0]}")]
                        if shortcut else [])
    # ResNet-18 的 b3 第一个块：64 → 128 通道，步幅 2（7.6.3 节的模块表）
    assert (net[2][0].conv1.in_channels, net[2][0].conv1.out_channels, net[2][0].conv1.stride[0]) == (64, 128, 2)


def test_densenet_figure_is_the_first_dense_block_and_transition():
    fig = parse(diagram_svg("densenet"))
    net = cnnlib.densenet()
    convs = [blk[2] for blk in net[1].net]
    c0, k = convs[0].in_channels, convs[0].out_channels
    assert (c0, k, len(convs)) == (64, 32, 4)   # 7.7.4 节：b1 之后 64 通道，增长率 32，每块 4 个卷积块
    c_dense, c_trans = 192, 96                  # 7.7.4 节的通道表：稠密块 1 输出 192，过渡层 1 输出 96
    assert net[2][2].in_channels == c_dense and net[2][2].out_channels == c_trans
    texts = fig.texts()
    assert (f"DenseNet 的第一个稠密块 DenseBlock({len(convs)}, {c0}, {k})，增长率 {k}；"
            f"随后是 transition_block({c_dense}, {c_trans})") in texts
    for i, conv in enumerate(convs):
        assert conv.in_channels == c0 + i * k
        assert f"{c0 + i * k} 通道" in texts
    conv_boxes = [b for b in fig.boxes if b.title.startswith("卷积块")]
    assert [b.detail for b in conv_boxes] == [f"输入 {conv.in_channels} 通道 → 输出 {k} 通道" for conv in convs]
    assert f"{c_dense} 通道 × h × w" in texts and f"{c_trans} 通道 × h/2 × w/2" in texts
    pool = net[2][3]
    transition = next(b for b in fig.boxes if b.title.startswith("过渡层"))
    assert f"1×1 卷积（{c_dense} → {c_trans} 通道）" in transition.title
    assert f"{pool.kernel_size}×{pool.kernel_size} 平均汇聚" in transition.title and pool.stride == 2


def test_every_diagram_has_a_structure_test():
    assert set(DIAGRAMS) == {"alexnet-vs-lenet", "vgg-block", "nin-block", "inception", "residual", "densenet"}


# ---------------------------------------------------------------------------
# 新鲜度检查与显示
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", DIAGRAMS)
def test_committed_figure_is_fresh(name):
    """新鲜度检查：book/figures/ 里提交的 SVG 与代码现在生成的相同（只说明没过期，不说明图是对的）。"""
    committed = (ROOT / "book" / "figures" / f"{name}.svg").read_text(encoding="utf-8")
    assert committed == diagram_svg(name), f"book/figures/{name}.svg 过期了：请运行 make figures"


def test_show_diagram_gives_svg_and_an_html_image_for_untrusted_notebooks():
    shown = cnnlib.show_diagram("residual")
    assert shown._repr_svg_().startswith("<svg")
    assert shown._repr_html_().startswith('<img src="data:image/svg+xml;base64,')
    with pytest.raises(ValueError, match="residual"):
        cnnlib.show_diagram("resnet")
