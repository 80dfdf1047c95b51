"""GPU 训练循环：``train`` 返回逐轮的 :class:`History`。

与 d2l 的 ``train_ch6`` 相比：
- 权重初始化是显式参数（默认 Xavier，``init=None`` 保留现有权重），不藏在训练函数里。
- 每个批量都不与主机同步：损失与正确数累加在设备上，每轮只读出几次。
- 混合精度、channels_last、cudnn.benchmark 默认按设备选择（见 :func:`resolve_speed_options`），
  每一项都可以关掉。
- ``checkpoint=路径`` 在每轮结束时原子地保存，下次调用从断点继续。
- 损失变成 NaN/Inf 时立即停下并说明原因；Ctrl-C 返回到此为止的记录。
"""

import math
import os
import pickle
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnlib.device import device_name, try_gpu
from cnnlib.inspect import eval_mode

CHECKPOINT_FORMAT = "cnnlib-checkpoint-1"


class TrainingDivergedError(FloatingPointError):
    """损失变成了 NaN 或 Inf。``history`` 属性保存到此为止的记录。"""

    def __init__(self, message: str, history: "History") -> None:
        super().__init__(message)
        self.history = history


class CheckpointError(ValueError):
    """检查点无法读取，或不属于当前的模型与设置。"""


@dataclass
class History:
    """逐轮的训练记录。列表的第 i 项对应第 i+1 轮。"""
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    examples_per_sec: list[float] = field(default_factory=list)  # 每轮：训练样本数 / 该轮总墙钟时间
    epoch_time: list[float] = field(default_factory=list)        # 每轮墙钟时间（秒），含评估
    # 轮内的读数：[轮次位置（如 0.25）, 自上次读数以来各批的平均损失, 同一区间的训练准确率]
    readouts: list[list[float]] = field(default_factory=list)
    device: str = ""
    precision: str = ""  # "fp32"、"bf16" 或 "fp16"（自动混合精度）
    profile: str | None = None
    num_train: int = 0
    num_test: int = 0
    total_train: int = 0
    total_test: int = 0
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def wall_time(self) -> float:
        """全部轮次的墙钟时间（秒），含取数据与评估。"""
        return float(sum(self.epoch_time))

    @property
    def overall_examples_per_sec(self) -> float:
        """按全部墙钟时间计算的吞吐量：训练样本总数 / 总时间。"""
        return self.num_train * self.epochs / self.wall_time if self.wall_time else 0.0

    def summary(self) -> str:
        """d2l 风格的总结行，加上吞吐量、设备与运行配置。"""
        if not self.epochs:
            return "还没有完成任何一轮训练。"
        data = (f"训练 {self.num_train:,}/{self.total_train:,} 张 × {self.epochs} 轮，"
                f"测试 {self.num_test:,}/{self.total_test:,} 张")
        profile = f"运行配置 {self.profile}，" if self.profile else ""
        return (f"loss {self.train_loss[-1]:.3f}, train acc {self.train_acc[-1]:.3f}, "
                f"test acc {self.test_acc[-1]:.3f}\n"
                f"{self.overall_examples_per_sec:.1f} examples/sec on {self.device}, {self.precision or 'fp32'} "
                f"（按总墙钟时间 {self.wall_time:.1f} 秒计，含取数据与评估；{profile}{data}）")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)


PLATEAU_BAND = 0.03  # 训练损失离 ln(类别数) 不到这么多，就算停在平台期


def plateau_hint(train_loss: list[float], num_classes: int) -> str | None:
    """每一轮的训练损失都停在 ``ln(num_classes)`` 附近时，返回一行中文说明；否则返回 None。

    ``ln C`` 是对 C 个类别给出均匀预测时的交叉熵：损失停在这里，说明网络的输出几乎不随输入变化。
    """
    if not train_loss or num_classes < 2:
        return None
    flat = math.log(num_classes)
    if any(not math.isfinite(l) or abs(l - flat) > PLATEAU_BAND for l in train_loss):
        return None
    return (f"提示：{len(train_loss)} 轮的训练损失都停在 ln {num_classes} ≈ {flat:.3f} 附近"
            f"（{min(train_loss):.3f}–{max(train_loss):.3f}），这是对 {num_classes} 个类别给出均匀预测时的损失，"
            "网络还没有学到东西（平台期）。常见原因：学习率不合适；初始化让信号在没有批量规范化的深层 ReLU "
            "网络里逐层衰减（可试 init=cnnlib.kaiming_init）；参数更新次数太少（例如 cpu 配置的子集）。"
            "详见 7.3 节（NiN）关于平台期与初始化的实验。")


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """预测正确的个数，作为设备上的张量返回（不与主机同步）。"""
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    return (y_hat.to(y.dtype) == y).sum()


def _count_correct(net: nn.Module, data_iter, device: torch.device, amp: str | None,
                   channels_last: bool) -> torch.Tensor:
    """设备上的 ``[正确数, 样本数]``，整个过程不与主机同步。"""
    counts = torch.zeros(2, device=device)
    with eval_mode(net), torch.inference_mode(), _autocast(device, amp):
        for X, y in data_iter:
            X, y = _prepare(X, device, channels_last), y.to(device)
            counts[0] += accuracy(net(X), y)
            counts[1] += y.shape[0]
    return counts.clone()  # inference_mode 之外也能用（例如分布式 all_reduce）


def evaluate_accuracy(net: nn.Module, data_iter, device: torch.device | str | None = None, *,
                      amp: str | None = None, channels_last: bool = False) -> float:
    """在 ``data_iter`` 上计算准确率。只在最后读一次结果。"""
    if device is None:
        device = next(iter(net.parameters())).device
    correct, n = _count_correct(net, data_iter, torch.device(device), amp, channels_last).tolist()
    return correct / max(n, 1)


def xavier_init(module: nn.Module) -> None:
    """Xavier 均匀初始化全连接层与卷积层的权重（偏置保持 PyTorch 的默认值）。"""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)


def kaiming_init(module: nn.Module) -> None:
    """He（Kaiming）正态初始化：方差 2/fan_in，为 ReLU 设计（偏置保持 PyTorch 的默认值）。"""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")


BF16_MIN_SPEEDUP = 1.3  # CPU 上 bf16 至少要比 float32 快这么多倍，"auto" 才选它
_cpu_probe: dict[str, float] = {}


def probe_cpu_bf16(repeats: int = 3) -> dict[str, float]:
    """在本机 CPU 上比较 float32 与 bf16 自动混合精度的训练速度，结果在进程内缓存。

    探针是一次 3×3 卷积（8×32×28×28，channels_last）的前向加反向，正是本书训练的主要运算。
    两种精度交替运行、各取最快的一次（机器上别的进程只会让某一次变慢，不会让它变快）。
    没有 bf16 指令的 CPU 上 bf16 慢几倍，差距一目了然时提前结束。整个探针（含预热）约 0.1 秒。

    Returns:
        ``{"fp32": 秒, "bf16": 秒, "speedup": fp32 用时 / bf16 用时}``。
    """
    if _cpu_probe:
        return dict(_cpu_probe)
    with torch.random.fork_rng(devices=[]):  # 不动全局随机数状态：探针之后的初始化与没有探针时相同
        torch.manual_seed(0)
        conv = nn.Conv2d(32, 32, 3, padding=1).to(memory_format=torch.channels_last)
        X = torch.randn(8, 32, 28, 28).contiguous(memory_format=torch.channels_last)
    best = {"fp32": math.inf, "bf16": math.inf}
    for r in range(repeats + 1):  # 第 0 次是预热（oneDNN 选核、分配内存），不计
        for name in best:
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
                y = conv(X)
            y.float().sum().backward()
            if r:
                best[name] = min(best[name], time.perf_counter() - t)
        ratio = best["fp32"] / best["bf16"]
        if r >= 2 and not 0.5 < ratio < 2:  # 两次都差两倍以上：结论不会再变
            break
    _cpu_probe.update(best, speedup=best["fp32"] / best["bf16"])
    return dict(_cpu_probe)


def _cpu_precision() -> str | None:
    """CPU 上 ``amp="auto"`` 的选择：环境变量 ``CNNLIB_AMP`` 优先，否则由 :func:`probe_cpu_bf16` 实测决定。"""
    forced = os.environ.get("CNNLIB_AMP", "").strip().lower()
    if forced:
        if forced not in ("bf16", "fp32"):
            raise ValueError(f"环境变量 CNNLIB_AMP={forced!r} 不可用：请设为 bf16 或 fp32，或者删掉它让 cnnlib 实测选择。")
        return "bf16" if forced == "bf16" else None
    return "bf16" if probe_cpu_bf16()["speedup"] >= BF16_MIN_SPEEDUP else None


def resolve_speed_options(device: torch.device, amp: str | None = "auto",
                          channels_last: bool | str = "auto") -> tuple[str | None, bool]:
    """把 ``"auto"`` 换成按设备选定的默认值。

    - CUDA：Ampere 及更新的 GPU 用 bf16，更老的（如 Colab 的 T4）用 fp16 加梯度缩放；channels_last 开。
    - CPU：在本机实测（:func:`probe_cpu_bf16`），bf16 至少快 1.3 倍时用 bf16，否则 float32；
      环境变量 ``CNNLIB_AMP=bf16|fp32`` 可以覆盖。CPU 之间差别很大：有 AMX 的 CPU 上 bf16 更快，
      没有 bf16 指令的 CPU 上慢好几倍，所以不写死。channels_last 开。
    - Apple MPS：float32，不用 channels_last。
    """
    if amp == "auto":
        if device.type == "cuda":
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        elif device.type == "cpu":
            amp = _cpu_precision()
        else:
            amp = None
    if amp not in (None, "bf16", "fp16"):
        raise ValueError(f"amp={amp!r} 不可用：请用 'auto'、'bf16'、'fp16' 或 None（关闭混合精度）。")
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"amp='fp16' 只用于 CUDA GPU，当前设备是 {device}：请用 'bf16' 或 None。")
    if channels_last == "auto":
        channels_last = device.type in ("cuda", "cpu")
    return amp, bool(channels_last)


def _autocast(device: torch.device, amp: str | None):
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype, enabled=amp is not None)


def _prepare(X: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    X = X.to(device, non_blocking=True)
    if channels_last and X.dim() == 4:
        X = X.contiguous(memory_format=torch.channels_last)
    return X


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


def _model_signature(net: nn.Module) -> list[list]:
    return [[k, list(v.shape)] for k, v in net.state_dict().items()]


def _load_checkpoint(path: Path, device: torch.device) -> dict:
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(
            f"检查点 {path} 无法安全读取：{type(e).__name__}: {str(e).splitlines()[0]}\n"
            "它可能已损坏或被篡改。cnnlib 只用 torch.load(weights_only=True) 读取检查点，"
            "不会执行文件里的代码。删除这个文件即可从头训练。") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} 不是 cnnlib 的检查点（缺少格式标记 {CHECKPOINT_FORMAT}）。"
                              "请换一个路径，或删除这个文件后从头训练。")
    return ckpt


def _save_checkpoint(path: Path, payload: dict) -> None:
    """先写临时文件，再原子地改名：中途被杀掉也不会留下半个检查点。"""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def _check_compatible(path: Path, ckpt: dict, signature: list, config: dict) -> None:
    if ckpt["signature"] != signature:
        theirs = {k: tuple(s) for k, s in ckpt["signature"]}
        ours = {k: tuple(s) for k, s in signature}
        diff = sorted(set(theirs.items()) ^ set(ours.items()))[:4]
        raise CheckpointError(
            f"检查点 {path} 来自另一个模型，参数名或形状不同（例如 {diff}）。"
            "请为每个模型使用不同的检查点路径，或删除这个文件后从头训练。")
    changed = {k: (ckpt["config"].get(k), v) for k, v in config.items() if ckpt["config"].get(k) != v}
    if changed:
        detail = "；".join(f"{k}：检查点为 {old!r}，现在为 {new!r}" for k, (old, new) in changed.items())
        raise CheckpointError(
            f"检查点 {path} 的训练设置与这次不同（{detail}）。续训必须用相同的设置；"
            "要换设置，请换一个检查点路径或删除这个文件。")


def _distributed() -> tuple[int, int]:
    """(rank, world_size)：由 torchrun 启动并已 init_process_group 时是分布式，否则 (0, 1)。"""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_reduce(t: torch.Tensor, world_size: int, op=None) -> torch.Tensor:
    if world_size > 1:
        torch.distributed.all_reduce(t, op=op or torch.distributed.ReduceOp.SUM)
    return t


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def train(net: nn.Module, train_iter, test_iter, num_epochs: int, lr: float,
          device: torch.device | str | None = None, *,
          init=xavier_init, optimizer: torch.optim.Optimizer | None = None,
          amp: str | None = "auto", channels_last: bool | str = "auto", compile: bool = False,
          checkpoint: str | os.PathLike | None = None, plot: bool | str = "auto",
          progress: bool | None = None, readouts_per_epoch: int = 4) -> History:
    """用小批量随机梯度下降和交叉熵损失训练 ``net``，返回 :class:`History`。

    Args:
        net: 要训练的网络。
        train_iter, test_iter: :func:`cnnlib.load_fashion_mnist` 返回的迭代器（或任何产出
            ``(X, y)`` 的可迭代对象）。
        num_epochs: 训练轮数（续训时是总轮数）。
        lr: 学习率。
        device: 默认 :func:`cnnlib.try_gpu`（CUDA，其次 MPS，最后 CPU）。
        init: 对每个子模块调用的初始化函数，默认 :func:`xavier_init`；None 保留当前权重。
            从检查点续训时不再初始化。
        optimizer: 默认 ``torch.optim.SGD(net.parameters(), lr=lr)``。
        amp: ``"auto"``、``"bf16"``、``"fp16"`` 或 None，见 :func:`resolve_speed_options`。
        channels_last: ``"auto"``、True 或 False。
        compile: 为 True 时用 ``torch.compile`` 编译网络（首轮会慢一些）。
        checkpoint: 检查点路径。每轮结束时保存；文件已存在时从中断处继续。
        plot: ``"auto"`` 在 Jupyter 中画实时曲线（结束后留下一张静态图）；True/False 强制开关。
        progress: 是否显示 tqdm 进度条；None 时看环境变量 ``CNNLIB_PROGRESS``（默认开）。
        readouts_per_epoch: 每轮把设备上的累计指标读回主机几次（用于进度条、曲线和 NaN 检查）。

    用 ``torchrun --nproc_per_node=K`` 启动并已调用 ``torch.distributed.init_process_group`` 时，
    自动用分布式数据并行（DistributedDataParallel）：每个进程取数据的一份（此时迭代器的
    ``batch_size`` 是每个进程的批量），梯度与指标在进程间求和；只有 0 号进程打印、作图、写检查点。
    批量规范化的统计量在各进程内各自计算（与 PyTorch DDP 的默认行为相同）。

    Returns:
        逐轮记录。被 Ctrl-C 中断时返回到此为止的记录，``interrupted=True``。

    Raises:
        TrainingDivergedError: 损失变成 NaN/Inf。
        CheckpointError: 检查点损坏、被篡改，或属于另一个模型或另一组设置。
        ValueError: 参数不合理，或输入分辨率不适合这个模型。
    """
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs={num_epochs!r} 不可用：它必须是正整数。")
    if not (isinstance(lr, (int, float)) and lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr={lr!r} 不可用：学习率必须是正数，例如 0.01 或 0.1。")
    device = torch.device(device) if device is not None else try_gpu()
    amp, channels_last = resolve_speed_options(device, amp, channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # 输入形状固定，让 cuDNN 为每层挑最快的算法

    net.to(device)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    if optimizer is None:
        optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")

    rank, world_size = _distributed()
    is_main = rank == 0
    num_train = getattr(train_iter, "num_examples", None)  # 分片前的总数
    num_test = getattr(test_iter, "num_examples", None)
    if world_size > 1:
        train_iter.shard(rank, world_size)
        test_iter.shard(rank, world_size)
    resolution = getattr(train_iter, "resolution", None)
    if resolution is not None:
        check_input_resolution(net, train_iter.images.shape[1], resolution, device)

    history = History(device=device_name(device), precision=amp or "fp32",
                      profile=getattr(train_iter, "profile", None),
                      num_train=num_train or 0, num_test=num_test or 0,
                      total_train=getattr(train_iter, "total", num_train or 0),
                      total_test=getattr(test_iter, "total", num_test or 0))

    # 检查点：设置不同的检查点不能续训
    config = {"lr": float(lr), "optimizer": type(optimizer).__name__, "amp": amp,
              "batch_size": getattr(train_iter, "batch_size", None), "num_train": num_train,
              "resolution": resolution, "seed": getattr(train_iter, "seed", None)}
    signature = _model_signature(net)
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    start_epoch = 0
    if ckpt_path is not None and ckpt_path.exists():
        ckpt = _load_checkpoint(ckpt_path, device)
        _check_compatible(ckpt_path, ckpt, signature, config)
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scaler.load_state_dict(ckpt["scaler"])
        history = History.from_dict(ckpt["history"])
        history.interrupted = False
        start_epoch = history.epochs
        if is_main:
            print(f"从检查点 {ckpt_path} 继续：已完成 {start_epoch} 轮，共 {num_epochs} 轮。")
    elif init is not None:
        net.apply(init)

    model = net
    if world_size > 1:
        # DDP 在构造时把 0 号进程的参数广播给所有进程，反向时对梯度求平均
        model = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        model = torch.compile(model)
    if progress is None:
        progress = os.environ.get("CNNLIB_PROGRESS", "1") != "0"
    progress = progress and is_main
    live = None
    if is_main and (plot is True or (plot == "auto" and _in_notebook())):
        from cnnlib.plot import LivePlot
        live = LivePlot(num_epochs, history)

    num_batches = len(train_iter)
    readouts = {max(1, round(num_batches * k / readouts_per_epoch)) for k in range(1, readouts_per_epoch + 1)}
    bar = None
    if progress and start_epoch < num_epochs:
        from tqdm import tqdm
        bar = tqdm(total=num_batches * (num_epochs - start_epoch), desc="训练", unit="批",
                   file=sys.stderr, leave=False, dynamic_ncols=True)

    epoch, done = start_epoch, 0  # done：本轮已完成的批数（用于中断时的提示）
    num_classes = 0  # 从网络输出的宽度得知，用于平台期提示
    try:
        for epoch in range(start_epoch, num_epochs):
            t0 = time.perf_counter()
            model.train()
            if hasattr(train_iter, "set_epoch"):
                train_iter.set_epoch(epoch)
            # 设备上的累计量：损失之和、正确数、样本数；第一个非有限损失出现在第几批
            metric = torch.zeros(3, device=device)
            first_bad = torch.full((), -1, device=device, dtype=torch.long)
            done, last = 0, (0.0, 0.0, 0.0)  # last：上次读数时的累计量
            for i, (X, y) in enumerate(train_iter):
                X, y = _prepare(X, device, channels_last), y.to(device, non_blocking=True)
                with _autocast(device, amp):
                    y_hat = model(X)
                    loss = loss_fn(y_hat, y)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                num_classes = y_hat.shape[-1] if y_hat.dim() == 2 else 0
                with torch.no_grad():
                    loss = loss.detach().float()
                    metric[0] += loss * y.shape[0]
                    metric[1] += accuracy(y_hat, y)
                    metric[2] += y.shape[0]
                    first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss),
                                            torch.full_like(first_bad, i), first_bad)
                done = i + 1
                if bar is not None:
                    bar.update(1)
                if done in readouts:
                    bad = int(_all_reduce(first_bad.clone(), world_size, torch.distributed.ReduceOp.MAX)
                              if world_size > 1 else first_bad)
                    loss_sum, correct, n = _all_reduce(metric.clone(), world_size).tolist()  # 每轮仅几次同步
                    if bad >= 0:
                        raise TrainingDivergedError(
                            f"第 {epoch + 1} 轮第 {bad + 1} 批的损失变成了 NaN 或 Inf，训练已停止。"
                            f"学习率 lr={lr} 可能太大，试试 lr={lr / 10:g}；也请检查输入数据与初始化。"
                            "此后的参数已不可信：请重新建立模型，或从上一轮结束时的检查点继续。",
                            history)
                    if n > last[2]:
                        history.readouts.append([epoch + done / num_batches, (loss_sum - last[0]) / (n - last[2]),
                                                 (correct - last[1]) / (n - last[2])])
                    last = (loss_sum, correct, n)
                    if bar is not None:
                        bar.set_postfix_str(f"第 {epoch + 1} 轮 loss {loss_sum / n:.3f} acc {correct / n:.3f}")
                    if live is not None:
                        live.add(epoch + (i + 1) / num_batches,
                                 train_loss=loss_sum / n, train_acc=correct / n)
            test_correct, test_n = _all_reduce(
                _count_correct(model, test_iter, device, amp, channels_last), world_size).tolist()
            test_acc = test_correct / max(test_n, 1)
            loss_sum, correct, n = _all_reduce(metric, world_size).tolist()
            dt = time.perf_counter() - t0
            history.train_loss.append(loss_sum / n)
            history.train_acc.append(correct / n)
            history.test_acc.append(test_acc)
            history.epoch_time.append(dt)
            history.examples_per_sec.append(n / dt)
            if live is not None:
                live.add(epoch + 1, test_acc=test_acc)
            if ckpt_path is not None and is_main:
                _save_checkpoint(ckpt_path, {
                    "format": CHECKPOINT_FORMAT, "model": net.state_dict(),
                    "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                    "history": history.to_dict(), "signature": signature, "config": config})
    except KeyboardInterrupt:
        history.interrupted = True
        if not is_main:
            return history
        kept = f"检查点 {ckpt_path} 保存的是第 {history.epochs} 轮结束时的参数。" if ckpt_path else ""
        print(f"训练在第 {epoch + 1} 轮完成 {done} 批后被中断。已返回完成的 {history.epochs} 轮记录；"
              f"网络保留中断时的参数。{kept}")
    finally:
        if bar is not None:
            bar.close()
        if live is not None:
            live.close()
    if history.epochs and is_main:
        hint = plateau_hint(history.train_loss, num_classes)
        if hint:
            print(hint)
        print(history.summary())
    return history
