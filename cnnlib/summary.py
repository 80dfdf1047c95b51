"""查看网络：逐层输出形状、参数量、前向 FLOPs，以及在笔记本中显示 cnnlib 的源代码。"""

import ast
import contextlib
import inspect
import textwrap
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@contextlib.contextmanager
def eval_mode(net: nn.Module):
    """在预测模式下运行一段代码（批量规范化用移动统计量、暂退法关闭），之后恢复原来的模式。"""
    was_training = net.training
    net.eval()
    try:
        yield net
    finally:
        net.train(was_training)


def _probe(net: nn.Module, in_channels: int, resolution: int) -> torch.Tensor:
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    return torch.zeros(1, in_channels, resolution, resolution, device=device)


class LayerShape(NamedTuple):
    """:func:`layer_shapes` 的一行：层名（形如 ``"3 Conv2d"``）与该层的输出形状。"""
    name: str
    shape: tuple[int, ...]


def layer_shapes(net: nn.Sequential, resolution: int, in_channels: int = 1) -> list[LayerShape]:
    """让一个 ``1 × in_channels × resolution × resolution`` 的输入逐层穿过 ``net``，返回每层的输出形状。

    在预测模式下运行（批量规范化用移动统计量，批量为 1 也可以），结束后恢复原来的模式。

    Returns:
        每个顶层一行 :class:`LayerShape`（``name``、``shape``），可以当作 ``(层名, 形状)`` 拆开。
    """
    X = _probe(net, in_channels, resolution)
    rows = []
    with eval_mode(net), torch.no_grad():
        for i, layer in enumerate(net):
            X = layer(X)
            rows.append(LayerShape(f"{i} {type(layer).__name__}", tuple(X.shape)))
    return rows


def print_shapes(net: nn.Sequential, resolution: int, in_channels: int = 1) -> None:
    """逐层打印输出形状与参数量（返回同样内容的是 :func:`layer_shapes`）。

    同时打印参数量，是因为只看形状看不出不改变形状的改动（例如换了卷积核大小、
    多加了一个残差块）。不返回值，所以笔记本里不会多出一行列表。
    """
    rows = layer_shapes(net, resolution, in_channels)
    params = [count_parameters(layer) for layer in net]
    width = max(len(name) for name, _ in rows)
    shape_width = max(len(str(shape)) for _, shape in rows)
    print(f"输入 {(1, in_channels, resolution, resolution)}")
    for (name, shape), p in zip(rows, params):
        print(f"{name:<{width}}  输出形状 {str(shape):<{shape_width}}  参数 {p:,}")
    print(f"参数合计 {sum(params):,}")


def check_input_resolution(net: nn.Module, in_channels: int, resolution: int,
                           device: torch.device) -> None:
    """训练前用一个小输入试跑一次；模型接受不了这个分辨率时给出清楚的错误。"""
    def works(r: int) -> bool:
        try:
            net(torch.zeros(2, in_channels, r, r, device=device))
            return True
        except RuntimeError:
            return False

    with eval_mode(net), torch.no_grad():
        if works(resolution):
            return
        candidates = (28, 32, 64, 96, 112, 128, 160, 192, 224, 256)
        ok = [r for r in candidates if works(r)]
    hint = (f"这个模型可以接受的分辨率有：{'、'.join(f'{r}×{r}' for r in ok)}。"
            if ok else "在常见分辨率中没有找到它能接受的。")
    raise ValueError(f"输入分辨率 {resolution}×{resolution} 不适合这个模型：前向计算出错。{hint}"
                     f"请用 load_fashion_mnist(batch_size, resize=...) 选择合适的分辨率后再训练。")


def count_parameters(net: nn.Module) -> int:
    """可训练参数的个数（不含批量规范化的移动统计量等缓冲区）。"""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def count_flops(net: nn.Module, resolution: int, in_channels: int = 1) -> int:
    """一张图像前向计算的浮点运算数（``torch.utils.flop_counter``：一次乘加算 2 次）。

    计数器只统计卷积与矩阵乘法；激活函数、汇聚、批量规范化等逐元素运算记为 0，
    它们的运算量比卷积小两三个数量级。
    """
    X = _probe(net, in_channels, resolution)
    with eval_mode(net), torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(X)
    return int(counter.get_total_flops())


def layer_table(net: nn.Sequential, resolution: int, in_channels: int = 1) -> str:
    """按顶层逐层列出输出形状、参数量和前向 FLOPs，返回 Markdown 表格（可用 ``display(Markdown(...))``）。

    FLOPs 只计卷积与矩阵乘法（见 :func:`count_flops`）。
    """
    X = _probe(net, in_channels, resolution)
    lines = ["| 层 | 输出形状 | 参数量 | 前向 MFLOPs |", "|---|---|---:|---:|"]
    total_p = total_f = 0
    with eval_mode(net), torch.no_grad():
        for i, layer in enumerate(net):
            with FlopCounterMode(display=False) as counter:
                X = layer(X)
            p, f = count_parameters(layer), counter.get_total_flops()
            total_p, total_f = total_p + p, total_f + f
            lines.append(f"| {i} {type(layer).__name__} | {tuple(X.shape)} | {p:,} | {f / 1e6:,.1f} |")
    lines.append(f"| **合计** | | **{total_p:,}** | **{total_f / 1e6:,.1f}** |")
    return "\n".join(lines)


def show_source(obj, docstring: bool = True):
    """显示 cnnlib 中某个函数或类的源代码（带语法高亮，在静态网站上同样可见）。

    ``docstring=False`` 时去掉文档字符串，只看代码（例如 ``show_source(cnnlib.train, docstring=False)``）。
    在 Jupyter 中返回 ``IPython.display.Code``；在普通脚本中返回源代码字符串。
    """
    source = inspect.getsource(obj)
    if not docstring:
        body = ast.parse(textwrap.dedent(source)).body[0].body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            lines = source.splitlines(keepends=True)
            source = "".join(lines[:body[0].lineno - 1] + lines[body[0].end_lineno:])
    try:
        from IPython.display import Code
    except ImportError:
        return source
    return Code(source, language="python")


def conv_activations(net: nn.Module, X: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
    """预测模式下前向一次，返回每个卷积层经 ReLU 之后的输出 ``[(层名, 张量), ...]``。

    层名形如 ``"0 Conv2d"``（``named_modules`` 中的名字）；张量与 ``X`` 同批量，放在 CPU 上。
    本章的卷积层后面都紧跟 ReLU，所以这就是下一层看到的特征图。
    """
    outputs, hooks = [], []
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            hooks.append(module.register_forward_hook(
                lambda m, i, o, name=name: outputs.append((f"{name} Conv2d", o.float().relu().cpu()))))
    try:
        with eval_mode(net), torch.no_grad():
            net(X)
    finally:
        for h in hooks:
            h.remove()
    return outputs


def confusion_matrix(net: nn.Module, data_iter, num_classes: int = 10,
                     device: torch.device | str | None = None, *, amp: str | None = None,
                     channels_last: bool = False) -> torch.Tensor:
    """预测模式下在 ``data_iter`` 上数出混淆矩阵（confusion matrix），只在最后读回主机一次。

    第 ``i`` 行第 ``j`` 列是真实类别 ``i`` 被预测成类别 ``j`` 的样本数：行和是各类别的真实样本数，
    列和是各类别被预测的次数（:func:`prediction_counts`）。对角线之和除以总数就是准确率。
    ``amp``、``channels_last`` 应与训练时相同，这样数出的准确率与 ``History.test_acc`` 一致。

    Args:
        net: 分类网络，输出 ``(批量, num_classes)`` 的对数几率。
        data_iter: 产出 ``(X, y)`` 的可迭代对象；标签取值在 ``0`` 到 ``num_classes - 1``。
        num_classes: 类别数（Fashion-MNIST 是 10）。
        device: 默认是网络参数所在的设备。
        amp: ``"bf16"``、``"fp16"`` 或 None（float32）。
        channels_last: 是否把输入换成 channels_last 布局。

    Returns:
        CPU 上 int64 的 ``num_classes × num_classes`` 张量。
    """
    from cnnlib.speed import autocast, to_device
    device = torch.device(device) if device is not None else next(iter(net.parameters())).device
    counts = torch.zeros(num_classes * num_classes, dtype=torch.long, device=device)
    with eval_mode(net), torch.inference_mode(), autocast(device, amp):
        for X, y in data_iter:
            X, y = to_device(X, device, channels_last), y.to(device)
            logits = net(X)
            if logits.dim() != 2 or logits.shape[1] != num_classes:
                raise ValueError(f"网络输出的形状是 {tuple(logits.shape)}，而 num_classes={num_classes}："
                                 f"请让网络输出 (批量, {num_classes}) 的对数几率，或改正 num_classes。")
            # 每个样本落进 (真实类别, 预测类别) 的一格；index_add_ 在设备上累加，不与主机同步
            cell = y * num_classes + logits.argmax(dim=1)
            counts.index_add_(0, cell, torch.ones_like(cell))
    return counts.view(num_classes, num_classes).cpu()


def prediction_counts(net: nn.Module, data_iter, num_classes: int = 10,
                      device: torch.device | str | None = None, *, amp: str | None = None,
                      channels_last: bool = False) -> torch.Tensor:
    """每个类别被预测了多少次（混淆矩阵的列和，见 :func:`confusion_matrix`）。

    一个类别的计数是 0，说明网络从不预测它：例如 7.3 节 NiN 的“死掉的类别通道”。

    Returns:
        CPU 上 int64 的长度为 ``num_classes`` 的张量。
    """
    return confusion_matrix(net, data_iter, num_classes, device, amp=amp,
                            channels_last=channels_last).sum(dim=0)
