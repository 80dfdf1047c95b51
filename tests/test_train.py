"""训练循环：在真实数据的小子集上确实学到东西；NaN、错误分辨率、检查点、中断都有清楚的处理。

报错的测试断言结构化的字段（``TrainingDivergedError.epoch/.batch``、``CheckpointError.reason/.path``）
与消息里的坏值（``"lr=-0.1"``），不比对整句中文。
"""

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
    # 用训练好的网络再算一次测试准确率：evaluate_accuracy 与逐批手算的都应等于记录的最后一轮
    assert cnnlib.evaluate_accuracy(net, test_iter) == h.test_acc[-1]
    net.eval()
    with torch.no_grad():
        correct = sum(int((net(X).argmax(dim=1) == y).sum()) for X, y in test_iter)
    assert correct / 500 == pytest.approx(h.test_acc[-1], abs=2 / 500)


def test_plain_dataloader_is_counted(capsys):
    """任何产出 (X, y) 的可迭代对象：样本数在训练时数出来，而不是读迭代器的属性。"""
    train_loader = DataLoader(random_data(512, 1), batch_size=64, shuffle=True)
    test_loader = DataLoader(random_data(128, 2), batch_size=100)  # 100 + 28：最后一批不满也要数上
    net = linear()
    h = cnnlib.train(net, train_loader, test_loader, 2, 0.1, "cpu", progress=False)
    assert (h.num_train, h.num_test, h.total_train, h.total_test) == (512, 128, 512, 128)
    assert all(v > 0 for v in h.examples_per_sec) and h.overall_examples_per_sec > 0
    out = capsys.readouterr().out
    assert "512/512" in out and "128/128" in out, out
    speeds = [float(s.replace(",", "")) for s in re.findall(r"([\d,.]+) examples/sec", out)]
    assert len(speeds) == 1 and speeds[0] > 0, out
    assert cnnlib.evaluate_accuracy(net, test_loader) == h.test_acc[-1]


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
                        (dict(num_epochs=1, lr=0.1, amp="fp16"), "amp='fp16'")):  # fp16 只用于 CUDA
        with pytest.raises(ValueError) as e:
            cnnlib.train(linear(), loader, loader, device="cpu", progress=False, **kwargs)
        assert bad in str(e.value), f"{kwargs}：消息里没有坏值 {bad!r}：{e.value}"


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


# ---- 检查点 ----
def test_checkpoint_resume_equals_an_uninterrupted_run(fashion_mnist, tmp_path, capsys):
    ckpt = tmp_path / "lenet.ckpt"
    train_iter, test_iter = small(512, 128)
    torch.manual_seed(0)
    straight = cnnlib.lenet_bn()
    h_straight = cnnlib.train(straight, train_iter, test_iter, 3, 1.0, "cpu", progress=False)
    torch.manual_seed(0)
    h1 = cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 2, 1.0, "cpu", checkpoint=ckpt, progress=False)
    assert ckpt.exists() and not (tmp_path / "lenet.ckpt.tmp").exists()
    resumed = cnnlib.lenet_bn()  # 新建的网络：参数、移动统计量与记录都从检查点来
    h2 = cnnlib.train(resumed, train_iter, test_iter, 3, 1.0, "cpu", checkpoint=ckpt, progress=False)
    assert str(ckpt) in capsys.readouterr().out   # 说明从哪个检查点继续
    assert h2.epochs == 3 and h2.test_acc[:2] == h1.test_acc
    assert h2.train_loss == pytest.approx(h_straight.train_loss, rel=1e-5)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=f"续训后的 {name} 与不中断的训练不同")


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
    """真的 SIGKILL：第一轮的检查点一出现就杀掉进程，再运行同一脚本，从那里续训到底。"""
    ckpt = tmp_path / "run.ckpt"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, time
        import cnnlib

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
        h = cnnlib.train(cnnlib.lenet_bn(), tr, te, 4, 1.0, "cpu", checkpoint={str(ckpt)!r}, progress=False)
        print("HISTORY", json.dumps(h.test_acc))
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CNNLIB_AMP": "fp32", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script)], env={**env, "SLOW": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # 第一轮的检查点刚写好，就把进程杀掉
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"进程在被杀之前就结束了（{proc.returncode}）：{err[-2000:]}"
    done = torch.load(ckpt, weights_only=True)["history"]["test_acc"]
    assert 1 <= len(done) < 4, done
    again = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert str(ckpt) in again.stdout
    history = json.loads(again.stdout.split("HISTORY", 1)[1])
    assert len(history) == 4 and history[:len(done)] == done, (done, history)


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


# ---- CPU 上的精度选择 ----
def _conv_step_seconds(bf16: bool, conv, X) -> float:
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = conv(X)
    y.float().sum().backward()
    return time.perf_counter() - t


@pytest.mark.slow
def test_cpu_probe_agrees_with_a_direct_measurement(monkeypatch):
    monkeypatch.delenv("CNNLIB_AMP", raising=False)
    monkeypatch.setattr(speed, "_cpu_probe", {})
    probe = cnnlib.probe_cpu_bf16()
    assert probe["fp32"] > 0 and probe["bf16"] > 0
    # 独立测量：更大的卷积（16×64×28×28）、ResNet 的 3×3 形状，交替 3 次取最快
    conv = nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)
    X = torch.randn(16, 64, 28, 28).contiguous(memory_format=torch.channels_last)
    best = {False: float("inf"), True: float("inf")}
    for r in range(4):
        for bf16 in best:
            t = _conv_step_seconds(bf16, conv, X)
            if r:
                best[bf16] = min(best[bf16], t)
    direct = best[False] / best[True]
    if 1.1 < direct < 1.6 or 1.1 < probe["speedup"] < 1.6:
        pytest.skip(f"两种精度太接近（探针 {probe['speedup']:.2f}×，直接测量 {direct:.2f}×），阈值两边都说得通")
    chosen, _ = cnnlib.resolve_speed_options(torch.device("cpu"))
    assert (chosen == "bf16") == (direct >= speed.BF16_MIN_SPEEDUP), (probe, direct)


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
