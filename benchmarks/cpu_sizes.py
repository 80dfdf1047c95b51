"""cpu 配置是怎样选的：在本机 CPU 上用 float32 按某个设定训练一个网络，看它学到了多少、用了多久。

``cnnlib.SPECS`` 里每个模型的 ``cpu``（输入分辨率、批量、训练样本数、轮数）就是用这个脚本试出来的：
目标是在 2 核 CPU 上训练约五分钟以内，网络明显离开起步的平台期（不带批量规范化的四个网络测试准确率
至少 0.5，带批量规范化的三个至少 0.75）。所需的更新次数先从完整设定的轮内读数估计
（``cnnlib/published/*-full.json`` 的 ``readouts``），再在这里实测。试过的设定与结果记在
``benchmarks/results/cpu-sizes.md``。

    python benchmarks/cpu_sizes.py alexnet                      # 登记表的 cpu 配置
    python benchmarks/cpu_sizes.py nin --resolution 96 --batch-size 32 --num-train 20000 --epochs 3 --init he
    python benchmarks/cpu_sizes.py --all --json results.jsonl   # 七个网络依次跑

每行输出：设定、参数更新次数、离开平台期的位置（训练损失第一次比 ln 10 低 0.1 的读数）、逐轮测试准确率、
训练墙钟时间（含评估）与 CPU。机器上有别的负载时时间会偏长，准确率不受影响。
"""

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # 不安装也能从仓库导入 cnnlib

import cnnlib  # noqa: E402

PLATEAU_EXIT = 0.1  # 训练损失比 ln 10 低这么多，就算离开了起步的平台期


def plateau_exit(history: cnnlib.History, updates_per_epoch: int) -> int | None:
    """第一次明显离开平台期时已做的参数更新次数；一直没离开时为 None。"""
    for where, loss, _ in history.readouts:
        if loss < math.log(10) - PLATEAU_EXIT:
            return round(where * updates_per_epoch)
    return None


INITS = {"xavier": cnnlib.xavier_init, "he": cnnlib.kaiming_init}


def run(model: str, overrides: dict, seed: int = 0, init: str = "xavier") -> dict:
    profile = cnnlib.get_profile(model, name="cpu")
    profile = dataclasses.replace(profile, **{k: v for k, v in overrides.items() if v is not None})
    train_iter, test_iter = cnnlib.load_fashion_mnist(profile.batch_size, resize=profile.resize,
                                                      profile=profile, device="cpu", seed=seed)
    torch.manual_seed(seed)
    net = cnnlib.model_spec(model).factory()
    history = cnnlib.train(net, train_iter, test_iter, profile.num_epochs, profile.lr, "cpu", amp=None,
                           init=INITS[init], plot=False, progress=False, readouts_per_epoch=8)
    updates = len(train_iter) * history.epochs
    return {"model": model, "resolution": profile.resolution, "batch_size": profile.batch_size,
            "lr": profile.lr, "num_train": profile.num_train, "num_test": profile.num_test,
            "epochs": history.epochs, "updates": updates, "seed": seed, "init": init,
            "plateau_exit": plateau_exit(history, len(train_iter)),
            "test_acc": history.test_acc, "train_loss": history.train_loss,
            "wall_time": history.wall_time, "device": history.device, "threads": torch.get_num_threads()}


def line(r: dict) -> str:
    left = "未离开" if r["plateau_exit"] is None else f"第 {r['plateau_exit']} 次"
    return (f"{r['model']:<10} {r['resolution']}×{r['resolution']} 批量 {r['batch_size']:<3} lr {r['lr']:g} {r['init']} "
            f"{r['num_train']:>6,} 张 × {r['epochs']} 轮 = {r['updates']:>5,} 次更新；离开平台期：{left}；"
            f"测试准确率 {' → '.join(f'{a:.3f}' for a in r['test_acc'])}；{r['wall_time']:.0f} 秒；{r['device']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="模型名，例如 alexnet nin")
    parser.add_argument("--all", action="store_true", help="登记表里的七个网络")
    parser.add_argument("--resolution", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--num-train", type=int)
    parser.add_argument("--num-test", type=int)
    parser.add_argument("--epochs", type=int, dest="num_epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", choices=list(INITS), default="xavier", help="初始化（默认 Xavier，书中的设定）")
    parser.add_argument("--json", type=Path, help="每个结果追加一行 JSON 到这个文件")
    args = parser.parse_args(argv)
    models = list(cnnlib.SPECS) if args.all else args.models
    unknown = [m for m in models if m not in cnnlib.SPECS]
    if not models or unknown:
        parser.error(f"请给出模型名（{'、'.join(cnnlib.SPECS)}）或 --all" + (f"；不认识 {unknown}" if unknown else ""))
    os.environ.setdefault("CNNLIB_PROGRESS", "0")
    overrides = {k: getattr(args, k) for k in ("resolution", "batch_size", "num_train", "num_test", "num_epochs")}
    for model in models:
        r = run(model, overrides, args.seed, args.init)
        print(line(r), flush=True)
        if args.json:
            with args.json.open("a", encoding="utf-8") as f:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
