"""命令行：在没有 Jupyter 的远程 GPU 服务器上训练本章的任一模型。

    python -m cnnlib train resnet18 --profile full --out results/resnet18.json
    torchrun --nproc_per_node=4 -m cnnlib train resnet18 --profile full --batch-size 1024

用 torchrun 启动时自动使用分布式数据并行：``--batch-size`` 是全局批量，平均分给各进程。
"""

import argparse
import os
import sys
from pathlib import Path

import torch

from cnnlib import models
from cnnlib.data import load_fashion_mnist
from cnnlib.device import try_gpu
from cnnlib.profiles import PROFILE_NAMES, get_profile
from cnnlib.results import result_record, write_record
from cnnlib.train import train

# 书中每个模型的（构造函数, 训练分辨率, 学习率, 批量大小）；轮数都是 10
BOOK = {
    "alexnet": (models.alexnet, 224, 0.01, 128),
    "vgg11": (models.vgg11, 224, 0.05, 128),
    "nin": (models.nin, 224, 0.1, 128),
    "googlenet": (models.googlenet, 96, 0.1, 128),
    "lenet_bn": (models.lenet_bn, 28, 1.0, 256),
    "resnet18": (models.resnet18, 96, 0.05, 256),
    "densenet": (models.densenet, 96, 0.1, 256),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnnlib", description="《现代卷积神经网络》的命令行工具")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="训练本章的一个模型")
    t.add_argument("model", choices=sorted(BOOK), help="模型名")
    t.add_argument("--profile", choices=PROFILE_NAMES, default=None,
                   help="运行配置；默认有 GPU 时 full，否则 cpu（CNNLIB_PROFILE 可覆盖）")
    t.add_argument("--epochs", type=int, default=10, help="书中的轮数（cpu/smoke 配置会减少）")
    t.add_argument("--lr", type=float, default=None, help="学习率，默认书中的值")
    t.add_argument("--batch-size", type=int, default=None, help="全局批量大小，默认书中的值")
    t.add_argument("--out", type=Path, default=None, help="结果 JSON 的路径")
    t.add_argument("--checkpoint", type=Path, default=None, help="检查点路径（存在时从中继续）")
    t.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), default="auto", help="混合精度")
    t.add_argument("--no-channels-last", action="store_true", help="关闭 channels_last")
    t.add_argument("--compile", action="store_true", help="用 torch.compile 编译网络")
    t.add_argument("--data", type=Path, default=None, help="Fashion-MNIST 目录（默认自动查找）")
    t.add_argument("--seed", type=int, default=0, help="初始化与打乱顺序的随机种子")
    return parser


def train_book_model(model: str, profile, device: torch.device, *, batch_size: int, lr: float,
                     seed: int = 0, root: Path | None = None, **train_options):
    """用书中的分辨率建好 ``model``，加载 ``profile`` 的数据并训练，返回 ``(net, history)``。

    命令行与 ``benchmarks/full_run.py`` 共用这一条路径（与笔记本相同：``load_fashion_mnist`` + ``train``）。
    ``train_options`` 原样传给 :func:`cnnlib.train`（例如 ``amp``、``checkpoint``、``init``）。
    """
    factory, resolution, _, _ = BOOK[model]
    train_iter, test_iter = load_fashion_mnist(
        batch_size, resize=resolution if resolution != 28 else None,
        profile=profile, root=root, device=device, seed=seed)
    torch.manual_seed(seed)  # 各进程的初始权重相同（DDP 还会再从 0 号进程广播一次）
    net = factory()
    history = train(net, train_iter, test_iter, profile.num_epochs, lr, device, plot=False, **train_options)
    return net, history


def _train(args) -> int:
    _, resolution, book_lr, book_batch = BOOK[args.model]
    lr = args.lr if args.lr is not None else book_lr
    batch_size = args.batch_size if args.batch_size is not None else book_batch

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world_size > 1:
        if batch_size % world_size:
            print(f"错误：全局批量 --batch-size {batch_size} 不能被进程数 {world_size} 整除，"
                  f"请改成 {world_size} 的倍数。", file=sys.stderr)
            return 2
        use_cuda = torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
        device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
    else:
        device = try_gpu()

    try:
        profile = get_profile(args.model, args.epochs, args.profile)
        if rank == 0:
            print(profile)
        net, history = train_book_model(
            args.model, profile, device, batch_size=batch_size // world_size, lr=lr, seed=args.seed,
            root=args.data, amp=None if args.amp == "none" else args.amp,
            channels_last=False if args.no_channels_last else "auto",
            compile=args.compile, checkpoint=args.checkpoint)
        if rank == 0 and args.out is not None and history.epochs:
            record = result_record(args.model, net, history, resolution, lr=lr, batch_size=batch_size,
                                   world_size=world_size, seed=args.seed)
            print(f"结果已写入 {write_record(record, args.out)}")
    finally:
        if world_size > 1:
            torch.distributed.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "train":
        return _train(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
