"""训练要多少设备内存（显存）：训练前估计峰值，训练中内存不够时给出一条说清楚怎么办的错误。

一个训练步的峰值由这几部分组成（:class:`MemoryEstimate` 的字段）：

- 参数（parameters）与缓冲区（buffers）：混合精度下参数的主副本仍是 float32；
- 梯度（gradients）：每个可训练参数一份 float32；
- 优化器状态（optimizer state）：不带动量的 SGD（:func:`cnnlib.train` 的默认）没有；带动量时每个参数一份；
- 为反向传播保存的激活（activations）：前向时 autograd 为求梯度留下的张量，随批量线性增长，是大头；
- 反向时的临时张量：同时存在的某一层输出的梯度与输入的梯度，约为最大那个保存张量的两倍；
- 设备上的数据集：cnnlib 把 7 万张 28×28 的 uint8 图像与 int64 标签整个放在训练设备上（约 55 MB）。

保存的激活不是按公式推算，而是数出来的：在 CPU 上用两个小批量各前向一次，用
``torch.autograd.graph.saved_tensors_hooks`` 记下 autograd 保存的每个张量，按底层存储（storage）去重
（ReLU 的输出与下一层的输入是同一块内存，只算一次），除去参数与缓冲区本身，再按批量线性外推。
fp16/bf16 自动混合精度下，卷积与全连接层的输入、输出和权重副本保存为 2 字节：这里用 CPU 上的 bf16
autocast 近似 CUDA 上的 2 字节情形。两者降到 16 位的运算名单大体相同（卷积、矩阵乘法降，
交叉熵保持 float32，批量规范化按输入精度），所以这是近似而不是测量。

这些都是 PyTorch 张量（``torch.cuda.max_memory_allocated`` 量的那部分）。显卡报告的占用（``nvidia-smi``）
还包括 CUDA 上下文、cuBLAS/cuDNN 的库与工作区（开了 ``cudnn.benchmark`` 时会试用大的工作区）和缓存分配器
（caching allocator）留着没还的内存。这部分不随模型线性变化，这里不估计，只另留一份
:data:`CONTEXT_ALLOWANCE`，与张量的估计分开写。真实 GPU 上的测量见 ``benchmarks/`` 的结果文件。
"""

import contextlib
import copy
import functools
import itertools
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cnnlib.models import SPECS, model_spec
from cnnlib.profiles import FULL_TEST, FULL_TRAIN
from cnnlib.speed import autocast

GIB = 1024 ** 3
# 张量之外另留的余量：CUDA 上下文、cuBLAS/cuDNN 的库与工作区、缓存分配器的零头。这是一个取整的预留，
# 不是测量：它让“能不能放下”的判断偏保守，真实的数字由 GPU 上的测量给出
CONTEXT_ALLOWANCE = GIB
USABLE_FRACTION = 0.9  # 打算最多用掉设备内存的这么多（笔记本电脑上的显卡还要给屏幕留一些）
PROBE_BATCHES = (2, 4)  # 在 CPU 上数保存张量用的两个小批量（训练模式的批量规范化至少要 2 个样本）
MIN_SUGGESTED_BATCH = 16  # 比这还小的批量不再建议：太慢，批量规范化的统计量也太吵，不如用 cpu 配置
# 设备上的数据集：每张 28×28 的 uint8 图像 784 字节，每个 int64 标签 8 字节（见 cnnlib.data.FashionMNISTIter）
DATASET_BYTES = (FULL_TRAIN + FULL_TEST) * (28 * 28 + 8)

_TWO_BYTES = {"bf16": "bf16", "fp16": "bf16"}  # CPU 上用 bf16 代替 fp16 来数：字节数相同


def format_bytes(n: float) -> str:
    """``1.23 GiB`` 或（不到 0.1 GiB 时）``45 MiB``。"""
    return f"{n / GIB:.2f} GiB" if n >= 0.1 * GIB else f"{n / 1024 ** 2:.0f} MiB"


@dataclass(frozen=True)
class MemoryEstimate:
    """训练时设备内存峰值的估计，单位都是字节。

    ``tensors`` 是 PyTorch 张量的部分；``context_allowance`` 是另留的余量，不是估计出来的。
    """
    model: str
    batch_size: int
    resolution: int
    precision: str             # "fp32"、"bf16" 或 "fp16"
    parameters: int            # 可训练参数（float32 主副本）
    buffers: int               # 缓冲区，例如批量规范化的移动均值与移动方差
    gradients: int
    optimizer_state: int       # 不带动量的 SGD 为 0；带动量时每个参数一份
    activations: int           # 为反向传播保存的张量（去重、不含参数本身），按批量线性外推
    backward_transient: int    # 反向时同时存在的输出梯度与输入梯度：2 × 最大的保存张量
    dataset: int               # 设备上的 7 万张 uint8 图像与标签
    context_allowance: int = CONTEXT_ALLOWANCE

    @property
    def tensors(self) -> int:
        """张量合计（不含 ``context_allowance``）。"""
        return (self.parameters + self.buffers + self.gradients + self.optimizer_state + self.activations
                + self.backward_transient + self.dataset)

    @property
    def total(self) -> int:
        """张量合计加上另留的余量。"""
        return self.tensors + self.context_allowance

    def fits(self, memory: int) -> bool:
        """``memory`` 字节的设备能否放下：合计不超过它的 :data:`USABLE_FRACTION`。"""
        return self.total <= USABLE_FRACTION * memory

    def __str__(self) -> str:
        weights = self.parameters + self.buffers + self.gradients + self.optimizer_state
        return (f"{self.model}（输入 {self.resolution}×{self.resolution}，批量 {self.batch_size}，{self.precision}）"
                f"训练时张量约 {format_bytes(self.tensors)}：参数、梯度与优化器状态 {format_bytes(weights)}，"
                f"保存的激活 {format_bytes(self.activations)}，反向时的临时张量 {format_bytes(self.backward_transient)}，"
                f"数据集 {format_bytes(self.dataset)}；另留 CUDA 上下文等 {format_bytes(self.context_allowance)}，"
                f"合计约 {format_bytes(self.total)}")


@dataclass(frozen=True)
class _ActivationFit:
    """保存的激活 = ``fixed + per_sample × 批量``；``largest`` 是每个样本最大的一个保存张量。"""
    fixed: float
    per_sample: float
    largest: float


def _saved_storages(net: nn.Module, batch: int, in_channels: int, resolution: int,
                    precision: str) -> list[int]:
    """前向一次（含交叉熵损失），按第一次出现的顺序返回 autograd 保存的每块存储的字节数（去重）。

    输入批量与标签也算在内：训练循环里它们一直活到反向结束，即使 autocast 只保存了输入的 16 位副本。
    """
    own = {t.untyped_storage().data_ptr() for t in itertools.chain(net.parameters(), net.buffers())}
    storages: dict[int, int] = {}  # 存储的地址 → 字节数；dict 保持插入顺序

    def record(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr and ptr not in own:  # 参数本身已经算在 parameters 里
            storages[ptr] = max(storages.get(ptr, 0), storage.nbytes())
        return t  # 原样交给 autograd：张量一直活到前向结束，存储的地址不会被别的张量重用

    X = torch.rand(batch, in_channels, resolution, resolution)
    y = torch.zeros(batch, dtype=torch.long)
    record(X), record(y)
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(record, lambda t: t), \
            autocast(torch.device("cpu"), _TWO_BYTES.get(precision)):
        loss = F.cross_entropy(net(X), y)
    del loss
    return list(storages.values())


def _fit_activations(net: nn.Module, in_channels: int, resolution: int, precision: str) -> _ActivationFit:
    """在 CPU 上用 :data:`PROBE_BATCHES` 的两个批量数保存的张量，解出固定部分与每个样本的部分。

    两次前向保存张量的顺序相同，所以可以逐块配对：随批量变大的是激活，不变的（autocast 的 16 位权重副本、
    损失的标量）是固定部分。``largest`` 取随批量增长最快的一块，用来估计反向时的临时张量。
    """
    (b1, b2) = PROBE_BATCHES
    with torch.random.fork_rng(devices=[]):  # 暂退法要抽随机数：不动全局随机数状态
        net.train()
        s1 = _saved_storages(net, b1, in_channels, resolution, precision)
        s2 = _saved_storages(net, b2, in_channels, resolution, precision)
    per_sample = (sum(s2) - sum(s1)) / (b2 - b1)
    if len(s1) == len(s2):
        largest = max((n2 - n1) / (b2 - b1) for n1, n2 in zip(s1, s2))
    else:  # 网络的前向随批量改变了结构（少见）：退回按最大的一块平均
        largest = max(s2) / b2
    return _ActivationFit(max(0.0, sum(s1) - per_sample * b1), per_sample, max(0.0, largest))


def _weights(net: nn.Module) -> tuple[int, int]:
    params = sum(p.numel() * p.element_size() for p in net.parameters() if p.requires_grad)
    buffers = sum(b.numel() * b.element_size() for b in net.buffers())
    return params, buffers


def _estimate(name: str, weights: tuple[int, int], fit: _ActivationFit, batch_size: int, resolution: int,
              precision: str, momentum: float, dataset_on_device: bool) -> MemoryEstimate:
    params, buffers = weights
    return MemoryEstimate(
        model=name, batch_size=batch_size, resolution=resolution, precision=precision,
        parameters=params, buffers=buffers, gradients=params, optimizer_state=params if momentum else 0,
        activations=round(fit.fixed + fit.per_sample * batch_size),
        backward_transient=round(2 * fit.largest * batch_size),
        dataset=DATASET_BYTES if dataset_on_device else 0)


def _check_precision(precision: str) -> None:
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"precision={precision!r} 不可用：请用 'fp32'、'bf16' 或 'fp16'。")


def estimate_training_memory(net: nn.Module, batch_size: int, resolution: int, *, in_channels: int = 1,
                             precision: str = "fp32", momentum: float = 0.0, dataset_on_device: bool = True,
                             name: str | None = None) -> MemoryEstimate:
    """估计用 ``cnnlib.train`` 训练 ``net`` 时设备内存的峰值（各部分见本模块的说明）。

    计数在 ``net`` 的一个 CPU 副本上进行，``net`` 本身（参数、批量规范化的统计量、随机数状态）不变。

    Args:
        net: 要估计的网络。
        batch_size: 批量大小。
        resolution: 输入分辨率（例如 224）。
        in_channels: 输入通道数，Fashion-MNIST 是 1。
        precision: ``"fp32"``，或自动混合精度的 ``"bf16"`` / ``"fp16"``。
        momentum: SGD 的动量；不为 0 时优化器为每个参数多存一份。
        dataset_on_device: 是否算上设备上的 7 万张图像（cnnlib 的数据迭代器是这样做的）。
        name: 显示用的模型名，默认是类名。

    Returns:
        :class:`MemoryEstimate`。
    """
    _check_precision(precision)
    probe = copy.deepcopy(net).cpu()
    fit = _fit_activations(probe, in_channels, resolution, precision)
    return _estimate(name or type(net).__name__, _weights(probe), fit, batch_size, resolution, precision,
                     momentum, dataset_on_device)


@functools.lru_cache(maxsize=64)
def _book_fit(model: str, resolution: int, precision: str) -> tuple[tuple[int, int], _ActivationFit]:
    spec = model_spec(model)
    with torch.random.fork_rng(devices=[]):  # 建模型时的初始化也不动全局随机数状态
        net = spec.factory()
    return _weights(net), _fit_activations(net, 1, resolution, precision)


def estimate_book_memory(model: str, precision: str = "fp32", batch_size: int | None = None, *,
                         resolution: int | None = None, momentum: float = 0.0) -> MemoryEstimate:
    """书中模型 ``model``（:data:`cnnlib.SPECS` 的名字）训练时的内存估计，默认用书中的批量与分辨率。

    每个模型、分辨率与精度只在 CPU 上数一次，之后按批量外推（进程内缓存）。

    Args:
        model: 例如 ``"alexnet"``。
        precision: ``"fp32"``、``"bf16"`` 或 ``"fp16"``。
        batch_size, resolution: None 时用登记表中的书中设定。
        momentum: SGD 的动量。
    """
    _check_precision(precision)
    spec = model_spec(model)
    resolution = resolution or spec.resolution
    weights, fit = _book_fit(spec.name, resolution, _TWO_BYTES.get(precision, "fp32"))  # fp16 与 bf16 共用一次计数
    return _estimate(spec.title, weights, fit, batch_size or spec.batch_size, resolution, precision,
                     momentum, True)


def suggest_batch_size(model: str, memory: int, precision: str = "fp32", *, at_most: int | None = None,
                       resolution: int | None = None) -> int | None:
    """``memory`` 字节的设备上、按估计能放下 ``model`` 的最大的 2 的幂批量；放不下 :data:`MIN_SUGGESTED_BATCH` 时返回 None。

    Args:
        model: :data:`cnnlib.SPECS` 中的名字。
        memory: 设备内存（字节）。
        precision: 训练用的精度。
        at_most: 批量的上限，默认是书中的批量。
        resolution: 输入分辨率，默认是书中的。
    """
    batch = 1 << ((at_most or model_spec(model).batch_size).bit_length() - 1)  # 不超过上限的最大的 2 的幂
    while batch >= MIN_SUGGESTED_BATCH:
        if estimate_book_memory(model, precision, batch, resolution=resolution).fits(memory):
            return batch
        batch //= 2
    return None


def memory_table(models: list[str] | None = None) -> str:
    """书中模型在书中的批量与分辨率下，float32 与 2 字节混合精度（fp16/bf16）训练时的内存估计，返回 Markdown 表格。

    float32 是 Pascal 及更老的 GPU、GTX 16xx、Apple MPS 与多数 CPU 上的情形；fp16/bf16 是有张量核心的 GPU
    （见 :func:`cnnlib.speed.choose_speed_options`）。合计只含张量，CUDA 上下文等另需约
    :data:`CONTEXT_ALLOWANCE`。笔记本里用 ``display(Markdown(cnnlib.memory_table(["alexnet"])))``。

    Args:
        models: :data:`cnnlib.SPECS` 中的名字；None 表示全部七个。
    """
    lines = ["| 模型 | 输入与批量 | 参数、梯度与缓冲区 | 保存的激活（fp32） | 合计（fp32） "
             "| 保存的激活（fp16/bf16） | 合计（fp16/bf16） |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for name in models or list(SPECS):
        full, half = estimate_book_memory(name, "fp32"), estimate_book_memory(name, "bf16")
        weights = full.parameters + full.buffers + full.gradients
        cells = [format_bytes(n) for n in (weights, full.activations, full.tensors, half.activations, half.tensors)]
        lines.append(f"| {full.model} | {full.resolution}×{full.resolution}，批量 {full.batch_size} | "
                     + " | ".join(cells) + " |")
    lines.append(f"\n合计含反向时的临时张量与设备上的数据集（{format_bytes(DATASET_BYTES)}），只算张量；"
                 f"显卡上另需约 {format_bytes(CONTEXT_ALLOWANCE)} 给 CUDA 上下文、cuDNN 工作区与缓存分配器"
                 "（这是预留，不是估计）。保存的激活是在 CPU 上数出来再按批量外推的，2 字节的一列用 CPU 的 bf16 近似。")
    return "\n".join(lines)


def device_memory(device: torch.device | str) -> int | None:
    """设备的内存（字节）：CUDA 是显卡的总显存，MPS 是 Metal 建议的上限，CPU 是物理内存；不知道时返回 None。"""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    if device.type == "mps":
        limit = getattr(getattr(torch, "mps", None), "recommended_max_memory", None)
        return limit() if limit is not None else None
    if device.type == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):  # Windows 没有 sysconf
            return None
    return None


# ---------------------------------------------------------------------------
# 训练中内存不够
# ---------------------------------------------------------------------------
class TrainingOutOfMemoryError(torch.cuda.OutOfMemoryError):
    """训练或评估时设备内存不够（CUDA 或 Apple MPS）。仍是 ``torch.cuda.OutOfMemoryError``，原来的错误在 ``__cause__``。

    字段：``model``（模型名）、``batch_size``、``device``（设备名）、``device_memory``（字节，不知道时 None）、
    ``precision``、``epoch``（出错的轮次，从 1 数起）、``estimate``（:class:`MemoryEstimate` 或 None）、
    ``suggested_batch_size``（按估计能放下的批量，或 None）、``checkpoint``、``history``（到此为止的记录）。
    """

    def __init__(self, message: str, *, model: str, batch_size: int | None, device: str,
                 device_memory: int | None, precision: str, epoch: int, estimate: MemoryEstimate | None,
                 suggested_batch_size: int | None, checkpoint, history) -> None:
        super().__init__(message)
        self.model, self.batch_size, self.device, self.device_memory = model, batch_size, device, device_memory
        self.precision, self.epoch, self.estimate = precision, epoch, estimate
        self.suggested_batch_size, self.checkpoint, self.history = suggested_batch_size, checkpoint, history


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA 的 ``OutOfMemoryError``，或较老的 torch 在 MPS 上以 RuntimeError 报的内存不足。"""
    return isinstance(err, torch.cuda.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "MPS backend out of memory" in str(err))


def recognise_book_model(net: nn.Module) -> str | None:
    """按可训练参数个数认出书中的模型，返回它在 :data:`cnnlib.SPECS` 中的名字；认不出时返回 None。"""
    count = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return next((spec.name for spec in SPECS.values() if spec.params == count), None)


def out_of_memory_error(net: nn.Module, batch_size: int | None, device: torch.device, amp: str | None, *,
                        resolution: int | None = None, checkpoint=None, history=None) -> TrainingOutOfMemoryError:
    """为一次内存不足组装 :class:`TrainingOutOfMemoryError`：是哪个模型、用的批量、设备有多少内存、怎么办。"""
    from cnnlib.device import device_name
    name = recognise_book_model(net)
    count = sum(p.numel() for p in net.parameters() if p.requires_grad)
    label = model_spec(name).title if name else f"{type(net).__name__}（{count:,} 个参数）"
    memory, precision = device_memory(device), amp or "fp32"
    done = history.epochs if history is not None else 0
    estimate = suggestion = None
    if name and batch_size:
        estimate = estimate_book_memory(name, precision, batch_size, resolution=resolution)
        if memory:
            suggestion = suggest_batch_size(name, memory, precision, at_most=max(1, batch_size // 2),
                                            resolution=resolution)
    elif batch_size and batch_size // 2 >= MIN_SUGGESTED_BATCH:
        suggestion = batch_size // 2  # 估计不了这个网络：至少减半

    memory_text = f"，设备内存 {memory / GIB:.1f} GiB" if memory else ""
    lines = [f"设备内存不够：在 {device_name(device)}{memory_text} 上训练 {label}（批量 {batch_size or '未知'}，"
             f"{precision}）时，第 {done + 1} 轮申请内存失败。"]
    if estimate is not None:
        lines.append(f"按 cnnlib 的估计，{estimate}。")
    if suggestion:
        lines.append(f"怎么办：把批量减到 {suggestion}，例如 load_fashion_mnist({suggestion}, resize=...)"
                     f"（批量变小时学习率也可以按比例减小）；或者改用 cpu 运行配置（CNNLIB_PROFILE=cpu，数据更少）"
                     "，或在 CPU 上训练。")
    else:
        lines.append("怎么办：这块设备按估计放不下这个模型的合理批量，请改用 cpu 运行配置（CNNLIB_PROFILE=cpu）"
                     "或在 CPU 上训练（device='cpu'）。")
    lines.append("也请检查显存是否被别的进程占着（nvidia-smi；例如另一本打开的笔记本）。在 Jupyter 里，"
                 "出错时的张量会一直占着显存：请先重启内核，再换小的批量运行。")
    if checkpoint and done:
        lines.append(f"已完成的 {done} 轮保存在检查点 {checkpoint} 里：腾出显存后用同样的设置重新运行，会从那里继续"
                     "（批量是检查点设置的一部分，换了批量就要用新的检查点文件）。")
    elif checkpoint:
        lines.append(f"检查点 {checkpoint} 还没有写入：第 1 轮就不够了，没有可以续训的进度。")
    else:
        lines.append("下次可以传 checkpoint=路径：每轮结束时保存，中断后从那里继续。")
    return TrainingOutOfMemoryError(
        "\n".join(lines), model=label, batch_size=batch_size, device=device_name(device), device_memory=memory,
        precision=precision, epoch=done + 1, estimate=estimate, suggested_batch_size=suggestion,
        checkpoint=checkpoint, history=history)


@contextlib.contextmanager
def explain_out_of_memory(net: nn.Module, train_iter, device: torch.device, amp: str | None, *,
                          checkpoint=None, history=None):
    """在这段代码里出现的内存不足变成一条 :class:`TrainingOutOfMemoryError`（:func:`cnnlib.train` 用它包住训练循环）。"""
    try:
        yield
    except TrainingOutOfMemoryError:
        raise
    except RuntimeError as err:
        if not is_out_of_memory(err):
            raise
        raise out_of_memory_error(net, getattr(train_iter, "batch_size", None), device, amp,
                                  resolution=getattr(train_iter, "resolution", None),
                                  checkpoint=checkpoint, history=history) from err
