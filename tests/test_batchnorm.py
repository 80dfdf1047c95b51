"""从零实现的批量规范化与 torch.nn 在两种模式下逐元素一致，并且像真正的层一样保存与移动。"""

import pytest
import torch
from torch import nn

import cnnlib


def pair(num_dims, c):
    ours = cnnlib.BatchNorm(c, num_dims=num_dims)
    ref = nn.BatchNorm2d(c) if num_dims == 4 else nn.BatchNorm1d(c)
    with torch.no_grad():  # 同样的非平凡 gamma、beta
        g, b = torch.rand(c) + 0.5, torch.randn(c)
        ours.gamma.copy_(g.reshape(ours.gamma.shape)); ours.beta.copy_(b.reshape(ours.beta.shape))
        ref.weight.copy_(g); ref.bias.copy_(b)
    return ours, ref


@pytest.mark.parametrize("num_dims,shape", [(4, (8, 5, 6, 7)), (2, (16, 12))])
def test_train_and_eval_agree_with_torch_nn(num_dims, shape):
    c = shape[1]
    ours, ref = pair(num_dims, c)
    for _ in range(5):  # 训练模式：输出一致，移动统计量也一致（含无偏方差）
        X = torch.randn(shape) * 3 + 1
        torch.testing.assert_close(ours(X), ref(X), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.moving_mean.flatten(), ref.running_mean)
    torch.testing.assert_close(ours.moving_var.flatten(), ref.running_var)
    ours.eval(), ref.eval()
    X = torch.randn(shape)
    torch.testing.assert_close(ours(X), ref(X), rtol=1e-5, atol=1e-5)


def test_gradients_agree_with_torch_nn():
    ours, ref = pair(4, 3)
    X1 = torch.randn(4, 3, 5, 5, requires_grad=True)
    X2 = X1.detach().clone().requires_grad_()
    (ours(X1) ** 2).sum().backward()
    (ref(X2) ** 2).sum().backward()
    torch.testing.assert_close(X1.grad, X2.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ours.gamma.grad.flatten(), ref.weight.grad, rtol=1e-4, atol=1e-5)


def test_eval_under_enable_grad_uses_moving_statistics():
    # d2l 用 torch.is_grad_enabled() 判断模式：在 enable_grad 下预测会误用批统计量并改掉移动统计量
    ours, ref = pair(4, 3)
    X_train = torch.randn(8, 3, 4, 4) + 2
    for m in (ours, ref):
        m(X_train)
        m.eval()
    before = ours.moving_mean.clone()
    X = torch.randn(2, 3, 4, 4)
    with torch.enable_grad():
        torch.testing.assert_close(ours(X), ref(X), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.moving_mean, before)


def test_moving_statistics_are_buffers_that_survive_state_dict_and_to():
    net = cnnlib.lenet_bn(scratch=True)
    net(torch.rand(16, 1, 28, 28))  # 更新一次移动统计量
    state = net.state_dict()
    assert "1.moving_mean" in state and "1.moving_var" in state
    assert "1.moving_mean" not in dict(net.named_parameters())
    fresh = cnnlib.lenet_bn(scratch=True)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh[1].moving_var, net[1].moving_var)
    fresh.eval(), net.eval()
    X = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(fresh(X), net(X))
    moved = fresh.to(torch.float64)  # .to() 会带上缓冲区（在没有 GPU 的机器上用 dtype 检查）
    assert moved[1].moving_mean.dtype == torch.float64


def test_scratch_and_nn_lenet_have_same_parameter_count():
    assert (cnnlib.count_parameters(cnnlib.lenet_bn(scratch=True))
            == cnnlib.count_parameters(cnnlib.lenet_bn(scratch=False)))


def test_clear_errors():
    with pytest.raises(ValueError, match="num_dims=3"):
        cnnlib.BatchNorm(4, num_dims=3)
    with pytest.raises(ValueError, match="num_dims=4"):
        cnnlib.BatchNorm(4, num_dims=4)(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\(1, 4\)"):  # 每个通道只有 1 个元素，估计不了方差：消息写出形状
        cnnlib.BatchNorm(4, num_dims=2)(torch.randn(1, 4))
    cnnlib.BatchNorm(4, num_dims=2).eval()(torch.randn(1, 4))  # 预测模式用移动统计量，批量为 1 也可以
