"""命令行：在没有 Jupyter 的远程 GPU 服务器上训练本章的任一模型。

    python -m cnnlib list                      # 登记表：每个模型的书中设定
    python -m cnnlib train resnet18 --profile full --out results/resnet18.json
    torchrun --nproc_per_node=4 -m cnnlib train resnet18 --profile full --batch-size 1024

用 torchrun 启动时自动使用分布式数据并行：``--batch-size`` 是全局批量，平均分给各进程。
安装后的命令 ``cnnlib`` 与 ``python -m cnnlib`` 相同。

出错时打印一行 ``error:``（中文，写出坏值），以状态 2 退出：参数不可用（例如 ``--epochs 0``、找不到
``--data`` 指定的目录、``--out`` 写不了，这些都在训练之前检查）、检查点不属于这次训练、训练发散（NaN/Inf）。
Ctrl-C 打印一行说明检查点在哪里，以状态 130 退出。运行配置 ``smoke``/``cpu`` 限制轮数：``--epochs``
超过上限时照配置训练，并打印一行说明。
"""

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import torch

from cnnlib.data import DataNotFoundError, load_fashion_mnist
from cnnlib.device import try_gpu
from cnnlib.models import SPECS, model_spec
from cnnlib.monitor import TrainingDivergedError
from cnnlib.profiles import PROFILE_NAMES, get_profile
from cnnlib.results import result_record, write_record
from cnnlib.train import train

PROG = "cnnlib"  # 安装的命令名；python -m cnnlib 启动时换成 "python -m cnnlib"
INTERRUPTED = 130  # 被 Ctrl-C 中断时的退出状态：128 + SIGINT，shell 的惯例


class _Parser(argparse.ArgumentParser):
    """argparse 的提示与错误换成中文；错误仍是一行 ``prog: error: …``，退出状态 2。"""

    # argparse 的英文错误（Python 3.10–3.13 的措辞）→ 中文；最后一条接住我们自己的中文类型错误
    MESSAGES = [
        (r"the following arguments are required: (.+)", r"缺少必需的参数：\1"),
        (r"argument (\S+): invalid choice: (.+?) \(choose from (.+)\)", r"参数 \1：\2 不是可选的值，请从 \3 中选一个"),
        (r"unrecognized arguments: (.+)", r"无法识别的参数：\1"),
        (r"argument (\S+): expected one argument", r"参数 \1 后面要跟一个值"),
        (r"argument (\S+): invalid (\S+) value: (.+)", r"参数 \1：\3 不是合法的 \2 值"),
        (r"ambiguous option: (\S+) could match (.+)", r"选项 \1 有歧义，可能是 \2"),
        (r"argument (\S+): (.+)", r"参数 \1：\2"),
    ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{**kwargs, "add_help": False})
        self._positionals.title, self._optionals.title = "位置参数", "选项"
        self.add_argument("-h", "--help", action="help", help="显示这段帮助并退出")

    def format_usage(self) -> str:
        return super().format_usage().replace("usage: ", "用法：", 1)

    def format_help(self) -> str:
        return super().format_help().replace("usage: ", "用法：", 1)

    def error(self, message: str):
        for english, chinese in self.MESSAGES:
            if re.fullmatch(english, message, flags=re.DOTALL):
                message = re.sub(english, chinese, message, flags=re.DOTALL)
                break
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


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


def _parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = _Parser(prog=prog, description="《现代卷积神经网络》的命令行工具")
    sub = parser.add_subparsers(dest="command", required=True, metavar="命令")
    ls = sub.add_parser("list", help="列出登记表中的模型与书中设定")
    ls.add_argument("--notebooks", action="store_true", help="只列出笔记本的路径（供 Makefile 使用）")
    t = sub.add_parser("train", help="训练本章的一个模型")
    t.add_argument("model", choices=list(SPECS), help="模型名")
    t.add_argument("--profile", choices=PROFILE_NAMES, default=None,
                   help="运行配置；默认有 GPU 时 full，否则 cpu（CNNLIB_PROFILE 可覆盖）")
    t.add_argument("--epochs", type=_positive(int), default=None,
                   help="轮数，默认书中的值；cpu/smoke 配置有上限，超过时照配置训练并说明")
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


def train_book_model(model: str, profile, device: torch.device, *, batch_size: int | None = None,
                     lr: float | None = None, seed: int = 0, root: Path | None = None, **train_options):
    """按运行配置 ``profile`` 建好 ``model``、加载数据并训练，返回 ``(net, history)``。

    分辨率、批量与学习率取自 ``profile``（``full`` 是书中的设定，``cpu``、``smoke`` 换更小的输入与批量）；
    ``batch_size``（每个进程的批量）与 ``lr`` 给出时代替它们。命令行与 ``benchmarks/full_run.py`` 共用这一条路径
    （与笔记本相同：``load_fashion_mnist`` + ``train``）。``train_options`` 原样传给 :func:`cnnlib.train`
    （例如 ``amp``、``checkpoint``、``init``）。
    """
    spec = model_spec(model)
    train_iter, test_iter = load_fashion_mnist(batch_size or profile.batch_size, resize=profile.resize,
                                               profile=profile, root=root, device=device, seed=seed)
    torch.manual_seed(seed)  # 各进程的初始权重相同（DDP 还会再从 0 号进程广播一次）
    net = spec.factory()
    history = train(net, train_iter, test_iter, profile.num_epochs, lr or profile.lr, device, plot=False,
                    **train_options)
    return net, history


def _list(args) -> int:
    for spec in SPECS.values():
        print(f"notebooks/{spec.notebook}.ipynb" if args.notebooks else f"{spec.name:<10} {spec}")
    return 0


def _check_writable(path: Path) -> None:
    """训练之前确认 ``--out`` 写得了：免得训练到最后才发现，结果丢失。"""
    if path.is_dir():
        raise ValueError(f"--out {path} 是一个目录：请给一个文件路径，例如 {path / 'result.json'}。")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".cnnlib-write-test-"):
            pass
    except OSError as e:
        raise ValueError(f"--out {path} 写不了（{type(e).__name__}: {e.strerror or e}）："
                         "请换一个可写的路径。") from e


def _interrupted(prog: str, checkpoint: Path | None, epochs: int | None = None) -> int:
    """Ctrl-C 之后：一行说明检查点在哪里、怎样续训，返回退出状态 130。"""
    if checkpoint is None:
        where = "这次没有用检查点，训练的进度没有保存：加上 --checkpoint 路径，中断后就能续训"
    elif checkpoint.exists():
        done = f"第 {epochs} 轮" if epochs else "最近一轮"
        where = f"检查点 {checkpoint} 保存着{done}结束时的参数：用同一条命令（同样的 --checkpoint）即可续训"
    else:
        where = f"检查点 {checkpoint} 还没有写出（第一轮没有完成），再次运行会从头训练"
    print(f"{prog} train: 已中断，没有写结果文件。{where}。", file=sys.stderr)
    return INTERRUPTED


def _train(args, prog: str = PROG) -> int:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    profile = get_profile(args.model, args.epochs, args.profile)  # 分辨率、批量与学习率的默认值来自运行配置
    lr = args.lr or profile.lr
    batch_size = args.batch_size or profile.batch_size
    if batch_size % world_size:
        raise ValueError(f"全局批量 --batch-size {batch_size} 不能被进程数 {world_size} 整除，"
                         f"请改成 {world_size} 的倍数。")
    if rank == 0 and args.out is not None:
        _check_writable(args.out)
    if world_size > 1:
        use_cuda = torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
        device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
    else:
        device = try_gpu()
    try:
        if rank == 0:
            print(profile)
            if args.epochs is not None and profile.num_epochs != args.epochs:
                print(f"注意：运行配置 {profile.name} 最多训练 {profile.num_epochs} 轮，所以 --epochs {args.epochs} "
                      f"只训练 {profile.num_epochs} 轮；要训练 {args.epochs} 轮，请用 --profile full。", file=sys.stderr)
        net, history = train_book_model(
            args.model, profile, device, batch_size=batch_size // world_size, lr=lr, seed=args.seed,
            root=args.data, amp=None if args.amp == "none" else args.amp,
            channels_last=False if args.no_channels_last else "auto",
            compile=args.compile, checkpoint=args.checkpoint)
        if history.interrupted:  # train() 把 Ctrl-C 变成了记录里的一个标志
            return _interrupted(prog, args.checkpoint, history.epochs) if rank == 0 else INTERRUPTED
        if rank == 0 and args.out is not None and history.epochs:
            record = result_record(args.model, net, history, profile.resolution, lr=lr, batch_size=batch_size,
                                   world_size=world_size, seed=args.seed)
            print(f"结果已写入 {write_record(record, args.out)}")
    finally:
        if world_size > 1:
            torch.distributed.destroy_process_group()
    return 0


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    """命令行入口（安装的命令 ``cnnlib`` 调用它）。

    cnnlib 报告的错误（ValueError，包括 CheckpointError；找不到数据；训练发散）变成一行 ``error:``，
    退出状态 2；Ctrl-C 变成一行说明，退出状态 130。
    """
    args = _parser(prog).parse_args(argv)
    try:
        return _list(args) if args.command == "list" else _train(args, prog)
    except (ValueError, DataNotFoundError, TrainingDivergedError) as e:
        print(f"{prog} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # 训练之外（例如加载数据时）的 Ctrl-C；训练中的由 train() 接住
        return _interrupted(prog, getattr(args, "checkpoint", None))


if __name__ == "__main__":
    sys.exit(main(prog="python -m cnnlib"))
