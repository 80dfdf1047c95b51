"""环境检查（cnnlib.check_environment）与设备名（cnnlib.device_name）。

平台、GPU 与 PyTorch 的内核架构都是假的：环境变量、``sys.modules['google.colab']``、CUDA 的设备属性与
``torch.cuda.get_arch_list()``。期望值来自公开规格（P100 是 sm_60、16 GiB；T4 是 sm_75）与平台的菜单名。
"""

import importlib.metadata
import platform
import sys
import types
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import cnnlib
from cnnlib import device as cnnlib_device
from cnnlib import environment
from conftest import skip_or_fail

GIB = 1024 ** 3
# Kaggle 现在的镜像里 PyTorch 的内核架构（不含 sm_60）；本机装的 torch 2.14 也是这样
KAGGLE_ARCHS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


@pytest.fixture
def local(monkeypatch):
    """本机、没有平台的环境变量；精度固定为 fp32（不运行 CPU 探针）。"""
    for name in ("COLAB_RELEASE_TAG", "KAGGLE_KERNEL_RUN_TYPE", "KAGGLE_URL_BASE", "CNNLIB_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setenv("CNNLIB_AMP", "fp32")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def fake_gpu(monkeypatch, name: str, capability: tuple[int, int], memory_bytes: int, archs: list[str]) -> None:
    props = SimpleNamespace(name=name, major=capability[0], minor=capability[1], total_memory=memory_bytes)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(archs))
    monkeypatch.delenv("CNNLIB_AMP", raising=False)


def test_colab_without_a_gpu_says_how_to_switch_it_on(local, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    report = cnnlib.check_environment()
    assert report.platform == "Colab" and report.device == "cpu"
    [warning] = [w for w in report.warnings if "GPU" in w]
    assert "没有 GPU" in warning and "更改运行时类型" in warning and "T4" in warning
    assert warning in capsys.readouterr().out


def test_kaggle_without_a_gpu_names_the_kaggle_menu(local, monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    report = cnnlib.check_environment()
    assert report.platform == "Kaggle"
    assert any("Accelerator" in w and "GPU T4 x2" in w for w in report.warnings), report.warnings


def test_a_local_cpu_gets_no_gpu_warning(local):
    report = cnnlib.check_environment()
    assert report.platform == "本机" and report.warnings == ()
    assert report.profile.startswith("cpu") and report.precision == "fp32"


def test_p100_on_kaggle_without_sm_60_kernels(local, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    fake_gpu(monkeypatch, "Tesla P100-PCIE-16GB", (6, 0), 16 * GIB, KAGGLE_ARCHS)
    report = cnnlib.check_environment()
    assert (report.device, report.capability, report.device_label) == ("cuda", (6, 0), "Tesla P100-PCIE-16GB")
    assert report.precision == "fp32" and not report.channels_last   # Pascal：没有张量核心
    [warning] = report.warnings
    assert "no kernel image is available for execution on the device" in warning
    assert "sm_60" in warning and "GPU T4 x2" in warning
    out = capsys.readouterr().out
    assert "计算能力 6.0" in out and "显存 16.0 GiB" in out and "运行配置：full" in out


def test_t4_with_the_same_build_gets_fp16_and_no_warning(local, monkeypatch):
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")
    fake_gpu(monkeypatch, "Tesla T4", (7, 5), 15 * GIB, KAGGLE_ARCHS)
    report = cnnlib.check_environment("resnet18")
    assert report.warnings == ()
    assert (report.precision, report.channels_last) == ("fp16", True)
    assert report.estimate.precision == "fp16" and report.estimate.batch_size == 256   # 书中的批量


def test_a_small_card_gets_a_batch_size_that_fits(local, monkeypatch):
    fake_gpu(monkeypatch, "NVIDIA GeForce GTX 1050", (6, 1), 2 * GIB, ["sm_60", "sm_61", "sm_70"])
    report = cnnlib.check_environment("resnet18")
    s = report.suggested_batch_size
    assert s is not None and s < 256
    [warning] = report.warnings
    assert "放不下 ResNet-18" in warning and "书中批量 256" in warning and f"批量 {s} 按估计放得下" in warning
    assert cnnlib.estimate_book_memory("resnet18", "fp32", s).fits(2 * GIB)
    assert not cnnlib.estimate_book_memory("resnet18", "fp32", 2 * s).fits(2 * GIB)


def test_bad_environment_variables_are_reported_not_raised(local, monkeypatch):
    monkeypatch.setenv("CNNLIB_PROFILE", "gpu")
    monkeypatch.setenv("CNNLIB_AMP", "fp8")
    report = cnnlib.check_environment()
    assert any("CNNLIB_PROFILE='gpu'" in w for w in report.warnings)
    assert any("CNNLIB_AMP='fp8'" in w for w in report.warnings)


def test_versions_and_the_random_state(local):
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    report = cnnlib.check_environment("lenet_bn")
    assert torch.equal(torch.rand(3), expected)   # 估计内存时建模型、前向，都不动全局随机数状态
    assert report.torch_version == torch.__version__
    assert report.cnnlib_version == importlib.metadata.version("cnnlib")
    assert report.threads == torch.get_num_threads()
    assert report.model == "lenet_bn" and report.estimate.model == "LeNet-BN"


@pytest.mark.parametrize("capability, archs, expected", [
    ((6, 0), ["sm_60", "sm_70"], True),
    ((6, 1), ["sm_60"], True),                 # 同一主版本、次版本更高的卡能运行 sm_60 的二进制
    ((6, 0), ["sm_61", "sm_75"], False),
    ((9, 0), ["sm_80"], False),
    ((9, 0), ["sm_80", "compute_80"], True),   # PTX 可以在更新的卡上即时编译
    ((9, 0), ["sm_90a"], True),
    ((12, 0), ["sm_100", "sm_120"], True),
    ((10, 0), ["sm_90", "sm_120"], False),
])
def test_which_builds_have_kernels_for_which_card(capability, archs, expected):
    assert environment.has_kernels(capability, archs) is expected


# ---- CPU 的名字 ----
XEON = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx avx2 avx512f avx512dq avx512_bf16 amx_bf16 amx_tile amx_int8
"""
EPYC = """processor\t: 0
model name\t: AMD EPYC 7763 64-Core Processor
flags\t\t: fpu sse sse2 avx avx2 fma
"""
ARM = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32
CPU implementer\t: 0x41
"""


@pytest.mark.parametrize("text, expected", [
    (XEON, ("Intel(R) Xeon(R) Platinum 8480+", ("AVX2", "AVX-512", "AVX-512-BF16", "AMX"))),
    (EPYC, ("AMD EPYC 7763 64-Core Processor", ("AVX2",))),
    (ARM, ("", ())),
])
def test_cpuinfo_is_parsed_into_model_and_flags(text, expected):
    assert cnnlib_device.parse_cpuinfo(text) == expected


def test_the_cpu_label_names_model_threads_and_flags(monkeypatch):
    n = torch.get_num_threads()
    monkeypatch.setattr(cnnlib_device, "cpu_info", lambda: ("Intel Xeon Platinum 8480+", ("AVX2", "AMX")))
    assert cnnlib.device_name("cpu") == f"cpu (Intel Xeon Platinum 8480+, {n} threads; AVX2, AMX)"
    monkeypatch.setattr(cnnlib_device, "cpu_info", lambda: ("Apple M2", ()))
    assert cnnlib.device_name("cpu") == f"cpu (Apple M2, {n} threads)"


def test_the_cpu_label_of_this_machine_matches_proc_cpuinfo():
    if platform.system() != "Linux":
        skip_or_fail("只在 Linux 上有 /proc/cpuinfo 可以独立对照 CPU 的名字")
    info = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    label = cnnlib.device_name("cpu")
    assert label.startswith("cpu (") and f"{torch.get_num_threads()} threads" in label
    for word in model.replace("(R)", "").replace("(TM)", "").split()[:2]:  # 例如 "Intel" "Xeon"、"AMD" "EPYC"
        assert word in label, (word, label)
    assert ("AVX2" in label) == ("avx2" in flags) and ("AMX" in label) == ("amx_bf16" in flags)
