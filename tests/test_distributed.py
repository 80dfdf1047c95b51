"""torchrun 的两个 gloo 进程与一个进程（相同的全局批量、每个样本相同的暂退法掩码）训练后参数相同；
各进程的掩码不同；DDP 下续训也与不中断时相同；第一个 NaN 批取各进程中最早的；测试集一张不少；
train() 不改调用者的迭代器；命令行能写出结果文件。

这里说的“相同”是：K 个进程各取批量 B 与一个进程取批量 K×B，每一步的样本、梯度、每个样本的掩码都相同，
参数只差浮点求和顺序带来的舍入（``rtol=1e-4``）。掩码抽自各进程自己的随机数流，一个进程无法自己抽出
同样的掩码，所以单进程的对照把两个 DDP 进程记下的掩码按样本对回去“回放”。

每次 torchrun 都用 ``--standalone``：rendezvous 在 localhost 上挑一个空闲端口，不用固定的 ``--master_port``，
所以同时运行的几组测试（或别的 torchrun）不会抢同一个端口。torchrun 在 2 核机器上启动很慢，所以一个脚本
在一次启动里检查几件事。
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import cnnlib
from cnnlib.data import FashionMNISTIter

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CNNLIB_PROGRESS": "0", "CNNLIB_AMP": "fp32"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

# 等价性的网络不含批量规范化：DDP 下它的统计量按进程各自计算，与单进程本来就不同（续训的网络含它）。
# 用光滑的 tanh 与平均汇聚：ReLU 与最大汇聚的折点会把 1e-8 量级的求和顺序差异在几十步内放大到 1e-3；
# tanh 的输出也不会恰好是 0，所以暂退法的输出里的 0 就是掩码。
SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from torch import nn
    import cnnlib
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    out = sys.argv[1]
    if world > 1:
        torch.distributed.init_process_group("gloo")
    global_batch = 64
    tr, te = cnnlib.load_fashion_mnist(global_batch // world, num_train=1024, num_test=255,
                                       device="cpu", download=False)

    class Replay(nn.Module):
        # 单进程的对照：按顺序回放 DDP 进程记下的掩码（与 nn.Dropout 的算法相同：x * (掩码 / (1 - p))）
        def __init__(self, masks):
            super().__init__()
            self.masks = masks
        def forward(self, x):
            return x * (self.masks.pop(0).to(x.dtype) / 0.5) if self.training else x

    def dropout_net(dropout):
        return nn.Sequential(nn.Conv2d(1, 8, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(), dropout,
                             nn.Linear(8 * 12 * 12, 10))

    # 一、等价性：DDP 记下每一步的掩码；单进程把两个进程的掩码按样本交错回放（第 i 个样本在 i % 2 号进程）
    torch.manual_seed(0)
    if world > 1:
        net, masks = dropout_net(nn.Dropout(0.5)), []
        net[4].register_forward_hook(lambda m, i, o: masks.append(o != 0) if m.training else None)
        if rank == 1:  # 模拟两个进程的 CPU 实测选了不同的精度：train() 应统一用 0 号进程的（fp32）
            os.environ["CNNLIB_AMP"] = "bf16"
    else:
        m0, m1 = (torch.load(f"{sys.argv[2]}.rank{r}", weights_only=True)["masks"] for r in (0, 1))
        masks = [torch.stack([a, b], dim=1).reshape(-1, a.shape[1]) for a, b in zip(m0, m1)]
        net = dropout_net(Replay(masks))  # 回放时逐个取出：训练完应正好取空
    h = cnnlib.train(net, tr, te, 3, 0.1, "cpu", plot=False)
    # 调用者的迭代器在 train() 之后仍是完整的一份（train 只分片它们的副本）
    callers = {name: [it.rank, it.world_size, it.num_examples, len(it)] for name, it in (("train", tr), ("test", te))}
    result = {"state": net.state_dict(), "masks": masks, "test_acc": h.test_acc, "loss": h.train_loss,
              "precision": h.precision, "num_train": h.num_train, "num_test": h.num_test, "callers": callers}

    if world > 1:
        # 二、DDP 下续训：3 轮不中断 = 2 轮 + 续训；网络有暂退法与批量规范化
        def bn_net():
            return nn.Sequential(nn.Conv2d(1, 4, 5), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                                 nn.Linear(4 * 6 * 6, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))
        torch.manual_seed(0)
        straight = bn_net()
        cnnlib.train(straight, tr, te, 3, 0.5, "cpu", plot=False)
        torch.manual_seed(0)
        cnnlib.train(bn_net(), tr, te, 2, 0.5, "cpu", checkpoint=out + ".ckpt", plot=False)
        torch.manual_seed(1234 + rank)  # 像新的进程：此刻的随机数状态与第一次运行无关
        resumed = bn_net()
        cnnlib.train(resumed, tr, te, 3, 0.5, "cpu", checkpoint=out + ".ckpt", plot=False)
        result.update(straight=straight.state_dict(), resumed=resumed.state_dict())

        # 三、只有 1 号进程在第 3 批看到 NaN；0 号进程在第 4 批才变成 NaN（平均后的梯度）
        class NaNOnRank1(cnnlib.FashionMNISTIter):
            def __iter__(self):
                for i, (X, y) in enumerate(super().__iter__(), 1):
                    yield (X.fill_(float("nan")) if (self.rank, i) == (1, 3) else X), y
        tr.__class__ = NaNOnRank1
        torch.manual_seed(0)
        try:
            cnnlib.train(dropout_net(nn.Dropout(0.5)), tr, te, 1, 0.1, "cpu", plot=False)
        except cnnlib.TrainingDivergedError as e:
            result["diverged"] = [e.epoch, e.batch]
        torch.distributed.destroy_process_group()
    torch.save(result, f"{out}.rank{rank}")
""")


def run(cmd, **kw):
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory) -> tuple[dict, dict, dict, subprocess.CompletedProcess]:
    """同一脚本：torchrun 的两个 gloo 进程，再是回放它们的掩码的一个进程。
    返回（单进程，0 号，1 号，torchrun 的输出）。"""
    tmp = tmp_path_factory.mktemp("ddp")
    script = tmp / "ddp.py"
    script.write_text(SCRIPT)
    double = run([*TORCHRUN, str(script), str(tmp / "ddp.pt")])
    assert double.returncode == 0, double.stderr[-3000:]
    single = run([sys.executable, str(script), str(tmp / "single.pt"), str(tmp / "ddp.pt")])
    assert single.returncode == 0, single.stderr[-3000:]
    load = lambda name: torch.load(tmp / name, weights_only=True)  # noqa: E731
    return load("single.pt.rank0"), load("ddp.pt.rank0"), load("ddp.pt.rank1"), double


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_two_gloo_processes_match_one_process_with_the_same_masks(ddp_runs):
    a, b, b1, double = ddp_runs
    for k in a["state"]:
        torch.testing.assert_close(b["state"][k], a["state"][k], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b["state"][k], b1["state"][k], rtol=0, atol=0)  # 两个进程的参数逐位相同
    assert a["test_acc"] == pytest.approx(b["test_acc"], abs=1e-3)   # 全部测试样本上汇总的准确率
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)           # 各进程的损失已经求和汇总
    # 各进程之和；255 张测试图像除不尽 2，也一张不少
    assert (b["num_train"], b["num_test"]) == (a["num_train"], a["num_test"]) == (1024, 255)
    assert double.stdout.count("test acc") == 4, double.stdout   # 0 号进程完成的 4 次 train() 各打印一次
    assert a["precision"] == b["precision"] == b1["precision"] == "fp32", "各进程应使用 0 号进程选的精度"
    assert a["masks"] == [], "单进程的对照没有用完 DDP 记下的掩码"  # 回放列表被逐步取空


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_each_process_draws_its_own_dropout_masks(ddp_runs):
    _, r0, r1, _ = ddp_runs
    assert len(r0["masks"]) == len(r1["masks"]) == 3 * 16  # 3 轮 × 每轮 16 步
    for step, (m0, m1) in enumerate(zip(r0["masks"], r1["masks"])):
        assert m0.shape == m1.shape == (32, 8 * 12 * 12)
        assert 0.4 < m0.float().mean() < 0.6, "暂退法没有起作用（p=0.5）"
        assert not torch.equal(m0, m1), f"第 {step + 1} 步两个进程抽出了相同的掩码"


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_resume_under_ddp_equals_an_uninterrupted_run(ddp_runs):
    r0, r1 = ddp_runs[1:3]
    for k, v in r0["straight"].items():  # 评估前广播了 0 号进程的移动统计量：两个进程连缓冲区都逐位相同
        torch.testing.assert_close(r1["straight"][k], v, rtol=0, atol=0, msg=lambda m: f"两个进程的 {k} 不同：{m}")
    for rank, r in enumerate((r0, r1)):
        for k, v in r["straight"].items():
            torch.testing.assert_close(r["resumed"][k], v, rtol=0, atol=1e-6,
                                       msg=lambda m: f"{rank} 号进程续训后的 {k} 与不中断时不同：{m}")


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_first_nan_batch_is_the_earliest_over_processes(ddp_runs):
    # 1 号进程第 3 批、0 号进程第 4 批：报第 3 批（取最大值会报第 4 批）
    assert ddp_runs[1]["diverged"] == ddp_runs[2]["diverged"] == [1, 3]


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_train_does_not_shard_the_callers_iterators(ddp_runs):
    _, r0, r1, _ = ddp_runs
    for rank, r in enumerate((r0, r1)):
        # [rank, world_size, num_examples, 批数]：每个进程的批量是 32，完整的一份是 1024 张、255 张
        assert r["callers"] == {"train": [0, 1, 1024, 32], "test": [0, 1, 255, 8]}, (
            f"{rank} 号进程的迭代器在 train() 之后被改动了：{r['callers']}")


def test_test_shards_cover_every_test_image():
    """10,000 张测试图像分给 3 个进程：合起来正好每张一次；训练的分片各进程一样多（舍去 1 张）。"""
    n = 10_000
    it = FashionMNISTIter(torch.zeros(n, 1, 2, 2, dtype=torch.uint8), torch.arange(n), 1000, False, None, "cpu")
    test = [it.shard(r, 3, even=False) for r in range(3)]
    assert [s.num_examples for s in test] == [3334, 3333, 3333]
    seen = torch.cat([y for s in test for _, y in s])
    assert torch.equal(seen.sort().values, torch.arange(n))
    train = [it.shard(r, 3) for r in range(3)]
    assert [s.num_examples for s in train] == [3333] * 3 and len({len(s) for s in train}) == 1
    used = torch.cat([y for s in train for _, y in s])
    assert len(used) == len(set(used.tolist())) == 9999


@pytest.mark.slow
@pytest.mark.usefixtures("fashion_mnist")
def test_cli_writes_results_under_torchrun(tmp_path):
    out = tmp_path / "lenet.json"
    r = run([*TORCHRUN, "-m", "cnnlib", "train", "lenet_bn", "--profile", "smoke", "--out", str(out)])
    assert r.returncode == 0, r.stderr[-3000:]
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["model"] == "lenet_bn" and record["settings"]["world_size"] == 2
    assert record["history"]["profile"] == "smoke" and record["history"]["num_train"] == 256
    assert record["params"] == cnnlib.model_spec("lenet_bn").params and len(record["history"]["test_acc"]) == 1


def test_cli_rejects_indivisible_batch():
    """全局批量除不尽进程数：在启动进程组之前就是一行 error: 与状态 2。

    这个检查只读 torchrun 设的环境变量 WORLD_SIZE/RANK，所以直接设它们运行一个进程，就能看到这个进程自己的
    退出状态（torchrun 只把它写进给人看的报告里）。
    """
    env = {**ENV, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    r = subprocess.run([sys.executable, "-m", "cnnlib", "train", "lenet_bn", "--profile", "smoke",
                        "--batch-size", "255"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, f"退出状态 {r.returncode}：{r.stderr[-3000:]}"
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("python -m cnnlib train: error:") and "255" in errors[0], r.stderr
    assert "Traceback" not in r.stderr, "ValueError 应变成一行 error:，而不是 traceback"
