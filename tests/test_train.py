"""训练循环：在真实数据的小子集上确实学到东西；NaN、错误分辨率、检查点、中断都有清楚的处理。"""

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
