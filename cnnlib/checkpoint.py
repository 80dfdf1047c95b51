"""检查点：每轮结束时原子地保存模型、优化器、训练记录与随机数状态；下次用同一路径训练时从断点继续。

续训与不中断的训练是同一次训练：参数、优化器状态（例如动量）、批量规范化的移动统计量，以及每个进程的
随机数状态（暂退法的掩码、``DataLoader`` 的打乱顺序都从它来）都从检查点恢复。
读取只用 ``torch.load(weights_only=True)``：文件里的代码不会被执行。设置不同的检查点拒绝续训。
"""

import os
import pickle
import random
from pathlib import Path

import torch
from torch import nn

from cnnlib.history import History

FORMAT = "cnnlib-checkpoint-2"  # 2：加入各进程的随机数状态与进程数
OLD_FORMATS = ("cnnlib-checkpoint-1",)


def random_state(device: torch.device) -> dict:
    """本进程此刻的随机数状态：CPU 与训练设备（CUDA、MPS）上的 torch 生成器，以及 Python 的 ``random``。

    本书的训练只从 torch 的生成器取随机数；``random`` 一并保存，是为了用它写数据增广的读者。
    NumPy 的全局状态不保存。
    """
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_random_state(state: dict, device: torch.device) -> None:
    """恢复 :func:`random_state` 保存的状态（载入时张量可能在设备上，生成器要 CPU 上的字节张量）。"""
    torch.set_rng_state(state["torch"].cpu())
    random.setstate(state["python"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)
    elif device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"].cpu())


class CheckpointError(ValueError):
    """检查点无法读取，或不属于当前的模型与设置。``path`` 是检查点路径，``reason`` 是
    ``"unreadable"``、``"not_a_checkpoint"``、``"old_format"``、``"other_model"`` 或 ``"other_settings"``。"""

    def __init__(self, message: str, path: Path, reason: str) -> None:
        super().__init__(message)
        self.path, self.reason = path, reason


class Checkpoint:
    """一个训练任务的检查点文件。

    构造时读入已有的文件（还没有时 ``saved`` 为 None）；:meth:`resume` 检查它属于同一个模型与同一组设置
    并载入，:meth:`save` 在每轮结束时写入。``config`` 是续训时必须相同的设置（学习率、优化器、精度、批量、
    数据量、分辨率、种子、进程数）：它们都会改变训练的结果。
    """

    def __init__(self, path: str | os.PathLike, device: torch.device) -> None:
        self.path, self.device = Path(path), device
        self.saved = self._load(device) if self.path.exists() else None
        self.random_states: list[dict] | None = None

    def decided_precision(self, amp: str | None) -> str | None:
        """``amp="auto"`` 时返回检查点里当初选定的精度（None 表示 float32）；其他值与没有检查点时原样返回。

        CPU 上的 ``"auto"`` 是一次计时实测（:func:`cnnlib.probe_cpu_bf16`）：加速比在阈值附近时，
        两次运行可能选得不同。每次续训都重新实测，学生就会因为这个偶然被拒绝续训。
        显式给出、与检查点不同的精度仍被拒绝：它改变结果。
        """
        if amp == "auto" and self.saved is not None:
            return self.saved["config"].get("amp")
        return amp

    def resume(self, net: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               config: dict) -> History | None:
        """记下这次训练的对象与设置。检查点存在时检查它与这次相同，载入参数、优化器与梯度缩放的状态，
        返回已完成轮次的记录；不存在时返回 None。随机数状态由 :meth:`restore_random_state` 最后恢复。"""
        self.net, self.optimizer, self.scaler, self.config = net, optimizer, scaler, config
        self.signature = [[k, list(v.shape)] for k, v in net.state_dict().items()]
        ckpt, self.saved = self.saved, None  # 载入之后不再占着一份参数的内存
        if ckpt is None:
            return None
        self._check_compatible(ckpt)
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.random_states = ckpt["random_state"]
        history = History.from_dict(ckpt["history"])
        history.interrupted = False
        return history

    def restore_random_state(self, rank: int) -> None:
        """恢复第 ``rank`` 号进程在检查点那一刻的随机数状态；训练的第一批之前调用，其间不能再取随机数。"""
        set_random_state(self.random_states[rank], self.device)

    def save(self, history: History, dist) -> None:
        """保存这一刻的训练状态。每个进程都要调用：``dist``（:class:`cnnlib.distributed.Distributed`）
        收集各进程的 :func:`random_state`，0 号进程写文件，其他进程等它写完再继续，
        所以之后任何进程读到的都是这一轮的检查点。

        先写临时文件，再原子地改名：中途被杀掉也不会留下半个检查点。
        """
        random_states = dist.gather(random_state(self.device))  # 按进程号排列，续训时各取各的
        if dist.is_main:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            torch.save({"format": FORMAT, "model": self.net.state_dict(),
                        "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                        "history": history.to_dict(), "signature": self.signature, "config": self.config,
                        "random_state": random_states}, tmp)
            os.replace(tmp, self.path)
        dist.barrier(self.device)

    def _load(self, device: torch.device) -> dict:
        path = self.path
        try:
            ckpt = torch.load(path, map_location=device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
            raise CheckpointError(
                f"检查点 {path} 无法安全读取：{type(e).__name__}: {str(e).splitlines()[0]}\n"
                "它可能已损坏或被篡改。cnnlib 只用 torch.load(weights_only=True) 读取检查点，"
                "不会执行文件里的代码。删除这个文件即可从头训练。", path, "unreadable") from e
        if isinstance(ckpt, dict) and ckpt.get("format") in OLD_FORMATS:
            raise CheckpointError(
                f"检查点 {path} 由旧版 cnnlib 写成（{ckpt['format']}），没有保存随机数状态，"
                "从它续训与不中断的训练不同。请删除这个文件（或换一个路径）后从头训练。", path, "old_format")
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            raise CheckpointError(f"{path} 不是 cnnlib 的检查点（缺少格式标记 {FORMAT}）。"
                                  "请换一个路径，或删除这个文件后从头训练。", path, "not_a_checkpoint")
        return ckpt

    def _check_compatible(self, ckpt: dict) -> None:
        path = self.path
        if ckpt["signature"] != self.signature:
            theirs = {k: tuple(s) for k, s in ckpt["signature"]}
            ours = {k: tuple(s) for k, s in self.signature}
            diff = sorted(set(theirs.items()) ^ set(ours.items()))[:4]
            raise CheckpointError(
                f"检查点 {path} 来自另一个模型，参数名或形状不同（例如 {diff}）。"
                "请为每个模型使用不同的检查点路径，或删除这个文件后从头训练。", path, "other_model")
        changed = {k: (ckpt["config"].get(k), v) for k, v in self.config.items() if ckpt["config"].get(k) != v}
        if changed:
            detail = "；".join(f"{k}：检查点为 {old!r}，现在为 {new!r}" for k, (old, new) in changed.items())
            raise CheckpointError(
                f"检查点 {path} 的训练设置与这次不同（{detail}）。续训必须用相同的设置；"
                "要换设置，请换一个检查点路径或删除这个文件。", path, "other_settings")
