"""数据加载：在 Debian 的真实文件上检查形状、类型、取值、类别均衡与子集的确定性；以及缺数据时的报错。

报错的测试断言结构化的字段（``DataNotFoundError.locations``、``.problems``），不比对整句中文。
"""

import gzip
import shutil
from pathlib import Path

import pytest
import torch

import cnnlib
from cnnlib import data


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """没有 CNNLIB_DATA；下载目录换成空的临时目录；清掉进程内的缓存。"""
    monkeypatch.delenv("CNNLIB_DATA", raising=False)
    monkeypatch.setattr(data, "DOWNLOAD_DIR", tmp_path / "download")
    data._CACHE.clear()
    yield
    data._CACHE.clear()


def test_real_files_shapes_dtypes_range_and_balance(fashion_mnist, no_env):
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


def test_resize_on_device_in_whole_batches(fashion_mnist, no_env):
    train_iter, _ = cnnlib.load_fashion_mnist(8, resize=96, device="cpu", download=False)
    X, _ = next(iter(train_iter))
    assert X.shape == (8, 1, 96, 96)
    assert train_iter.resolution == 96


def test_subset_is_balanced_and_deterministic(fashion_mnist, no_env):
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


def test_profile_decides_subset(fashion_mnist, no_env):
    profile = cnnlib.get_profile("alexnet", name="smoke")
    train_iter, test_iter = cnnlib.load_fashion_mnist(64, resize=224, profile=profile, device="cpu",
                                                      download=False)
    assert (train_iter.num_examples, test_iter.num_examples) == (profile.num_train, profile.num_test)
    assert train_iter.profile == "smoke"


def test_explicit_root_is_the_only_place_looked_at(fashion_mnist, no_env, tmp_path):
    """给了 root 就只看那里：空目录是错误，即使 Debian 的数据就在 /usr/share/datasets 也不换用。"""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(cnnlib.DataNotFoundError) as e:
        cnnlib.read_fashion_mnist(root=empty, download=False)
    assert e.value.locations == [empty.resolve()], "只应查找给出的目录"
    assert data.DEBIAN_DIR not in e.value.locations and str(data.DEBIAN_DIR) not in str(e.value)
    assert e.value.problems and all(str(empty.resolve()) in p for p in e.value.problems)
    assert not data._CACHE, "出错时不应读入（也不应缓存）别处的数据"


def test_env_variable_pointing_nowhere_is_an_error(fashion_mnist, no_env, monkeypatch):
    monkeypatch.setenv("CNNLIB_DATA", "/nonexistent")
    with pytest.raises(cnnlib.DataNotFoundError) as e:
        cnnlib.read_fashion_mnist(download=False)
    assert e.value.locations == [Path("/nonexistent")], "只应查找 CNNLIB_DATA 给出的目录"
    assert "/nonexistent" in str(e.value) and "CNNLIB_DATA" in str(e.value)
    assert not data._CACHE


def test_without_a_location_the_search_order_is_reported(no_env, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(cnnlib.DataNotFoundError) as e:
        cnnlib.read_fashion_mnist(download=False)
    assert e.value.locations == [tmp_path / "no-debian", tmp_path / "download"]
    msg = str(e.value)
    for needle in ("no-debian", str(tmp_path / "download"), "download=False",
                   "apt-get install dataset-fashion-mnist", "CNNLIB_DATA", "train-images-idx3-ubyte.gz"):
        assert needle in msg, f"报错里缺少 {needle!r}（找过的位置与获取数据的办法）"


def test_corrupt_file_is_named(fashion_mnist, no_env, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(data.DEBIAN_DIR, root)
    raw = bytearray(gzip.open(root / "t10k-labels-idx1-ubyte.gz").read())
    raw[100] ^= 0xFF  # 改一个字节：大小不变，MD5 变了
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(raw)
    with pytest.raises(cnnlib.DataNotFoundError) as e:
        cnnlib.read_fashion_mnist(root=root, download=False)
    assert e.value.locations == [root]
    bad = [p for p in e.value.problems if "t10k-labels-idx1-ubyte.gz" in p]
    assert bad and "MD5" in bad[0] and data.FILES["test_labels"][2] in bad[0], e.value.problems
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(cnnlib.DataNotFoundError) as e:
        cnnlib.read_fashion_mnist(root=root, download=False)
    assert any("train-images-idx3-ubyte.gz" in p for p in e.value.problems), e.value.problems


def test_env_variable_and_torchvision_layout(fashion_mnist, no_env, monkeypatch, tmp_path):
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
