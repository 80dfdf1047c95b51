"""所有测试共用的设置：一个 CPU 线程、float32、固定随机种子；需要真实数据的测试用 ``fashion_mnist`` 夹具。

缺少前提条件时的规则只写在这里（:func:`skip_or_fail`）：本地没有 Debian 软件包 ``dataset-fashion-mnist``、
构建好的网站或 PDF、Chromium 时跳过并说明原因；在 CI（环境变量 ``CI=true``，GitHub Actions 会设置）中则是失败，
免得整组测试悄悄跳过。
"""

import os
from pathlib import Path

import pytest
import torch

from cnnlib import data


# 测试里的张量都很小，多线程只有开销；而在有别的负载的机器上（共享的 CI、2 核的笔记本电脑），
# 两个 OpenMP 线程互相空等能让一个训练步慢几十倍。用一个线程，测试的用时就不随机器的负载大起大落。
# 启动子进程的测试另在环境变量里设 OMP_NUM_THREADS=1。
torch.set_num_threads(1)

# 精度钉在 float32：否则 amp="auto" 在有 AMX/AVX-512-BF16 的 CPU 上选 bf16、在别的 CPU 上选 float32，
# 同一个等式或阈值在不同的机器上检查的是不同的东西。写进 os.environ，测试启动的子进程（命令行、torchrun、
# 笔记本）也继承它。检查 bf16 的测试自己设 amp="bf16" 或用 monkeypatch 改这个变量。
os.environ["CNNLIB_AMP"] = "fp32"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def skip_or_fail(missing: str) -> None:
    """缺少前提条件（数据、构建好的网站或 PDF、浏览器）时：本地跳过并说明原因，CI（``CI=true``）中失败。

    所有这类跳过都经过这里（``from conftest import skip_or_fail``），CI 里就不会有测试悄悄跳过。
    """
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true 时缺少前提条件是错误，不能跳过：{missing}", pytrace=False)
    pytest.skip(missing)


def require_fashion_mnist() -> Path:
    """Debian 软件包的数据目录；没有时在 CI 中让测试失败，否则跳过。"""
    if data.DEBIAN_DIR.is_dir():
        return data.DEBIAN_DIR
    skip_or_fail(f"{data.DEBIAN_DIR} 不存在：这个测试需要 Debian 软件包 dataset-fashion-mnist"
                 "（sudo apt-get install -y dataset-fashion-mnist；make test 以 root 运行时会安装）")


@pytest.fixture
def fashion_mnist() -> Path:
    """需要真实 Fashion-MNIST 的测试用它（或 ``pytestmark = pytest.mark.usefixtures("fashion_mnist")``）。"""
    return require_fashion_mnist()
