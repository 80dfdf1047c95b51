"""GPU 完整运行的演练（--profile smoke）与笔记本展示完整结果的函数。"""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

import cnnlib
from cnnlib import data

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "cnnlib" / "published"  # 随 cnnlib 发布的完整设定结果（GPU 上的一次运行）


@pytest.mark.slow
def test_full_run_dry_run_writes_every_file(fashion_mnist, tmp_path):
    results, bench, pack = tmp_path / "results", tmp_path / "bench", tmp_path / "out" / "run.tar"
    pack.parent.mkdir()
    cmd = [sys.executable, str(ROOT / "benchmarks" / "full_run.py"), "--profile", "smoke",
           "--data", str(data.DEBIAN_DIR), "--results-dir", str(results), "--bench-dir", str(bench),
           "--checkpoint-dir", str(tmp_path / "ckpt"), "--pack", str(pack)]
    # 只有 PATH：不依赖 .venv 之外的设置；一个线程：机器忙时两个 OpenMP 线程互相空等会慢上几倍（见 conftest.py）
    env = {"PATH": "/usr/bin:/bin", "CNNLIB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for model in cnnlib.SPECS:
        record = json.loads((results / f"{model}-smoke.json").read_text(encoding="utf-8"))
        h = record["history"]
        assert record["model"] == model and h["profile"] == "smoke" and len(h["train_loss"]) == 1
        assert h["num_train"] == 256 and h["num_test"] == 128 and h["readouts"]
        assert record["precision"] in ("fp32", "bf16") and record["device"].startswith("cpu")
        assert record["torch"] == torch.__version__ and record["date"][:4].isdigit()
        assert record["settings"]["seed"] == 0 and record["settings"]["init"] == "xavier_init"
    features = torch.load(results / "alexnet-smoke-features.pt", weights_only=True)
    assert features["conv1_weight"].shape == (96, 1, 11, 11) and features["image"].shape == (28, 28)
    assert [v["maps"].shape[0] for v in features["layers"].values()] == [16] * 5
    for model in ("alexnet", "resnet18"):
        speed = json.loads((bench / f"{model}-cpu-smoke.json").read_text(encoding="utf-8"))
        assert speed["loops"]["cnnlib"]["examples_per_sec"] > 0 and speed["ratio"] > 0
        assert "(a)/(b)" in (bench / f"{model}-cpu-smoke.txt").read_text(encoding="utf-8")
    init = json.loads((results / "experiments" / "init-smoke.json").read_text(encoding="utf-8"))
    assert set(init) == {"nin", "alexnet"}
    assert all(set(v) == {"kaiming", "xavier"} and v["kaiming"]["readouts"] for v in init.values())
    with tarfile.open(pack) as tar:
        names = set(tar.getnames())
    assert len(names) == len(cnnlib.SPECS) + 1 + 4 + 1  # 每个模型一个结果、AlexNet 的特征图、两次测速（txt 与 json）、初始化对照
    # 再运行一次：全部已完成，什么也不重做
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert again.returncode == 0 and again.stdout.count("跳过") == len(cnnlib.SPECS) + 2, again.stdout[-2000:]


def test_show_full_result_reads_the_committed_run(capsys):
    import matplotlib
    matplotlib.use("Agg")
    record = json.loads((PUBLISHED / "resnet18-full.json").read_text(encoding="utf-8"))
    h = cnnlib.show_full_result("resnet18")  # 默认读随包发布的结果
    out = capsys.readouterr().out
    assert h.epochs == 10 and h.test_acc[-1] == record["test_acc"]
    assert record["device"] in out and record["precision"] in out and record["date"][:10] in out
    assert f"{record['test_acc']:.3f}" in out


def test_show_full_result_without_a_file_says_so_in_one_line(tmp_path, capsys):
    assert cnnlib.show_full_result("alexnet", tmp_path) is None
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "alexnet-full.json" in out and "README" in out


def test_filter_and_feature_map_plots_accept_both_sources():
    import matplotlib
    matplotlib.use("Agg")
    net = cnnlib.alexnet()
    axes = cnnlib.show_filters(net[0].weight, num_cols=12)
    assert sum(1 for ax in axes if ax.images) == 96
    acts = cnnlib.conv_activations(net, torch.rand(1, 1, 224, 224))
    assert [tuple(a.shape[1:]) for _, a in acts] == [(96, 54, 54), (256, 26, 26), (384, 12, 12),
                                                    (384, 12, 12), (256, 12, 12)]
    assert all((a >= 0).all() for _, a in acts)  # ReLU 之后
    axes = cnnlib.show_feature_maps(acts, num_channels=4, image=torch.rand(28, 28))
    assert sum(1 for ax in axes.flat if ax.images) == 5 * (1 + 4)
    stored = torch.load(PUBLISHED / "alexnet-full-features.pt", weights_only=True)
    axes = cnnlib.show_feature_maps(stored, num_channels=4)
    assert sum(1 for ax in axes.flat if ax.images) == 5 * (1 + 4)
    with pytest.raises(ValueError):
        cnnlib.show_filters(torch.zeros(4, 3, 5, 5))
