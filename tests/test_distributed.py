"""torchrun 的两个 gloo 进程与一个进程（相同的全局批量）训练后参数相同；train() 不改调用者的迭代器；
命令行能写出结果文件。

每次 torchrun 都用 ``--standalone``：rendezvous 在 localhost 上挑一个空闲端口，不用固定的 ``--master_port``，
所以同时运行的几组测试（或别的 torchrun）不会抢同一个端口。
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

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fashion_mnist")]

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CNNLIB_PROGRESS": "0", "CNNLIB_AMP": "fp32"}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

# 不含批量规范化的小网络：DDP 下批量规范化的统计量按进程各自计算，与单进程本来就不同。
# 用光滑的 tanh 与平均汇聚：ReLU 与最大汇聚的折点会把 1e-8 量级的求和顺序差异在几十步内放大到 1e-3。
SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from torch import nn
    import cnnlib
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("gloo")
    global_batch = 64
    tr, te = cnnlib.load_fashion_mnist(global_batch // world, num_train=1024, num_test=256,
                                       device="cpu", download=False)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(8 * 12 * 12, 10))
    if rank == 1:  # 模拟两个进程的 CPU 实测选了不同的精度：train() 应统一用 0 号进程的（fp32）
        os.environ["CNNLIB_AMP"] = "bf16"
    h = cnnlib.train(net, tr, te, 2, 0.1, "cpu", plot=False)
    # 调用者的迭代器在 train() 之后仍是完整的一份（train 只分片它们的副本）
    callers = {name: [it.rank, it.world_size, it.num_examples, len(it)] for name, it in (("train", tr), ("test", te))}
    torch.save({"state": net.state_dict(), "test_acc": h.test_acc, "loss": h.train_loss, "precision": h.precision,
                "num_train": h.num_train, "num_test": h.num_test, "callers": callers},
               f"{sys.argv[1]}.rank{rank}")
    if world > 1:
        torch.distributed.destroy_process_group()
""")


def run(cmd, **kw):
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory) -> tuple[dict, dict, dict, subprocess.CompletedProcess]:
    """同一脚本：一个进程，与 torchrun 的两个 gloo 进程。返回（单进程，0 号，1 号，torchrun 的输出）。"""
    tmp = tmp_path_factory.mktemp("ddp")
    script = tmp / "ddp.py"
    script.write_text(SCRIPT)
    single = run([sys.executable, str(script), str(tmp / "single.pt")])
    assert single.returncode == 0, single.stderr[-3000:]
    double = run([*TORCHRUN, str(script), str(tmp / "ddp.pt")])
    assert double.returncode == 0, double.stderr[-3000:]
    load = lambda name: torch.load(tmp / name, weights_only=True)  # noqa: E731
    return load("single.pt.rank0"), load("ddp.pt.rank0"), load("ddp.pt.rank1"), double


def test_two_gloo_processes_match_one_process(ddp_runs):
    a, b, b1, double = ddp_runs
    for k in a["state"]:
        torch.testing.assert_close(a["state"][k], b["state"][k], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b["state"][k], b1["state"][k], rtol=0, atol=0)  # 两个进程的参数逐位相同
    assert a["test_acc"] == pytest.approx(b["test_acc"], abs=1e-3)   # 全部测试样本上汇总的准确率
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)           # 各进程的损失已经求和汇总
    assert (b["num_train"], b["num_test"]) == (a["num_train"], a["num_test"]) == (1024, 256)  # 各进程之和
    assert double.stdout.count("test acc") == 1                       # 只有 0 号进程打印
    assert a["precision"] == b["precision"] == b1["precision"] == "fp32", "各进程应使用 0 号进程选的精度"


def test_train_does_not_shard_the_callers_iterators(ddp_runs):
    _, r0, r1, _ = ddp_runs
    for rank, r in enumerate((r0, r1)):
        # [rank, world_size, num_examples, 批数]：每个进程的批量是 32，完整的一份是 1024 张、256 张
        assert r["callers"] == {"train": [0, 1, 1024, 32], "test": [0, 1, 256, 8]}, (
            f"{rank} 号进程的迭代器在 train() 之后被改动了：{r['callers']}")


def test_cli_writes_results_under_torchrun(tmp_path):
    out = tmp_path / "lenet.json"
    r = run([*TORCHRUN, "-m", "cnnlib", "train", "lenet_bn", "--profile", "smoke", "--out", str(out)])
    assert r.returncode == 0, r.stderr[-3000:]
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["model"] == "lenet_bn" and record["settings"]["world_size"] == 2
    assert record["history"]["profile"] == "smoke" and record["history"]["num_train"] == 256
    assert record["params"] == cnnlib.model_spec("lenet_bn").params and len(record["history"]["test_acc"]) == 1


def test_cli_rejects_indivisible_batch():
    r = run([*TORCHRUN, "-m", "cnnlib", "train", "lenet_bn", "--profile", "smoke", "--batch-size", "255"])
    assert r.returncode != 0 and "exitcode  : 2" in r.stderr, r.stderr[-3000:]  # torchrun 报告进程的状态 2
    # 先退出的进程让 torchrun 结束另一个，所以可能只有一个进程来得及打印
    errors = [line for line in r.stderr.splitlines() if line.startswith("python -m cnnlib train: error:")]
    assert 1 <= len(errors) <= 2 and all("255" in line for line in errors), r.stderr[-3000:]
    assert "ValueError" not in r.stderr, "进程里的 ValueError 应变成一行 error:，而不是 traceback"
