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
