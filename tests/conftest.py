"""所有测试共用的设置：一个 CPU 线程、固定随机种子；需要真实数据的测试用 ``fashion_mnist`` 夹具。

数据缺失时的规则只写在这里：本地没有 Debian 软件包 ``dataset-fashion-mnist`` 时跳过并说明原因；
在 CI（环境变量 ``CI=true``，GitHub Actions 会设置）中缺数据则是失败，免得整组测试悄悄跳过。
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


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def require_fashion_mnist() -> Path:
    """Debian 软件包的数据目录；没有时在 CI 中让测试失败，否则跳过。"""
    if data.DEBIAN_DIR.is_dir():
        return data.DEBIAN_DIR
    missing = (f"{data.DEBIAN_DIR} 不存在：这个测试需要 Debian 软件包 dataset-fashion-mnist"
               "（sudo apt-get install -y dataset-fashion-mnist；make test 以 root 运行时会安装）")
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true 时缺数据是错误，不能跳过：{missing}", pytrace=False)
    pytest.skip(missing)


@pytest.fixture
def fashion_mnist() -> Path:
    """需要真实 Fashion-MNIST 的测试用它（或 ``pytestmark = pytest.mark.usefixtures("fashion_mnist")``）。"""
    return require_fashion_mnist()
