"""GPU 训练循环：``train`` 返回逐轮的 :class:`History`。

与 d2l 的 ``train_ch6`` 相比：
- 权重初始化是显式参数（默认 Xavier，``init=None`` 保留现有权重），不藏在训练函数里。
- 损失与正确数累加在设备上，每轮只读回主机几次（:mod:`cnnlib.monitor`）：float32 与 bf16 训练时主机
  不必每批等设备。fp16 例外：梯度缩放（``GradScaler``）每步都要读回梯度里有没有 Inf。
- 混合精度与 channels_last 按设备选择（:mod:`cnnlib.speed`），都可以用参数关掉。训练期间打开
  ``cudnn.benchmark``（只有 CUDA 上的 cuDNN 读它，没有开关），``train`` 返回时恢复原值。
- 测试准确率总用 float32 评估，与 :func:`evaluate_accuracy` 的默认相同：一次训练只有一个测试准确率。
- ``checkpoint=路径`` 在每轮结束时原子地保存（包括随机数状态），下次调用从断点继续，
  结果与不中断的训练相同（:mod:`cnnlib.checkpoint`）。
- 损失变成 NaN/Inf 时，在下一个读数点（默认每轮 4 个）停下并说明原因，所以可能晚几批才发现；
  Ctrl-C 返回到此为止的记录。
- 用 torchrun 启动时自动分布式数据并行（:mod:`cnnlib.distributed`），每个进程抽自己的暂退法掩码。
"""

import contextlib
import math
import os

import torch
from torch import nn

from cnnlib.checkpoint import Checkpoint
from cnnlib.device import device_name, try_gpu
from cnnlib.distributed import Distributed
from cnnlib.history import History
from cnnlib.memory import explain_out_of_memory
from cnnlib.monitor import Monitor, accuracy
from cnnlib.speed import autocast, resolve_speed_options, to_device
from cnnlib.summary import check_input_resolution, eval_mode


def count_correct(net: nn.Module, data_iter, device: torch.device, amp: str | None = None,
                  channels_last: bool = False) -> torch.Tensor:
    """设备上的 ``[正确数, 样本数]``，整个过程不与主机同步。``amp=None`` 是 float32。"""
    counts = torch.zeros(2, device=device)
    with eval_mode(net), torch.inference_mode(), autocast(device, amp):
        for X, y in data_iter:
            X, y = to_device(X, device, channels_last), y.to(device)
            counts[0] += accuracy(net(X), y)
            counts[1] += y.shape[0]
    return counts.clone()  # inference_mode 之外也能用（例如分布式 all_reduce）


def evaluate_accuracy(net: nn.Module, data_iter, device: torch.device | str | None = None, *,
                      amp: str | None = None, channels_last: bool = False) -> float:
    """在 ``data_iter`` 上计算准确率。只在最后读一次结果。

    默认（float32，输入不换内存布局）与 :func:`train` 每轮评估的方式相同：训练之后在同一份测试数据上调用，
    得到的就是 ``History.test_acc`` 的最后一项，与训练用的精度无关。``amp="bf16"`` 更快，但结果可能差几个样本。
    """
    if device is None:
        device = next(iter(net.parameters())).device
    correct, n = count_correct(net, data_iter, torch.device(device), amp, channels_last).tolist()
    return correct / max(n, 1)


def xavier_init(module: nn.Module) -> None:
    """Xavier 均匀初始化全连接层与卷积层的权重（偏置保持 PyTorch 的默认值）。"""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def kaiming_init(module: nn.Module) -> None:
    """He（Kaiming）正态初始化：方差 2/fan_in，为 ReLU 设计（偏置保持 PyTorch 的默认值）。"""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")


def _check_arguments(num_epochs, lr, optimizer, readouts_per_epoch) -> None:
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs={num_epochs!r} 不可用：它必须是正整数。")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr!r} 不可用：学习率必须是正数，例如 0.01 或 0.1。")
    if optimizer is not None and float(optimizer.param_groups[0]["lr"]) != float(lr):
        raise ValueError(f"lr={lr!r} 与 optimizer 的学习率 {float(optimizer.param_groups[0]['lr'])!r} 不同。"
                         "给了 optimizer 时按它的学习率训练，lr 只用于记录（检查点、结果文件）和发散时的提示："
                         "请把两者设成相同的值。")
    if not isinstance(readouts_per_epoch, int) or readouts_per_epoch < 1:
        raise ValueError(f"readouts_per_epoch={readouts_per_epoch!r} 不可用：它必须是正整数，例如 4。")


def _checkpoint_config(lr, optimizer, amp, train_iter, world_size) -> dict:
    """续训时必须相同的设置：每一项都会改变训练的结果。"""
    return {"lr": float(lr), "optimizer": type(optimizer).__name__, "amp": amp,
            "batch_size": getattr(train_iter, "batch_size", None),
            "num_train": getattr(train_iter, "num_examples", None),
            "resolution": getattr(train_iter, "resolution", None), "seed": getattr(train_iter, "seed", None),
            "world_size": world_size}


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool = True):
    """这段代码里把 ``cudnn.benchmark`` 设为 ``enabled``（训练时打开），之后恢复原值（它是整个进程的开关）。

    训练时输入形状固定，cuDNN 为每层实测一次、挑最快的算法；只有 CUDA 上的 cuDNN 读这个开关。
    """
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before


def train(net: nn.Module, train_iter, test_iter, num_epochs: int, lr: float,
          device: torch.device | str | None = None, *,
          init=xavier_init, optimizer: torch.optim.Optimizer | None = None,
          amp: str | None = "auto", channels_last: bool | str = "auto", compile: bool = False,
          checkpoint: str | os.PathLike | None = None, plot: bool | str = "auto",
          progress: bool | None = None, readouts_per_epoch: int = 4) -> History:
    """用小批量随机梯度下降和交叉熵损失训练 ``net``，返回 :class:`History`。

    Args:
        net: 要训练的网络。
        train_iter, test_iter: :func:`cnnlib.load_fashion_mnist` 返回的迭代器，或任何产出 ``(X, y)``
            的可迭代对象（例如 ``torch.utils.data.DataLoader``）。样本数在训练时逐批数出。
        num_epochs: 训练轮数（续训时是总轮数）。
        lr: 学习率。
        device: 默认 :func:`cnnlib.try_gpu`（CUDA，其次 MPS，最后 CPU）。
        init: 对每个子模块调用的初始化函数，默认 :func:`xavier_init`；None 保留当前权重。
            从检查点续训时不再初始化。
        optimizer: 默认 ``torch.optim.SGD(net.parameters(), lr=lr)``。给了 optimizer 时按它的学习率训练，
            ``lr`` 必须等于它第一组参数的学习率（``lr`` 记进检查点与结果，也用于发散时的提示），否则报错。
        amp: ``"auto"``、``"bf16"``、``"fp16"`` 或 None，见 :func:`cnnlib.resolve_speed_options`。
            从检查点续训时，``"auto"`` 沿用检查点里当初的选择，不再实测。
        channels_last: ``"auto"``、True 或 False。
        compile: 为 True 时用 ``torch.compile`` 编译网络（首轮会慢一些）。
        checkpoint: 检查点路径。每轮结束时保存；文件已存在时从中断处继续，结果与不中断的训练相同
            （参数、优化器状态与每个进程的随机数状态都从检查点恢复）。
        plot: ``"auto"`` 在 Jupyter 中画实时曲线（结束后留下一张静态图）；True/False 强制开关。
            在普通的 python 进程里 True 画在 matplotlib 窗口中，不能开窗口时存成 PNG 并打印路径。
        progress: 是否显示 tqdm 进度条；None 时看环境变量 ``CNNLIB_PROGRESS``（默认开）。
        readouts_per_epoch: 每轮把设备上的累计指标读回主机几次（用于进度条、曲线和 NaN 检查）。

    用 ``torchrun --nproc_per_node=K`` 启动并已调用 ``torch.distributed.init_process_group`` 时，
    自动用分布式数据并行：每个进程取数据的一份（迭代器的 ``batch_size`` 是每个进程的批量），
    梯度与指标在进程间求和；只有 0 号进程打印、作图、写检查点。调用者的迭代器不会被改动。
    每个进程从自己的随机数流抽暂退法的掩码；测试集一张不少地分给各进程。

    Returns:
        逐轮记录。被 Ctrl-C 中断时返回到此为止的记录，``interrupted=True``。

    Raises:
        TrainingDivergedError: 损失变成 NaN/Inf（带 ``epoch``、``batch`` 属性）。
        CheckpointError: 检查点损坏、被篡改、是旧版格式，或属于另一个模型或另一组设置（带 ``path``、``reason``）。
        ValueError: 参数不合理（包括 ``lr`` 与给定 ``optimizer`` 的学习率不同），或输入分辨率不适合这个模型。
        TrainingOutOfMemoryError: 训练或评估时设备内存不够（仍是 ``torch.cuda.OutOfMemoryError``）：
            消息说明模型、批量、设备内存和按估计放得下的批量（字段见 :mod:`cnnlib.memory`）。
    """
    _check_arguments(num_epochs, lr, optimizer, readouts_per_epoch)
    device = torch.device(device) if device is not None else try_gpu()
    dist = Distributed()
    saver = Checkpoint(checkpoint, device) if checkpoint else None  # 读入已有的检查点（还没有时为空）
    if saver:
        amp = saver.decided_precision(amp)  # 续训时 "auto" 沿用当初的选择
    # CPU 上 "auto" 由各进程各自实测决定，结果可能不同；分布式训练时都用 0 号进程的选择
    amp, channels_last = dist.agree(resolve_speed_options(device, amp, channels_last), device)
    net.to(device)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if hasattr(train_iter, "resolution"):  # cnnlib 的迭代器知道分辨率：先试跑一次，不合适时清楚地报错
        check_input_resolution(net, train_iter.in_channels, train_iter.resolution, device)
    optimizer = optimizer or torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")  # 只有 fp16 需要梯度缩放

    # 续训：载入参数、优化器状态与已完成轮次的记录
    history = saver.resume(net, optimizer, scaler, _checkpoint_config(lr, optimizer, amp, train_iter,
                                                                       dist.world_size)) if saver else None
    resumed = history is not None
    if not resumed and init is not None:
        net.apply(init)
    batch_size = getattr(train_iter, "batch_size", None)
    history = history or History(device=device_name(device), precision=amp or "fp32", eval_precision="fp32",
                                 profile=getattr(train_iter, "profile", None),
                                 resolution=getattr(train_iter, "resolution", None),
                                 batch_size=batch_size * dist.world_size if batch_size else None, lr=float(lr),
                                 init=getattr(init, "__name__", None) if init is not None else None,
                                 seed=getattr(train_iter, "seed", None))
    train_data, test_data = dist.shard(train_iter), dist.shard(test_iter, even=False)  # 分片的副本
    model = dist.wrap(net, device)
    if compile:
        model = torch.compile(model)

    # 显存不够时，PyTorch 的分配器报错换成一条说明模型、批量、显存与怎么办的错误（cnnlib.memory）
    out_of_memory = explain_out_of_memory(net, train_iter, device, amp, checkpoint=checkpoint, history=history)
    # 随机数（暂退法的掩码、DataLoader 的打乱）：续训时接着检查点那一刻；分布式时每个进程一条自己的流。
    # 放在循环前的最后一步：从这里到第一批，不能再有别的代码取随机数
    if resumed:
        saver.restore_random_state(dist.rank)
    else:
        dist.seed_per_rank()
    with out_of_memory, cudnn_benchmark(), Monitor(history, num_epochs, lr, device, train_data, dist, plot=plot,
                                                    progress=progress, readouts_per_epoch=readouts_per_epoch,
                                                    checkpoint=checkpoint) as monitor:
        for epoch in range(history.epochs, num_epochs):
            monitor.start_epoch(epoch)
            if hasattr(train_data, "set_epoch"):
                train_data.set_epoch(epoch)  # 打乱顺序只由种子与轮次决定：续训后与不中断时相同
            model.train()
            for X, y in train_data:
                X, y = to_device(X, device, channels_last), y.to(device, non_blocking=True)
                with autocast(device, amp):
                    y_hat = model(X)
                    loss = loss_fn(y_hat, y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                monitor.step(loss, y_hat, y)
            dist.broadcast_buffers(net)  # 各进程都用 0 号进程的批量规范化统计量评估
            # 用 float32、不换内存布局评估（与 evaluate_accuracy 的默认相同），用未编译、未包装的 net
            monitor.end_epoch(count_correct(net, test_data, device),
                              getattr(train_iter, "total", None), getattr(test_iter, "total", None))
            if saver:
                saver.save(history, dist)  # 连同每个进程的随机数状态；0 号进程写文件，其他进程等它写完
    return history
