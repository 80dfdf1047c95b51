"""检查点：每轮结束时原子地保存模型、优化器与训练记录；下次用同一路径训练时从断点继续。

读取只用 ``torch.load(weights_only=True)``：文件里的代码不会被执行。设置不同的检查点拒绝续训。
"""

import os
import pickle
from pathlib import Path

import torch
from torch import nn

from cnnlib.history import History

FORMAT = "cnnlib-checkpoint-1"


class CheckpointError(ValueError):
    """检查点无法读取，或不属于当前的模型与设置。``path`` 是检查点路径，``reason`` 是
    ``"unreadable"``、``"not_a_checkpoint"``、``"other_model"`` 或 ``"other_settings"``。"""

    def __init__(self, message: str, path: Path, reason: str) -> None:
        super().__init__(message)
        self.path, self.reason = path, reason


class Checkpoint:
    """一个训练任务的检查点文件。

    ``config`` 是续训时必须相同的设置（学习率、优化器、精度、批量、数据量、分辨率、种子）。
    """

    def __init__(self, path: str | os.PathLike, net: nn.Module, optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, config: dict) -> None:
        self.path = Path(path)
        self.net, self.optimizer, self.scaler, self.config = net, optimizer, scaler, config
        self.signature = [[k, list(v.shape)] for k, v in net.state_dict().items()]

    def resume(self, device: torch.device) -> History | None:
        """文件存在时载入参数、优化器与梯度缩放的状态，返回已完成轮次的记录；不存在时返回 None。"""
        if not self.path.exists():
            return None
        ckpt = self._load(device)
        self._check_compatible(ckpt)
        self.net.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        history = History.from_dict(ckpt["history"])
        history.interrupted = False
        return history

    def save(self, history: History) -> None:
        """先写临时文件，再原子地改名：中途被杀掉也不会留下半个检查点。"""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save({"format": FORMAT, "model": self.net.state_dict(),
                    "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
                    "history": history.to_dict(), "signature": self.signature, "config": self.config}, tmp)
        os.replace(tmp, self.path)

    def _load(self, device: torch.device) -> dict:
        path = self.path
        try:
            ckpt = torch.load(path, map_location=device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as e:
            raise CheckpointError(
                f"检查点 {path} 无法安全读取：{type(e).__name__}: {str(e).splitlines()[0]}\n"
                "它可能已损坏或被篡改。cnnlib 只用 torch.load(weights_only=True) 读取检查点，"
                "不会执行文件里的代码。删除这个文件即可从头训练。", path, "unreadable") from e
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
