"""torchrun 的两个 gloo 进程与一个进程（相同的全局批量）训练后参数相同；命令行能写出结果文件。"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from cnnlib import data

pytestmark = pytest.mark.skipif(not data.DEBIAN_DIR.is_dir(), reason="需要 Debian 软件包 dataset-fashion-mnist")

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CNNLIB_PROGRESS": "0"}

# 不含批量规范化的小网络：DDP 下批量规范化的统计量按进程各自计算，与单进程本来就不同。
# 用光滑的 tanh 与平均汇聚：ReLU 与最大汇聚的折点会把 1e-8 量级的求和顺序差异在几十步内放大到 1e-3。
SCRIPT = textwrap.dedent("""
    import os, sys, torch
    from torch import nn
    import cnnlib
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        torch.distributed.init_process_group("gloo")
    global_batch = 64
    tr, te = cnnlib.load_fashion_mnist(global_batch // world, num_train=1024, num_test=256,
                                       device="cpu", download=False)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                        nn.Linear(8 * 12 * 12, 10))
    h = cnnlib.train(net, tr, te, 2, 0.1, "cpu", plot=False)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save({"state": net.state_dict(), "test_acc": h.test_acc, "loss": h.train_loss},
                   sys.argv[1])
    if world > 1:
        torch.distributed.destroy_process_group()
""")


def run(cmd, **kw):
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, **kw)


def test_two_gloo_processes_match_one_process(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    single = run([sys.executable, str(script), str(tmp_path / "single.pt")])
    assert single.returncode == 0, single.stderr
    double = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                  str(script), str(tmp_path / "ddp.pt")])
    assert double.returncode == 0, double.stderr
    a, b = torch.load(tmp_path / "single.pt"), torch.load(tmp_path / "ddp.pt")
    for k in a["state"]:
        torch.testing.assert_close(a["state"][k], b["state"][k], rtol=1e-4, atol=1e-5)
    assert a["test_acc"] == pytest.approx(b["test_acc"], abs=1e-3)   # 全部测试样本上汇总的准确率
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)           # 各进程的损失已经求和汇总
    assert double.stdout.count("test acc") == 1                       # 只有 0 号进程打印


def test_cli_writes_results_under_torchrun(tmp_path):
    out = tmp_path / "lenet.json"
    r = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
             "-m", "cnnlib", "train", "lenet_bn", "--profile", "smoke", "--out", str(out)])
    assert r.returncode == 0, r.stderr
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["model"] == "lenet_bn" and record["settings"]["world_size"] == 2
    assert record["history"]["profile"] == "smoke" and record["history"]["num_train"] == 256
    assert record["params"] == 44878 and len(record["history"]["test_acc"]) == 1


def test_cli_rejects_indivisible_batch():
    r = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
             "-m", "cnnlib", "train", "lenet_bn", "--profile", "smoke", "--batch-size", "255"])
    assert r.returncode != 0 and "不能被进程数 2 整除" in r.stderr
