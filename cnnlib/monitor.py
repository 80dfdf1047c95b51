"""训练时看得见的一切：设备上的指标累计、每轮几次读数、NaN 检查、进度条、实时曲线、
中断、平台期提示与总结行。:func:`cnnlib.train` 的循环体只在每一步调用 :meth:`Monitor.step`。

指标在设备上累计，每轮只读回主机 ``readouts_per_epoch`` 次，所以 GPU 不会每批等一次主机。
"""

import os
import sys
import time
import warnings
from typing import NamedTuple

import torch

from cnnlib.distributed import Distributed
from cnnlib.history import History, plateau_hint

LOSS_SUM, CORRECT, COUNT = range(3)  # Monitor.totals 的三个槽


class Totals(NamedTuple):
    """读回主机的累计量：损失之和、预测正确的个数、样本数。"""
    loss_sum: float
    correct: float
    count: float


class TrainingDivergedError(FloatingPointError):
    """损失变成了 NaN 或 Inf。``epoch``、``batch`` 从 1 数起；``history`` 保存到此为止的记录。"""

    def __init__(self, message: str, epoch: int, batch: int, lr: float, history: History) -> None:
        super().__init__(message)
        self.epoch, self.batch, self.lr, self.history = epoch, batch, lr, history


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """预测正确的个数，作为设备上的张量返回（不与主机同步）。"""
    if y_hat.dim() > 1 and y_hat.shape[1] > 1:
        y_hat = y_hat.argmax(dim=1)
    return (y_hat.to(y.dtype) == y).sum()


def _in_notebook() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class Monitor:
    """一次训练的记录与显示。用作上下文管理器：结束时关掉进度条与曲线，Ctrl-C 变成一条说明
    （返回到此为止的记录，``interrupted=True``），最后打印平台期提示与总结行。"""

    def __init__(self, history: History, num_epochs: int, lr: float, device: torch.device,
                 train_iter, dist: Distributed, *, plot: bool | str = "auto", progress: bool | None = None,
                 readouts_per_epoch: int = 4, checkpoint=None) -> None:
        self.history, self.num_epochs, self.lr, self.device, self.dist = history, num_epochs, lr, device, dist
        self.checkpoint = checkpoint
        self.num_batches = len(train_iter) if hasattr(train_iter, "__len__") else None
        self.points = ({max(1, round(self.num_batches * k / readouts_per_epoch))
                        for k in range(1, readouts_per_epoch + 1)} if self.num_batches else set())
        self.epoch, self.batch, self.num_classes = history.epochs, 0, 0
        if history.epochs and dist.is_main:
            print(f"从检查点 {checkpoint} 继续：已完成 {history.epochs} 轮，共 {num_epochs} 轮。")
        if progress is None:
            progress = os.environ.get("CNNLIB_PROGRESS", "1") != "0"
        self.bar = self.live = None
        if progress and dist.is_main and history.epochs < num_epochs:
            from tqdm import tqdm
            total = self.num_batches * (num_epochs - history.epochs) if self.num_batches else None
            self.bar = tqdm(total=total, desc="训练", unit="批", file=sys.stderr, leave=False, dynamic_ncols=True)
        if dist.is_main and (plot is True or (plot == "auto" and _in_notebook())):
            from cnnlib.plot import LivePlot
            self.live = LivePlot(num_epochs, history, notebook=_in_notebook())  # 笔记本外画窗口或存 PNG

    def start_epoch(self, epoch: int) -> None:
        self.epoch, self.batch, self.t0 = epoch, 0, time.perf_counter()
        self.totals = torch.zeros(3, device=self.device)
        self.first_bad = torch.full((), -1, device=self.device, dtype=torch.long)  # 第一个非有限损失在第几批
        self.last = Totals(0.0, 0.0, 0.0)  # 上次读数时的累计量

    def step(self, loss: torch.Tensor, y_hat: torch.Tensor, y: torch.Tensor) -> None:
        """累计一个批量的损失、正确数与样本数（都在设备上）；到读数点时读回主机一次。"""
        with torch.no_grad():
            loss = loss.detach().float()
            self.totals[LOSS_SUM] += loss * y.shape[0]
            self.totals[CORRECT] += accuracy(y_hat, y)
            self.totals[COUNT] += y.shape[0]
            self.first_bad = torch.where((self.first_bad < 0) & ~torch.isfinite(loss),
                                         torch.full_like(self.first_bad, self.batch), self.first_bad)
        self.num_classes = y_hat.shape[-1] if y_hat.dim() == 2 else 0
        self.batch += 1
        if self.bar is not None:
            self.bar.update(1)
        if self.batch in self.points:
            self._readout()

    def _readout(self) -> Totals:
        # 各进程第一个非有限损失在第几批（-1 表示没有）：取看到的进程中最早的那个。一个进程的 NaN 梯度
        # 经过求平均，下一批就让所有进程都变成 NaN，所以取最大值会晚报一批
        none = torch.iinfo(torch.long).max
        bad = int(self.dist.min(torch.where(self.first_bad < 0, none, self.first_bad)))
        now = Totals._make(self.dist.sum(self.totals).tolist())
        if bad != none:
            # 续训帮不上忙：同样的 lr 与数据顺序多半再次发散，换 lr 又会被检查点拒绝（lr 是它的设置之一）
            kept = (f"检查点 {self.checkpoint} 记下的是 lr={self.lr}，不能换学习率续训：请换一个检查点路径，"
                    "或先删掉它。" if self.checkpoint else "")
            raise TrainingDivergedError(
                f"第 {self.epoch + 1} 轮第 {bad + 1} 批的损失变成了 NaN 或 Inf，训练已停止，此后的参数已不可信。"
                f"学习率 lr={self.lr} 可能太大：请重新建立模型，用更小的学习率（例如 lr={self.lr / 10:g}）从头训练，"
                f"也请检查输入数据与初始化。{kept}",
                self.epoch + 1, bad + 1, self.lr, self.history)
        n = now.count - self.last.count
        if n > 0:
            where = self.epoch + (self.batch / self.num_batches if self.num_batches else 1)
            self.history.readouts.append([where, (now.loss_sum - self.last.loss_sum) / n,
                                          (now.correct - self.last.correct) / n])
            if self.bar is not None:
                self.bar.set_postfix_str(f"第 {self.epoch + 1} 轮 loss {now.loss_sum / now.count:.3f} "
                                         f"acc {now.correct / now.count:.3f}")
            if self.live is not None:
                self.live.add(where, train_loss=now.loss_sum / now.count, train_acc=now.correct / now.count)
        self.last = now
        return now

    def end_epoch(self, test_counts: torch.Tensor, total_train: int | None, total_test: int | None) -> None:
        """``test_counts`` 是设备上的 ``[正确数, 样本数]``；样本数都是数出来的，不依赖迭代器的属性。"""
        train = self.last if self.batch in self.points else self._readout()  # 最后一批通常已是读数点
        if train.count == 0:
            raise ValueError("训练数据一轮没有产出任何样本：请检查 train_iter（例如子集大小或 DataLoader 的数据集）。")
        test_correct, test_n = self.dist.sum(test_counts).tolist()
        dt = time.perf_counter() - self.t0
        h = self.history
        h.num_train, h.num_test = int(train.count), int(test_n)
        h.total_train, h.total_test = total_train or h.num_train, total_test or h.num_test
        h.train_loss.append(train.loss_sum / train.count)
        h.train_acc.append(train.correct / train.count)
        h.test_acc.append(test_correct / max(test_n, 1))
        h.epoch_time.append(dt)
        h.examples_per_sec.append(train.count / dt)
        if self.live is not None:
            self.live.add(self.epoch + 1, test_acc=h.test_acc[-1])

    def __enter__(self) -> "Monitor":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        for what, shown in (("进度条", self.bar), ("训练曲线", self.live)):
            if shown is None:
                continue
            try:
                shown.close()
            except Exception as err:  # 关不掉进度条或曲线，不能盖住训练本身的错误，也不能丢掉训练的记录
                warnings.warn(f"关闭{what}时出错（{type(err).__name__}: {err}），已忽略；训练的记录与错误不受影响。",
                              stacklevel=2)
        if exc_type is not None and not issubclass(exc_type, KeyboardInterrupt):
            return False
        h = self.history
        if exc_type is not None:
            h.interrupted = True
            if self.dist.is_main:
                kept = f"检查点 {self.checkpoint} 保存的是第 {h.epochs} 轮结束时的参数。" if self.checkpoint else ""
                print(f"训练在第 {self.epoch + 1} 轮完成 {self.batch} 批后被中断。已返回完成的 {h.epochs} 轮记录；"
                      f"网络保留中断时的参数。{kept}")
        if h.epochs and self.dist.is_main:
            hint = plateau_hint(h.train_loss, self.num_classes)
            if hint:
                print(hint)
            print(h.summary())
        return True  # 吞下 KeyboardInterrupt：train() 照常返回记录
