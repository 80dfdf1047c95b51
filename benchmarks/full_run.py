"""书中的完整设定（``full`` 配置）在一块 GPU 上的运行：网站要的、只有 GPU 给得出的全部结果，一条命令。

要做的事，每一项都是一次或几次独立的“运行”（run）：

1. 七个网络在书中设定下各训练三个随机种子（0、1、2）：全部 60,000/10,000 张、10 轮、登记表
   ``cnnlib.SPECS`` 的分辨率、批量与学习率，走与笔记本相同的 ``load_fashion_mnist`` + ``train``
   （``cnnlib.__main__.train_book_model``）。种子 0 即各节展示的 ``cnnlib/published/<模型>-full.json``，
   其他种子写进 ``cnnlib/published/seeds/``（文件名见 ``cnnlib.results.run_file``）。
2. NiN 的推荐设定（``cnnlib.results.VARIANTS``：He 初始化，依据是 7.3.7 的初始化测量与第 1 轮对照）三个随机种子。
3. 每次运行结束时，在测试集上用训练时的精度数出混淆矩阵（``cnnlib.confusion_matrix``），写进结果的
   ``test_predictions``：7.3 节据此看 NiN 有没有从不被预测的类别。AlexNet 种子 0 另存第一层卷积核与
   一张测试图像的特征图（``alexnet-full-features.pt``，7.1 节用）。
4. 精度检查：LeNet-BN（lr 1.0，fp16 最先溢出的地方）与 ResNet-18 各用 fp16 + GradScaler、bf16、fp32
   在全部数据上训练 1 轮（``experiments/precision-full.json``）。
5. 内存：七个网络在书中批量下各训练两步，记下 ``torch.cuda.max_memory_allocated``、
   ``max_memory_reserved`` 与显卡报告的占用（``torch.cuda.mem_get_info``），旁边是 ``cnnlib.memory`` 的估计
   （``experiments/memory-full.json``）。
6. ``benchmarks/bench_loop.py``：AlexNet@224 与 ResNet-18@96 的 cnnlib 循环对大纲循环
   （``benchmarks/results/``，7.1 节展示的 AlexNet 另复制一份到 ``cnnlib/published/speed/``）。
7. 初始化对照（7.3 节）：NiN 与 AlexNet 用 He 初始化训练第 1 轮，与 Xavier 的第 1 轮比较
   （``experiments/init-full.json``）。

**可以续跑。** 已经完整的运行跳过；被时限打断的训练留在检查点（``checkpoints/``）里，下次调用从上一轮
结束处继续（同一台机器上）。只有完整的运行（没有被中断、训练满 10 轮）才写进 ``cnnlib/published/``，
半途的从不发布。每写出一个文件就把本次写出的全部文件打成一个 tar（``--pack``），中途被杀也不丢。

**一块大 GPU 上同时跑几个训练。** 这些网络在 Fashion-MNIST 上太小，一个训练喂不饱一块 H100/H200
（``benchmarks/results/full-run-h100.log`` 里 bench_loop 的峰值占比），按顺序跑三个种子装不进设备时间。
所以训练交给 ``--workers`` 个工作进程（默认 GPU 上 4 个）：主进程按优先级把运行一个个派给空闲的进程，
每个进程走笔记本的同一条路径训练一个网络，结果交回主进程写文件。量内存与测速的两项要独占 GPU，
在没有别的运行时才开始。每个训练结果的 ``run`` 字段记下当时有几个进程共用 GPU（它的 examples/sec
因此不是单独运行的速度）；整体的吞吐量、GPU 利用率和每个运行的起止时间写进
``benchmarks/results/full-run-schedule-<设备>.json``，``--plan`` 在不训练的情况下打印待做的运行与
按已发布记录的墙钟时间估计的用时。

**预算（一块 H200，整个会话 15 分钟设备时间，一次调用至多 10 分钟）。** 下面是计划，不是测量。
``--plan`` 列出还没做的运行，并按随包发布的单独运行的墙钟时间估计：依次单独运行要多久，
``--workers`` 个进程同时跑、每个运行的用时是单独时的 1、1.5、2 倍时又要多久（同时跑会慢多少，事先不知道）。

    第一次调用（--deadline 420，timeout 480）                    计划秒数
      启动、读数据、起工作进程                                     20
      内存（独占 GPU，七个网络各两步）                             30
      还没有的训练（每个网络缺的种子、NiN 的推荐设定三个种子）
        与 6 次精度检查，4 个进程同时                             ≤ 320   到时限还没做完的停在检查点里
      循环测速（独占 GPU，两个网络）                               50   时间不够时留给第二次
      合计                                                       ≤ 420
    第二次调用（紧接着、机器还没交回；--deadline 180，timeout 210）：从检查点续完被打断的训练，补上没做的测速。

两次至多约 11.5 分钟，加上机器启动的一两分钟，在 15 分钟以内。写出的每个文件另存在检查点目录里，
所以第二次调用收到的工作树即使没有解包第一次的 tar，也不会重做已经完成的运行。已有完整结果的种子（种子 0 与早先的几个）
不重跑，所以它们的结果里没有 ``test_predictions``。

    python3 benchmarks/full_run.py --data .data/fashion-mnist --deadline 420 --pack $OUT/full-run.tar
    python benchmarks/full_run.py --profile smoke --results-dir /tmp/r --bench-dir /tmp/b   # CPU 上的演练
    python benchmarks/full_run.py --plan                                                   # 只看计划

``--profile smoke`` 是 CPU 上的演练：每次运行只用 16/16 张图像、1 轮，其余（同样的运行、同样的工作进程、
同样的文件）与 GPU 上相同，``tests/test_full_run.py`` 运行它。只需要 torch（不需要 Jupyter、不联网、
不必安装 cnnlib）。设备机器上的完整调用见 README。
"""

import argparse
import contextlib
import dataclasses
import gc
import io
import json
import math
import multiprocessing as mp
import os
import platform
import queue
import shutil
import signal
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]  # 不安装也能从仓库导入 cnnlib 与 bench_loop

import bench_loop  # noqa: E402
import cnnlib  # noqa: E402
from cnnlib.__main__ import train_book_model  # noqa: E402
from cnnlib.results import BOOK_INIT, VARIANTS, is_complete, run_file, variant  # noqa: E402

MODELS = tuple(cnnlib.SPECS)
SEEDS = (0, 1, 2)
PRECISION_MODELS = ("lenet_bn", "resnet18")  # 精度检查：lr 1.0 的 LeNet-BN 是 fp16 最先溢出的地方
PRECISIONS = ("fp16", "bf16", "fp32")
BENCH_MODELS = ("alexnet", "resnet18")
SHOWN_SPEEDS = ("alexnet",)  # 笔记本展示的测速结果（cnnlib/published/speed/）
INIT_MODELS = ("nin", "alexnet")
BENCH_METHOD = 2       # bench_loop 的测法版本：2 = 大纲循环关掉 cudnn.benchmark（与 d2l 相同）；更早的结果重测
READOUTS = 20          # 每轮读数 20 次：7.3 节要看训练损失在第几轮离开平台期
MIN_SECONDS = 15       # 距时限少于这些秒就不再开始新的运行
FEATURE_CHANNELS = 16  # 每个卷积层存平均激活最大的 16 个通道
DRY_RUN_SIZE = (16, 16)  # smoke 演练每次运行的训练/测试图像数：只检查每条代码路径与每个文件，不为学到东西
WORKERS = {"cuda": 4, "cpu": 2}  # 默认的工作进程数（计划值；第一次 GPU 运行测出整体吞吐量后再定）
PLAN_SECONDS = {"memory": 30, "bench": 25}  # 计划的秒数（不是测量）：内存一项、每个测速模型
DATASET_BYTES = (60_000 + 10_000) * 28 * 28  # 完整数据集的 uint8 图像常驻设备时占的字节数


def log(msg: str) -> None:
    print(msg, flush=True)


def environment(device: torch.device) -> str:
    parts = [f"Python {platform.python_version()}", f"torch {torch.__version__}",
             f"设备 {cnnlib.device_name(device)}"]
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        parts += [f"计算能力 {major}.{minor}", f"CUDA {torch.version.cuda}", f"cuDNN {torch.backends.cudnn.version()}"]
    return "，".join(parts) + f"，{os.cpu_count()} 个 CPU 核"


# ---------------------------------------------------------------------------
# 每次运行的设定
# ---------------------------------------------------------------------------

def run_profile(model: str, profile: str, num_epochs: int | None = None):
    """``model`` 在运行配置 ``profile`` 下的 :class:`cnnlib.RunProfile`；smoke 演练再缩到 :data:`DRY_RUN_SIZE`。"""
    p = cnnlib.get_profile(model, num_epochs, profile)
    if profile == "smoke":
        p = dataclasses.replace(p, num_train=DRY_RUN_SIZE[0], num_test=DRY_RUN_SIZE[1])
    return p


def book_setting(model: str, profile) -> tuple[int, float, int]:
    """这次运行的（分辨率, 学习率, 批量）：运行配置里有就用它的（full 即书中设定），否则用登记表的。"""
    spec = cnnlib.model_spec(model)
    return (getattr(profile, "resolution", None) or spec.resolution, getattr(profile, "lr", None) or spec.lr,
            getattr(profile, "batch_size", None) or spec.batch_size)


def _resize(resolution: int) -> int | None:
    return None if resolution == 28 else resolution


def _amp(precision: str | None) -> str | None:
    """记录里的精度名 → train() 的 ``amp`` 参数。"""
    return None if precision in (None, "", "fp32") else precision


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------
# 要做的运行（job）：一个 dict，能在进程之间传递
# ---------------------------------------------------------------------------

def solo_seconds(model: str, num_epochs: int) -> tuple[float, str]:
    """按随包发布的完整结果（单独运行）估计 ``model`` 训练 ``num_epochs`` 轮的秒数，以及那次运行的设备。"""
    record = cnnlib.load_full_result(model)
    if record is None or not record["history"]["epoch_time"]:
        return 60.0 * num_epochs, "没有记录，按每轮 60 秒"
    h = record["history"]
    return sum(h["epoch_time"]) / len(h["epoch_time"]) * num_epochs, h["device"]


def plan_jobs(args, device: torch.device) -> tuple[list[dict], list[str]]:
    """还没做完的运行（按派发顺序）与已经完整、跳过的运行的名字。

    顺序：先独占 GPU 的内存一项；再是训练与检查，第一档是种子 0、1、推荐设定的三个种子、精度检查与
    初始化对照，第二档是种子 2（时间不够时宁可每个网络都有两个种子）；每档里用时长的先开始；
    最后是独占 GPU 的测速。
    """
    p, res = args.profile, args.results_dir
    jobs, done = [], []

    def add(job: dict, finished: bool) -> None:
        (done.append(job["key"]) if finished and not args.force else jobs.append(job))

    memory = read_json(res / "experiments" / f"memory-{p}.json") or {}
    add({"kind": "memory", "key": f"memory-{p}", "models": list(args.models), "exclusive": True, "tier": -1,
         "estimate": PLAN_SECONDS["memory"]}, set(args.models) <= set(memory.get("models", {})))
    for model in args.models:
        epochs = cnnlib.model_spec(model).num_epochs
        for name in [None] + [v.name for v in VARIANTS.get(model, ())]:
            for seed in args.seeds:
                rel = run_file(model, seed, name, p)
                record = read_json(res / rel)
                add({"kind": "train", "key": Path(rel).stem, "model": model, "seed": seed, "variant": name,
                     "path": rel, "exclusive": False, "tier": 1 if seed >= 2 and name is None else 0,
                     "estimate": solo_seconds(model, epochs)[0]}, record is not None and is_complete(record))
    precision = read_json(res / "experiments" / f"precision-{p}.json") or {}
    for model in PRECISION_MODELS:
        if model in args.models:
            for amp in PRECISIONS:
                add({"kind": "precision", "key": f"precision-{model}-{amp}", "model": model, "amp": amp,
                     "exclusive": False, "tier": 0, "estimate": solo_seconds(model, 1)[0]},
                    amp in precision.get(model, {}))
    init = read_json(res / "experiments" / f"init-{p}.json") or {}
    for model in INIT_MODELS:
        if model in args.models:
            add({"kind": "init", "key": f"init-{model}-kaiming", "model": model, "exclusive": False, "tier": 0,
                 "estimate": solo_seconds(model, 1)[0]}, model in init)
    for model in BENCH_MODELS:
        if model in args.models:
            old = read_json(args.bench_dir / f"{model}-{bench_tag(device, p)}.json") or {}
            add({"kind": "bench", "key": f"bench-{model}", "model": model, "exclusive": True, "tier": 2,
                 "estimate": PLAN_SECONDS["bench"]}, old.get("method", 1) >= BENCH_METHOD)
    jobs.sort(key=lambda j: (j["tier"], -j["estimate"]))
    return jobs, done


def bench_tag(device: torch.device, profile: str) -> str:
    return "gpu" if device.type == "cuda" else f"{device.type}-{profile}"


def print_plan(jobs: list[dict], workers: int) -> None:
    """待做的运行与估计的用时（按已发布的单独运行的墙钟时间；几个进程同时跑时每个会慢多少，事先不知道）。"""
    shared = [j for j in jobs if not j["exclusive"]]
    alone = sum(j["estimate"] for j in jobs if j["exclusive"])
    sequential = sum(j["estimate"] for j in shared)
    log(f"待做 {len(jobs)} 项（训练与检查 {len(shared)} 项，独占 GPU 的 {len(jobs) - len(shared)} 项）：")
    for j in jobs:
        log(f"  {j['key']:<28} {j['kind']:<9} 约 {j['estimate']:6.0f} 秒{'（独占 GPU）' if j['exclusive'] else ''}")
    devices = "、".join(sorted({solo_seconds(m, 1)[1] for m in MODELS}))
    log(f"训练与检查依次单独运行约 {sequential:.0f} 秒（按随包发布的单独运行估计：{devices}）；"
        f"独占 GPU 的几项约 {alone:.0f} 秒。")
    for slowdown in (1.0, 1.5, 2.0):
        log(f"  {workers} 个进程同时跑、每个运行的用时是单独时的 {slowdown:g} 倍时，训练与检查约 "
            f"{_makespan([j['estimate'] * slowdown for j in shared], workers):.0f} 秒")


def _makespan(durations: list[float], workers: int) -> float:
    """按顺序把任务交给最早空出来的进程，全部做完要多久。"""
    free = [0.0] * max(1, workers)
    for d in durations:
        i = free.index(min(free))
        free[i] += d
    return max(free)


# ---------------------------------------------------------------------------
# 工作进程：每次收一个运行，照笔记本的路径做完，把结果交回主进程（只有主进程写文件）
# ---------------------------------------------------------------------------

def worker_main(worker_id: int, inbox, outbox, options: dict) -> None:
    signal.signal(signal.SIGALRM, signal.default_int_handler)  # 时限一到，train() 像 Ctrl-C 一样收尾
    # spawn 出来的进程默认也用 spawn 开子进程；bench_loop 的大纲循环应像普通脚本那样开 DataLoader 的工作进程
    # （Linux 上是 fork），否则每轮都要重新导入 torch，大纲循环被冤枉地拖慢
    mp.set_start_method(None, force=True)
    if options["threads"]:
        torch.set_num_threads(options["threads"])
    device = cnnlib.try_gpu()
    runners = {"train": run_training, "precision": run_precision, "init": run_init,
               "memory": run_memory, "bench": run_bench}
    while True:
        job = inbox.get()
        if job is None:
            return
        start, out = time.time(), io.StringIO()
        try:
            if options["deadline_at"] is not None:
                signal.setitimer(signal.ITIMER_REAL, max(0.1, options["deadline_at"] - time.time()))
            with contextlib.redirect_stdout(out):
                result = runners[job["kind"]](job, device, options)
        except KeyboardInterrupt:
            result = {"status": "interrupted", "note": "时限到了，停在训练之外的一步"}
        except Exception:  # 一个运行出错不连累其他运行：把原因交回主进程
            result = {"status": "failed", "note": traceback.format_exc()}
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        outbox.put({"worker": worker_id, "key": job["key"], "start": start, "end": time.time(),
                    "log": out.getvalue(), **result})


def _stop_alarm() -> None:
    """训练完成之后的几步（数混淆矩阵、特征图）很快，不再让时限打断，免得丢掉一个完整的运行。"""
    signal.setitimer(signal.ITIMER_REAL, 0)


def _checkpoint_epochs(path: Path) -> int:
    """检查点里已经完成的轮数（没有检查点时是 0）。"""
    if not path.exists():
        return 0
    try:
        return len(torch.load(path, map_location="cpu", weights_only=True)["history"]["train_loss"])
    except Exception:  # 读不了的检查点由 train() 报清楚的错；这里只为统计
        return 0


def run_training(job: dict, device: torch.device, options: dict) -> dict:
    """一个网络、一个随机种子、一种设定的完整训练（可从检查点继续）。"""
    model, seed, name = job["model"], job["seed"], job["variant"]
    profile = run_profile(model, options["profile"])
    resolution, lr, batch_size = book_setting(model, profile)
    init_name = variant(model, name).init if name else BOOK_INIT
    ckpt = Path(options["checkpoint_dir"]) / f"{job['key']}.pt"
    before = _checkpoint_epochs(ckpt)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    net, history = train_book_model(model, profile, device, batch_size=batch_size, lr=lr, seed=seed,
                                    init=getattr(cnnlib, init_name), checkpoint=ckpt, progress=False,
                                    readouts_per_epoch=READOUTS)
    _stop_alarm()
    resolution = getattr(history, "resolution", None) or resolution  # 训练记录写了实际的分辨率时以它为准
    images = (history.epochs - before) * history.num_train
    if history.interrupted or history.epochs < profile.num_epochs:
        return {"status": "interrupted", "images": images, "checkpoint": str(ckpt),
                "note": f"完成 {history.epochs}/{profile.num_epochs} 轮"}
    record = cnnlib.result_record(model, net, history, resolution, lr=lr, batch_size=batch_size,
                                  num_epochs=profile.num_epochs, seed=seed, init=init_name)
    record["test_predictions"] = test_predictions(net, model, profile, device, seed, history)
    record["run"] = {"script": "benchmarks/full_run.py", "workers": options["workers"],
                     "resumed_after_epoch": before or None}
    if device.type == "cuda":
        record["memory"] = {"max_allocated": torch.cuda.max_memory_allocated(device),
                            "max_reserved": torch.cuda.max_memory_reserved(device)}
    result = {"status": "done", "record": record, "images": images, "checkpoint": str(ckpt)}
    if model == "alexnet" and seed == 0 and name is None:
        buf = io.BytesIO()
        torch.save(alexnet_features(net, device, resolution), buf)
        result["features"] = buf.getvalue()
    return result


def test_predictions(net, model: str, profile, device: torch.device, seed: int, history) -> dict:
    """训练结束时在同一个测试集上数出的混淆矩阵与各类别被预测的次数。

    精度与内存布局与训练时每轮的评估相同，所以对角线之和除以样本数就是最后一轮的测试准确率。
    """
    resolution, _, batch_size = book_setting(model, profile)
    _, test_iter = cnnlib.load_fashion_mnist(batch_size, resize=_resize(resolution), profile=profile,
                                             device=device, seed=seed)
    # 与 cnnlib.train 每轮的评估相同：float32（History.eval_precision）、输入不换内存布局
    eval_amp = _amp(getattr(history, "eval_precision", None) or history.precision)
    confusion = cnnlib.confusion_matrix(net, test_iter, 10, device, amp=eval_amp, channels_last=False)
    return {"confusion": confusion.tolist(), "counts": confusion.sum(dim=0).tolist(),
            "precision": eval_amp or "fp32", "rows": "真实类别", "columns": "预测的类别"}


def alexnet_features(net, device: torch.device, resolution: int) -> dict:
    """训练好的 AlexNet：第一层的 96 个卷积核，以及第 0 张测试图像在每个卷积层的特征图（各取 16 个通道）。

    图像经由训练时同一个迭代器缩放（测试集不打乱，第一批就是第 0 张）。
    """
    data = cnnlib.read_fashion_mnist()
    index = 0
    _, test_iter = cnnlib.load_fashion_mnist(1, resize=_resize(resolution), num_train=10, device=device)
    X, _ = next(iter(test_iter))
    layers = {}
    for layer, act in cnnlib.conv_activations(net, X):
        act = act[0]
        top = act.mean(dim=(1, 2)).argsort(descending=True)[:FEATURE_CHANNELS].sort().values
        layers[layer] = {"channels": top, "maps": act[top].half(), "num_channels": act.shape[0]}
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    return {"conv1_weight": first.weight.detach().float().cpu(), "image_index": index,
            "image": data["test_images"][index, 0].clone(), "label": int(data["test_labels"][index]),
            "layers": layers}


def learned(history: dict) -> dict:
    """一轮训练学到了东西吗：损失都是有限数，最后一段读数的训练损失低于第一段。"""
    losses = [r[1] for r in history["readouts"]] or history["train_loss"]
    finite = all(math.isfinite(v) for v in losses + history["train_loss"])
    return {"finite": finite, "first_loss": losses[0], "last_loss": losses[-1],
            "loss_falling": finite and losses[-1] < losses[0], "test_acc": history["test_acc"][-1]}


def run_precision(job: dict, device: torch.device, options: dict) -> dict:
    """一种精度在全部数据上训练 1 轮（fp16 + GradScaler 只在 CUDA 上有）。"""
    model, amp = job["model"], job["amp"]
    if amp == "fp16" and device.type != "cuda":
        return {"status": "done", "entry": {"precision": amp, "skipped":
                "fp16 + GradScaler 只在 CUDA GPU 上运行：cnnlib 在 CPU 与 MPS 上不提供 fp16"}}
    profile = run_profile(model, options["profile"], num_epochs=1)
    resolution, lr, batch_size = book_setting(model, profile)
    try:
        net, history = train_book_model(model, profile, device, batch_size=batch_size, lr=lr, seed=0,
                                        amp=_amp(amp), progress=False, readouts_per_epoch=READOUTS)
    except cnnlib.TrainingDivergedError as e:
        return {"status": "done", "entry": {"precision": amp, "diverged": str(e), "epoch": e.epoch, "batch": e.batch}}
    _stop_alarm()
    if history.interrupted or not history.epochs:
        return {"status": "interrupted", "note": "1 轮没有训练完"}
    record = cnnlib.result_record(model, net, history, resolution, lr=lr, batch_size=batch_size, num_epochs=1,
                                  seed=0, init=BOOK_INIT, amp=amp)
    record["run"] = {"script": "benchmarks/full_run.py", "workers": options["workers"]}
    return {"status": "done", "entry": {"precision": amp, "learned": learned(record["history"]), "record": record},
            "images": history.num_train}


def first_epoch(history: dict) -> dict:
    """训练记录中第 1 轮的部分：轮内读数与第 1 轮结束时的指标。"""
    return {"readouts": [r for r in history["readouts"] if r[0] <= 1],
            **{k: history[k][0] for k in ("train_loss", "train_acc", "test_acc", "epoch_time")},
            "device": history["device"], "precision": history["precision"]}


def run_init(job: dict, device: torch.device, options: dict) -> dict:
    """He 初始化训练第 1 轮（与书中设定的种子 0 同样的数据顺序），供 7.3 节与 Xavier 的第 1 轮比较。"""
    model = job["model"]
    profile = run_profile(model, options["profile"], num_epochs=1)
    resolution, lr, batch_size = book_setting(model, profile)
    net, history = train_book_model(model, profile, device, batch_size=batch_size, lr=lr, seed=0,
                                    init=cnnlib.kaiming_init, progress=False, readouts_per_epoch=READOUTS)
    _stop_alarm()
    if history.interrupted or not history.epochs:
        return {"status": "interrupted", "note": "1 轮没有训练完"}
    return {"status": "done", "kaiming": first_epoch(history.to_dict()), "images": history.num_train}


def card_used(device: torch.device) -> int | None:
    """显卡报告的已用内存（NVML，不建 CUDA 上下文）；读不到时 None。"""
    try:
        return int(torch.cuda.device_memory_used(device))
    except Exception:  # 没有 NVML、旧的 torch：这一项就不记
        return None


def memory_estimate(model: str, precision: str, batch_size: int, resolution: int) -> dict | None:
    """``cnnlib.memory`` 对训练时张量峰值的估计（没有这个模块时 None）。"""
    try:
        from cnnlib.memory import estimate_book_memory
    except ImportError:
        return None
    try:
        est = estimate_book_memory(model, precision, batch_size, resolution=resolution)
    except Exception as e:  # 估计出错不该连累测量
        return {"error": f"{type(e).__name__}: {e}"}
    return {**dataclasses.asdict(est), "tensors": est.tensors, "total": est.total}


def run_memory(job: dict, device: torch.device, options: dict) -> dict:
    """七个网络在书中批量下、照 train() 训练两步再评估一批时的内存峰值（GPU 上实测）与估计。

    独占 GPU 时运行，所以 ``mem_get_info`` 的读数里没有别的训练。CPU 上（演练）没有这些计数器，
    只用批量 2 走一遍同样的路径，记下估计。
    """
    cuda = device.type == "cuda"
    out = {"device": cnnlib.device_name(device), "torch": torch.__version__, "models": {},
           "dataset_bytes": DATASET_BYTES,
           "note": "每个网络训练两步：数据只取两批放在设备上；完整训练时全部数据另占 dataset_bytes"}
    if cuda:
        out["card_used_before_context"] = card_used(device)
        free, total = torch.cuda.mem_get_info(device)  # 这一步建好本进程的 CUDA 上下文
        out.update(card_total=total, card_used_with_context=total - free)
    for model in job["models"]:
        profile = run_profile(model, options["profile"])
        resolution, lr, batch_size = book_setting(model, profile)
        batch_size = batch_size if cuda else 2
        train_iter, test_iter = cnnlib.load_fashion_mnist(batch_size, resize=_resize(resolution),
                                                          num_train=2 * batch_size, num_test=batch_size,
                                                          device=device, seed=0)
        torch.manual_seed(0)
        net = cnnlib.model_spec(model).factory()
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        history = cnnlib.train(net, train_iter, test_iter, 1, lr, device, plot=False, progress=False)
        entry = {"batch_size": batch_size, "resolution": resolution, "precision": history.precision,
                 "steps": len(train_iter)}
        if cuda:
            free, total = torch.cuda.mem_get_info(device)
            entry.update(max_allocated=torch.cuda.max_memory_allocated(device),
                         max_reserved=torch.cuda.max_memory_reserved(device), card_used=total - free)
        entry["estimate"] = memory_estimate(model, history.precision, batch_size, resolution)
        out["models"][model] = entry
        del net, train_iter, test_iter
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return {"status": "done", "memory": out}


def run_bench(job: dict, device: torch.device, options: dict) -> dict:
    """bench_loop：同一进程里交替运行 cnnlib 循环与大纲循环（独占 GPU）。"""
    model = job["model"]
    if options["profile"] == "full":
        sizes = ["--num-train", "10240", "--num-test", "2560", "--rounds", "2"]
    else:  # 演练：几张图像、小的矩阵乘法，只走一遍代码
        sizes = ["--num-train", "16", "--num-test", "16", "--rounds", "1", "--peak-max", "256"]
    with tempfile.TemporaryDirectory() as tmp:
        js, buf = Path(tmp) / "bench.json", io.StringIO()
        with contextlib.redirect_stdout(buf):
            bench_loop.main([model, *sizes, "--json", str(js)])
        summary = json.loads(js.read_text(encoding="utf-8"))
    return {"status": "done", "text": buf.getvalue(), "summary": summary}


# ---------------------------------------------------------------------------
# 主进程：派发运行、写文件、打包
# ---------------------------------------------------------------------------

class Run:
    """主进程的记账：写出的文件、没做完的事、每个运行的起止时间。"""

    def __init__(self, args, device: torch.device) -> None:
        self.args, self.device = args, device
        self.t0, self.wall0 = time.monotonic(), time.time()
        self.written: list[Path] = []
        self.failures: list[str] = []
        self.schedule: list[dict] = []
        self.utilization: list[float] = []
        self.pending_init: dict[str, dict] = {}

    def left(self) -> float:
        return self.args.deadline - (time.monotonic() - self.t0) if self.args.deadline else math.inf

    def write_json(self, data: dict, path: Path) -> None:
        self.wrote(cnnlib.write_record(data, path))

    def wrote(self, path: Path, note: str = "写入") -> None:
        self.written.append(path)
        self._mirror(path)
        log(f"  {note} {path}")
        self.pack()

    # 写出的每个文件另存一份在检查点目录下（它被 git 忽略，同一台机器上的下一次调用还在）：下一次调用
    # 即使收到的是没有解包上次 tar 的工作树（已发布的文件被换回旧的），也不会把做完的运行再做一遍
    def _mirror_roots(self) -> tuple[tuple[Path, Path], ...]:
        written = self.args.checkpoint_dir / "written"
        return ((self.args.results_dir, written / "results"), (self.args.bench_dir, written / "bench"))

    def _mirror(self, path: Path) -> None:
        for base, mirror in self._mirror_roots():
            if path.resolve().is_relative_to(base.resolve()):
                copy = mirror / path.resolve().relative_to(base.resolve())
                copy.parent.mkdir(parents=True, exist_ok=True)
                tmp = copy.with_name(copy.name + ".tmp")
                shutil.copyfile(path, tmp)
                os.replace(tmp, copy)
                return

    def restore(self) -> None:
        """把上一次调用写出、工作树里却没有（或不同）的文件放回原处，并打进这次的 tar。"""
        for base, mirror in self._mirror_roots():
            if not mirror.is_dir():
                continue
            for copy in sorted(p for p in mirror.rglob("*") if p.is_file() and not p.name.endswith(".tmp")):
                target = base / copy.relative_to(mirror)
                if not target.exists() or target.read_bytes() != copy.read_bytes():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(copy, target)
                    self.wrote(target, "从上一次调用恢复")

    def pack(self) -> None:
        if not self.args.pack:
            return
        tmp = self.args.pack.with_name(self.args.pack.name + ".tmp")
        with tarfile.open(tmp, "w") as tar:
            for path in dict.fromkeys(self.written):
                path = path.resolve()
                tar.add(path, arcname=str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name)
        os.replace(tmp, self.args.pack)

    def sample_utilization(self) -> None:
        if self.device.type != "cuda" or self.utilization is None:
            return
        try:
            self.utilization.append(float(torch.cuda.utilization(self.device)))
        except Exception:  # 没有 NVML：不记 GPU 利用率
            self.utilization = None

    # 每种运行的结果怎样写进文件 -------------------------------------------------------
    def handle(self, job: dict, msg: dict) -> None:
        who = f"[进程 {msg['worker']}] {job['key']}"
        text = msg.get("log", "").rstrip()
        if text:
            log("\n".join(f"  {who}｜{line}" for line in text.splitlines()))
        took = msg["end"] - msg["start"]
        self.schedule.append({"key": job["key"], "kind": job["kind"], "model": job.get("model"),
                              "worker": msg["worker"],
                              "start": round(msg["start"] - self.wall0, 1), "end": round(msg["end"] - self.wall0, 1),
                              "status": msg["status"], "images": msg.get("images", 0),
                              "exclusive": job["exclusive"]})
        if msg["status"] == "failed":
            log(f"  {who} 出错（{took:.0f} 秒）：\n{msg['note']}")
            self.failures.append(f"{job['key']}（出错）")
            return
        if msg["status"] == "interrupted":
            kept = f"，检查点 {msg['checkpoint']} 留着，下次调用从那里继续" if msg.get("checkpoint") else ""
            log(f"  {who} 被时限打断（{msg.get('note', '')}{kept}），不写结果。")
            self.failures.append(f"{job['key']}（被时限打断）")
            return
        log(f"  {who} 完成，用时 {took:.1f} 秒")
        getattr(self, f"_{job['kind']}")(job, msg)

    def _train(self, job: dict, msg: dict) -> None:
        record, res = msg["record"], self.args.results_dir
        if not is_complete(record):  # 不会发生：工作进程只交回完整的运行；以防万一，绝不发布半途的结果
            self.failures.append(f"{job['key']}（记录不完整，没有发布）")
            return
        h = record["history"]
        log(f"  {job['key']}：最终测试准确率 {h['test_acc'][-1]:.3f}，最高 {max(h['test_acc']):.3f}；"
            f"各类别被预测的次数 {record['test_predictions']['counts']}")
        self.write_json(record, res / job["path"])
        if "features" in msg:
            path = res / f"alexnet-{self.args.profile}-features.pt"
            path.write_bytes(msg["features"])
            self.wrote(path)
        Path(msg["checkpoint"]).unlink(missing_ok=True)  # 结果已经发布，检查点不再需要
        self._merge_init()

    def _precision(self, job: dict, msg: dict) -> None:
        path = self.args.results_dir / "experiments" / f"precision-{self.args.profile}.json"
        data = read_json(path) or {}
        data.setdefault(job["model"], {})[job["amp"]] = msg["entry"]
        self.write_json(data, path)

    def _init(self, job: dict, msg: dict) -> None:
        self.pending_init[job["model"]] = msg["kaiming"]
        self._merge_init()

    def _merge_init(self) -> None:
        """He 的第 1 轮与书中设定种子 0（Xavier）的第 1 轮放在一起；Xavier 的结果还没有时等它。"""
        path = self.args.results_dir / "experiments" / f"init-{self.args.profile}.json"
        ready = {}
        for model, kaiming in self.pending_init.items():
            xavier = read_json(self.args.results_dir / run_file(model, 0, None, self.args.profile))
            if xavier is not None and is_complete(xavier):
                ready[model] = {"kaiming": kaiming, "xavier": first_epoch(xavier["history"])}
        if ready:
            data = read_json(path) or {}
            data.update(ready)
            for model in ready:
                del self.pending_init[model]
            self.write_json(data, path)

    def _memory(self, job: dict, msg: dict) -> None:
        path = self.args.results_dir / "experiments" / f"memory-{self.args.profile}.json"
        data = read_json(path) or {}
        models = {**data.get("models", {}), **msg["memory"]["models"]}
        self.write_json({**data, **msg["memory"], "models": models}, path)

    def _bench(self, job: dict, msg: dict) -> None:
        tag = bench_tag(self.device, self.args.profile)
        txt, js = self.args.bench_dir / f"{job['model']}-{tag}.txt", self.args.bench_dir / f"{job['model']}-{tag}.json"
        txt.write_text(msg["text"], encoding="utf-8")
        self.wrote(txt)
        self.write_json(msg["summary"], js)
        if job["model"] in SHOWN_SPEEDS and tag == "gpu":  # 7.1 节展示的测速结果随 cnnlib 发布
            self.write_json(msg["summary"], self.args.results_dir / "speed" / js.name)

    def throughput(self) -> dict | None:
        """训练与检查（不独占 GPU 的运行）合起来的吞吐量，与按单独运行的速度估计的依次用时相比。"""
        shared = [s for s in self.schedule if not s["exclusive"] and s["images"]]
        if not shared:
            return None
        wall = max(s["end"] for s in shared) - min(s["start"] for s in shared)
        images = sum(s["images"] for s in shared)
        alone = math.nan  # 只在 GPU 上与随包发布的（GPU 上单独运行的）速度比较
        if self.device.type == "cuda":
            alone = 0.0
            for s in shared:
                record = cnnlib.load_full_result(s["model"])
                eps = record["examples_per_sec"] if record else None
                alone += s["images"] / eps if eps else math.nan
        return {"workers": self.args.workers, "runs": len(shared), "wall_seconds": round(wall, 1),
                "images": images, "images_per_sec": images / wall if wall else None,
                "seconds_if_alone": round(alone, 1) if math.isfinite(alone) else None,
                "alone_from": "随包发布的单独运行（cnnlib/published/<模型>-full.json）的 examples_per_sec",
                "gpu_utilization_mean": (sum(self.utilization) / len(self.utilization)
                                         if self.utilization else None)}

    def write_schedule(self) -> None:
        """本次调用每个运行的起止时间与整体吞吐量，追加到 full-run-schedule-<设备>.json。"""
        if not self.schedule:
            return
        path = self.args.bench_dir / f"full-run-schedule-{bench_tag(self.device, self.args.profile)}.json"
        calls = (read_json(path) or {}).get("calls", [])
        calls.append({"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "device": cnnlib.device_name(self.device),
                      "torch": torch.__version__, "deadline": self.args.deadline,
                      "total_seconds": round(time.monotonic() - self.t0, 1), "throughput": self.throughput(),
                      "runs": self.schedule})
        self.write_json({"calls": calls}, path)


def dispatch(run: Run, jobs: list[dict], options: dict) -> None:
    """``options["workers"]`` 个工作进程，按顺序派发 ``jobs``；独占 GPU 的运行只在没有别的运行时开始。"""
    ctx = mp.get_context("spawn")  # 每个进程有自己干净的 CUDA 上下文
    outbox = ctx.Queue()
    inboxes, procs = [], []
    for i in range(options["workers"]):
        inboxes.append(ctx.Queue())
        # 不设 daemon：bench_loop 的大纲循环要在工作进程里再开 DataLoader 的子进程
        procs.append(ctx.Process(target=worker_main, args=(i, inboxes[i], outbox, options)))
        procs[i].start()
    idle, running = list(range(len(procs))), {}  # running：进程 -> 运行
    pending = list(jobs)
    stopping = False
    try:
        while pending or running:
            while idle and pending and not stopping:
                job = pending[0]
                if running and (job["exclusive"] or any(j["exclusive"] for j in running.values())):
                    break  # 独占 GPU 的运行等其他运行做完；它在跑时也不派别的
                need = max(MIN_SECONDS, job["estimate"] if job["exclusive"] else 0)
                if run.left() < need:
                    log(f"跳过 {job['key']}：距时限只剩 {run.left():.0f} 秒（至少要 {need:.0f} 秒）。再运行同一条命令可以补上。")
                    run.failures.append(f"{job['key']}（时间不够）")
                    pending.pop(0)
                    continue
                pending.pop(0)
                worker = idle.pop(0)
                running[worker] = job
                inboxes[worker].put(job)
                log(f"\n== 开始 {job['key']}（进程 {worker}，距时限 {run.left():.0f} 秒，同时在跑 {len(running)} 个）")
            if not running:
                break
            try:
                msg = outbox.get(timeout=2.0)
            except queue.Empty:
                run.sample_utilization()
                for worker, job in list(running.items()):
                    if not procs[worker].is_alive():  # 进程死了（例如被系统杀掉）：记下，不再用它
                        log(f"  进程 {worker} 意外退出（状态 {procs[worker].exitcode}），{job['key']} 没有完成")
                        run.failures.append(f"{job['key']}（进程退出）")
                        del running[worker]
                continue
            job = running.pop(msg["worker"])
            idle.append(msg["worker"])
            run.handle(job, msg)
    except KeyboardInterrupt:
        log("主进程被中断：不再派发新的运行，等正在跑的几个收尾。")
        stopping = True
        deadline = time.monotonic() + 30
        while running and time.monotonic() < deadline and any(procs[w].is_alive() for w in running):
            try:
                msg = outbox.get(timeout=1.0)
            except (queue.Empty, KeyboardInterrupt):
                continue
            run.handle(running.pop(msg["worker"]), msg)
        run.failures.append("中断")
    finally:
        for box in inboxes:
            box.put(None)
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=("full", "smoke"), default="full",
                        help="full：书中的完整设定；smoke：CPU 上的演练（每次运行 16/16 张图像、1 轮）")
    parser.add_argument("--data", type=Path, default=None, help="Fashion-MNIST 的四个 .gz 所在目录")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "cnnlib" / "published",
                        help="训练结果、特征图与几项实验写到这里（默认是随 cnnlib 发布的目录）")
    parser.add_argument("--bench-dir", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--checkpoint-dir", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--workers", type=int, default=None,
                        help=f"同时训练的工作进程数（默认 GPU 上 {WORKERS['cuda']} 个，CPU 上 {WORKERS['cpu']} 个）")
    parser.add_argument("--deadline", type=float, default=None,
                        help="从启动起多少秒后停下：正在训练的运行停在检查点里，其余的留给下一次")
    parser.add_argument("--pack", type=Path, default=None, help="每写出一个文件就把本次写出的全部文件打成这个 tar")
    parser.add_argument("--force", action="store_true", help="已有完整结果也重新做（会覆盖已发布的结果）")
    parser.add_argument("--plan", action="store_true", help="只打印待做的运行与估计的用时，不训练")
    args = parser.parse_args(argv)
    if args.deadline is not None and args.deadline <= MIN_SECONDS:
        parser.error(f"--deadline {args.deadline:g} 太短：至少要 {MIN_SECONDS} 秒以上。")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers {args.workers} 不可用：至少要 1 个工作进程。")
    if args.data is not None:
        os.environ["CNNLIB_DATA"] = str(args.data.resolve())  # 工作进程与 bench_loop 也从这里读数据
    device = cnnlib.try_gpu()
    if args.plan:
        jobs, done = plan_jobs(args, device)
        args.workers = args.workers or WORKERS.get(device.type, 1)
        log(environment(device))
        log(f"已经完整、跳过 {len(done)} 项：{'、'.join(done) or '没有'}")
        print_plan(jobs, args.workers)
        return 0
    cnnlib.read_fashion_mnist(download=False)  # 找不到数据时立即给出清楚的错误，而不是训练到一半
    if args.profile == "full" and device.type == "cpu":
        log("提示：没有 GPU。full 配置在 CPU 上要训练几十个小时；演练请用 --profile smoke。")
    for d in (args.results_dir / "experiments", args.results_dir / "seeds", args.bench_dir, args.checkpoint_dir):
        d.mkdir(parents=True, exist_ok=True)
    run = Run(args, device)
    log(environment(device))
    if not args.force:
        run.restore()
    jobs, done = plan_jobs(args, device)
    shared = sum(not j["exclusive"] for j in jobs)
    args.workers = max(1, min(args.workers or WORKERS.get(device.type, 1), shared or 1))
    for key in done:
        log(f"已有完整结果，跳过 {key}")
    if not jobs:
        log("全部已经完成。")
        run.pack()  # 空的 tar：调用者照样可以解包
        return 0
    log(f"待做 {len(jobs)} 项，{args.workers} 个工作进程" + (f"，时限 {args.deadline:g} 秒" if args.deadline else ""))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # timeout 发来的 SIGTERM 也走收尾的路
    threads = None if os.environ.get("OMP_NUM_THREADS") else max(1, (os.cpu_count() or 1) // args.workers)
    options = {"profile": args.profile, "checkpoint_dir": str(args.checkpoint_dir), "workers": args.workers,
               "threads": threads, "deadline_at": run.wall0 + args.deadline if args.deadline else None}
    if args.force:
        for job in jobs:
            (args.checkpoint_dir / f"{job['key']}.pt").unlink(missing_ok=True)
    try:
        dispatch(run, jobs, options)
    finally:
        if run.pending_init:
            run.failures.append("初始化对照（书中设定种子 0 的结果还没有）")
        run.write_schedule()
        run.pack()
    stats = run.throughput()
    if stats:
        alone = (f"；按单独运行的速度依次做约 {stats['seconds_if_alone']:.0f} 秒"
                 if stats["seconds_if_alone"] else "")
        util = (f"；GPU 平均利用率 {stats['gpu_utilization_mean']:.0f}%"
                if stats["gpu_utilization_mean"] is not None else "")
        log(f"\n训练与检查：{stats['runs']} 个运行、{args.workers} 个进程同时，用时 {stats['wall_seconds']:.0f} 秒，"
            f"合计 {stats['images_per_sec']:,.0f} 张/秒{alone}{util}")
    log(f"总用时 {time.monotonic() - run.t0:.1f} 秒；写出 {len(set(run.written))} 个文件。")
    if run.failures:
        log("没有完成：" + "；".join(run.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
