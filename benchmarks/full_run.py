"""书中的完整设定（``full`` 配置）在 GPU 上的一次运行，写出网站要展示的全部结果。

按顺序做四件事，每件做完就把结果写进仓库并打包（中途被时限打断也不丢已完成的部分）：

1. 用 ``full`` 配置训练七个网络：全部 60,000/10,000 张、10 轮、每节笔记本自己的分辨率、
   批量与学习率（登记表 ``cnnlib.SPECS``），走与笔记本相同的 ``load_fashion_mnist`` + ``train``。
   结果写进随 cnnlib 发布的目录 ``cnnlib/published/<模型>-full.json``（笔记本单独打开时也能读到）；
   AlexNet 另存第一层卷积核与一张测试图像的特征图（``alexnet-full-features.pt``，7.1 节用）。
2. ``benchmarks/bench_loop.py``：AlexNet@224 与 ResNet-18@96 的 cnnlib 循环对大纲循环，写进
   ``benchmarks/results/``；7.1 节展示的 AlexNet 测速结果另复制一份到 ``cnnlib/published/speed/``。
3. 初始化对照（7.3 节用）：NiN 与 AlexNet 用 He 初始化在同样的数据顺序上训练第 1 轮，
   与第 1 步里 Xavier 初始化的第 1 轮逐段比较，写进 ``cnnlib/published/experiments/init-full.json``。

已经完整的结果会跳过，所以同一条命令可以再运行一次，把上次没做完的做完；同一台机器上
检查点（``checkpoints/``）还在时，半途的模型从上一轮结束处继续。

    python3 benchmarks/full_run.py --data .data/fashion-mnist --deadline 540 --pack $OUT/full-run.tar
    python benchmarks/full_run.py --profile smoke --results-dir /tmp/r --bench-dir /tmp/b   # CPU 上的演练

只需要 torch（不需要 Jupyter、不联网、不必安装 cnnlib）。设备机器上的完整调用见 README。
"""

import argparse
import contextlib
import io
import json
import os
import platform
import signal
import sys
import tarfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # 不安装也能从仓库导入 cnnlib 与 bench_loop

import bench_loop  # noqa: E402
import cnnlib  # noqa: E402
from cnnlib.__main__ import train_book_model  # noqa: E402

MODELS = tuple(cnnlib.SPECS)
BENCH_MODELS = ("alexnet", "resnet18")
SHOWN_SPEEDS = ("alexnet",)  # 笔记本展示的测速结果（cnnlib/published/speed/）
INIT_MODELS = ("nin", "alexnet")
SEED = 0
READOUTS = 20          # 每轮读数 20 次：初始化对照要看第 1 轮里损失怎样下降
MIN_SECONDS = 15       # 剩余时间少于这些秒就不再开始新的一步
FEATURE_CHANNELS = 16  # 每个卷积层存平均激活最大的 16 个通道


def log(msg: str) -> None:
    print(msg, flush=True)


def environment(device: torch.device) -> str:
    parts = [f"Python {platform.python_version()}", f"torch {torch.__version__}",
             f"设备 {cnnlib.device_name(device)}"]
    if device.type == "cuda":
        parts += [f"CUDA {torch.version.cuda}", f"cuDNN {torch.backends.cudnn.version()}"]
    return "，".join(parts) + f"，{os.cpu_count()} 个 CPU 核"


def complete_record(path: Path, epochs: int) -> dict | None:
    """``path`` 里已有的结果，若已训练满 ``epochs`` 轮；否则 None。"""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return record if len(record["history"]["train_loss"]) >= epochs else None
    except (OSError, ValueError, KeyError):
        return None


def train_model(name: str, profile, device, checkpoint: Path | None, init=cnnlib.xavier_init):
    spec = cnnlib.model_spec(name)
    resolution, lr, batch_size = spec.resolution, spec.lr, spec.batch_size
    net, history = train_book_model(name, profile, device, batch_size=batch_size, lr=lr, seed=SEED,
                                    init=init, checkpoint=checkpoint, progress=False,
                                    readouts_per_epoch=READOUTS)
    record = cnnlib.result_record(name, net, history, resolution, lr=lr, batch_size=batch_size,
                                  num_epochs=profile.num_epochs, seed=SEED,
                                  init=getattr(init, "__name__", str(init)))
    return net, history, record


def alexnet_features(net, device) -> dict:
    """训练好的 AlexNet：第一层的 96 个卷积核，以及第 0 张测试图像在每个卷积层的特征图（各取 16 个通道）。"""
    data = cnnlib.read_fashion_mnist()
    index = 0
    image = data["test_images"][index:index + 1]
    X = torch.nn.functional.interpolate(image.float().div(255), size=(224, 224), mode="bilinear",
                                        align_corners=False).to(device)
    layers = {}
    for layer, act in cnnlib.conv_activations(net, X):
        act = act[0]
        top = act.mean(dim=(1, 2)).argsort(descending=True)[:FEATURE_CHANNELS].sort().values
        layers[layer] = {"channels": top, "maps": act[top].half(), "num_channels": act.shape[0]}
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    return {"conv1_weight": first.weight.detach().float().cpu(), "image_index": index,
            "image": image[0, 0].clone(), "label": int(data["test_labels"][index]), "layers": layers}


def first_epoch(history: dict) -> dict:
    """训练记录中第 1 轮的部分：轮内读数与第 1 轮结束时的指标。"""
    return {"readouts": [r for r in history["readouts"] if r[0] <= 1],
            **{k: history[k][0] for k in ("train_loss", "train_acc", "test_acc", "epoch_time")},
            "device": history["device"], "precision": history["precision"]}


class Run:
    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.written: list[Path] = []
        self.failures: list[str] = []

    def left(self) -> float:
        return self.args.deadline - (time.monotonic() - self.t0) if self.args.deadline else float("inf")

    def wrote(self, path: Path) -> None:
        self.written.append(path)
        log(f"  写入 {path}")
        self.pack()

    def pack(self) -> None:
        if not self.args.pack:
            return
        tmp = self.args.pack.with_name(self.args.pack.name + ".tmp")
        with tarfile.open(tmp, "w") as tar:
            for path in dict.fromkeys(self.written):
                path = path.resolve()
                tar.add(path, arcname=str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name)
        os.replace(tmp, self.args.pack)

    def step(self, title: str, fn) -> None:
        if self.left() < MIN_SECONDS:
            log(f"跳过 {title}：距时限只剩 {self.left():.0f} 秒。再运行同一条命令可以补上。")
            self.failures.append(f"{title}（时间不够）")
            return
        log(f"\n== {title}（距时限 {self.left():.0f} 秒）")
        t = time.monotonic()
        try:
            fn()
        except KeyboardInterrupt:
            raise
        except Exception:  # 一步出错不连累其他步：记下原因，继续
            traceback.print_exc(file=sys.stdout)
            self.failures.append(title)
        log(f"  用时 {time.monotonic() - t:.1f} 秒")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("full", "smoke"), default="full",
                        help="full：书中的完整设定；smoke：几百张图像、1 轮的演练")
    parser.add_argument("--data", type=Path, default=None, help="Fashion-MNIST 的四个 .gz 所在目录")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "cnnlib" / "published",
                        help="完整结果、特征图与初始化对照写到这里（默认是随 cnnlib 发布的目录）")
    parser.add_argument("--bench-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--checkpoint-dir", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--deadline", type=float, default=None,
                        help="从启动起多少秒后停下：正在训练的模型保存到此为止的轮次，其余步骤跳过")
    parser.add_argument("--pack", type=Path, default=None, help="每完成一步就把写出的文件打成这个 tar")
    parser.add_argument("--force", action="store_true", help="已有完整结果也重新训练")
    args = parser.parse_args(argv)
    if args.deadline is not None and args.deadline <= MIN_SECONDS:
        parser.error(f"--deadline {args.deadline:g} 太短：至少要 {MIN_SECONDS} 秒以上。")
    if args.data is not None:
        os.environ["CNNLIB_DATA"] = str(args.data.resolve())  # bench_loop 也从这里读数据
    cnnlib.read_fashion_mnist(download=False)  # 找不到数据时立即给出清楚的错误，而不是训练到一半
    device = cnnlib.try_gpu()
    if args.profile == "full" and device.type == "cpu":
        log("提示：没有 GPU。full 配置在 CPU 上要训练几十个小时；演练请用 --profile smoke。")
    for d in (args.results_dir / "experiments", args.bench_dir, args.checkpoint_dir):
        d.mkdir(parents=True, exist_ok=True)
    run = Run(args)
    log(environment(device))
    if args.deadline:
        signal.signal(signal.SIGALRM, signal.default_int_handler)  # 时限一到，train() 像 Ctrl-C 一样收尾
        signal.alarm(int(args.deadline))
    p = args.profile
    histories: dict[str, dict] = {}

    def one_model(name: str) -> None:
        path = args.results_dir / f"{name}-{p}.json"
        profile = cnnlib.get_profile(name, 10, p)
        done = None if args.force else complete_record(path, profile.num_epochs)
        if done is not None:
            log(f"  已有完整结果 {path}，跳过")
            histories[name] = done["history"]
            return
        log(f"  {profile}")
        ckpt = args.checkpoint_dir / f"{name}-{p}.pt"
        if args.force:
            ckpt.unlink(missing_ok=True)
        net, history, record = train_model(name, profile, device, ckpt)
        histories[name] = record["history"]
        run.wrote(cnnlib.write_record(record, path))
        if name == "alexnet" and history.epochs == profile.num_epochs:
            features = args.results_dir / f"alexnet-{p}-features.pt"
            torch.save(alexnet_features(net, device), features)
            run.wrote(features)

    def bench(name: str) -> None:
        tag = "gpu" if device.type == "cuda" else f"{device.type}-{p}"
        txt, js = args.bench_dir / f"{name}-{tag}.txt", args.bench_dir / f"{name}-{tag}.json"
        if js.exists() and not args.force:
            log(f"  已有 {js}，跳过")
            return
        n_train, n_test, rounds = (10_240, 2_560, 2) if p == "full" else (128, 64, 1)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            bench_loop.main([name, "--num-train", str(n_train), "--num-test", str(n_test),
                             "--rounds", str(rounds), "--json", str(js)])
        txt.write_text(buf.getvalue(), encoding="utf-8")
        log(buf.getvalue().rstrip())
        run.wrote(txt)
        run.wrote(js)
        if name in SHOWN_SPEEDS and tag == "gpu":  # 7.1 节展示的测速结果随 cnnlib 发布
            shown = args.results_dir / "speed" / js.name
            shown.parent.mkdir(parents=True, exist_ok=True)
            shown.write_bytes(js.read_bytes())
            run.wrote(shown)

    def init_comparison() -> None:
        path = args.results_dir / "experiments" / f"init-{p}.json"
        out = json.loads(path.read_text(encoding="utf-8")) if path.exists() and not args.force else {}
        for name in INIT_MODELS:
            if name in out:
                continue
            if name not in histories:
                log(f"  {name} 的 Xavier 训练还没有结果，跳过它的对照")
                continue
            profile = cnnlib.get_profile(name, 1, p)
            _, history, record = train_model(name, profile, device, None, init=cnnlib.kaiming_init)
            if history.interrupted:
                continue
            out[name] = {"kaiming": first_epoch(record["history"]), "xavier": first_epoch(histories[name])}
            run.wrote(cnnlib.write_record(out, path))

    try:
        for name in args.models:
            run.step(f"训练 {name}（{p}）", lambda name=name: one_model(name))
        for name in BENCH_MODELS:
            run.step(f"测速 {name}：cnnlib 对大纲循环", lambda name=name: bench(name))
        run.step("初始化对照：He 对 Xavier，第 1 轮", init_comparison)
    except KeyboardInterrupt:
        log("到达时限，停在这里。再运行同一条命令会从没做完的地方继续。")
        run.failures.append("时限")
    finally:
        signal.alarm(0)
        run.pack()
    log(f"\n总用时 {time.monotonic() - run.t0:.1f} 秒；写出 {len(set(run.written))} 个文件。")
    if run.failures:
        log("没有完成：" + "；".join(run.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
