import pytest

import cnnlib


def test_profiles_change_only_data_and_epochs(monkeypatch):
    full = cnnlib.get_profile("resnet18", 10, name="full")
    assert (full.num_train, full.num_test, full.num_epochs) == (60000, 10000, 10)
    cpu = cnnlib.get_profile("resnet18", 10, name="cpu")
    assert cpu.num_train < 60000 and 1 <= cpu.num_epochs <= 10
    smoke = cnnlib.get_profile("resnet18", 10, name="smoke")
    assert smoke.num_epochs == 1 and smoke.num_train <= 1000
    assert "smoke" in str(smoke) and "256/60,000" in str(smoke)


def test_default_is_cpu_without_gpu_and_env_overrides(monkeypatch):
    monkeypatch.delenv("CNNLIB_PROFILE", raising=False)
    expected = "cpu" if cnnlib.try_gpu().type == "cpu" else "full"
    assert cnnlib.get_profile("alexnet").name == expected
    monkeypatch.setenv("CNNLIB_PROFILE", "smoke")
    assert cnnlib.get_profile("alexnet").name == "smoke"


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="'fast'"):
        cnnlib.get_profile("alexnet", name="fast")
    with pytest.raises(ValueError, match="'lenet'"):
        cnnlib.get_profile("lenet", name="cpu")


def test_cpu_fraction_scales_only_the_cpu_profile(monkeypatch):
    monkeypatch.setenv("CNNLIB_CPU_FRACTION", "0.5")
    p = cnnlib.get_profile("alexnet", 10, "cpu")
    assert (p.num_train, p.num_test, p.num_epochs) == (2_000, 250, 3)  # cpu 配置是 4,000/500 张、3 轮
    assert cnnlib.get_profile("alexnet", 10, "full").num_train == 60_000
    assert cnnlib.get_profile("alexnet", 10, "smoke").num_train == 256
    for bad in ("0", "1.5", "abc"):
        monkeypatch.setenv("CNNLIB_CPU_FRACTION", bad)
        with pytest.raises(ValueError, match=f"CNNLIB_CPU_FRACTION='{bad}'"):
            cnnlib.get_profile("alexnet", 10, "cpu")
