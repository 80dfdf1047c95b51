"""分布式数据并行（DDP）：``torchrun`` 启动并已调用 ``init_process_group`` 时生效，单进程时什么也不做。

:func:`cnnlib.train` 只通过 :class:`Distributed` 的几个方法接触分布式：统一各进程的设置、给数据分片、
包装网络、在进程间求和与取最大值。
"""

import torch
from torch import nn


class Distributed:
    """当前进程在分布式训练中的位置。没有初始化进程组时 ``rank=0``、``world_size=1``。"""

    def __init__(self) -> None:
        dist = torch.distributed
        on = dist.is_available() and dist.is_initialized()
        self.rank, self.world_size = (dist.get_rank(), dist.get_world_size()) if on else (0, 1)

    @property
    def is_main(self) -> bool:
        """只有 0 号进程打印、作图、写检查点。"""
        return self.rank == 0

    def shard(self, data):
        """本进程的那一份数据。

        cnnlib 的迭代器返回一个分片的副本（共享同一份图像张量），调用者的迭代器不变。
        其他可迭代对象原样返回：它们须已按进程分好，例如 DataLoader 配 ``DistributedSampler``。
        """
        if self.world_size == 1 or not hasattr(data, "shard"):
            return data
        return data.shard(self.rank, self.world_size)

    def agree(self, value, device: torch.device):
        """0 号进程的 ``value``（可 pickle 的对象），各进程相同。``device`` 是本进程训练用的设备。

        例如 CPU 上按实测选的精度：两个进程同时实测，可能一个选 bf16、另一个选 float32。
        """
        if self.world_size == 1:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0, device=device)
        return box[0]

    def wrap(self, net: nn.Module, device: torch.device) -> nn.Module:
        """DDP 在构造时把 0 号进程的参数广播给所有进程，反向时对梯度求平均。"""
        if self.world_size == 1:
            return net
        return nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None)

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """各进程的 ``t`` 之和（一个新张量，不改 ``t``）。"""
        return self._reduce(t, torch.distributed.ReduceOp.SUM) if self.world_size > 1 else t.clone()

    def max(self, t: torch.Tensor) -> torch.Tensor:
        """各进程的 ``t`` 的最大值（一个新张量，不改 ``t``）。"""
        return self._reduce(t, torch.distributed.ReduceOp.MAX) if self.world_size > 1 else t.clone()

    @staticmethod
    def _reduce(t: torch.Tensor, op) -> torch.Tensor:
        t = t.clone()
        torch.distributed.all_reduce(t, op=op)
        return t
