"""7.5 批量规范化（batch normalization）。

Ioffe, Szegedy. Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift. ICML 2015.

从零实现的 ``BatchNorm`` 与 ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` 逐元素一致：
- 训练还是预测由 ``self.training``（``net.train()`` / ``net.eval()``）决定，
  而不是像 d2l 那样看 ``torch.is_grad_enabled()``——否则在 ``torch.enable_grad()``
  下做预测（例如求输入梯度的可视化）会悄悄改掉移动统计量。
- 移动均值和方差注册为缓冲区（buffer）：它们不是参数，不参与梯度下降，
  但会随 ``state_dict()`` 保存、随 ``.to(device)`` 移动。
"""

import torch
from torch import nn


def batch_norm(X: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor,
               moving_mean: torch.Tensor, moving_var: torch.Tensor,
               eps: float, momentum: float, training: bool):
    """批量规范化的函数形式。

    Args:
        X: 全连接层输出 ``(N, C)`` 或卷积层输出 ``(N, C, H, W)``。
        gamma, beta: 拉伸与偏移参数，形状可广播到 ``X``。
        moving_mean, moving_var: 当前的移动均值与移动方差。
        eps: 加在方差上的小常数，防止除以零。
        momentum: 旧值的权重（d2l 的约定）：``新 = momentum * 旧 + (1 - momentum) * 本批``。
            PyTorch 的 ``nn.BatchNorm2d(momentum=0.1)`` 写的是本批的权重，两者互补：0.9 对应 0.1。
        training: 训练模式用本批统计量并更新移动统计量；预测模式只用移动统计量。

    Returns:
        ``(Y, moving_mean, moving_var)``：输出与更新后的移动统计量（预测模式下原样返回）。
    """
    if not training:
        X_hat = (X.float() - moving_mean) / torch.sqrt(moving_var + eps)
        return (gamma * X_hat + beta).to(X.dtype), moving_mean, moving_var
    if X.dim() == 2:
        dims = (0,)          # 全连接层：每个特征在批量维上求统计量
    elif X.dim() == 4:
        dims = (0, 2, 3)     # 卷积层：每个通道在 批量×高×宽 的 m·p·q 个元素上求统计量
    else:
        raise ValueError(f"批量规范化只接受 2 维 (N, C) 或 4 维 (N, C, H, W) 的输入，"
                         f"收到形状 {tuple(X.shape)}。")
    n = X.numel() // X.shape[1]
    if n < 2:
        raise ValueError(f"训练模式下每个通道至少需要 2 个元素才能估计方差，收到形状 {tuple(X.shape)}。"
                         "请增大批量，或先调用 net.eval()。")
    # 混合精度下 X 可能是 bf16/fp16：统计量在 float32 中计算，避免求和时丢精度
    Xf = X.float()
    mean = Xf.mean(dim=dims, keepdim=True)
    # 规范化用有偏方差（除以 n）；移动方差按 PyTorch 的做法存无偏估计（除以 n-1），
    # 这样预测时与 nn.BatchNorm2d 的结果一致
    var = ((Xf - mean) ** 2).mean(dim=dims, keepdim=True)
    X_hat = (Xf - mean) / torch.sqrt(var + eps)
    with torch.no_grad():
        shape = moving_mean.shape
        new_mean = momentum * moving_mean + (1.0 - momentum) * mean.reshape(shape)
        new_var = momentum * moving_var + (1.0 - momentum) * var.reshape(shape) * (n / (n - 1))
    Y = gamma * X_hat + beta
    return Y.to(X.dtype), new_mean, new_var


class BatchNorm(nn.Module):
    """从零实现的批量规范化层。

    Args:
        num_features: 全连接层的输出数，或卷积层的输出通道数。
        num_dims: 2 表示全连接层，4 表示卷积层。
        eps: 见 :func:`batch_norm`。
        momentum: 旧值的权重，见 :func:`batch_norm`。
    """

    def __init__(self, num_features: int, num_dims: int, eps: float = 1e-5,
                 momentum: float = 0.9) -> None:
        super().__init__()
        if num_dims == 2:
            shape = (1, num_features)
        elif num_dims == 4:
            shape = (1, num_features, 1, 1)
        else:
            raise ValueError(f"num_dims={num_dims!r} 不可用：全连接层用 2，卷积层用 4。")
        self.num_dims, self.eps, self.momentum = num_dims, eps, momentum
        # 参与梯度下降的拉伸参数和偏移参数
        self.gamma = nn.Parameter(torch.ones(shape))
        self.beta = nn.Parameter(torch.zeros(shape))
        # 移动统计量是缓冲区：随 state_dict 保存、随 .to() 移动，但不被优化器更新
        self.register_buffer("moving_mean", torch.zeros(shape))
        self.register_buffer("moving_var", torch.ones(shape))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        if X.dim() != self.num_dims:
            raise ValueError(f"这个 BatchNorm 建于 num_dims={self.num_dims}，却收到 {X.dim()} 维输入 "
                             f"{tuple(X.shape)}。全连接层之后用 num_dims=2，卷积层之后用 num_dims=4。")
        Y, moving_mean, moving_var = batch_norm(
            X, self.gamma, self.beta, self.moving_mean, self.moving_var,
            eps=self.eps, momentum=self.momentum, training=self.training)
        if self.training:
            self.moving_mean.copy_(moving_mean)
            self.moving_var.copy_(moving_var)
        return Y

    def extra_repr(self) -> str:
        return f"{self.gamma.shape[1]}, num_dims={self.num_dims}, eps={self.eps}, momentum={self.momentum}"


def lenet_bn(scratch: bool = True, num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """带批量规范化的 LeNet，输入 28×28。

    Args:
        scratch: True 用从零实现的 :class:`BatchNorm`，False 用 ``nn.BatchNorm2d`` / ``nn.BatchNorm1d``
            （它们没有 ``num_dims`` 参数，维数由类名决定）。
        num_classes: 类别数。
        in_channels: 输入通道数。
    """
    def bn(num_features: int, num_dims: int) -> nn.Module:
        if scratch:
            return BatchNorm(num_features, num_dims=num_dims)
        return nn.BatchNorm2d(num_features) if num_dims == 4 else nn.BatchNorm1d(num_features)

    # 批量规范化放在卷积层或全连接层之后、激活函数之前
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5), bn(6, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),   # N x 6 x 12 x 12
        nn.Conv2d(6, 16, kernel_size=5), bn(16, 4), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),   # N x 16 x 4 x 4
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120), bn(120, 2), nn.Sigmoid(),
        nn.Linear(120, 84), bn(84, 2), nn.Sigmoid(),
        nn.Linear(84, num_classes),
    )
