"""运行配置：期望值是登记表条目里的字面数字（ResNet-18 的 cpu 配置是 6,000/1,000 张、3 轮），不照抄代码的算法。"""

import pytest
import torch

import cnnlib
from cnnlib import profiles


def sizes(p: cnnlib.RunProfile) -> tuple[int, int, int]:
    return p.num_train, p.num_test, p.num_epochs


def test_each_profile_sizes_for_resnet18(monkeypatch):
    monkeypatch.delenv("CNNLIB_CPU_FRACTION", raising=False)
    assert sizes(cnnlib.get_profile("resnet18", name="full")) == (60_000, 10_000, 10)
    assert sizes(cnnlib.get_profile("resnet18", name="cpu")) == (6_000, 1_000, 3)
    assert sizes(cnnlib.get_profile("resnet18", name="smoke")) == (256, 128, 1)
    # 显式的轮数：full 照用，cpu 与 smoke 不超过各自的上限
    assert sizes(cnnlib.get_profile("resnet18", 20, name="full")) == (60_000, 10_000, 20)
    assert sizes(cnnlib.get_profile("resnet18", 2, name="cpu")) == (6_000, 1_000, 2)
    assert sizes(cnnlib.get_profile("resnet18", 20, name="cpu")) == (6_000, 1_000, 3)


def test_profile_line_names_the_sizes():
    smoke = cnnlib.get_profile("resnet18", name="smoke")
    assert smoke.name == "smoke" and smoke.model == "resnet18"
    assert "smoke" in str(smoke) and "256/60,000" in str(smoke) and "128/10,000" in str(smoke)


def test_cpu_fraction_scales_only_the_cpu_profile(monkeypatch):
    monkeypatch.setenv("CNNLIB_CPU_FRACTION", "0.5")
    assert sizes(cnnlib.get_profile("resnet18", name="cpu")) == (3_000, 500, 3)
    assert sizes(cnnlib.get_profile("alexnet", name="cpu")) == (2_000, 250, 3)  # 4,000/500 张的一半
    assert sizes(cnnlib.get_profile("resnet18", name="full")) == (60_000, 10_000, 10)
    assert sizes(cnnlib.get_profile("resnet18", name="smoke")) == (256, 128, 1)
    monkeypatch.setenv("CNNLIB_CPU_FRACTION", "0.01")  # 60/10 张太少：不低于 smoke 的数据量
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
