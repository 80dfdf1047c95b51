"""每个网络：书中写出的逐层尺寸、按层公式手算的参数量、梯度能到达每个参数；登记表完整。

期望值来自正文，不来自被测代码：尺寸是 tests/book_sizes.py 里从各节抄下的字面值，参数量用笔记本教的层公式
（卷积 (c_i k k + 1) c_o，全连接 (n_in + 1) n_out，批量规范化 2c）逐层相加。与 d2l 层列表的数值比对在
tests/test_d2l_reference.py；tests/mutation_check.py 逐个改动填充、步幅与卷积核，确认这些测试能发现。
"""

import ast
import re
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlib
from book_sizes import BOOK_SHAPES, INCEPTIONS

ROOT = Path(__file__).resolve().parents[1]
SPECS = list(cnnlib.SPECS.values())
IDS = [s.name for s in SPECS]


# ---- 参数量：按层公式手算，不调用被测代码 ----
def conv(c_i, c_o, k):
    return (c_i * k * k + 1) * c_o  # 每个输出通道一个 c_i×k×k 的卷积核和一个偏置


def fc(n_in, n_out):
    return (n_in + 1) * n_out


def bn(c):
    return 2 * c  # gamma 与 beta；移动统计量是缓冲区，不算参数


def nin_block(c_i, c_o, k):
    return conv(c_i, c_o, k) + 2 * conv(c_o, c_o, 1)  # k×k 卷积与两个 1×1 卷积


def inception(c_in, c1, c2, c3, c4):
    return (conv(c_in, c1, 1) + conv(c_in, c2[0], 1) + conv(c2[0], c2[1], 3)
            + conv(c_in, c3[0], 1) + conv(c3[0], c3[1], 5) + conv(c_in, c4, 1))


def residual(c_i, c_o, shortcut):
    return conv(c_i, c_o, 3) + bn(c_o) + conv(c_o, c_o, 3) + bn(c_o) + (conv(c_i, c_o, 1) if shortcut else 0)


def _densenet():
    total, c = conv(1, 64, 7) + bn(64), 64        # 4 个稠密块，每块 4 个卷积块，增长率 32
    for i in range(4):
        for j in range(4):
            total += bn(c + 32 * j) + conv(c + 32 * j, 32, 3)
        c += 4 * 32
        if i < 3:                                 # 过渡层把通道数减半
            total += bn(c) + conv(c, c // 2, 1)
            c //= 2
    return total + bn(c) + fc(c, 10)


VGG_CHANNELS = [16, 32, 64, 64, 128, 128, 128, 128]  # VGG-11 的 8 个卷积层，通道数除以 ratio=4
HAND_PARAMS = {
    "alexnet": (conv(1, 96, 11) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3) + conv(384, 256, 3)
                + fc(256 * 5 * 5, 4096) + fc(4096, 4096) + fc(4096, 10)),
    "vgg11": (sum(conv(c_i, c_o, 3) for c_i, c_o in zip([1] + VGG_CHANNELS, VGG_CHANNELS))
              + fc(128 * 7 * 7, 4096) + fc(4096, 4096) + fc(4096, 10)),
    "nin": nin_block(1, 96, 11) + nin_block(96, 256, 5) + nin_block(256, 384, 3) + nin_block(384, 10, 3),
    "googlenet": (conv(1, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
                  + sum(inception(*row[1:]) for row in INCEPTIONS) + fc(1024, 10)),
    "lenet_bn": (conv(1, 6, 5) + bn(6) + conv(6, 16, 5) + bn(16) + fc(16 * 4 * 4, 120) + bn(120)
                 + fc(120, 84) + bn(84) + fc(84, 10)),
    "resnet18": (conv(1, 64, 7) + bn(64)
                 + 2 * residual(64, 64, False)
                 + sum(residual(c // 2, c, True) + residual(c, c, False) for c in (128, 256, 512))
                 + fc(512, 10)),
    "densenet": _densenet(),
}


def test_hand_counts_agree_with_the_numbers_in_the_text():
    """公式本身先与正文里写出的数核对。"""
    assert HAND_PARAMS["alexnet"] == 46_764_746                    # 7.1.5 的对比表
    assert conv(1, 96, 11) == 11_712 and fc(6400, 4096) == 26_218_496  # 7.1.2
    assert fc(6272, 4096) == 25_694_208 and fc(4096, 4096) == 16_781_312  # 7.2.3
    assert conv(64, 128, 3) + conv(128, 128, 3) == 221_440         # 7.2.1 的 VGG 块
    assert nin_block(384, 10, 3) == 34_790                         # 7.3.4 的分类块
    assert fc(1024, 10) == 10_250                                  # 7.4.4
    assert sum(bn(64 + 32 * j) + conv(64 + 32 * j, 32, 3) for j in range(4)) == 130_048  # 7.7.2 的第一个稠密块
    assert residual(3, 3, False) == 2 * 84 + 2 * 6                 # 7.6.2 的 Residual(3, 3)


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_parameter_count_registry_hand_and_counted_agree(spec):
    hand = HAND_PARAMS[spec.name]
    counted = cnnlib.count_parameters(spec.factory())
    assert spec.params == hand, f"{spec.name}：登记表写 {spec.params:,}，按层公式手算是 {hand:,}"
    assert counted == hand, f"{spec.name}：模型有 {counted:,} 个参数，按层公式手算是 {hand:,}"


# ---- 逐层形状：与书中写出的尺寸逐一比较 ----
POOLS_AND_CONVS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


def trace(net: nn.Module, resolution: int) -> tuple[list[tuple[str, tuple[int, ...]]], dict[str, tuple[int, ...]]]:
    """让一个 1×1×r×r 的输入穿过 ``net``，用前向钩子记下每个子模块的输出形状（去掉批量维）。

    Returns:
        (每个顶层按顺序的（类名, 形状），{子模块名: 形状})。
    """
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda m, i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
             for name, m in net.named_modules() if name]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 1, resolution, resolution))
    finally:
        for h in hooks:
            h.remove()
    top = [(type(m).__name__, shapes.get(name)) for name, m in net.named_children()]
    return top, shapes


def test_every_registered_model_has_its_book_sizes():
    assert set(BOOK_SHAPES) == set(cnnlib.SPECS), (
        "tests/book_sizes.py 与登记表的模型不同：新模型要先写下书中的逐层尺寸")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_layer_shapes_are_the_ones_the_book_states(spec):
    book = BOOK_SHAPES[spec.name]
    net = spec.factory()
    top, shapes = trace(net, spec.resolution)
    where = f"{spec.name}（输入 {spec.resolution}×{spec.resolution}）"
    # 顶层：一层不漏，类名与形状都与书中一致
    assert len(top) == len(book.top), f"{where}：模型有 {len(top)} 个顶层，书中写了 {len(book.top)} 个：{top}"
    for i, (got, want) in enumerate(zip(top, book.top)):
        assert got == want, f"{where} 的第 {i} 层：模型是 {got}，书中是 {want}"
    # 块内：书中写出的层（Inception 的路径、残差块、稠密块、过渡层……）
    wrong = {name: (shapes.get(name), want) for name, want in book.inner.items() if shapes.get(name) != want}
    assert not wrong, f"{where} 块内的层（模型的形状, 书中的形状）：{wrong}"
    # 每个卷积层与汇聚层都要有书中的尺寸：块里新加的层不会没人核对
    unpinned = [name for name, m in net.named_modules() if isinstance(m, POOLS_AND_CONVS)
                and name not in book.inner and "." in name]
    assert not unpinned, f"{where}：这些卷积或汇聚层在 tests/book_sizes.py 里没有书中的尺寸：{unpinned}"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_output_shape_gradients_and_no_nan(spec):
    net = spec.factory()
    assert isinstance(net, torch.nn.Sequential)
    X = torch.rand(4, 1, spec.resolution, spec.resolution)
    out = net(X)
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.arange(4)).backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{pname} 没有梯度"
        assert torch.isfinite(p.grad).all(), f"{pname} 的梯度含 NaN/Inf"
        assert p.grad.abs().sum() > 0, f"{pname} 的梯度全为零"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_factories_take_num_classes_and_in_channels(spec):
    net = spec.factory(num_classes=7, in_channels=3).eval()
    assert net(torch.rand(2, 3, spec.resolution, spec.resolution)).shape == (2, 7)


# ---- 登记表是模型与其设定的唯一一份 ----
def test_registry_and_notebooks_match():
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    registered = {s.notebook for s in SPECS}
    assert registered - notebooks == set(), "登记表里的这些笔记本在 notebooks/ 中不存在"
    assert notebooks - registered == set(), "notebooks/ 中的这些笔记本没有登记（cnnlib/models/__init__.py 的 SPECS）"
    assert len(registered) == len(SPECS), "两个模型登记了同一本笔记本"
    assert all(cnnlib.model_spec(s.name) is s for s in SPECS)


# 源代码与文字（不含结果文件、日志这类数据：一次完整运行的日志当然会列出全部模型）
SOURCE_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".yml", ".yaml", ".sh", ".js", ".css", ".html"}
REGISTRY = "cnnlib/models/__init__.py"


def _sources() -> list[str]:
    """cnnlib、book、benchmarks 与 Makefile 里已跟踪的和还没提交的源文件（不含被 git 忽略的生成物、数据）。

    tests/ 不在内：测试按设计另写一份期望值（tests/book_sizes.py 的尺寸、tests/test_d2l_reference.py 的参照网络、
    各测试里的字面值），而每一份都有测试核对它的模型名与 cnnlib.SPECS 一一对应，加了模型不会悄悄漏掉。
    """
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--",
                              "cnnlib", "book", "benchmarks", "Makefile"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    assert REGISTRY in tracked and "Makefile" in tracked
    return [name for name in tracked if name != REGISTRY and (ROOT / name).is_file()
            and ((ROOT / name).suffix in SOURCE_SUFFIXES or name == "Makefile")]


def _settings(spec) -> set:
    return {spec.resolution, spec.lr, spec.batch_size}


def _copied_settings(tree: ast.AST) -> list[str]:
    """代码里把一个模型名与它的两个以上设定（分辨率、学习率、批量）写在同一处的地方。

    “同一处”：一次调用或一个元组、列表的直接参数与元素里有模型名，或一个字典的键是模型名、值里有这些数。
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            groups = [(k, list(ast.walk(v))) for k, v in zip(node.keys, node.values) if k is not None]
        elif isinstance(node, (ast.Call, ast.Tuple, ast.List)):
            items = (node.args + [k.value for k in node.keywords]) if isinstance(node, ast.Call) else node.elts
            groups = [(item, items) for item in items]
        else:
            continue
        for key, near in groups:
            if isinstance(key, ast.Constant) and key.value in cnnlib.SPECS:
                spec = cnnlib.SPECS[key.value]
                numbers = {n.value for n in near if isinstance(n, ast.Constant) and type(n.value) in (int, float)}
                if len(numbers & _settings(spec)) >= 2:
                    found.append(f"第 {node.lineno} 行（{spec.name}）")
    return found


def test_registry_holds_the_only_copy_of_each_setting():
    """模型的设定（分辨率、学习率、批量）只在登记表里写一次，模型的完整清单也只在登记表里。

    两条规则，都只看库、网站与测速脚本的源文件（不看 tests/，见 ``_sources``）：
    1. 代码里没有把模型名和它的设定写在一起的第二份（例如另一个 ``{"alexnet": (224, 0.01, 128)}``）：
       这样的副本在改登记表时不会跟着变。只列几个模型做实验（``("lenet_bn", "resnet18")``）不算，那里没有设定。
    2. 没有别的文件列出全部模型：全部模型的清单从 cnnlib.SPECS 读，加一个模型只改登记表。
    正文里的说明（“AlexNet（224×224，批量 128）”）不在检查之内：那是文字，按数字去认会把通道数、
    边长都当成设定。
    """
    words = [re.compile(rf"(?<![\w-]){re.escape(s.name)}(?![\w-])") for s in SPECS]
    copies, full_lists = {}, []
    for name in _sources():
        text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
        if name.endswith(".py") and (found := _copied_settings(ast.parse(text))):
            copies[name] = found
        if all(w.search(text) for w in words):
            full_lists.append(name)
    assert not copies, f"这些地方把模型名和它的设定又写了一遍，请改为读 cnnlib.model_spec(...)：{copies}"
    assert not full_lists, f"除登记表外，这些文件也列出了全部模型：{full_lists}；请改为从 cnnlib.SPECS 读"


def test_the_settings_lint_sees_a_copy():
    """上一个测试的检查本身：它认得出一份副本，也放过只列模型名的实验清单。"""
    spec = SPECS[0]
    copy = f'SETTINGS = {{"{spec.name}": ({spec.resolution}, {spec.lr!r}, {spec.batch_size})}}'
    assert _copied_settings(ast.parse(copy)) and _copied_settings(
        ast.parse(f'run("{spec.name}", resolution={spec.resolution}, lr={spec.lr!r})'))
    assert not _copied_settings(ast.parse(f'MODELS = ("{spec.name}", "{SPECS[1].name}")'))


# ---- 各节的细节 ----
def test_flops_of_one_conv_layer_match_the_formula():
    # 2 · 输出元素数 · (cin · k · k)：一次乘加算 2 次
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1))
    assert cnnlib.count_flops(net, 224) == 2 * 96 * 54 * 54 * 1 * 11 * 11


def test_vgg11_divides_only_conv_channels():
    net = cnnlib.vgg11(ratio=4)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [4096, 4096, 10]
    with pytest.raises(ValueError, match="ratio=3"):
        cnnlib.vgg11(ratio=3)


def test_nin_has_dropout_before_last_block_and_zero_padding_first():
    net = cnnlib.nin()
    assert isinstance(net[6], torch.nn.Dropout)
    assert net[0][0].padding == (0, 0)


def test_residual_without_shortcut_refuses_shape_change():
    with pytest.raises(ValueError, match="use_1x1conv=True"):
        cnnlib.Residual(64, 128)
    blk = cnnlib.Residual(64, 128, use_1x1conv=True, strides=2)
    assert blk(torch.rand(2, 64, 12, 12)).shape == (2, 128, 6, 6)


def test_dense_block_channel_growth():
    blk = cnnlib.DenseBlock(2, 3, 10)
    assert blk(torch.rand(4, 3, 8, 8)).shape == (4, 3 + 2 * 10, 8, 8)


# ---- 退化实验用的窄网络（7.6） ----
@pytest.mark.parametrize("num_convs", [8, 32])
def test_conv_stack_plain_and_residual_differ_only_by_the_projection(num_convs):
    c = 8
    plain = cnnlib.conv_stack(num_convs, residual=False, channels=c)
    res = cnnlib.conv_stack(num_convs, residual=True, channels=c)
    X = torch.randn(2, 1, 28, 28)
    assert plain(X).shape == res(X).shape == (2, 10)
    # 残差版多出的只是下采样块捷径上的 1×1 卷积（c → 2c 通道）：手算 2c·c + 2c
    assert cnnlib.count_parameters(res) - cnnlib.count_parameters(plain) == conv(c, 2 * c, 1)
    n3x3 = sum(1 for m in plain.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert n3x3 == num_convs + 1  # 块中的卷积，加上开头的一个


@pytest.mark.parametrize("bad", [0, 6, 10, 2.0])
def test_conv_stack_refuses_a_depth_that_is_not_a_multiple_of_4(bad):
    with pytest.raises(ValueError, match=str(bad)):
        cnnlib.conv_stack(bad, residual=True)
