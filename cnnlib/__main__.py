"""命令行：在没有 Jupyter 的远程 GPU 服务器上训练本章的任一模型。

    python -m cnnlib list                      # 登记表：每个模型的书中设定
    python -m cnnlib train resnet18 --profile full --out results/resnet18.json
    torchrun --nproc_per_node=4 -m cnnlib train resnet18 --profile full --batch-size 1024

用 torchrun 启动时自动使用分布式数据并行：``--batch-size`` 是全局批量，平均分给各进程。
参数不可用（例如 ``--epochs 0``、找不到 ``--data`` 指定的目录）时打印一行 ``error:`` 并以状态 2 退出。
"""

import argparse
import os
import sys
from pathlib import Path

import torch

from cnnlib.data import DataNotFoundError, load_fashion_mnist
from cnnlib.device import try_gpu
from cnnlib.models import SPECS, model_spec
from cnnlib.profiles import PROFILE_NAMES, get_profile
from cnnlib.results import result_record, write_record
from cnnlib.train import train

PROG = "python -m cnnlib"


def _positive(kind):
    """argparse 的类型检查：正整数或正数，否则给出中文的错误。"""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(
                f"{text!r} 不可用：请给一个正{'整' if kind is int else ''}数。")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="《现代卷积神经网络》的命令行工具")
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="列出登记表中的模型与书中设定")
    ls.add_argument("--notebooks", action="store_true", help="只列出笔记本的路径（供 Makefile 使用）")
    t = sub.add_parser("train", help="训练本章的一个模型")
    t.add_argument("model", choices=list(SPECS), help="模型名")
    t.add_argument("--profile", choices=PROFILE_NAMES, default=None,
                   help="运行配置；默认有 GPU 时 full，否则 cpu（CNNLIB_PROFILE 可覆盖）")
    t.add_argument("--epochs", type=_positive(int), default=None, help="轮数，默认书中的值（cpu/smoke 配置会减少）")
    t.add_argument("--lr", type=_positive(float), default=None, help="学习率，默认书中的值")
    t.add_argument("--batch-size", type=_positive(int), default=None, help="全局批量大小，默认书中的值")
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
    spec = model_spec(model)
    train_iter, test_iter = load_fashion_mnist(batch_size, resize=spec.resize, profile=profile,
                                               root=root, device=device, seed=seed)
    torch.manual_seed(seed)  # 各进程的初始权重相同（DDP 还会再从 0 号进程广播一次）
    net = spec.factory()
    history = train(net, train_iter, test_iter, profile.num_epochs, lr, device, plot=False, **train_options)
    return net, history


def _list(args) -> int:
    for spec in SPECS.values():
        print(f"notebooks/{spec.notebook}.ipynb" if args.notebooks else f"{spec.name:<10} {spec}")
    return 0


def _train(args) -> int:
    spec = model_spec(args.model)
    lr = args.lr or spec.lr
    batch_size = args.batch_size or spec.batch_size
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if batch_size % world_size:
        raise ValueError(f"全局批量 --batch-size {batch_size} 不能被进程数 {world_size} 整除，"
                         f"请改成 {world_size} 的倍数。")
    if world_size > 1:
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
            record = result_record(args.model, net, history, spec.resolution, lr=lr, batch_size=batch_size,
                                   world_size=world_size, seed=args.seed)
            print(f"结果已写入 {write_record(record, args.out)}")
    finally:
        if world_size > 1:
            torch.distributed.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    """命令行入口。cnnlib 报告的参数错误（ValueError、找不到数据）变成一行 ``error:``，退出状态 2。"""
    args = _parser().parse_args(argv)
    try:
        return _list(args) if args.command == "list" else _train(args)
    except (ValueError, DataNotFoundError) as e:
        print(f"{PROG} {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
