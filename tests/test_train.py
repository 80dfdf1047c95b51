"""训练循环：在真实数据的小子集上确实学到东西；NaN、错误分辨率、检查点、中断都有清楚的处理。"""

import importlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import cnnlib
from cnnlib import data

pytestmark = pytest.mark.skipif(not data.DEBIAN_DIR.is_dir(),
                                reason="需要 Debian 软件包 dataset-fashion-mnist")

ROOT = Path(__file__).resolve().parents[1]


def small(n_train=3000, n_test=1000, batch_size=256, resize=None):
    return cnnlib.load_fashion_mnist(batch_size, resize=resize, num_train=n_train, num_test=n_test,
                                     device="cpu", download=False)


def test_train_learns_and_history_is_right(capsys):
    train_iter, test_iter = small(10000, 1000)
    h = cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 3, 0.1, "cpu", progress=False)
    assert h.epochs == 3 and len(h.test_acc) == len(h.epoch_time) == len(h.examples_per_sec) == 3
    assert (h.num_train, h.num_test, h.total_train, h.total_test) == (10000, 1000, 60000, 10000)
    assert h.test_acc[-1] > 0.45, h.test_acc          # 随机猜是 0.1；实测约 0.6
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.device.startswith("cpu (") and not h.interrupted
    assert h.overall_examples_per_sec == pytest.approx(3 * 10000 / h.wall_time)
    out = capsys.readouterr().out
    assert f"loss {h.train_loss[-1]:.3f}, train acc {h.train_acc[-1]:.3f}, test acc {h.test_acc[-1]:.3f}" in out
    assert "examples/sec on cpu" in out and "10,000/60,000" in out
    assert "平台期" not in out  # 学到东西的训练不打印平台期提示
    # 独立地再算一次测试准确率
    assert cnnlib.evaluate_accuracy(cnnlib.lenet_bn(), test_iter) < 0.5  # 未训练的网络
    assert h.to_dict()["test_acc"] == h.test_acc


def test_init_none_keeps_weights():
    train_iter, test_iter = small(512, 256)
    net = cnnlib.lenet_bn()
    w = net[0].weight.detach().clone()
    cnnlib.train(net, train_iter, test_iter, 1, 1e-9, "cpu", init=None, progress=False)
    torch.testing.assert_close(net[0].weight.detach().contiguous(), w, rtol=0, atol=1e-6)


def test_nan_loss_stops_with_epoch_and_batch():
    train_iter, test_iter = small(1024, 256)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with torch.no_grad():
        net[1].weight[0, 0] = float("nan")
    with pytest.raises(cnnlib.TrainingDivergedError, match="第 1 轮第 1 批的损失变成了 NaN") as e:
        cnnlib.train(net, train_iter, test_iter, 2, 0.1, "cpu", init=None, progress=False)
    assert "lr=0.01" in str(e.value)
    assert e.value.history.epochs == 0


def test_wrong_resolution_is_refused_before_training():
    train_iter, test_iter = small(256, 128)  # 28×28
    with pytest.raises(ValueError, match=r"28×28 不适合.*224×224"):
        cnnlib.train(cnnlib.alexnet(), train_iter, test_iter, 1, 0.01, "cpu", progress=False)


def test_bad_hyperparameters():
    train_iter, test_iter = small(256, 128)
    with pytest.raises(ValueError, match="lr=-0.1"):
        cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 1, -0.1, "cpu")
    with pytest.raises(ValueError, match="num_epochs=0"):
        cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 0, 0.1, "cpu")
    with pytest.raises(ValueError, match="amp='fp8'"):
        cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 1, 0.1, "cpu", amp="fp8")


def test_checkpoint_resume_in_process(tmp_path, capsys):
    ckpt = tmp_path / "lenet.ckpt"
    train_iter, test_iter = small(1024, 256)
    h1 = cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 2, 1.0, "cpu", checkpoint=ckpt,
                      progress=False)
    assert ckpt.exists() and not (tmp_path / "lenet.ckpt.tmp").exists()
    h2 = cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 3, 1.0, "cpu", checkpoint=ckpt,
                      progress=False)
    assert "从检查点" in capsys.readouterr().out
    assert h2.epochs == 3 and h2.test_acc[:2] == h1.test_acc


def test_checkpoint_of_another_model_or_config_is_refused(tmp_path):
    ckpt = tmp_path / "a.ckpt"
    train_iter, test_iter = small(512, 256)
    cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 1, 1.0, "cpu", checkpoint=ckpt, progress=False)
    with pytest.raises(cnnlib.CheckpointError, match="另一个模型"):
        cnnlib.train(cnnlib.lenet_bn(num_classes=5), train_iter, test_iter, 2, 1.0, "cpu",
                     checkpoint=ckpt, progress=False)
    with pytest.raises(cnnlib.CheckpointError, match="lr：检查点为 1.0，现在为 0.5"):
        cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 2, 0.5, "cpu", checkpoint=ckpt,
                     progress=False)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_tampered_checkpoint_is_refused_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"format": "cnnlib-checkpoint-1", "model": Evil()}, ckpt)
    train_iter, test_iter = small(256, 128)
    with pytest.raises(cnnlib.CheckpointError, match="无法安全读取"):
        cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 1, 1.0, "cpu", checkpoint=ckpt,
                     progress=False)
    assert not (tmp_path / "pwned").exists()
    ckpt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(cnnlib.CheckpointError, match="损坏或被篡改"):
        cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 1, 1.0, "cpu", checkpoint=ckpt,
                     progress=False)


class InterruptingIter(cnnlib.FashionMNISTIter):
    """第 2 轮的第 3 批时模拟 Ctrl-C。"""

    def __iter__(self):
        for i, batch in enumerate(super().__iter__()):
            if self.epoch == 2 and i == 2:
                raise KeyboardInterrupt
            yield batch


def test_keyboard_interrupt_returns_history_so_far(capsys):
    train_iter, test_iter = small(1024, 256)
    train_iter.__class__ = InterruptingIter
    h = cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 5, 1.0, "cpu", progress=False)
    assert h.interrupted and h.epochs == 1
    assert "训练在第 2 轮完成 2 批后被中断" in capsys.readouterr().out


def test_killed_process_resumes_from_checkpoint(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import cnnlib
        tr, te = cnnlib.load_fashion_mnist(256, num_train=6000, num_test=500, device="cpu", download=False)
        h = cnnlib.train(cnnlib.lenet_bn(), tr, te, 6, 1.0, "cpu", checkpoint={str(ckpt)!r}, progress=False)
        print("EPOCHS", h.epochs)
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # 第一轮的检查点刚写好，就把进程杀掉
    proc.wait()
    done = torch.load(ckpt, weights_only=True)["history"]
    assert 1 <= len(done["test_acc"]) < 6
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert f"已完成 {len(done['test_acc'])} 轮" in out and "EPOCHS 6" in out


def _zero(module):
    if isinstance(module, nn.Linear):
        nn.init.zeros_(module.weight)
        nn.init.zeros_(module.bias)


def test_plateau_hint_on_a_constructed_plateau(capsys):
    # 权重全为 0、学习率极小：输出恒为 0，预测是均匀分布，损失恒为 ln 10
    train_iter, test_iter = small(512, 128)
    net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    h = cnnlib.train(net, train_iter, test_iter, 2, 1e-9, "cpu", init=_zero, progress=False)
    assert h.train_loss == pytest.approx([2.302585] * 2, abs=1e-4)
    out = capsys.readouterr().out
    hint = [line for line in out.splitlines() if "平台期" in line]
    assert len(hint) == 1 and "ln 10" in hint[0] and "7.3" in hint[0] and "kaiming_init" in hint[0]


def test_plateau_hint_rule():
    from cnnlib.train import plateau_hint
    assert plateau_hint([2.31, 2.29], 10) is not None
    assert plateau_hint([2.31, 1.90], 10) is None           # 离开了平台期
    assert plateau_hint([0.69], 2) is not None             # ln 2
    assert plateau_hint([float("nan")], 10) is None


def _conv_step_seconds(bf16: bool, conv, X) -> float:
    t = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        y = conv(X)
    y.float().sum().backward()
    return time.perf_counter() - t


def test_cpu_probe_agrees_with_a_direct_measurement(monkeypatch):
    train_module = importlib.import_module("cnnlib.train")  # cnnlib.train 这个名字是函数
    monkeypatch.delenv("CNNLIB_AMP", raising=False)
    monkeypatch.setattr(train_module, "_cpu_probe", {})
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
    assert (chosen == "bf16") == (direct >= train_module.BF16_MIN_SPEEDUP), (probe, direct)


def test_cpu_probe_leaves_the_global_random_state_alone(monkeypatch):
    train_module = importlib.import_module("cnnlib.train")
    monkeypatch.setattr(train_module, "_cpu_probe", {})
    monkeypatch.delenv("CNNLIB_AMP", raising=False)
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    cnnlib.resolve_speed_options(torch.device("cpu"))  # 第一次调用会运行探针
    assert torch.equal(torch.rand(3), expected)


def test_amp_arguments_and_env_force_the_choice(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("CNNLIB_AMP", "bf16")
    assert cnnlib.resolve_speed_options(cpu)[0] == "bf16"
    monkeypatch.setenv("CNNLIB_AMP", "fp32")
    assert cnnlib.resolve_speed_options(cpu)[0] is None
    assert cnnlib.resolve_speed_options(cpu, amp="bf16")[0] == "bf16"   # 显式参数优先于环境变量
    monkeypatch.setenv("CNNLIB_AMP", "fp8")
    with pytest.raises(ValueError, match="CNNLIB_AMP='fp8'"):
        cnnlib.resolve_speed_options(cpu)
    assert cnnlib.resolve_speed_options(cpu, amp=None)[0] is None


def test_bf16_run_still_learns(capsys):
    train_iter, test_iter = small(4000, 500)
    h = cnnlib.train(cnnlib.lenet_bn(), train_iter, test_iter, 2, 1.0, "cpu", amp="bf16", progress=False)
    assert h.precision == "bf16" and ", bf16" in capsys.readouterr().out
    assert h.test_acc[-1] > 0.4, h.test_acc  # 随机猜是 0.1；实测约 0.5
    assert h.train_loss[-1] < 0.8 * h.train_loss[0], h.train_loss
