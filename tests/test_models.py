"""每个网络：登记表里的参数量与实际一致、逐层形状合乎卷积公式、梯度能到达每个参数；登记表完整。

模型列表只来自登记表 :data:`cnnlib.SPECS`：加一个模型不必改这个文件。
"""

import re
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlib

ROOT = Path(__file__).resolve().parents[1]
SPECS = list(cnnlib.SPECS.values())
IDS = [s.name for s in SPECS]


# ---- 参数量：按层公式手算，不调用被测代码 ----
def conv(cin, cout, k):
    return cin * cout * k * k + cout


def fc(i, o):
    return i * o + o


def bn(c):
    return 2 * c  # gamma 与 beta；移动统计量是缓冲区，不算参数


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_parameter_count_matches_the_registry(spec):
    assert cnnlib.count_parameters(spec.factory()) == spec.params, (
        f"{spec.name}：count_parameters 与登记表的 params={spec.params:,} 不同")


def test_registry_parameter_counts_agree_with_hand_formulas():
    """登记表里的 params 是按层公式手算的；这里对两个模型重算一遍，核对那些数本身。"""
    lenet_bn = (conv(1, 6, 5) + bn(6) + conv(6, 16, 5) + bn(16) + fc(16 * 4 * 4, 120) + bn(120)
                + fc(120, 84) + bn(84) + fc(84, 10))
    assert cnnlib.model_spec("lenet_bn").params == lenet_bn == 44_878

    total, c = conv(1, 64, 7) + bn(64), 64        # DenseNet：4 个稠密块，每块 4 个卷积块，增长率 32
    for i in range(4):
        for j in range(4):
            total += bn(c + 32 * j) + conv(c + 32 * j, 32, 3)
        c += 4 * 32
        if i < 3:                                 # 过渡层把通道数减半
            total += bn(c) + conv(c, c // 2, 1)
            c //= 2
    assert cnnlib.model_spec("densenet").params == total + bn(c) + fc(c, 10)


# ---- 逐层形状：按 ⌊(n − k + 2p)/s⌋ + 1，从每层自己的 kernel_size/stride/padding 算 ----
SIDE_PRESERVING = (nn.ReLU, nn.Sigmoid, nn.BatchNorm2d, cnnlib.BatchNorm, nn.Dropout)


def _one(v) -> int:
    if isinstance(v, tuple):
        assert len(set(v)) == 1, f"非正方形的参数 {v}：公式按正方形写"
        return v[0]
    return v


def expected_side(layer: nn.Module, n: int) -> int | None:
    """``layer`` 把边长 ``n`` 变成多少；Inception、残差块等多分支的块返回 None（不核对）。"""
    if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        assert not getattr(layer, "ceil_mode", False) and _one(getattr(layer, "dilation", 1)) == 1, layer
        k, s, p = _one(layer.kernel_size), _one(layer.stride), _one(layer.padding)
        return (n - k + 2 * p) // s + 1
    if isinstance(layer, nn.Sequential):
        for child in layer:
            n = expected_side(child, n)
            if n is None:
                return None
        return n
    return n if isinstance(layer, SIDE_PRESERVING) else None


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_layer_shapes_follow_the_conv_formula(spec):
    net = spec.factory()
    rows = cnnlib.layer_shapes(net, spec.resolution)
    assert len(rows) == len(net) and rows[-1].shape == (1, 10), rows[-1]
    # 顶层：layer_shapes 报告的每个卷积、汇聚层（以及由它们组成的顺序块）的输出边长
    side, checked = spec.resolution, 0
    for layer, row in zip(net, rows):
        want = expected_side(layer, side)
        if want is not None and len(row.shape) == 4:
            assert row.shape[-2:] == (want, want), f"{spec.name} 的 {row.name}：{row.shape}，公式给出 {want}"
            checked += 1
        side = row.shape[-1]
    assert checked, f"{spec.name} 没有一个顶层卷积或汇聚层被核对"
    # 任意深度（Inception 的分支、残差块里）：每个卷积、汇聚层的输入与输出边长也合乎公式
    seen = []

    def check(layer, inputs, output):
        n = inputs[0].shape[-1]
        seen.append((layer, n, output.shape[-1], expected_side(layer, n)))

    hooks = [m.register_forward_hook(check) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 1, spec.resolution, spec.resolution))
    for h in hooks:
        h.remove()
    assert seen and all(out == want for _, _, out, want in seen), [s for s in seen if s[2] != s[3]]


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


# ---- 登记表是唯一的一份模型列表 ----
def test_registry_and_notebooks_match():
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}
    registered = {s.notebook for s in SPECS}
    assert registered - notebooks == set(), "登记表里的这些笔记本在 notebooks/ 中不存在"
    assert notebooks - registered == set(), "notebooks/ 中的这些笔记本没有登记（cnnlib/models/__init__.py 的 SPECS）"
    assert len(registered) == len(SPECS), "两个模型登记了同一本笔记本"
    assert all(cnnlib.model_spec(s.name) is s for s in SPECS)


# 源代码与文字（不含结果文件、日志这类数据：一次完整运行的日志当然会列出全部模型）
SOURCE_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".yml", ".yaml", ".sh", ".js", ".css", ".html"}


def test_only_the_registry_lists_all_models():
    """七个模型名同时出现的源文件只有登记表一个：其余地方都从 cnnlib.SPECS 读。"""
    words = [re.compile(rf"\b{re.escape(s.name)}\b") for s in SPECS]
    # 已跟踪的与还没提交的新文件，不含被 git 忽略的（生成物、数据）
    tracked = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "--",
                              "cnnlib", "book", "benchmarks", "tests", "Makefile"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    assert "cnnlib/models/__init__.py" in tracked and "Makefile" in tracked
    offenders = []
    for name in tracked:
        path = ROOT / name
        if not path.is_file() or (path.suffix not in SOURCE_SUFFIXES and name != "Makefile"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if all(w.search(text) for w in words):
            offenders.append(name)
    assert offenders == ["cnnlib/models/__init__.py"], (
        f"除登记表外，这些文件也列出了全部模型：{offenders}；请改为从 cnnlib.SPECS 读")


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
