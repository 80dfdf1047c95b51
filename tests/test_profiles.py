"""运行配置：期望值是字面数字，不照抄代码的算法。

书中的设定来自 7.6 节（ResNet-18：96×96、批量 256、学习率 0.05）；cpu 配置的数字是登记表条目里的
（``RESNET18_CPU``、``ALEXNET_CPU``，按实测选取，见 benchmarks/results/cpu-sizes.md）。登记表重新调这些数时，
``test_cpu_settings_are_the_ones_pinned_here`` 先失败，指明要改的一行。
"""

import pytest
import torch

import cnnlib
from cnnlib import profiles


# 登记表里 cpu 配置的（训练张数, 测试张数, 轮数, 分辨率, 批量）
RESNET18_CPU = (10_240, 1_000, 3, 64, 64)
ALEXNET_CPU = (8_000, 1_000, 3, 96, 32)


def sizes(p: cnnlib.RunProfile) -> tuple[int, int, int]:
    return p.num_train, p.num_test, p.num_epochs


def inputs(p: cnnlib.RunProfile) -> tuple[int, int, float]:
    return p.resolution, p.batch_size, p.lr


def test_cpu_settings_are_the_ones_pinned_here():
    for name, pinned in (("resnet18", RESNET18_CPU), ("alexnet", ALEXNET_CPU)):
        c = cnnlib.model_spec(name).cpu
        assert (c.num_train, c.num_test, c.num_epochs, c.resolution, c.batch_size) == pinned, (
            f"登记表里 {name} 的 cpu 配置变了：请同时改 tests/test_profiles.py 开头的 {name.upper()}_CPU")


def test_each_profile_sizes_for_resnet18(monkeypatch):
    monkeypatch.delenv("CNNLIB_CPU_FRACTION", raising=False)
    full, cpu, smoke = (cnnlib.get_profile("resnet18", name=n) for n in ("full", "cpu", "smoke"))
    assert sizes(full) == (60_000, 10_000, 10) and inputs(full) == (96, 256, 0.05) and full.is_book_setting
    assert sizes(cpu) == RESNET18_CPU[:3] and inputs(cpu) == (*RESNET18_CPU[3:], 0.05) and not cpu.is_book_setting
    assert sizes(smoke) == (256, 128, 1) and inputs(smoke) == inputs(cpu)  # smoke 用 cpu 的输入与批量
    # 显式的轮数：full 照用，cpu 与 smoke 不超过各自的上限
    n_train, n_test = RESNET18_CPU[:2]
    assert sizes(cnnlib.get_profile("resnet18", 20, name="full")) == (60_000, 10_000, 20)
    assert sizes(cnnlib.get_profile("resnet18", 2, name="cpu")) == (n_train, n_test, 2)
    assert sizes(cnnlib.get_profile("resnet18", 20, name="cpu")) == (n_train, n_test, 3)


@pytest.mark.parametrize("profile", ["cpu", "smoke"])
def test_other_profiles_keep_the_model_and_the_learning_rate(profile):
    for spec in cnnlib.SPECS.values():
        p = cnnlib.get_profile(spec.name, name=profile)
        assert p.lr == spec.lr and p.model == spec.name
        # 分辨率不超过书中的：cpu 配置只会缩小输入
        assert p.resolution <= spec.resolution


def test_profile_line_names_the_sizes():
    smoke = cnnlib.get_profile("resnet18", name="smoke")
    assert smoke.name == "smoke" and smoke.model == "resnet18"
    assert "smoke" in str(smoke) and "256/60,000" in str(smoke) and "128/10,000" in str(smoke)
    # 与书中设定不同的地方写在配置行里：书中是 96×96、批量 256（7.6 节）
    side = RESNET18_CPU[3]
    assert f"输入 {side}×{side}" in str(smoke) and "输入 96×96、批量 256" in str(smoke)


def test_cpu_fraction_scales_only_the_cpu_profile(monkeypatch):
    monkeypatch.setenv("CNNLIB_CPU_FRACTION", "0.5")
    assert sizes(cnnlib.get_profile("resnet18", name="cpu")) == (5_120, 500, 3)  # 10,240/1,000 张的一半
    assert sizes(cnnlib.get_profile("alexnet", name="cpu")) == (4_000, 500, 3)   # 8,000/1,000 张的一半
    assert sizes(cnnlib.get_profile("resnet18", name="full")) == (60_000, 10_000, 10)
    assert sizes(cnnlib.get_profile("resnet18", name="smoke")) == (256, 128, 1)
    monkeypatch.setenv("CNNLIB_CPU_FRACTION", "0.01")  # 102/10 张太少：不低于 smoke 的数据量
    assert sizes(cnnlib.get_profile("resnet18", name="cpu")) == (256, 128, 3)


@pytest.mark.parametrize("bad", ["0", "1.5", "abc"])
def test_bad_cpu_fraction_is_named(monkeypatch, bad):
    monkeypatch.setenv("CNNLIB_CPU_FRACTION", bad)
    with pytest.raises(ValueError, match=f"CNNLIB_CPU_FRACTION='{bad}'"):
        cnnlib.get_profile("alexnet", name="cpu")


@pytest.mark.parametrize("device,expected", [("cpu", "cpu"), ("cuda", "full"), ("mps", "full")])
def test_default_profile_follows_the_device(monkeypatch, device, expected):
    monkeypatch.delenv("CNNLIB_PROFILE", raising=False)
    monkeypatch.setattr(profiles, "try_gpu", lambda: torch.device(device))
    assert cnnlib.get_profile("alexnet").name == expected
    monkeypatch.setenv("CNNLIB_PROFILE", "smoke")  # 环境变量优先于设备
    assert cnnlib.get_profile("alexnet").name == "smoke"


def test_unknown_names_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="'fast'"):
        cnnlib.get_profile("alexnet", name="fast")
    monkeypatch.setenv("CNNLIB_PROFILE", "gpu")
    with pytest.raises(ValueError, match="'gpu'"):
        cnnlib.get_profile("alexnet")
    with pytest.raises(ValueError, match="'lenet'"):
        cnnlib.get_profile("lenet", name="cpu")
