"""数据加载：在 Debian 的真实文件上检查形状、类型、取值、类别均衡与子集的确定性；以及缺数据时的报错。"""

import gzip
import shutil

import pytest
import torch

import cnnlib
from cnnlib import data

pytestmark = pytest.mark.skipif(not data.DEBIAN_DIR.is_dir(),
                                reason="需要 Debian 软件包 dataset-fashion-mnist（make test 以 root 运行时会安装）")


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    monkeypatch.delenv("CNNLIB_DATA", raising=False)
    monkeypatch.setattr(data, "default_download_dir", lambda: tmp_path / "download")
    data._CACHE.clear()
    yield
    data._CACHE.clear()


def test_real_files_shapes_dtypes_range_and_balance(no_env):
    d = cnnlib.read_fashion_mnist(download=False)
    assert d["train_images"].shape == (60000, 1, 28, 28) and d["train_images"].dtype == torch.uint8
    assert d["test_images"].shape == (10000, 1, 28, 28)
    assert d["train_labels"].dtype == torch.int64
    assert torch.bincount(d["train_labels"]).tolist() == [6000] * 10
    assert torch.bincount(d["test_labels"]).tolist() == [1000] * 10
    train_iter, test_iter = cnnlib.load_fashion_mnist(256, device="cpu", download=False)
    X, y = next(iter(train_iter))
    assert X.shape == (256, 1, 28, 28) and X.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= X.min() and X.max() <= 1.0 and X.max() > 0.9
    assert len(train_iter) == 235 and train_iter.num_examples == 60000
    assert sum(y.numel() for _, y in test_iter) == 10000


def test_resize_on_device_in_whole_batches(no_env):
    train_iter, _ = cnnlib.load_fashion_mnist(8, resize=96, device="cpu", download=False)
    X, _ = next(iter(train_iter))
    assert X.shape == (8, 1, 96, 96)
    assert train_iter.resolution == 96


def test_subset_is_balanced_and_deterministic(no_env):
    a, _ = cnnlib.load_fashion_mnist(100, num_train=1000, num_test=200, device="cpu", download=False)
    b, _ = cnnlib.load_fashion_mnist(100, num_train=1000, num_test=200, device="cpu", download=False)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images)
    assert torch.bincount(a.labels).tolist() == [100] * 10
    assert a.total == 60000 and a.num_examples == 1000
    # 同一轮次同样的顺序；不同轮次不同的顺序
    a.set_epoch(3), b.set_epoch(3)
    assert torch.equal(next(iter(a))[1], next(iter(b))[1])
    a.set_epoch(4), b.set_epoch(3)
    assert not torch.equal(next(iter(a))[1], next(iter(b))[1])


def test_profile_decides_subset(no_env):
    profile = cnnlib.get_profile("alexnet", name="smoke")
    train_iter, test_iter = cnnlib.load_fashion_mnist(64, resize=224, profile=profile, device="cpu",
                                                      download=False)
    assert (train_iter.num_examples, test_iter.num_examples) == (profile.num_train, profile.num_test)
    assert train_iter.profile == "smoke"


def test_missing_data_gives_one_clear_chinese_error(no_env, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(cnnlib.DataNotFoundError) as e:
        cnnlib.read_fashion_mnist(root=tmp_path / "empty", download=False)
    msg = str(e.value)
    for needle in ("找不到可用的 Fashion-MNIST", str(tmp_path / "empty"), "no-debian", "download",
                   "apt-get install dataset-fashion-mnist", "CNNLIB_DATA", "train-images-idx3-ubyte.gz"):
        assert needle in msg


def test_corrupt_file_is_named(no_env, monkeypatch, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(data.DEBIAN_DIR, root)
    raw = bytearray(gzip.open(root / "t10k-labels-idx1-ubyte.gz").read())
    raw[100] ^= 0xFF  # 改一个字节：大小不变，MD5 变了
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(raw)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(cnnlib.DataNotFoundError, match="t10k-labels-idx1-ubyte.gz 的 MD5"):
        cnnlib.read_fashion_mnist(root=root, download=False)
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(cnnlib.DataNotFoundError, match="无法读取或解压"):
        cnnlib.read_fashion_mnist(root=root, download=False)


def test_env_variable_and_torchvision_layout(no_env, monkeypatch, tmp_path):
    raw = tmp_path / "tv" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in data.DEBIAN_DIR.iterdir():  # torchvision 解压后的布局：未压缩的文件
        (raw / f.stem).write_bytes(gzip.open(f).read())
    monkeypatch.setenv("CNNLIB_DATA", str(tmp_path / "tv"))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    assert cnnlib.read_fashion_mnist(download=False)["test_labels"].shape == (10000,)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size=0"):
        cnnlib.load_fashion_mnist(0)
    with pytest.raises(ValueError, match="resize=-1"):
        cnnlib.load_fashion_mnist(32, resize=-1)
    with pytest.raises(ValueError, match="n=0"):
        cnnlib.balanced_subset(torch.arange(10) % 10, 0)


def test_labels_in_two_languages():
    assert cnnlib.get_fashion_mnist_labels([0, 9], lang="both") == ["T恤/T-shirt", "短靴/Ankle boot"]
    assert cnnlib.get_fashion_mnist_labels([3]) == ["连衣裙"]
