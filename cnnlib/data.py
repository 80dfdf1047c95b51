"""Fashion-MNIST：找到真实数据、校验、整体放进设备内存，按批在设备上缩放。

d2l 的 ``load_data_fashion_mnist`` 用 PIL 逐张缩放图像、开 4 个工作进程，而且下载失败时
报错含糊。这里把 7 万张 28×28 的图像作为一个 uint8 张量（约 55 MB）放在训练设备上，
每个批量用一次 ``F.interpolate`` 缩放：不需要工作进程，在 Windows 上也不会因
``num_workers`` 出错。
"""

import copy
import gzip
import hashlib
import os
from pathlib import Path

import torch
from torch.nn import functional as F

from cnnlib.device import try_gpu

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

# 四个文件解压后的大小与 MD5。只校验解压后的内容：Debian 重新压缩过 .gz，
# 压缩包本身的大小和 MD5 与官方发布的不同，但内容逐字节相同。
FILES: dict[str, tuple[str, int, str]] = {
    "train_images": ("train-images-idx3-ubyte", 47040016, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    "train_labels": ("train-labels-idx1-ubyte", 60008, "9018921c3c673c538a1fc5bad174d6f9"),
    "test_images": ("t10k-images-idx3-ubyte", 7840016, "8181f5470baa50b63fa0f6fddb340f0a"),
    "test_labels": ("t10k-labels-idx1-ubyte", 10008, "15d484375f8d13e6eb1aabb0c3f46965"),
}

TEXT_LABELS_ZH = ("T恤", "裤子", "套衫", "连衣裙", "外套", "凉鞋", "衬衫", "运动鞋", "包", "短靴")
TEXT_LABELS_EN = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class DataNotFoundError(FileNotFoundError):
    """找不到可用的 Fashion-MNIST。``locations`` 是查找过的目录，``problems`` 是每处的问题。"""

    def __init__(self, message: str, locations: list[Path], problems: list[str]) -> None:
        super().__init__(message)
        self.locations, self.problems = locations, problems


def get_fashion_mnist_labels(labels, lang: str = "zh") -> list[str]:
    """把数字标签换成类别名。``lang`` 为 ``"zh"``、``"en"`` 或 ``"both"``（如 ``T恤/T-shirt``）。"""
    if lang not in ("zh", "en", "both"):
        raise ValueError(f"lang={lang!r} 不可用：请用 'zh'、'en' 或 'both'。")
    out = []
    for i in labels:
        i = int(i)
        zh, en = TEXT_LABELS_ZH[i], TEXT_LABELS_EN[i]
        out.append({"zh": zh, "en": en, "both": f"{zh}/{en}"}[lang])
    return out


def _read_idx(path_dir: Path, stem: str, size: int, md5: str) -> tuple[bytes | None, str]:
    """读一个文件（``.gz`` 或未压缩的），返回（内容, 说明）；不可用时内容为 None。"""
    for path in (path_dir / f"{stem}.gz", path_dir / stem):
        if not path.is_file():
            continue
        try:
            raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
        except (OSError, EOFError) as e:
            return None, f"{path} 无法读取或解压（{e}）"
        if len(raw) != size:
            return None, f"{path} 解压后 {len(raw)} 字节，应为 {size} 字节（文件不完整或不是 Fashion-MNIST）"
        digest = hashlib.md5(raw).hexdigest()
        if digest != md5:
            return None, f"{path} 的 MD5 是 {digest}，应为 {md5}（文件已损坏）"
        return raw, str(path)
    return None, f"{path_dir} 中没有 {stem}.gz"


def _try_dir(path_dir: Path) -> tuple[dict | None, list[str]]:
    """检查一个目录（及其中 torchvision 的 ``FashionMNIST/raw`` 子目录）。"""
    problems = []
    for candidate in (path_dir, path_dir / "FashionMNIST" / "raw"):
        if not candidate.is_dir():
            problems.append(f"{candidate}：目录不存在")
            continue
        found, why = {}, []
        for key, (stem, size, md5) in FILES.items():
            raw, note = _read_idx(candidate, stem, size, md5)
            if raw is None:
                why.append(note)
            else:
                found[key] = raw
        if len(found) == len(FILES):
            return found, []
        problems.append(f"{candidate}：" + "；".join(why))
    return None, problems


def _parse(found: dict) -> dict[str, torch.Tensor]:
    def images(raw: bytes) -> torch.Tensor:
        return torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).reshape(-1, 1, 28, 28)

    def labels(raw: bytes) -> torch.Tensor:
        return torch.frombuffer(bytearray(raw[8:]), dtype=torch.uint8).long()

    return {"train_images": images(found["train_images"]), "train_labels": labels(found["train_labels"]),
            "test_images": images(found["test_images"]), "test_labels": labels(found["test_labels"])}


_CACHE: dict[str, dict[str, torch.Tensor]] = {}


def _load_dir(place: Path) -> tuple[dict[str, torch.Tensor] | None, list[str]]:
    """读一个目录（读过的直接从缓存取），返回（数据, 问题）；不可用时数据为 None。"""
    if str(place) not in _CACHE:
        found, problems = _try_dir(place)
        if found is None:
            return None, problems
        _CACHE[str(place)] = _parse(found)
    return _CACHE[str(place)], []


DOWNLOAD_DIR = Path.home() / ".cache" / "cnnlib"  # 没给位置时 torchvision 下载到这里
_FILE_NAMES = "、".join(f"{stem}.gz" for stem, _, _ in FILES.values())


def read_fashion_mnist(root: str | os.PathLike | None = None,
                       download: bool = True) -> dict[str, torch.Tensor]:
    """找到并读入 Fashion-MNIST 的四个文件，返回 CPU 上的 uint8 图像与 int64 标签。

    给了位置（参数 ``root``，或者环境变量 ``CNNLIB_DATA``）时只用那里：目录不存在或缺文件就报错，
    不会悄悄换用别处的数据。没给位置时依次查找 Debian 软件包 ``dataset-fashion-mnist`` 的
    ``/usr/share/datasets/fashion-mnist/`` 与 ``~/.cache/cnnlib``；都不可用且 ``download=True`` 时
    用 torchvision 下载到 ``~/.cache/cnnlib``。每个文件都校验解压后的大小与 MD5。

    Raises:
        DataNotFoundError: 找不到可用的数据。消息列出每个位置的问题和获取数据的办法。
    """
    explicit = root if root is not None else os.environ.get("CNNLIB_DATA") or None
    if explicit is not None:
        given = "参数 root（命令行的 --data）" if root is not None else "环境变量 CNNLIB_DATA"
        place = Path(explicit).expanduser().resolve()
        data, problems = _load_dir(place)
        if data is None:
            raise DataNotFoundError(
                f"{given} 指定的数据目录 {place} 不可用：\n  - " + "\n  - ".join(problems) +
                f"\n请把四个文件 {_FILE_NAMES} 放进这个目录，或改正路径；"
                f"不给{given}时，cnnlib 会自动查找（需要时下载）。", [place], problems)
        return data
    problems: list[str] = []
    for place in (DEBIAN_DIR, DOWNLOAD_DIR):
        data, why = _load_dir(place)
        if data is not None:
            return data
        problems += why
    if download:
        try:
            import torchvision  # 只在真正需要下载时才导入，让 import cnnlib 保持轻快
            for train in (True, False):
                torchvision.datasets.FashionMNIST(str(DOWNLOAD_DIR), train=train, download=True)
        except Exception as e:  # 网络错误、证书错误、磁盘已满……都归到下面的统一报错里
            problems.append(f"用 torchvision 下载到 {DOWNLOAD_DIR} 失败：{type(e).__name__}: {e}")
        else:
            data, why = _load_dir(DOWNLOAD_DIR)
            if data is not None:
                return data
            problems += why
    else:
        problems.append("未尝试下载（download=False）")
    raise DataNotFoundError(
        "找不到可用的 Fashion-MNIST 数据。查找过的位置：\n  - " + "\n  - ".join(problems) +
        "\n获取数据的办法（任选其一）：\n"
        "  1. Debian/Ubuntu：sudo apt-get install dataset-fashion-mnist\n"
        f"  2. 联网后重新运行，并保持 download=True（由 torchvision 下载到 {DOWNLOAD_DIR}）\n"
        f"  3. 手动下载四个文件 {_FILE_NAMES}（官方仓库 github.com/zalandoresearch/fashion-mnist），"
        "放进一个目录，再设置环境变量 CNNLIB_DATA=该目录，或调用时传 root=该目录。",
        [DEBIAN_DIR, DOWNLOAD_DIR], problems)


def balanced_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """确定性地选出 ``n`` 个样本的下标，各类别数量相同（相差至多 1），按下标排序。"""
    total = len(labels)
    if not 0 < n <= total:
        raise ValueError(f"子集大小 n={n} 不可用：它必须在 1 到 {total} 之间。")
    if n == total:
        return torch.arange(total)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(total, generator=g)
    num_classes = int(labels.max()) + 1
    chosen = []
    for c in range(num_classes):
        k = n // num_classes + (1 if c < n % num_classes else 0)
        chosen.append(perm[labels[perm] == c][:k])
    return torch.cat(chosen).sort().values


class FashionMNISTIter:
    """在设备上按批产出 ``(X, y)`` 的迭代器。

    ``X`` 是 float32 ``(B, 1, R, R)``，取值在 [0, 1]；``y`` 是 int64 ``(B,)``。
    打乱顺序由 ``seed`` 与轮次决定：同一轮次的顺序总是相同，所以断点续训后数据顺序不变。
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool, resize: int | None, device: torch.device, seed: int = 0,
                 total: int | None = None, profile: str | None = None) -> None:
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size, self.shuffle, self.resize = batch_size, shuffle, resize
        self.device, self.seed = device, seed
        self.total = total if total is not None else len(labels)  # 完整数据集的大小，用于标注
        self.profile = profile
        self.epoch = 0
        self.rank, self.world_size, self.even = 0, 1, True

    def _kept(self) -> int:
        """各进程合起来用多少个样本：``even`` 时舍去除不尽的几个，使每个进程的样本数相同。"""
        n = len(self.labels)
        return n // self.world_size * self.world_size if self.even else n

    @property
    def num_examples(self) -> int:
        """本迭代器一轮产出的样本数（分布式训练时是本进程那一份）。"""
        return len(range(self.rank, self._kept(), self.world_size))

    @property
    def resolution(self) -> int:
        return self.resize or self.images.shape[-1]

    @property
    def in_channels(self) -> int:
        return self.images.shape[1]

    def __len__(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """指定下一次迭代的轮次（决定打乱顺序）。"""
        self.epoch = epoch

    def shard(self, rank: int, world_size: int, *, even: bool = True) -> "FashionMNISTIter":
        """分布式数据并行：返回只取第 ``rank`` 份（每 ``world_size`` 个样本取一个）的新迭代器。

        新迭代器与本迭代器共享图像张量，本迭代器不变。``batch_size`` 应是每个进程的批量大小。
        所有进程用同一个种子打乱，所以各份互不重叠。训练用 ``even=True``：除不尽的几个样本被舍去，
        使每个进程的批数相同（每个训练步都要在进程间同步，否则会互相等待）。评估用 ``even=False``：
        各份合起来正好是全部样本，前几个进程各多一个（评估只在最后同步一次）。
        """
        part = copy.copy(self)
        part.rank, part.world_size, part.even = rank, world_size, even
        return part

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=g)
        else:
            order = torch.arange(n)
        self.epoch += 1
        order = order[:self._kept()][self.rank::self.world_size].to(self.device)
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            X = self.images[idx].float().div_(255)
            if self.resize and self.resize != X.shape[-1]:
                # 整批一起在设备上双线性插值，代替 PIL 逐张缩放
                X = F.interpolate(X, size=(self.resize, self.resize), mode="bilinear",
                                  align_corners=False)
            yield X, self.labels[idx]


def load_fashion_mnist(batch_size: int, resize: int | None = None, *,
                       num_train: int | None = None, num_test: int | None = None,
                       profile=None, root: str | os.PathLike | None = None,
                       device: torch.device | str | None = None, seed: int = 0,
                       download: bool = True) -> tuple[FashionMNISTIter, FashionMNISTIter]:
    """加载 Fashion-MNIST，返回 ``(train_iter, test_iter)``。

    Args:
        batch_size: 批量大小。
        resize: 把 28×28 放大到 ``resize``×``resize``；None 表示不缩放。
        num_train, num_test: 只取这么多样本（各类别均衡、确定性的子集）；None 表示全部。
        profile: 一个 :class:`cnnlib.RunProfile`；给出时用它的 ``num_train`` / ``num_test``。
        root: 数据目录，见 :func:`read_fashion_mnist`。
        device: 数据放在哪个设备上，默认 :func:`cnnlib.try_gpu`。
        seed: 打乱顺序和选子集用的随机种子。
        download: 本地都没有时是否用 torchvision 下载。
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} 不可用：它必须是正整数，例如 128 或 256。")
    if resize is not None and (not isinstance(resize, int) or resize < 1):
        raise ValueError(f"resize={resize!r} 不可用：它必须是正整数（例如 224 或 96），或 None 表示保持 28×28。")
    if profile is not None:
        if num_train is not None or num_test is not None:
            raise ValueError("profile 与 num_train/num_test 只能给一个：运行配置已经决定了数据量。")
        num_train, num_test = profile.num_train, profile.num_test
    data = read_fashion_mnist(root, download=download)
    device = torch.device(device) if device is not None else try_gpu()
    iters = []
    for split, n, shuffle in (("train", num_train, True), ("test", num_test, False)):
        images, labels = data[f"{split}_images"], data[f"{split}_labels"]
        total = len(labels)
        if n is not None and n != total:
            idx = balanced_subset(labels, n, seed=seed)
            images, labels = images[idx], labels[idx]
        iters.append(FashionMNISTIter(images, labels, batch_size, shuffle, resize, device, seed=seed,
                                      total=total, profile=profile.name if profile else None))
    return iters[0], iters[1]
