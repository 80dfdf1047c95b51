"""每个网络：书中分辨率下的输出形状与逐层形状、手算的参数量、梯度能到达每个参数。"""

import pytest
import torch

import cnnlib


# ---- 参数量：按层公式手算，不调用被测代码 ----
def conv(cin, cout, k):
    return cin * cout * k * k + cout


def fc(i, o):
    return i * o + o


def bn(c):
    return 2 * c  # gamma 与 beta；移动统计量是缓冲区，不算参数


def inception(cin, c1, c2, c3, c4):
    return (conv(cin, c1, 1) + conv(cin, c2[0], 1) + conv(c2[0], c2[1], 3)
            + conv(cin, c3[0], 1) + conv(c3[0], c3[1], 5) + conv(cin, c4, 1))


def residual(cin, c, shortcut):
    return conv(cin, c, 3) + conv(c, c, 3) + 2 * bn(c) + (conv(cin, c, 1) if shortcut else 0)


def nin_blk(cin, cout, k):
    return conv(cin, cout, k) + 2 * conv(cout, cout, 1)


def densenet_params():
    total = conv(1, 64, 7) + bn(64)
    c = 64
    for i in range(4):
        for j in range(4):
            total += bn(c + 32 * j) + conv(c + 32 * j, 32, 3)
        c += 4 * 32
        if i < 3:
            total += bn(c) + conv(c, c // 2, 1)
            c //= 2
    return total + bn(c) + fc(c, 10)


vgg_convs = [(1, 16), (16, 32), (32, 64), (64, 64), (64, 128), (128, 128), (128, 128), (128, 128)]

EXPECTED_PARAMS = {
    "alexnet": conv(1, 96, 11) + conv(96, 256, 5) + conv(256, 384, 3) + conv(384, 384, 3)
    + conv(384, 256, 3) + fc(256 * 5 * 5, 4096) + fc(4096, 4096) + fc(4096, 10),
    "vgg11": sum(conv(a, b, 3) for a, b in vgg_convs) + fc(128 * 7 * 7, 4096) + fc(4096, 4096)
    + fc(4096, 10),
    "nin": nin_blk(1, 96, 11) + nin_blk(96, 256, 5) + nin_blk(256, 384, 3) + nin_blk(384, 10, 3),
    "googlenet": conv(1, 64, 7) + conv(64, 64, 1) + conv(64, 192, 3)
    + inception(192, 64, (96, 128), (16, 32), 32) + inception(256, 128, (128, 192), (32, 96), 64)
    + inception(480, 192, (96, 208), (16, 48), 64) + inception(512, 160, (112, 224), (24, 64), 64)
    + inception(512, 128, (128, 256), (24, 64), 64) + inception(512, 112, (144, 288), (32, 64), 64)
    + inception(528, 256, (160, 320), (32, 128), 128) + inception(832, 256, (160, 320), (32, 128), 128)
    + inception(832, 384, (192, 384), (48, 128), 128) + fc(1024, 10),
    "lenet_bn": conv(1, 6, 5) + bn(6) + conv(6, 16, 5) + bn(16) + fc(256, 120) + bn(120)
    + fc(120, 84) + bn(84) + fc(84, 10),
    "resnet18": conv(1, 64, 7) + bn(64) + 2 * residual(64, 64, False)
    + residual(64, 128, True) + residual(128, 128, False)
    + residual(128, 256, True) + residual(256, 256, False)
    + residual(256, 512, True) + residual(512, 512, False) + fc(512, 10),
    "densenet": densenet_params(),
}

# ---- 逐层形状：按 ⌊(n − k + 2p)/s⌋ + 1 手算 ----
A = (1,)
EXPECTED_TRACE = {
    "alexnet": (224, [(96, 54, 54)] * 2 + [(96, 26, 26)] + [(256, 26, 26)] * 2 + [(256, 12, 12)]
                + [(384, 12, 12)] * 4 + [(256, 12, 12)] * 2 + [(256, 5, 5), (6400,)]
                + [(4096,)] * 6 + [(10,)]),
    "vgg11": (224, [(16, 112, 112), (32, 56, 56), (64, 28, 28), (128, 14, 14), (128, 7, 7), (6272,)]
              + [(4096,)] * 6 + [(10,)]),
    "nin": (224, [(96, 54, 54), (96, 26, 26), (256, 26, 26), (256, 12, 12), (384, 12, 12),
                  (384, 5, 5), (384, 5, 5), (10, 5, 5), (10, 1, 1), (10,)]),
    "googlenet": (96, [(64, 24, 24), (192, 12, 12), (480, 6, 6), (832, 3, 3), (1024,), (10,)]),
    "lenet_bn": (28, [(6, 24, 24)] * 3 + [(6, 12, 12)] + [(16, 8, 8)] * 3 + [(16, 4, 4), (256,)]
                 + [(120,)] * 3 + [(84,)] * 3 + [(10,)]),
    "resnet18": (96, [(64, 24, 24), (64, 24, 24), (128, 12, 12), (256, 6, 6), (512, 3, 3),
                      (512, 1, 1), (512,), (10,)]),
    "densenet": (96, [(64, 24, 24), (192, 24, 24), (96, 12, 12), (224, 12, 12), (112, 6, 6),
                      (240, 6, 6), (120, 3, 3), (248, 3, 3), (248, 3, 3), (248, 3, 3), (248, 1, 1),
                      (248,), (10,)]),
}

FACTORIES = {"alexnet": cnnlib.alexnet, "vgg11": cnnlib.vgg11, "nin": cnnlib.nin,
             "googlenet": cnnlib.googlenet, "lenet_bn": cnnlib.lenet_bn,
             "resnet18": cnnlib.resnet18, "densenet": cnnlib.densenet}


@pytest.mark.parametrize("name", FACTORIES)
def test_parameter_count(name):
    assert cnnlib.count_parameters(FACTORIES[name]()) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize("name", FACTORIES)
def test_shape_trace_at_book_resolution(name):
    resolution, expected = EXPECTED_TRACE[name]
    rows = cnnlib.trace_shapes(FACTORIES[name](), resolution)
    assert [shape for _, shape in rows] == [A + s for s in expected]


@pytest.mark.parametrize("name", FACTORIES)
def test_output_shape_gradients_and_no_nan(name):
    resolution = EXPECTED_TRACE[name][0]
    net = FACTORIES[name]()
    assert isinstance(net, torch.nn.Sequential)
    X = torch.rand(4, 1, resolution, resolution)
    out = net(X)
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.arange(4)).backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{pname} 没有梯度"
        assert torch.isfinite(p.grad).all(), f"{pname} 的梯度含 NaN/Inf"
        assert p.grad.abs().sum() > 0, f"{pname} 的梯度全为零"


@pytest.mark.parametrize("name", FACTORIES)
def test_factories_take_num_classes_and_in_channels(name):
    resolution = EXPECTED_TRACE[name][0]
    net = FACTORIES[name](num_classes=7, in_channels=3).eval()
    assert net(torch.rand(2, 3, resolution, resolution)).shape == (2, 7)


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
