"""分布式数据并行（DDP）：``torchrun`` 启动并已调用 ``init_process_group`` 时生效，单进程时什么也不做。

:func:`cnnlib.train` 只通过 :class:`Distributed` 的几个方法接触分布式：统一各进程的设置、给数据分片、
包装网络、给每个进程一条自己的随机数流、在进程间求和与取最小值、收集各进程的随机数状态、互相等待。

K 个进程、每个进程批量 B 的训练，与一个进程、批量 K×B 的训练是同一个算法：每一步的样本相同（各进程按同一个
种子打乱，再各取一份），梯度相同（DDP 对各进程的梯度求平均），暂退法（dropout）对每个样本各抽一个掩码，
只是抽自各进程自己的随机数流。批量规范化的统计量例外：每个进程按自己的 B 个样本计算。
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

    def shard(self, data, even: bool = True):
        """本进程的那一份数据。

        cnnlib 的迭代器返回一个分片的副本（共享同一份图像张量），调用者的迭代器不变。``even=True``（训练）
        时各进程的样本数相同，除不尽的几个样本被舍去；``even=False``（评估）时一个样本也不舍去。
        其他可迭代对象原样返回：它们须已按进程分好，例如 DataLoader 配 ``DistributedSampler``。
        """
        if self.world_size == 1 or not hasattr(data, "shard"):
            return data
        return data.shard(self.rank, self.world_size, even=even)

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

    def seed_per_rank(self) -> None:
        """给每个进程一条自己的随机数流（单进程时什么也不做）。

        各进程用同一个种子建网络、初始化，所以此刻的随机数状态相同；不改的话，每个进程在同一步抽出
        相同的暂退法掩码。从这个共同的状态取一个数，加上进程号作为新种子（nanoGPT 的 ``seed_offset``）。
        在 :meth:`wrap` 之后调用：参数已从 0 号进程广播，之后只有掩码之类的随机数与进程有关。
        """
        if self.world_size > 1:
            base = int(torch.randint(0, 2**62, ()))
            torch.manual_seed(base + self.rank)  # 同时设定 CPU 与所有 CUDA 设备的生成器

    def broadcast_buffers(self, net: nn.Module) -> None:
        """把 0 号进程的缓冲区（批量规范化的移动统计量）发给所有进程。

        DDP 在每个训练步之前广播一次，但最后一步之后各进程又按自己的样本更新了一次；
        评估前再广播一次，每个进程都用 0 号进程（也就是检查点里）的统计量评估。
        """
        if self.world_size > 1:
            for b in net.buffers():
                torch.distributed.broadcast(b, src=0)

    def gather(self, value) -> list:
        """每个进程的 ``value``（可 pickle 的对象），按进程号排成列表；每个进程都要调用。"""
        if self.world_size == 1:
            return [value]
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, value)
        return out

    def barrier(self, device: torch.device) -> None:
        """等所有进程都到达这里（例如等 0 号进程写完检查点）。"""
        if self.world_size > 1:
            torch.distributed.barrier(device_ids=[device.index] if device.type == "cuda" else None)

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """各进程的 ``t`` 之和（一个新张量，不改 ``t``）。"""
        return self._reduce(t, torch.distributed.ReduceOp.SUM) if self.world_size > 1 else t.clone()

    def min(self, t: torch.Tensor) -> torch.Tensor:
        """各进程的 ``t`` 的最小值（一个新张量，不改 ``t``）。"""
        return self._reduce(t, torch.distributed.ReduceOp.MIN) if self.world_size > 1 else t.clone()

    @staticmethod
    def _reduce(t: torch.Tensor, op) -> torch.Tensor:
        t = t.clone()
        torch.distributed.all_reduce(t, op=op)
        return t
