"""cnnlib 的训练循环与大纲训练循环的并排测速。

同一个进程里交替运行两种循环，模型、批量大小、数据子集、随机种子与设备都相同：

(a) cnnlib.train：整个数据集常驻设备、在设备上整批缩放、每轮只同步几次，
    混合精度与 channels_last 按设备的默认值；
(b) 大纲（d2l train_ch6）循环的忠实重写：torchvision 的 PIL Resize + ToTensor 逐张处理、
    DataLoader 开 4 个工作进程、每批两次 float() 同步、float32，``cudnn.benchmark`` 关着（PyTorch 的默认，
    d2l 不改它；cnnlib.train 会打开它，所以每轮大纲循环之前显式关掉，之后恢复）。

examples/sec 按每轮的总墙钟时间计算（含等数据与评估）。同时在同一次运行中测出设备的
矩阵乘法峰值（float32 与 bf16），给出达到的 GFLOP/s 占峰值的比例。

    python benchmarks/bench_loop.py alexnet            # 224×224，批量 128
    python benchmarks/bench_loop.py resnet18 --rounds 3
    python benchmarks/bench_loop.py alexnet --ablate   # 逐项关掉 cnnlib 的加速选项
"""

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlib
from cnnlib.train import cudnn_benchmark


METHOD = 2  # 测法的版本：2 = 大纲循环关掉 cudnn.benchmark（1 的大纲循环沿用了 cnnlib 打开的 benchmark）


def matmul_peak(device: torch.device, dtype: torch.dtype, repeats: int = 5, largest: int | None = None) -> float:
    """方阵乘法能达到的最高 GFLOP/s（各尺寸取几次中最快的一次）。

    尺寸从 512 翻倍到 ``largest``（默认 4096，GPU 上 8192）；一次乘法超过 0.2 秒就不再加大，
    免得在没有 bf16 指令的 CPU 上（那里 bf16 乘法慢上百倍）一等就是几分钟。
    """
    best = 0.0
    largest = largest or (8192 if device.type == "cuda" else 4096)
    n = min(512, largest)
    while n <= largest:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        fastest = float("inf")
        for _ in range(repeats + 1):
            _sync(device)
            t = time.perf_counter()
            a @ b
            _sync(device)
            fastest = min(fastest, time.perf_counter() - t)
        best = max(best, 2 * n ** 3 / fastest / 1e9)
        if fastest > 0.2:
            break
        n *= 2
    return best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_flops_per_image(factory, resolution: int) -> tuple[float, float]:
    """每张图像一次训练步（前向 + 反向）与一次前向的 FLOPs（前向即 :func:`cnnlib.count_flops`）。"""
    net = factory()
    X = torch.zeros(2, 1, resolution, resolution)
    with FlopCounterMode(display=False) as total:  # 训练模式下前向加反向，批量 2
        nn.functional.cross_entropy(net(X), torch.zeros(2, dtype=torch.long)).backward()
    return total.get_total_flops() / 2, float(cnnlib.count_flops(net, resolution))


class PILFashionMNIST(torch.utils.data.Dataset):
    """与 torchvision.datasets.FashionMNIST + transforms.Resize + ToTensor 相同的逐张处理。"""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, resize: int | None) -> None:
        from torchvision import transforms
        self.images = images.squeeze(1).numpy()
        self.labels = labels.tolist()
        steps = [transforms.Resize(resize)] if resize else []
        self.transform = transforms.Compose(steps + [transforms.ToTensor()])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i], mode="L")), self.labels[i]


def syllabus_epoch(net, train_loader, test_loader, optimizer, device) -> tuple[float, float]:
    """大纲 train_ch6 的一轮：每批两次 float() 与主机同步，然后逐批同步地评估。"""
    loss = nn.CrossEntropyLoss()
    net.train()
    total = [0.0, 0.0, 0]
    for X, y in train_loader:
        optimizer.zero_grad()
        X, y = X.to(device), y.to(device)
        y_hat = net(X)
        l = loss(y_hat, y)
        l.backward()
        optimizer.step()
        with torch.no_grad():
            total[0] += float(l * X.shape[0])                          # 同步 1
            total[1] += float((y_hat.argmax(dim=1) == y).sum())        # 同步 2
            total[2] += X.shape[0]
    net.eval()
    correct = n = 0
    with torch.no_grad():
        for X, y in test_loader:
            X, y = X.to(device), y.to(device)
            correct += float((net(X).argmax(dim=1) == y).sum())
            n += y.numel()
    return total[1] / total[2], correct / n


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=list(cnnlib.SPECS))
    parser.add_argument("--num-train", type=int, default=1024)
    parser.add_argument("--num-test", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2, help="每种循环各跑几轮（交替进行）")
    parser.add_argument("--batch-size", type=int, default=None, help="默认书中的批量")
    parser.add_argument("--ablate", action="store_true", help="另外逐项关掉 cnnlib 的加速选项测速")
    parser.add_argument("--json", type=Path, default=None, help="把结果写成 JSON")
    parser.add_argument("--peak-max", type=int, default=None,
                        help="测矩阵乘法峰值的最大方阵边长（默认 CPU 4096、GPU 8192；演练时用小的）")
    args = parser.parse_args(argv)

    spec = cnnlib.model_spec(args.model)
    factory, resolution, lr = spec.factory, spec.resolution, spec.lr
    batch_size = args.batch_size or spec.batch_size
    resize = spec.resize
    device = cnnlib.try_gpu()
    torch.manual_seed(0)

    data = cnnlib.read_fashion_mnist()
    train_idx = cnnlib.balanced_subset(data["train_labels"], args.num_train)
    test_idx = cnnlib.balanced_subset(data["test_labels"], args.num_test)
    train_iter, test_iter = cnnlib.load_fashion_mnist(batch_size, resize=resize, num_train=args.num_train,
                                                      num_test=args.num_test, device=device)
    loader = torch.utils.data.DataLoader
    # 大纲在 2 核机器上也开 4 个工作进程；PyTorch 会为此警告，这正是被重现的设置，不必每次打印
    warnings.filterwarnings("ignore", message="This DataLoader will create")
    train_loader = loader(PILFashionMNIST(data["train_images"][train_idx], data["train_labels"][train_idx],
                                          resize), batch_size, shuffle=True, num_workers=4)
    test_loader = loader(PILFashionMNIST(data["test_images"][test_idx], data["test_labels"][test_idx],
                                         resize), batch_size, shuffle=False, num_workers=4)

    train_flops, fwd_flops = train_flops_per_image(factory, resolution)
    work = args.num_train * train_flops + args.num_test * fwd_flops  # 一轮的 FLOPs
    peak = {"fp32": matmul_peak(device, torch.float32, largest=args.peak_max),
            "bf16": matmul_peak(device, torch.bfloat16, largest=args.peak_max)}
    print(f"设备 {cnnlib.device_name(device)}；{args.model} @ {resolution}×{resolution}，批量 {batch_size}，"
          f"训练 {args.num_train} 张 / 测试 {args.num_test} 张，每种循环 {args.rounds} 轮，交替运行")
    largest = args.peak_max or (8192 if device.type == "cuda" else 4096)
    print(f"矩阵乘法峰值（本次实测，方阵最大 {largest}）：fp32 {peak['fp32']:.0f} GFLOP/s，bf16 {peak['bf16']:.0f} GFLOP/s")
    print(f"每张图像：训练步 {train_flops / 1e9:.3f} GFLOPs，前向 {fwd_flops / 1e9:.3f} GFLOPs")

    variants = {"cnnlib": dict(amp="auto", channels_last="auto", compile=False)}
    if args.ablate:
        variants.update({
            "cnnlib, bf16": dict(amp="bf16", channels_last="auto", compile=False),
            "cnnlib, 无 channels_last": dict(amp="auto", channels_last=False, compile=False),
            "cnnlib, torch.compile": dict(amp="auto", channels_last="auto", compile=True),
        })
    nets = {name: factory() for name in [*variants, "syllabus"]}
    for net in nets.values():
        net.apply(cnnlib.xavier_init)
    optim = {name: torch.optim.SGD(net.parameters(), lr=lr) for name, net in nets.items()}
    speeds: dict[str, list[float]] = {name: [] for name in nets}
    for r in range(args.rounds + 1):  # 第 0 轮是预热（工作进程、cuDNN 选算法、编译），不计
        line = []
        for name, net in nets.items():
            t = time.perf_counter()
            if name == "syllabus":
                net.to(device)
                with cudnn_benchmark(False):  # d2l 的默认；cnnlib.train 在 GPU 上打开它
                    syllabus_epoch(net, train_loader, test_loader, optim[name], device)
            else:
                with contextlib.redirect_stdout(io.StringIO()):  # 只要速度，不要每轮的总结行
                    cnnlib.train(net, train_iter, test_iter, 1, lr, device, init=None,
                                 optimizer=optim[name], plot=False, progress=False, **variants[name])
            _sync(device)
            speed = args.num_train / (time.perf_counter() - t)
            if r:
                speeds[name].append(speed)
            line.append(f"{name} {speed:.1f}")
        print(("预热" if r == 0 else f"第 {r} 轮") + "：" + " | ".join(line) + " examples/sec", flush=True)

    amp, cl = cnnlib.resolve_speed_options(device)
    print(f"\ncnnlib 默认设置：amp={amp}，channels_last={cl}")
    summary = {"method": METHOD, "syllabus_cudnn_benchmark": False,  # 见 cudnn_benchmark(False)
               "device": cnnlib.device_name(device), "model": args.model, "resolution": resolution,
               "batch_size": batch_size, "num_train": args.num_train, "num_test": args.num_test,
               "peak_gflops": peak, "loops": {}}
    for name, values in speeds.items():
        med = statistics.median(values)
        gflops = med / args.num_train * work / 1e9
        summary["loops"][name] = {"examples_per_sec": med, "gflops": gflops}
        print(f"{name:<24} {med:8.1f} examples/sec  {gflops:6.0f} GFLOP/s  "
              f"= {gflops / peak['fp32']:.0%} fp32 峰值，{gflops / peak['bf16']:.0%} bf16 峰值")
    ratio = statistics.median(speeds["cnnlib"]) / statistics.median(speeds["syllabus"])
    summary["ratio"] = ratio
    print(f"(a)/(b) = cnnlib / 大纲循环 = {ratio:.2f}×")
    if args.json:
        args.json.write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
