"""训练循环：在真实数据的小子集上确实学到东西；NaN、错误分辨率、检查点、中断都有清楚的处理；
续训与不中断的训练参数相同；一次训练只有一个测试准确率。

报错的测试断言结构化的字段（``TrainingDivergedError.epoch/.batch``、``CheckpointError.reason/.path``）
与消息里的坏值（``"lr=-0.1"``），不比对整句中文。整组测试钉在 float32（``conftest.py``）；
检查 bf16 的测试自己设定精度。
"""

import inspect
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import cnnlib
from cnnlib import speed
from cnnlib.history import plateau_hint

ROOT = Path(__file__).resolve().parents[1]


def small(n_train, n_test, batch_size=64, resize=None):
    return cnnlib.load_fashion_mnist(batch_size, resize=resize, num_train=n_train, num_test=n_test,
                                     device="cpu", download=False)


def linear() -> nn.Sequential:
    """最小的分类器（softmax 回归）：测试只关心训练循环本身时用它，快。"""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def random_data(n: int, seed: int) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))


def dropout_bn_net() -> nn.Sequential:
    """有暂退法也有批量规范化的小网络：续训要重现的随机数状态与移动统计量都在里面。"""
    return nn.Sequential(nn.Conv2d(1, 4, 5), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(4), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 10))


def assert_same_parameters(expected: nn.Module, actual: nn.Module, what: str) -> None:
    """参数与缓冲区（批量规范化的移动统计量）逐项相差不超过 1e-6。"""
    for (name, a), b in zip(expected.state_dict().items(), actual.state_dict().values()):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6, msg=lambda m: f"{what}的 {name} 不同：{m}")


def test_the_suite_runs_in_float32():
    """conftest.py 把 CNNLIB_AMP 钉在 fp32：amp="auto" 不随这台 CPU 有没有 bf16 指令而变。"""
    assert os.environ["CNNLIB_AMP"] == "fp32"
    assert cnnlib.resolve_speed_options(torch.device("cpu"))[0] is None


# ---- 学习与记录 ----
@pytest.mark.slow
def test_train_learns_and_history_is_right(fashion_mnist, capsys):
    train_iter, test_iter = small(2000, 500)
    net = cnnlib.lenet_bn()
    h = cnnlib.train(net, train_iter, test_iter, 2, 0.3, "cpu", progress=False)
    assert h.epochs == 2 and len(h.test_acc) == len(h.epoch_time) == len(h.examples_per_sec) == 2
    assert (h.num_train, h.num_test, h.total_train, h.total_test) == (2000, 500, 60000, 10000)
    assert h.test_acc[-1] > 0.45, h.test_acc          # 随机猜是 0.1；实测约 0.6
    assert h.train_loss[-1] < 0.8 * h.train_loss[0], h.train_loss
    assert h.device.startswith("cpu (") and not h.interrupted
    assert len(h.readouts) == 2 * 4 and [r[0] for r in h.readouts[:4]] == [0.25, 0.5, 0.75, 1.0]
    out = capsys.readouterr().out
    assert f"loss {h.train_loss[-1]:.3f}, train acc {h.train_acc[-1]:.3f}, test acc {h.test_acc[-1]:.3f}" in out
    assert "examples/sec on cpu" in out and "2,000/60,000" in out and "500/10,000" in out
    assert "平台期" not in out  # 学到东西的训练不打印平台期提示
    # 用训练好的网络再算一次测试准确率：evaluate_accuracy 与逐批手算（float32）的都等于记录的最后一轮
    assert h.eval_precision == "fp32"
    assert cnnlib.evaluate_accuracy(net, test_iter) == h.test_acc[-1]
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(X).argmax(dim=1) == y).sum()) for X, y in test_iter)
    assert correct / 500 == h.test_acc[-1]


def test_plain_dataloader_is_counted(capsys):
    """任何产出 (X, y) 的可迭代对象：样本数在训练时数出来，而不是读迭代器的属性。"""
    train_loader = DataLoader(random_data(512, 1), batch_size=64, shuffle=True)
    test_loader = DataLoader(random_data(128, 2), batch_size=100)  # 100 + 28：最后一批不满也要数上
    net = linear()
    t = time.perf_counter()
    h = cnnlib.train(net, train_loader, test_loader, 2, 0.1, "cpu", progress=False)
    elapsed = time.perf_counter() - t
    assert (h.num_train, h.num_test, h.total_train, h.total_test) == (512, 128, 512, 128)
    # 吞吐量 = 训练样本数 / 每轮用时；每轮用时都在这次调用的墙钟时间之内
    assert 0 < h.wall_time <= elapsed and all(t > 0 for t in h.epoch_time)
    assert h.examples_per_sec == pytest.approx([512 / t for t in h.epoch_time], rel=1e-9)
    out = capsys.readouterr().out
    assert "512/512" in out and "128/128" in out, out
    speeds = [float(s.replace(",", "")) for s in re.findall(r"([\d,.]+) examples/sec", out)]
    assert speeds == [pytest.approx(2 * 512 / h.wall_time, abs=0.05)], out  # 总结行按总墙钟时间算
    assert cnnlib.evaluate_accuracy(net, test_loader) == h.test_acc[-1]


@pytest.mark.parametrize("seed", range(5))
def test_a_bf16_run_has_one_test_accuracy(seed):
    """bf16 训练之后，evaluate_accuracy（默认 float32）等于记录的最后一个 test_acc：评估只用一种精度。"""
    torch.manual_seed(seed)
    train_loader = DataLoader(random_data(512, seed), batch_size=64, shuffle=True)
    test_loader = DataLoader(random_data(1000, 100 + seed), batch_size=250)
    net = linear()
    h = cnnlib.train(net, train_loader, test_loader, 1, 0.1, "cpu", amp="bf16", progress=False)
    assert (h.precision, h.eval_precision) == ("bf16", "fp32")
    assert cnnlib.evaluate_accuracy(net, test_loader) == h.test_acc[-1]
    with torch.no_grad():  # 独立地数一遍：float32 前向，逐批取 argmax
        correct = sum(int((net(X).argmax(dim=1) == y).sum()) for X, y in test_loader)
    assert correct / 1000 == h.test_acc[-1]


def test_bf16_evaluation_would_differ_so_the_test_above_can_fail():
    """上一个测试能失败的前提：在这些数据上，bf16 评估至少对一个种子与 float32 不同。"""
    differ = []
    for seed in range(5):
        torch.manual_seed(seed)
        net = linear()
        test_loader = DataLoader(random_data(1000, 100 + seed), batch_size=250)
        fp32, bf16 = (cnnlib.evaluate_accuracy(net, test_loader, amp=amp) for amp in (None, "bf16"))
        differ.append(fp32 != bf16)
    assert any(differ), "bf16 与 float32 的评估在 5 个种子上都相同：一次训练只有一个准确率的测试就检查不出什么"


def test_history_numbers_and_round_trip():
    """一份手写的记录：300 张 × 2 轮、每轮 3.0 秒，所以总墙钟 6.0 秒、100.0 examples/sec。"""
    h = cnnlib.History(train_loss=[0.9, 0.5], train_acc=[0.7, 0.8], test_acc=[0.6, 0.65],
                       examples_per_sec=[100.0, 100.0], epoch_time=[3.0, 3.0], readouts=[[0.5, 1.2, 0.6]],
                       device="cpu (2 threads)", precision="fp32", profile="cpu",
                       num_train=300, num_test=100, total_train=60_000, total_test=10_000)
    assert (h.epochs, h.wall_time, h.overall_examples_per_sec) == (2, 6.0, 100.0)
    first, second = h.summary().splitlines()
    assert first == "loss 0.500, train acc 0.800, test acc 0.650"
    assert second.startswith("100.0 examples/sec on cpu (2 threads), fp32")
    assert "300/60,000" in second and "100/10,000" in second and "6.0" in second
    # 检查点与结果文件经过 JSON：读回来的记录与原来相同
    assert cnnlib.History.from_dict(json.loads(json.dumps(h.to_dict()))) == h
    empty = cnnlib.History()  # 还没有完成任何一轮：不除以零
    assert (empty.epochs, empty.wall_time, empty.overall_examples_per_sec) == (0, 0.0, 0.0)


def test_init_none_keeps_weights(fashion_mnist):
    train_iter, test_iter = small(256, 128)
    net = cnnlib.lenet_bn()
    w = net[0].weight.detach().clone()
    cnnlib.train(net, train_iter, test_iter, 1, 1e-9, "cpu", init=None, progress=False)
    torch.testing.assert_close(net[0].weight.detach().contiguous(), w, rtol=0, atol=1e-6)


# ---- 参数与输入的检查 ----
def test_wrong_resolution_is_refused_before_training(fashion_mnist):
    train_iter, test_iter = small(256, 128)  # 28×28
    with pytest.raises(ValueError) as e:
        cnnlib.train(cnnlib.alexnet(), train_iter, test_iter, 1, 0.01, "cpu", progress=False)
    assert "28×28" in str(e.value) and "224×224" in str(e.value)  # 坏的分辨率，以及可用的分辨率


def test_bad_hyperparameters():
    loader = DataLoader(random_data(64, 0), batch_size=32)
    for kwargs, bad in ((dict(num_epochs=1, lr=-0.1), "lr=-0.1"), (dict(num_epochs=0, lr=0.1), "num_epochs=0"),
                        (dict(num_epochs=1, lr=float("nan")), "lr=nan"),
                        (dict(num_epochs=1, lr=0.1, amp="fp8"), "amp='fp8'"),
                        (dict(num_epochs=1, lr=0.1, readouts_per_epoch=0), "readouts_per_epoch=0"),
                        (dict(num_epochs=1, lr=0.1, amp="fp16"), "amp='fp16'")):  # fp16 只用于 CUDA
        with pytest.raises(ValueError) as e:
            cnnlib.train(linear(), loader, loader, device="cpu", progress=False, **kwargs)
        assert bad in str(e.value), f"{kwargs}：消息里没有坏值 {bad!r}：{e.value}"


def test_lr_must_match_the_given_optimizer():
    """给了 optimizer 时按它的学习率训练；lr 只用于记录，所以两者不同是错误，而不是悄悄忽略 lr。"""
    loader = DataLoader(random_data(64, 0), batch_size=32)
    net = linear()
    with pytest.raises(ValueError) as e:
        cnnlib.train(net, loader, loader, 1, 0.1, "cpu", optimizer=torch.optim.SGD(net.parameters(), lr=0.5),
                     progress=False)
    assert "lr=0.1" in str(e.value) and "0.5" in str(e.value)
    h = cnnlib.train(net, loader, loader, 1, 0.5, "cpu", optimizer=torch.optim.SGD(net.parameters(), lr=0.5),
                     progress=False)
    assert h.epochs == 1


class Spy:
    """每次遍历时记下 cudnn.benchmark 的值。"""

    def __init__(self, dataset: TensorDataset) -> None:
        self.batches, self.seen = list(DataLoader(dataset, batch_size=64)), []

    def __iter__(self):
        self.seen.append(torch.backends.cudnn.benchmark)
        yield from self.batches


def test_cudnn_benchmark_is_on_while_training_and_restored_after(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    data = Spy(random_data(128, 0))
    cnnlib.train(linear(), data, data, 2, 0.1, "cpu", progress=False)
    assert data.seen == [True, True, True, True]  # 两轮训练、两次评估
    assert torch.backends.cudnn.benchmark is False, "train() 返回后没有恢复 cudnn.benchmark"
    with pytest.raises(cnnlib.TrainingDivergedError):  # 出错时也恢复
        cnnlib.train(linear(), NaNAt(random_data(128, 0), 1, 1), data, 1, 0.1, "cpu", progress=False)
    assert torch.backends.cudnn.benchmark is False, "出错之后没有恢复 cudnn.benchmark"


def test_empty_training_data_is_an_error():
    with pytest.raises(ValueError, match="train_iter"):
        cnnlib.train(linear(), [], DataLoader(random_data(32, 0), batch_size=32), 1, 0.1, "cpu", progress=False)


# ---- NaN ----
class NaNAt:
    """可迭代的批量列表；第 ``epoch`` 次遍历的第 ``batch`` 批（都从 1 数）的输入换成 NaN。"""

    def __init__(self, dataset: TensorDataset, epoch: int, batch: int) -> None:
        self.batches = list(DataLoader(dataset, batch_size=64))
        self.epoch, self.batch, self.passes = epoch, batch, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        self.passes += 1
        for i, (X, y) in enumerate(self.batches, 1):
            yield (torch.full_like(X, float("nan")) if (self.passes, i) == (self.epoch, self.batch) else X), y


@pytest.mark.parametrize("epoch,batch", [(1, 1), (2, 3)])
def test_nan_loss_stops_with_epoch_and_batch(epoch, batch):
    train_data = NaNAt(random_data(512, 0), epoch, batch)  # 每轮 8 批
    test_loader = DataLoader(random_data(64, 1), batch_size=64)
    with pytest.raises(cnnlib.TrainingDivergedError) as e:
        cnnlib.train(linear(), train_data, test_loader, 3, 0.1, "cpu", progress=False)
    assert (e.value.epoch, e.value.batch, e.value.lr) == (epoch, batch, 0.1)
    assert e.value.history.epochs == epoch - 1          # 之前完成的轮次都在记录里
    assert "lr=0.1" in str(e.value) and "lr=0.01" in str(e.value)  # 当前的学习率与建议的学习率


def test_divergence_advice_is_one_that_works(tmp_path):
    """建议是“新建模型、用更小的 lr、换一个检查点路径（或删掉旧的）从头训练”：从旧检查点换 lr 续训会被拒绝。"""
    ckpt = tmp_path / "nan.ckpt"
    test_loader = DataLoader(random_data(64, 1), batch_size=64)
    with pytest.raises(cnnlib.TrainingDivergedError) as e:
        cnnlib.train(linear(), NaNAt(random_data(512, 0), 2, 3), test_loader, 3, 0.1, "cpu",
                     checkpoint=ckpt, progress=False)
    message = str(e.value)
    assert "lr=0.01" in message and str(ckpt) in message, message
    assert "继续" not in message, f"不应建议从检查点继续：{message}"
    clean = DataLoader(random_data(512, 0), batch_size=64)
    with pytest.raises(cnnlib.CheckpointError) as refused:  # 旧的建议（换 lr 从检查点继续）行不通
        cnnlib.train(linear(), clean, test_loader, 3, 0.01, "cpu", checkpoint=ckpt, progress=False)
    assert refused.value.reason == "other_settings"
    h = cnnlib.train(linear(), clean, test_loader, 3, 0.01, "cpu", checkpoint=tmp_path / "new.ckpt", progress=False)
    assert h.epochs == 3 and not h.interrupted


# ---- 检查点 ----
def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path, capsys):
    """3 轮不中断 = 2 轮 + 续训 1 轮：参数与移动统计量相差不超过 1e-6（CPU、float32）。

    随机的东西都在：暂退法的掩码、DataLoader 的打乱顺序（都取自全局随机数）、动量、批量规范化的统计量。
    """
    data, test_loader = random_data(512, 1), DataLoader(random_data(128, 2), batch_size=64)

    def run(net: nn.Module, num_epochs: int, ckpt=None) -> cnnlib.History:
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        return cnnlib.train(net, DataLoader(data, batch_size=64, shuffle=True), test_loader, num_epochs, 0.1,
                            "cpu", optimizer=optimizer, amp=None, checkpoint=ckpt, progress=False)

    torch.manual_seed(0)
    straight = dropout_bn_net()
    run(straight, 3)
    ckpt = tmp_path / "run.ckpt"
    torch.manual_seed(0)
    run(dropout_bn_net(), 2, ckpt)
    assert ckpt.exists() and not (tmp_path / "run.ckpt.tmp").exists()
    torch.manual_seed(12345)  # 像一个新的进程：此刻的随机数状态与第一次运行无关
    resumed = dropout_bn_net()  # 新建的网络：参数、移动统计量、动量、随机数状态与记录都从检查点来
    h = run(resumed, 3, ckpt)
    assert str(ckpt) in capsys.readouterr().out and h.epochs == 3  # 说明从哪个检查点继续
    assert_same_parameters(straight, resumed, "续训后")


def test_resume_keeps_the_precision_that_auto_chose(tmp_path, monkeypatch):
    """CPU 上 amp="auto" 是一次实测，阈值附近两次运行可能选得不同：续训沿用检查点里的选择，不拒绝学生。

    用 CNNLIB_AMP 模拟两次实测的结果（第一次选 bf16，第二次选 float32）；显式的、不同的精度仍被拒绝。
    """
    loader = DataLoader(random_data(256, 0), batch_size=64)
    ckpt = tmp_path / "auto.ckpt"
    monkeypatch.setenv("CNNLIB_AMP", "bf16")
    assert cnnlib.train(linear(), loader, loader, 1, 0.1, "cpu", checkpoint=ckpt, progress=False).precision == "bf16"
    monkeypatch.setenv("CNNLIB_AMP", "fp32")
    h = cnnlib.train(linear(), loader, loader, 2, 0.1, "cpu", checkpoint=ckpt, progress=False)
    assert h.epochs == 2 and h.precision == "bf16"
    with pytest.raises(cnnlib.CheckpointError) as e:
        cnnlib.train(linear(), loader, loader, 3, 0.1, "cpu", amp=None, checkpoint=ckpt, progress=False)
    assert e.value.reason == "other_settings" and "amp" in str(e.value)


def test_checkpoint_of_the_old_format_is_refused(tmp_path):
    """格式 1 的检查点没有随机数状态，续训与不中断的训练不同：明确拒绝，说明删掉它。"""
    ckpt = tmp_path / "old.ckpt"
    torch.save({"format": "cnnlib-checkpoint-1", "model": {}}, ckpt)
    loader = DataLoader(random_data(64, 0), batch_size=32)
    with pytest.raises(cnnlib.CheckpointError) as e:
        cnnlib.train(linear(), loader, loader, 1, 0.1, "cpu", checkpoint=ckpt, progress=False)
    assert (e.value.reason, e.value.path) == ("old_format", ckpt) and str(ckpt) in str(e.value)


def test_checkpoint_of_another_model_or_config_is_refused(fashion_mnist, tmp_path):
    ckpt = tmp_path / "a.ckpt"
    train_iter, test_iter = small(256, 128)
    cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 1, 1.0, "cpu", checkpoint=ckpt, progress=False)
    with pytest.raises(cnnlib.CheckpointError) as e:
        cnnlib.train(cnnlib.lenet_bn(num_classes=5), train_iter, test_iter, 2, 1.0, "cpu",
                     checkpoint=ckpt, progress=False)
    assert (e.value.reason, e.value.path) == ("other_model", ckpt)
    with pytest.raises(cnnlib.CheckpointError) as e:
        cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 2, 0.5, "cpu", checkpoint=ckpt, progress=False)
    assert (e.value.reason, e.value.path) == ("other_settings", ckpt)
    assert "lr" in str(e.value) and "0.5" in str(e.value) and str(ckpt) in str(e.value)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_tampered_checkpoint_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "evil.ckpt"
    loader = DataLoader(random_data(64, 0), batch_size=32)

    def resume():
        with pytest.raises(cnnlib.CheckpointError) as e:
            cnnlib.train(linear(), loader, loader, 1, 1.0, "cpu", checkpoint=ckpt, progress=False)
        assert e.value.path == ckpt and str(ckpt) in str(e.value)
        return e.value.reason

    torch.save({"format": "cnnlib-checkpoint-1", "model": Evil()}, ckpt)
    assert resume() == "unreadable"
    assert not (tmp_path / "pwned").exists(), "检查点里的代码被执行了"
    ckpt.write_bytes(b"not a checkpoint at all")
    assert resume() == "unreadable"
    torch.save({"weights": torch.zeros(3)}, ckpt)  # 能安全读取，但不是 cnnlib 的检查点
    assert resume() == "not_a_checkpoint"


@pytest.mark.slow
def test_killed_process_resumes_from_checkpoint(fashion_mnist, tmp_path):
    """真的 SIGKILL：第一轮的检查点一出现就杀掉进程，再运行同一脚本续训到底。

    网络有暂退法与批量规范化；续训的结果与本进程里不中断地训练 4 轮比较参数（相差不超过 1e-6）。
    """
    ckpt, final = tmp_path / "run.ckpt", tmp_path / "final.pt"
    script = tmp_path / "run.py"
    script.write_text("import os, time\nimport torch\nfrom torch import nn\nimport cnnlib\n\n"
                      + inspect.getsource(dropout_bn_net) + textwrap.dedent(f"""

        class Slow(cnnlib.FashionMNISTIter):
            # 第一次运行：检查点写好以后每批停一下，让“已有检查点、训练还没结束”的窗口足够宽，杀进程不必抢时间
            def __iter__(self):
                for batch in super().__iter__():
                    if os.path.exists({str(ckpt)!r}):
                        time.sleep(0.2)
                    yield batch

        tr, te = cnnlib.load_fashion_mnist(64, num_train=512, num_test=128, device="cpu", download=False)
        if os.environ.get("SLOW"):
            tr.__class__ = Slow
        torch.manual_seed(0)
        net = dropout_bn_net()
        cnnlib.train(net, tr, te, 4, 0.5, "cpu", amp=None, checkpoint={str(ckpt)!r}, progress=False)
        torch.save(net.state_dict(), {str(final)!r})
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script)], env={**env, "SLOW": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail(f"进程在第一个检查点出现之前就结束了（状态 {proc.returncode}）：{proc.stderr.read()[-2000:]}")
    if not ckpt.exists():
        proc.kill()
        pytest.fail(f"120 秒内没有出现第一轮的检查点 {ckpt}：机器太忙，或者训练卡住了。"
                    f"{proc.communicate()[1][-2000:]}")
    proc.send_signal(signal.SIGKILL)  # 第一轮的检查点刚写好，就把进程杀掉
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"进程在被杀之前就结束了（{proc.returncode}）：{err[-2000:]}"
    done = torch.load(ckpt, weights_only=True)["history"]["test_acc"]
    assert 1 <= len(done) < 4 and not final.exists(), done
    again = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert str(ckpt) in again.stdout  # 说明从哪个检查点继续
    tr, te = small(512, 128)  # 对照：同样的脚本内容，本进程里不中断地训练 4 轮
    torch.manual_seed(0)
    straight = dropout_bn_net()
    cnnlib.train(straight, tr, te, 4, 0.5, "cpu", amp=None, progress=False)
    resumed = dropout_bn_net()
    resumed.load_state_dict(torch.load(final, weights_only=True))
    assert_same_parameters(straight, resumed, f"杀掉进程（完成 {len(done)} 轮时）再续训后")


# ---- Ctrl-C ----
class InterruptingIter(cnnlib.FashionMNISTIter):
    """第 2 轮的第 3 批时模拟 Ctrl-C。"""

    def __iter__(self):
        for i, batch in enumerate(super().__iter__()):
            if self.epoch == 2 and i == 2:
                raise KeyboardInterrupt
            yield batch


def test_keyboard_interrupt_returns_history_so_far(fashion_mnist, tmp_path, capsys):
    ckpt = tmp_path / "ctrl-c.ckpt"
    train_iter, test_iter = small(512, 128)
    train_iter.__class__ = InterruptingIter
    net = linear()
    h = cnnlib.train(net, train_iter, test_iter, 5, 0.1, "cpu", checkpoint=ckpt, progress=False)
    assert h.interrupted and h.epochs == 1
    assert torch.load(ckpt, weights_only=True)["history"]["train_loss"] == h.train_loss  # 检查点停在第 1 轮末
    out = capsys.readouterr().out
    assert h.summary() in out and str(ckpt) in out   # 照常打印总结，并说明检查点保存的是哪一轮
    train_iter.__class__ = cnnlib.FashionMNISTIter
    h2 = cnnlib.train(linear(), train_iter, test_iter, 2, 0.1, "cpu", checkpoint=ckpt, progress=False)
    assert not h2.interrupted and h2.epochs == 2 and h2.train_loss[0] == h.train_loss[0]


# ---- 平台期提示 ----
def _zero(module):
    if isinstance(module, nn.Linear):
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)


def test_plateau_hint_on_a_constructed_plateau(capsys):
    # 权重全为 0、学习率极小：输出恒为 0，预测是均匀分布，损失恒为 ln 10
    loader = DataLoader(random_data(512, 0), batch_size=64)
    h = cnnlib.train(linear(), loader, loader, 2, 1e-9, "cpu", init=_zero, progress=False)
    assert h.train_loss == pytest.approx([2.302585] * 2, abs=1e-4)
    out = capsys.readouterr().out
    hint = [line for line in out.splitlines() if line == plateau_hint(h.train_loss, 10)]
    assert len(hint) == 1 and "ln 10" in hint[0] and "kaiming_init" in hint[0]


def test_plateau_hint_rule():
    assert plateau_hint([2.31, 2.29], 10) is not None
    assert plateau_hint([2.31, 1.90], 10) is None           # 离开了平台期
    assert plateau_hint([0.69], 2) is not None             # ln 2
    assert plateau_hint([float("nan")], 10) is None
    assert plateau_hint([], 10) is None and plateau_hint([2.30], 1) is None


# ---- CPU 上的精度选择（决定规则本身不靠计时的测试在 tests/test_speed.py）----
def test_cpu_probe_leaves_the_global_random_state_alone(monkeypatch):
    monkeypatch.setattr(speed, "_cpu_probe", {})
    monkeypatch.delenv("CNNLIB_AMP", raising=False)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    cnnlib.resolve_speed_options(torch.device("cpu"))  # 第一次调用会运行探针
    assert speed._cpu_probe, "探针没有运行，这个测试什么也没检查"
    assert torch.equal(torch.rand(3), expected)


def test_amp_arguments_and_env_force_the_choice(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(speed, "probe_cpu_bf16", lambda: pytest.fail("环境变量已决定精度，不应运行探针"))
    monkeypatch.setenv("CNNLIB_AMP", "bf16")
    assert cnnlib.resolve_speed_options(cpu)[0] == "bf16"
    monkeypatch.setenv("CNNLIB_AMP", "fp32")
    assert cnnlib.resolve_speed_options(cpu)[0] is None
    assert cnnlib.resolve_speed_options(cpu, amp="bf16")[0] == "bf16"   # 显式参数优先于环境变量
    monkeypatch.setenv("CNNLIB_AMP", "fp8")
    with pytest.raises(ValueError, match="CNNLIB_AMP='fp8'"):
        cnnlib.resolve_speed_options(cpu)
    assert cnnlib.resolve_speed_options(cpu, amp=None)[0] is None


@pytest.mark.slow
def test_bf16_run_still_learns(fashion_mnist, capsys):
    train_iter, test_iter = small(2000, 500)
    h = cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 2, 0.3, "cpu", amp="bf16", progress=False)
    assert h.precision == "bf16" and ", bf16" in capsys.readouterr().out
    assert h.test_acc[-1] > 0.4, h.test_acc  # 随机猜是 0.1；实测约 0.6
    assert h.train_loss[-1] < 0.8 * h.train_loss[0], h.train_loss


def test_cpu_probe_script_runs_and_its_decision_follows_its_numbers():
    """README 让读者运行 benchmarks/cpu_probe.py：它能运行，而且打印的选择与它打印的加速比、阈值一致。"""
    env = {k: v for k, v in os.environ.items() if k != "CNNLIB_AMP"}  # 让探针决定
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cpu_probe.py")], capture_output=True, text=True,
                       env={**env, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    fp32, bf16, speedup = map(float, re.search(r"fp32 ([\d.]+) ms，bf16 ([\d.]+) ms，bf16 快 ([\d.]+) 倍",
                                               r.stdout).groups())
    threshold, chosen = re.search(r"阈值 ([\d.]+) 倍 → amp=\"auto\" 选择 (\w+)", r.stdout).groups()
    assert float(threshold) == speed.BF16_MIN_SPEEDUP
    assert speedup == pytest.approx(fp32 / bf16, rel=0.02, abs=0.01), r.stdout  # 两位小数的舍入
    if abs(speedup - speed.BF16_MIN_SPEEDUP) > 0.005:  # 恰好舍入到阈值上时，打印的两位小数分不出两边
        assert chosen == ("bf16" if speedup >= speed.BF16_MIN_SPEEDUP else "fp32"), r.stdout
