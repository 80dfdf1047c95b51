"""GPU 完整运行（benchmarks/full_run.py）的演练（--profile smoke）与笔记本展示完整结果的函数。

演练与 GPU 上的调用用同样的参数（只是 --profile smoke 与几个临时目录），写出同样的每一个文件。
检查的期望值不从被测的脚本写出的文件里取：数据标签从数据文件数，种子与初始化用笔记本的路径
在本进程里再训练一次来对照，测速的比值由两种循环的速度重算，独占 GPU 的几项由起止时间检查。
"""

import importlib.util
import json
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

import cnnlib
from cnnlib import data

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "cnnlib" / "published"  # 随 cnnlib 发布的完整设定结果（GPU 上的运行）
_spec = importlib.util.spec_from_file_location("full_run", ROOT / "benchmarks" / "full_run.py")
full_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(full_run)

# 演练要做的运行：7 个网络 × 3 个种子 + NiN 的推荐设定 × 3，精度检查 2 个网络 × 3 种精度，
# 初始化对照 2 个，内存 1 项，测速 2 个网络
TRAININGS = len(cnnlib.SPECS) * 3 + 3
JOBS = TRAININGS + 2 * 3 + 2 + 1 + 2


def _run(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "full_run.py"), "--profile", "smoke",
           "--data", str(data.DEBIAN_DIR), "--results-dir", str(tmp_path / "results"),
           "--bench-dir", str(tmp_path / "bench"), "--checkpoint-dir", str(tmp_path / "ckpt"),
           "--pack", str(tmp_path / "out" / "run.tar"), *extra]
    # 只有 PATH：不依赖 .venv 之外的设置；一个线程：机器忙时两个 OpenMP 线程互相空等会慢上几倍（见 conftest.py）；
    # float32：精度由测试固定，不随这台 CPU 的 bf16 探针变化
    env = {"PATH": "/usr/bin:/bin", "CNNLIB_PROGRESS": "0", "OMP_NUM_THREADS": "1", "CNNLIB_AMP": "fp32"}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)


def _rerun(model: str, seed: int, init) -> cnnlib.History:
    """笔记本的路径在本进程里再训练一次（同样的演练数据量、种子与初始化）：种子与初始化的独立对照。"""
    profile = full_run.run_profile(model, "smoke")
    resolution, lr, batch_size = full_run.book_setting(model, profile)
    train_iter, test_iter = cnnlib.load_fashion_mnist(batch_size, resize=None if resolution == 28 else resolution,
                                                      profile=profile, seed=seed, device="cpu")
    torch.manual_seed(seed)
    net = cnnlib.model_spec(model).factory()
    return cnnlib.train(net, train_iter, test_iter, profile.num_epochs, lr, "cpu", init=init, plot=False,
                        progress=False, readouts_per_epoch=full_run.READOUTS)


@pytest.mark.slow
def test_dry_run_writes_every_file_and_a_second_call_finishes_the_rest(fashion_mnist, tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    results, bench = tmp_path / "results", tmp_path / "bench"
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    n_train, n_test = full_run.DRY_RUN_SIZE
    test_labels = cnnlib.read_fashion_mnist()["test_labels"]

    # 三个种子 × 七个网络，加 NiN 的 He 初始化三个种子
    runs = [(m, s, None) for m in cnnlib.SPECS for s in (0, 1, 2)] + [("nin", s, "he") for s in (0, 1, 2)]
    for model, seed, variant in runs:
        record = json.loads((results / cnnlib.results.run_file(model, seed, variant, "smoke")).read_text(encoding="utf-8"))
        h = record["history"]
        assert record["model"] == model and h["profile"] == "smoke" and len(h["train_loss"]) == 1
        assert (h["num_train"], h["num_test"], h["interrupted"]) == (n_train, n_test, False)
        assert record["settings"]["seed"] == seed and h["readouts"]
        assert record["settings"]["init"] == ("kaiming_init" if variant else "xavier_init")
        assert record["precision"] == "fp32" and record["device"].startswith("cpu")
        # 混淆矩阵：行和是这个种子的测试子集里各类别的图像数（从数据文件数出来），对角线就是测试准确率
        confusion = torch.tensor(record["test_predictions"]["confusion"])
        expected_rows = torch.bincount(test_labels[cnnlib.balanced_subset(test_labels, n_test, seed)], minlength=10)
        assert confusion.sum(dim=1).tolist() == expected_rows.tolist()
        assert confusion.trace().item() / n_test == pytest.approx(h["test_acc"][-1], abs=1e-12)
        assert record["test_predictions"]["counts"] == confusion.sum(dim=0).tolist()

    # 种子与初始化确实用上了：笔记本的路径在本进程里再跑一次，得到同样的数
    monkeypatch.setenv("CNNLIB_AMP", "fp32")
    for model, seed, variant, init in (("lenet_bn", 1, None, cnnlib.xavier_init), ("nin", 0, "he", cnnlib.kaiming_init)):
        record = json.loads((results / cnnlib.results.run_file(model, seed, variant, "smoke")).read_text(encoding="utf-8"))
        again = _rerun(model, seed, init)
        assert again.train_loss[-1] == pytest.approx(record["history"]["train_loss"][-1], rel=1e-6)
        assert again.test_acc == record["history"]["test_acc"]

    features = torch.load(results / "alexnet-smoke-features.pt", weights_only=True)
    assert features["conv1_weight"].shape == (96, 1, 11, 11) and features["image"].shape == (28, 28)
    assert features["label"] == int(test_labels[0])
    assert [v["maps"].shape[0] for v in features["layers"].values()] == [16] * 5

    precision = json.loads((results / "experiments" / "precision-smoke.json").read_text(encoding="utf-8"))
    for model in ("lenet_bn", "resnet18"):
        assert "CUDA" in precision[model]["fp16"]["skipped"]  # CPU 上没有 fp16 这条路
        for amp in ("bf16", "fp32"):  # 请求的精度真的用上了
            assert precision[model][amp]["record"]["history"]["precision"] == amp
            assert precision[model][amp]["record"]["history"]["num_train"] == n_train

    memory = json.loads((results / "experiments" / "memory-smoke.json").read_text(encoding="utf-8"))
    assert set(memory["models"]) == set(cnnlib.SPECS)
    assert all(m["batch_size"] == 2 and "max_allocated" not in m for m in memory["models"].values())  # CPU 上不量

    for model in ("alexnet", "resnet18"):
        speed = json.loads((bench / f"{model}-cpu-smoke.json").read_text(encoding="utf-8"))
        loops = speed["loops"]
        assert speed["ratio"] == pytest.approx(loops["cnnlib"]["examples_per_sec"] / loops["syllabus"]["examples_per_sec"])
        assert speed["method"] == full_run.BENCH_METHOD and speed["syllabus_cudnn_benchmark"] is False
        assert "(a)/(b)" in (bench / f"{model}-cpu-smoke.txt").read_text(encoding="utf-8")

    init = json.loads((results / "experiments" / "init-smoke.json").read_text(encoding="utf-8"))
    assert set(init) == {"nin", "alexnet"}
    xavier = json.loads((results / "alexnet-smoke.json").read_text(encoding="utf-8"))["history"]
    assert init["alexnet"]["xavier"]["train_loss"] == xavier["train_loss"][0]
    assert all(v["kaiming"]["readouts"] for v in init.values())

    # 每个运行的起止时间：独占 GPU 的几项（内存、测速）开始时没有别的运行在跑
    schedule = json.loads((bench / "full-run-schedule-cpu-smoke.json").read_text(encoding="utf-8"))["calls"][0]
    assert len(schedule["runs"]) == JOBS and all(r["status"] == "done" for r in schedule["runs"])
    for ex in (r for r in schedule["runs"] if r["exclusive"]):
        assert not [r["key"] for r in schedule["runs"] if r is not ex and r["start"] < ex["end"] and r["end"] > ex["start"]]
    assert {r["worker"] for r in schedule["runs"]} == {0, 1}  # 两个工作进程都干了活

    with tarfile.open(tmp_path / "out" / "run.tar") as tar:
        names = set(tar.getnames())
    # 每个训练一个结果、特征图、精度、内存、初始化、两次测速（txt 与 json）、调度记录：一个 tar
    assert len(names) == TRAININGS + 1 + 1 + 1 + 1 + 4 + 1

    # 第二次调用：全部已完成，什么也不重做
    again = _run(tmp_path)
    assert again.returncode == 0 and again.stdout.count("已有完整结果，跳过") == JOBS, again.stdout[-2000:]
    assert "全部已经完成" in again.stdout

    # 工作树里少了一个结果（例如设备机器收到的工作树没有解包上次的 tar）：从检查点目录里的副本放回，不重训
    lost = results / cnnlib.results.run_file("lenet_bn", 2, None, "smoke")
    kept = lost.read_bytes()
    lost.unlink()
    third = _run(tmp_path)
    assert third.returncode == 0 and "== 开始 " not in third.stdout, third.stdout[-3000:]
    assert "从上一次调用恢复" in third.stdout and lost.read_bytes() == kept
    # 哪里都没有（上一次没做完）：第四次调用只补做它
    lost.unlink()
    (tmp_path / "ckpt" / "written" / "results" / cnnlib.results.run_file("lenet_bn", 2, None, "smoke")).unlink()
    fourth = _run(tmp_path)
    assert fourth.returncode == 0, fourth.stdout[-3000:]
    assert fourth.stdout.count("== 开始 ") == 1 and "== 开始 lenet_bn-smoke-seed2" in fourth.stdout
    assert lost.exists()


def _args(tmp_path: Path, **kw):
    import argparse
    return argparse.Namespace(**{"profile": "full", "results_dir": tmp_path / "results", "bench_dir": tmp_path / "bench",
                                 "checkpoint_dir": tmp_path / "ckpt", "models": list(cnnlib.SPECS), "seeds": [0, 1, 2],
                                 "workers": 4, "deadline": None, "pack": None, "force": False, **kw})


def test_an_interrupted_training_is_never_published(tmp_path, monkeypatch):
    """审计第 12 条：被时限打断的训练留在检查点里，不写进发布目录（工作进程与主进程各查一次）。"""
    def interrupted_run(model, profile, device, **kwargs):
        history = cnnlib.History(train_loss=[2.0] * 3, train_acc=[0.2] * 3, test_acc=[0.2] * 3,
                                 examples_per_sec=[1.0] * 3, epoch_time=[1.0] * 3, profile="full",
                                 num_train=60_000, num_test=10_000, interrupted=True)
        return torch.nn.Linear(1, 1), history
    monkeypatch.setattr(full_run, "train_book_model", interrupted_run)
    job = {"kind": "train", "key": "nin-full-seed1", "model": "nin", "seed": 1, "variant": None,
           "path": cnnlib.results.run_file("nin", 1), "exclusive": False}
    options = {"profile": "full", "checkpoint_dir": str(tmp_path / "ckpt"), "workers": 1}
    result = full_run.run_training(job, torch.device("cpu"), options)
    assert result["status"] == "interrupted" and "3/10" in result["note"]

    run = full_run.Run(_args(tmp_path), torch.device("cpu"))
    run.handle(job, {"worker": 0, "start": 0.0, "end": 1.0, **result})
    short = {"model": "nin", "settings": {"num_epochs": 10}, "history": {"train_loss": [2.0] * 3, "profile": "full"}}
    run.handle(job, {"worker": 0, "start": 0.0, "end": 1.0, "status": "done", "record": short,
                     "checkpoint": str(tmp_path / "ckpt" / "x.pt")})  # 万一工作进程交回了不完整的记录
    assert not (tmp_path / "results").exists() and run.written == []
    assert run.failures == ["nin-full-seed1（被时限打断）", "nin-full-seed1（记录不完整，没有发布）"]


def test_plan_against_the_published_results_skips_only_complete_runs(tmp_path):
    """对着随包发布的目录：完整的运行跳过，没有的、不完整的要做；独占 GPU 的在最前和最后。"""
    jobs, done = full_run.plan_jobs(_args(tmp_path, results_dir=PUBLISHED), torch.device("cuda"))
    trainings = {j["key"] for j in jobs if j["kind"] == "train"}
    for model in cnnlib.SPECS:
        for seed in (0, 1, 2):
            path = PUBLISHED / cnnlib.results.run_file(model, seed)
            complete = path.exists() and cnnlib.is_complete(json.loads(path.read_text(encoding="utf-8")))
            assert (Path(cnnlib.results.run_file(model, seed)).stem in trainings) == (not complete)
    assert jobs[0]["kind"] == "memory" and jobs[-1]["kind"] == "bench"
    assert {"nin-he-full-seed0", "nin-he-full-seed1", "nin-he-full-seed2"} <= trainings
    keys = [j["key"] for j in jobs]
    second = [i for i, k in enumerate(keys) if k.endswith("-full-seed2") and "-he-" not in k]
    first = [i for i, j in enumerate(jobs) if j["kind"] in ("precision", "init")
             or (j["kind"] == "train" and i not in second)]
    assert second and max(first) < min(second)  # 书中设定的种子 2 排在其余训练与检查之后
    assert full_run._makespan([3, 3, 2, 2, 2], 2) == 7  # 手算：进程一 3+2+2，进程二 3+2


def test_show_full_result_reads_the_committed_run(capsys):
    import matplotlib
    matplotlib.use("Agg")
    record = json.loads((PUBLISHED / "resnet18-full.json").read_text(encoding="utf-8"))
    acc = record["history"]["test_acc"]
    h = cnnlib.show_full_result("resnet18")  # 默认读随包发布的结果
    out = capsys.readouterr().out
    assert h.epochs == 10
    assert record["device"] in out and record["precision"] in out and record["date"][:10] in out
    # 函数要自己从逐轮的准确率算出的几个数（这里另算一遍）
    best = max(acc)
    assert f"最高 {best:.3f}，在第 {acc.index(best) + 1} 轮；最后三轮平均 {statistics.fmean(acc[-3:]):.3f}" in out
    assert f"随机种子 {record['settings']['seed']}" in out


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


def test_an_interrupted_run_resumes_from_its_checkpoint_and_equals_an_uninterrupted_one(
        fashion_mnist, tmp_path, monkeypatch):
    """可以续跑：第一次调用在第 2 轮开头被打断（像时限一样），第二次调用从检查点做完；
    结果与一次不中断的运行相同（LeNet-BN 没有暂退法，CPU 上 float32、一个线程时逐位确定）。"""
    monkeypatch.setenv("CNNLIB_AMP", "fp32")
    monkeypatch.setenv("CNNLIB_DATA", str(data.DEBIAN_DIR))
    real_profile = full_run.run_profile
    monkeypatch.setattr(full_run, "run_profile",
                        lambda model, profile, num_epochs=None: __import__("dataclasses").replace(
                            real_profile(model, profile, num_epochs), num_epochs=2))
    real_iter = data.FashionMNISTIter.__iter__

    def stop_in_second_epoch(self):
        if self.shuffle and self.epoch == 1:  # 训练集的第 2 轮
            raise KeyboardInterrupt
        return real_iter(self)

    options = {"profile": "smoke", "checkpoint_dir": str(tmp_path / "ckpt"), "workers": 1}

    def job(key):
        return {"kind": "train", "key": key, "model": "lenet_bn", "seed": 1, "variant": None,
                "path": "x.json", "exclusive": False}
    monkeypatch.setattr(data.FashionMNISTIter, "__iter__", stop_in_second_epoch)
    first = full_run.run_training(job("resumed"), torch.device("cpu"), options)
    assert first["status"] == "interrupted" and "1/2" in first["note"]
    assert (tmp_path / "ckpt" / "resumed.pt").exists()
    monkeypatch.setattr(data.FashionMNISTIter, "__iter__", real_iter)
    second = full_run.run_training(job("resumed"), torch.device("cpu"), options)
    straight = full_run.run_training(job("straight"), torch.device("cpu"), options)
    assert second["status"] == straight["status"] == "done"
    assert second["record"]["run"]["resumed_after_epoch"] == 1 and straight["record"]["run"]["resumed_after_epoch"] is None
    assert second["images"] == straight["images"] // 2  # 第二次调用只训练了剩下的一轮
    for key in ("train_loss", "test_acc"):
        assert second["record"]["history"][key] == straight["record"]["history"][key]


def test_bench_loop_runs_the_syllabus_loop_without_cudnn_benchmark(fashion_mnist, tmp_path, monkeypatch):
    """审计第 43 条：cnnlib.train 在 GPU 上打开 cudnn.benchmark；大纲循环是 d2l 的默认（关），之后恢复。"""
    import bench_loop
    seen = []
    real_epoch = bench_loop.syllabus_epoch
    monkeypatch.setattr(bench_loop, "syllabus_epoch",
                        lambda *a: (seen.append(torch.backends.cudnn.benchmark), real_epoch(*a))[1])
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)  # 像 GPU 上 cnnlib.train 之后那样
    monkeypatch.setenv("CNNLIB_AMP", "fp32")
    monkeypatch.setenv("CNNLIB_DATA", str(data.DEBIAN_DIR))
    js = tmp_path / "b.json"
    bench_loop.main(["lenet_bn", "--num-train", "20", "--num-test", "10", "--rounds", "1",
                     "--peak-max", "128", "--json", str(js)])
    assert seen == [False, False] and torch.backends.cudnn.benchmark is True  # 预热一轮 + 1 轮，都关着；之后恢复
