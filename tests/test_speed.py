"""精度与内存布局的选择（cnnlib.speed），不需要 GPU：CUDA 设备的属性是假的，CPU 探针的用时是注入的。

期望值来自各代 GPU 的公开规格（计算能力、有没有张量核心），不是来自被测的代码。
"""

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import cnnlib
from cnnlib import speed

ROOT = Path(__file__).resolve().parent.parent
GIB = 1024 ** 3

# (型号名, 计算能力, amp="auto" 应得的精度, channels_last)。计算能力来自 NVIDIA 的 CUDA GPU 列表；
# 张量核心：Volta（7.0）起有 fp16，Ampere（8.0）起才有 bf16；GTX 16xx 是没有张量核心的 Turing
GPUS = [
    ("Tesla P100-PCIE-16GB", (6, 0), None, False),
    ("NVIDIA GeForce GTX 1060 6GB", (6, 1), None, False),
    ("Tesla V100-SXM2-16GB", (7, 0), "fp16", True),
    ("Tesla T4", (7, 5), "fp16", True),
    ("NVIDIA GeForce RTX 2060", (7, 5), "fp16", True),
    ("NVIDIA GeForce GTX 1660 Ti", (7, 5), None, False),
    ("NVIDIA A100-SXM4-40GB", (8, 0), "bf16", True),
    ("NVIDIA GeForce RTX 3060 Laptop GPU", (8, 6), "bf16", True),
    ("NVIDIA L4", (8, 9), "bf16", True),
    ("NVIDIA H100 80GB HBM3", (9, 0), "bf16", True),
]


def fake_cuda(monkeypatch, name: str, capability: tuple[int, int], memory: int = 16 * GIB) -> list:
    """让 torch 以为有一块 ``name`` GPU：替换设备属性；``is_bf16_supported`` 照 T4 上的真实行为返回 True。

    返回一个列表，记下 ``get_device_properties`` 每次被问到的设备。
    """
    asked = []

    def properties(device=None):
        asked.append(device)
        return SimpleNamespace(name=name, major=capability[0], minor=capability[1], total_memory=memory)

    monkeypatch.setattr(torch.cuda, "get_device_properties", properties)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # 含模拟时在 T4 上也是 True
    monkeypatch.delenv("CNNLIB_AMP", raising=False)
    return asked


@pytest.mark.parametrize("name, capability, amp, channels_last", GPUS, ids=[g[0] for g in GPUS])
def test_each_gpu_generation_gets_its_native_precision(monkeypatch, name, capability, amp, channels_last):
    asked = fake_cuda(monkeypatch, name, capability)
    chosen = cnnlib.choose_speed_options(torch.device("cuda:1"))
    assert (chosen.amp, chosen.channels_last) == (amp, channels_last), chosen.reason
    assert cnnlib.resolve_speed_options(torch.device("cuda:1")) == (amp, channels_last)
    # 读的是参数给的那块 GPU，不是当前设备
    assert asked and all(torch.device(d) == torch.device("cuda:1") for d in asked)
    assert chosen.reason  # 环境检查会打印理由


def test_auto_never_picks_bf16_below_compute_capability_8(monkeypatch):
    for major in range(3, 8):
        for minor in range(0, 10):
            fake_cuda(monkeypatch, "NVIDIA Some GPU", (major, minor))
            amp, channels_last = cnnlib.resolve_speed_options(torch.device("cuda"))
            assert amp != "bf16", (major, minor)
            assert channels_last == (amp is not None), (major, minor)  # NHWC 只和半精度一起开
    fake_cuda(monkeypatch, "NVIDIA Some GPU", (8, 0))
    assert cnnlib.resolve_speed_options(torch.device("cuda"))[0] == "bf16"


def test_explicit_choices_and_env_on_a_gpu(monkeypatch):
    fake_cuda(monkeypatch, "Tesla T4", (7, 5))
    cuda = torch.device("cuda")
    assert cnnlib.resolve_speed_options(cuda, amp=None) == (None, False)      # fp32：不换布局
    assert cnnlib.resolve_speed_options(cuda, amp=None, channels_last=True) == (None, True)
    with pytest.warns(UserWarning, match="没有原生 bf16"):
        assert cnnlib.resolve_speed_options(cuda, amp="bf16")[0] == "bf16"   # 照办，但提醒会很慢
    monkeypatch.setenv("CNNLIB_AMP", "fp32")
    assert cnnlib.resolve_speed_options(cuda) == (None, False)
    monkeypatch.setenv("CNNLIB_AMP", "fp16")
    assert cnnlib.resolve_speed_options(cuda)[0] == "fp16"
    assert cnnlib.resolve_speed_options(cuda, amp=None)[0] is None           # 显式参数优先于环境变量


def test_fp16_is_refused_off_cuda(monkeypatch):
    monkeypatch.setenv("CNNLIB_AMP", "fp16")
    with pytest.raises(ValueError, match="amp='fp16' 只用于 CUDA GPU.*CNNLIB_AMP"):
        cnnlib.resolve_speed_options(torch.device("cpu"))


def test_mps_gets_float32_without_channels_last(monkeypatch):
    monkeypatch.delenv("CNNLIB_AMP", raising=False)
    assert cnnlib.resolve_speed_options(torch.device("mps")) == (None, False)


# ---- CPU：决定只看两个实测用时 ----
@pytest.mark.parametrize("fp32, bf16, expected", [
    (1.0, 1.0, None),            # 一样快
    (1.0, 3.0, None),            # 没有 bf16 指令：慢三倍
    (1.0, 1 / 1.29, None),       # 差一点点不到阈值
    (1.3, 1.0, "bf16"),          # 正好是阈值
    (1.0, 1 / 1.31, "bf16"),     # 刚过阈值
    (2.0, 1.0, "bf16"),          # AMX：快一倍
])
def test_cpu_decision_is_a_pure_function_of_the_measured_times(fp32, bf16, expected):
    assert speed.BF16_MIN_SPEEDUP == 1.3  # 下面的期望值按书中写的阈值 1.3 倍列出
    assert speed.choose_cpu_precision(fp32, bf16) == expected


@pytest.mark.parametrize("speedup, expected", [(1.25, None), (1.35, "bf16")])
def test_auto_on_cpu_follows_the_injected_probe(monkeypatch, speedup, expected):
    monkeypatch.delenv("CNNLIB_AMP", raising=False)
    times = {"fp32": speedup * 1e-3, "bf16": 1e-3, "speedup": speedup}
    monkeypatch.setattr(speed, "probe_cpu_bf16", lambda: dict(times))
    chosen = cnnlib.choose_speed_options(torch.device("cpu"))
    assert (chosen.amp, chosen.channels_last) == (expected, True)
    assert f"{speedup:.2f} 倍" in chosen.reason


# ---- 关闭混合精度时没有 autocast 对象 ----
def test_no_autocast_object_when_mixed_precision_is_off(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("amp=None 时不应建 torch.autocast（较老的 torch 在 MPS 上会因此报错）")

    monkeypatch.setattr(torch, "autocast", refuse)
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 1, 4, 4, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(3)]
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    h = cnnlib.train(net, data, data, 2, 0.1, "cpu", amp=None, progress=False, plot=False)
    assert h.epochs == 2 and h.precision == "fp32"
    with pytest.raises(AssertionError, match="不应建"):  # 对照：开了混合精度就会用到它
        with speed.autocast(torch.device("cpu"), "bf16"):
            pass


# ---- plot=True 在普通的 python 进程里 ----
SCRIPT = textwrap.dedent("""
    import torch, cnnlib
    torch.manual_seed(0)
    data = [(torch.randn(16, 1, 4, 4), torch.randint(0, 3, (16,))) for _ in range(4)]
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    h = cnnlib.train(net, data, data, 2, 0.1, "cpu", plot=True, progress=False)
    print("epochs", h.epochs)
""")


def test_plot_true_in_a_plain_python_process_saves_a_png(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MPLBACKEND": "Agg", "CNNLIB_AMP": "fp32",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "epochs 2" in r.stdout, (r.stdout, r.stderr)
    saved = [line.split("训练曲线已保存到 ", 1)[1].split("（", 1)[0] for line in r.stdout.splitlines()
             if "训练曲线已保存到 " in line]
    assert len(saved) == 1, r.stdout
    png = Path(saved[0])
    assert png.parent == tmp_path and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _BrokenPlot:
    """关闭时出错的曲线：检查 Monitor 不让它盖住训练的错误或丢掉训练的记录。"""

    def __init__(self, *args, **kwargs) -> None:
        pass

    def add(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        raise RuntimeError("曲线关不掉")


def test_a_failing_close_never_hides_the_first_error(monkeypatch):
    monkeypatch.setattr(cnnlib.plot, "LivePlot", _BrokenPlot)

    class Fails(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, X):
            raise ValueError("第一个错误")

    data = [(torch.randn(4, 1, 4, 4), torch.zeros(4, dtype=torch.long))]
    with pytest.warns(UserWarning, match="关闭训练曲线时出错"), pytest.raises(ValueError, match="第一个错误"):
        cnnlib.train(Fails(), data, data, 1, 0.1, "cpu", amp=None, plot=True, progress=False, init=None)


def test_a_failing_close_does_not_lose_the_history(monkeypatch):
    monkeypatch.setattr(cnnlib.plot, "LivePlot", _BrokenPlot)
    data = [(torch.randn(4, 1, 4, 4), torch.zeros(4, dtype=torch.long))]
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    with pytest.warns(UserWarning, match="曲线关不掉"):
        h = cnnlib.train(net, data, data, 1, 0.1, "cpu", amp=None, plot=True, progress=False)
    assert h.epochs == 1
