"""训练结果文件：每次训练写一个 JSON，模型对比页从这些文件生成，不手抄数字。

书中完整设定的结果随 cnnlib 一起发布（``cnnlib/published/``），由 :func:`load_full_result`、
:func:`show_full_result`、:func:`seed_results` 与 :func:`load_published` 读出。同一设定的几个随机种子
由 :func:`seed_runs` 读出，:func:`seed_table` 与 :func:`compare_seed_settings` 列成表，
:func:`compare_with_band` 把读者自己的一次运行放在它们的范围（band）旁边比较，:func:`seed_spread` 以
“同一次运行最后三轮的起伏”为尺度，判断种子之间、几个来源的报告值之间、两个网络之间的差别是否超过它。
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import statistics
import warnings
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

from cnnlib.models import model_spec
from cnnlib.summary import count_flops, count_parameters

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable


def result_record(model: str, net: nn.Module, history, resolution: int, **settings) -> dict:
    """一次训练的结果：模型、参数量、前向 FLOPs、准确率、吞吐量、设备、运行配置与逐轮记录。"""
    if not history.epochs:
        raise ValueError(f"{model} 的训练记录是空的（没有完成任何一轮），不写结果文件。")
    return {
        "model": model, "resolution": resolution, "params": count_parameters(net),
        "forward_flops": count_flops(net, resolution, in_channels=_in_channels(net)),
        "test_acc": history.test_acc[-1], "train_acc": history.train_acc[-1],
        "train_loss": history.train_loss[-1],
        "examples_per_sec": history.overall_examples_per_sec, "wall_time": history.wall_time,
        "device": history.device, "precision": history.precision or "fp32", "profile": history.profile,
        "torch": torch.__version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": settings, "history": history.to_dict(),
    }


def write_record(record: dict, path: str | Path) -> Path:
    """把结果写成 JSON 文件（UTF-8，中文不转义）。

    先写临时文件再改名：写到一半被打断（时限、Ctrl-C）也不会留下半个 JSON。
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def save_result(model: str, net: nn.Module, history, resolution: int,
                directory: str | Path = "results", **settings) -> Path:
    """把一次训练的结果写进 ``directory/<model>-<运行配置>.json`` 并返回路径。

    Args:
        model: 模型名，例如 ``"alexnet"``。
        net: 训练好的网络（用来数参数量和 FLOPs）。
        history: :func:`cnnlib.train` 返回的记录。
        resolution: 训练时的输入分辨率。
        directory: 结果目录，默认是当前目录下的 ``results/``。
        settings: 其他要记下的超参数，例如 ``lr=0.01, batch_size=128``。
    """
    record = result_record(model, net, history, resolution, **settings)
    return write_record(record, Path(directory) / f"{model}-{history.profile or 'custom'}.json")


def _in_channels(net: nn.Module) -> int:
    first = next(m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    return first.in_channels if isinstance(first, nn.Conv2d) else 1


def load_results(directory: str | Path = "results") -> list[dict]:
    """读出 ``directory`` 中的全部结果文件（按文件名排序）。"""
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(directory).glob("*.json"))]


def compare_with_reported(model: str, history) -> str:
    """本次运行与别人报告的结果（登记表的 ``reported``）并排，返回 Markdown 表格。"""
    r = model_spec(model).reported
    d2l = r.d2l if isinstance(r.d2l, str) else f"{r.d2l:.3f}"
    return "\n".join([
        "| 来源 | 设备 | 数据与轮数 | 测试准确率 | examples/sec |",
        "|---|---|---|---:|---:|",
        f"| {'本书完整设定' if history.profile == 'full' else '本次运行'}（运行配置 {history.profile or '自定义'}） | "
        f"{history.device}，{history.precision or 'fp32'} | "
        f"训练 {history.num_train:,}/{history.total_train:,} 张 × {history.epochs} 轮 | "
        f"{history.test_acc[-1]:.3f} | {history.overall_examples_per_sec:.1f}（总墙钟时间） |",
        f"| 教学笔记 | 未知型号的 GPU | 全部数据 × 10 轮 | {r.notes:.3f} | {r.notes_speed}（只计训练步） |",
        f"| 《动手学深度学习》中文版 | 其他 GPU | 全部数据 × 10 轮 | {d2l} | — |",
    ])


# ---------------------------------------------------------------------------
# 随 cnnlib 发布的结果：cnnlib/published/
# ---------------------------------------------------------------------------
# 书中完整设定在 GPU 上的结果（benchmarks/full_run.py 写出）、同一设定换随机种子的结果、初始化对照与
# AlexNet 的测速结果，作为包数据随 cnnlib 安装。所以一本笔记本单独打开（例如在 Colab 上）也能展示它们。
#
#   published/<模型>-full.json               完整设定的结果（save_result 的格式）
#   published/alexnet-full-features.pt       完整设定训练的 AlexNet：第一层卷积核与一张测试图像的特征图
#   published/seeds/<模型>-full-seed<k>.json  同一设定、随机种子 k（k ≥ 1；种子 0 即上面的文件）
#   published/seeds/<模型>-<设定>-full-seed<k>.json  另一种设定（VARIANTS，例如 nin-he）的随机种子 k
#   published/experiments/init-full.json     He 与 Xavier 初始化的第 1 轮（7.3 节）
#   published/experiments/precision-full.json  fp16 + GradScaler、bf16、fp32 各训练 1 轮（LeNet-BN 与 ResNet-18）
#   published/experiments/memory-full.json   七个网络在书中批量下训练时的内存峰值（GPU 上实测）与估计
#
# 只有完整的运行（没有被中断、训练满设定的轮数，见 is_complete）才写进这里；半途的运行留在检查点里。
#   published/speed/alexnet-{cpu,gpu}.json   benchmarks/bench_loop.py 的测速结果（7.1 节）


def published() -> Traversable:
    """cnnlib 随包发布的结果目录（``importlib.resources`` 的 Traversable，可以用 ``/`` 拼接）。"""
    return files("cnnlib") / "published"


def _source(directory: str | Path | None) -> Traversable:
    return published() if directory is None else Path(directory)


def load_published(name: str, directory: str | Path | None = None) -> dict | None:
    """读出随包发布的一个文件，例如 ``load_published("speed/alexnet-gpu.json")``。

    Args:
        name: ``cnnlib/published/`` 下的相对路径。
        directory: 改从这个目录读（默认是随包发布的目录）。

    Returns:
        ``.json`` 读成 dict，``.pt`` 用 ``torch.load(weights_only=True)`` 读出；文件不存在时返回 None。
    """
    path = _source(directory)
    for part in name.split("/"):
        path = path / part
    if not path.is_file():
        return None
    if name.endswith(".json"):
        return json.loads(path.read_text(encoding="utf-8"))
    if name.endswith(".pt"):
        with path.open("rb") as f:
            return torch.load(f, weights_only=True)
    raise ValueError(f"不知道怎样读 {name!r}：load_published 只读 .json 与 .pt 文件。")


def load_full_result(model: str, directory: str | Path | None = None) -> dict | None:
    """``model`` 在书中完整设定（``full`` 配置）下的结果，即 ``<model>-full.json``；还没有时返回 None。

    默认读随 cnnlib 发布的结果；``directory`` 给出时改读该目录（例如 full_run 刚写出的结果）。
    """
    return load_published(f"{model}-full.json", directory)


def seed_results(model: str, directory: str | Path | None = None) -> list[dict]:
    """书中设定、只换随机种子的结果（``seeds/<model>-full-seed*.json``，不含种子 0），按种子排序。

    只收完整的运行（:func:`is_complete`）；没有时是空列表。种子 0 与其余种子合在一起见 :func:`seed_runs`。
    """
    records = [r for r in (load_published(n, directory) for n in _seed_files(model, None, directory, "full"))
               if r is not None and is_complete(r)]
    return sorted(records, key=lambda r: (r.get("settings") or {}).get("seed", -1))


def _seed_files(model: str, variant_name: str | None, directory: str | Path | None, profile: str) -> list[str]:
    """``seeds/`` 下属于这种设定的文件（相对路径），按文件名排序。"""
    seeds = _source(directory) / "seeds"
    if not seeds.is_dir():
        return []
    stem = model if variant_name is None else f"{model}-{variant_name}"
    pattern = re.compile(re.escape(f"{stem}-{profile}-seed") + r"\d+\.json")
    return sorted(f"seeds/{p.name}" for p in seeds.iterdir() if pattern.fullmatch(p.name))


# ---------------------------------------------------------------------------
# 同一设定的几个随机种子：完整的运行、文件名、种子表、几种设定的对照与“带”（band）
# ---------------------------------------------------------------------------
# 只换随机种子（它同时决定初始化和数据顺序）重跑同一设定，结果的分散程度就是这个设定的“噪声”：
# 一次运行落在几个种子的范围里，说明它与书中的结果一致；差得远，才值得找原因。

BOOK_INIT = "xavier_init"  # cnnlib.train 的默认初始化，也就是书中设定的初始化


@dataclass(frozen=True)
class Variant:
    """书中设定之外、也在 GPU 上跑了几个随机种子的一种设定：只换初始化，其余同书中设定。"""
    name: str   # 文件名中的标记：seeds/<模型>-<name>-full-seed<k>.json
    title: str  # 表格与图里的名字
    init: str   # cnnlib 中初始化函数的名字，例如 "kaiming_init"
    why: str    # 为什么试它：书中的哪项证据


# 推荐的设定。NiN：7.3.7 在初始化时逐层测量了信号与梯度的尺度，并在 GPU 上比较了 He 与 Xavier 的第 1 轮
# （experiments/init-full.json）；两项证据都指向 He 初始化，它有没有让 NiN 每次都学到东西，要看几个种子。
VARIANTS: dict[str, tuple[Variant, ...]] = {
    "nin": (Variant("he", "He 初始化", "kaiming_init",
                    "7.3.7：初始化时的逐层测量与 GPU 上第 1 轮的对照都指向 He 初始化"),),
}


def variant(model: str, name: str) -> Variant:
    """``model`` 的设定 ``name``（:data:`VARIANTS`）；没有时给出可用的名字。"""
    for v in VARIANTS.get(model, ()):
        if v.name == name:
            return v
    names = "、".join(v.name for v in VARIANTS.get(model, ())) or "（没有）"
    raise ValueError(f"{model} 没有名为 {name!r} 的设定：可用的有 {names}。"
                     "要加一种设定，请在 cnnlib/results.py 的 VARIANTS 里登记。")


def run_file(model: str, seed: int = 0, variant_name: str | None = None, profile: str = "full") -> str:
    """一次运行在发布目录（``cnnlib/published/``）中的相对路径。

    书中设定的种子 0 是 ``<模型>-<配置>.json``（各节展示的完整结果）；其他种子是
    ``seeds/<模型>-<配置>-seed<k>.json``；另一种设定（:data:`VARIANTS`）的每个种子，包括 0，是
    ``seeds/<模型>-<设定>-<配置>-seed<k>.json``。``benchmarks/full_run.py`` 按它写，这里按它读。
    """
    if variant_name is None and seed == 0:
        return f"{model}-{profile}.json"
    stem = model if variant_name is None else f"{model}-{variant_name}"
    return f"seeds/{stem}-{profile}-seed{seed}.json"


def is_complete(record: dict) -> bool:
    """``record`` 是不是一次完整的运行：没有被中断，并且训练满了设定的轮数。

    轮数取 ``settings["num_epochs"]``；较早的记录没有写它时，full 配置按登记表的轮数。
    被时限或 Ctrl-C 打断的运行留在检查点里，续训完成之前不算结果（不发布、不展示、不进种子表）。
    """
    h = record.get("history") or {}
    epochs = len(h.get("train_loss") or [])
    wanted = (record.get("settings") or {}).get("num_epochs")
    if wanted is None and h.get("profile") == "full":
        wanted = model_spec(record["model"]).num_epochs
    return epochs > 0 and not h.get("interrupted", False) and epochs >= (wanted or 1)


def _setting(record: dict) -> dict:
    """决定“同一设定”的几项：运行配置、训练与测试数据量、分辨率、批量、学习率与初始化。

    较早的记录（命令行 ``python -m cnnlib train`` 写的）没有记下初始化，当时的默认就是 ``xavier_init``。
    """
    s = record.get("settings") or {}
    return {"profile": record["history"].get("profile"), "num_train": record["history"].get("num_train"),
            "num_test": record["history"].get("num_test") or None, "resolution": record.get("resolution"),
            "batch_size": s.get("batch_size"), "lr": s.get("lr"), "init": s.get("init", BOOK_INIT)}


def seed_runs(model: str, variant_name: str | None = None, directory: str | Path | None = None,
              profile: str = "full") -> list[dict]:
    """一种设定下各个随机种子的完整结果，按种子排序。

    Args:
        model: 模型名，例如 ``"nin"``。
        variant_name: None 表示书中设定（种子 0 即 ``<模型>-full.json``）；否则是 :data:`VARIANTS` 中的名字。
        directory: 改从这个目录读（默认是随包发布的目录）。
        profile: 运行配置，默认 ``"full"``。

    Returns:
        完整的记录（:func:`is_complete`）；设定与种子 0 不同的文件被跳过并给出警告。
    """
    if variant_name is not None:
        variant(model, variant_name)  # 名字不对时立即说清楚
    names = [run_file(model, 0, None, profile)] if variant_name is None else []
    names += _seed_files(model, variant_name, directory, profile)
    records = [r for r in (load_published(n, directory) for n in names) if r is not None and is_complete(r)]
    records.sort(key=lambda r: (r.get("settings") or {}).get("seed", -1))
    if records:
        first = _setting(records[0])
        for r in records[1:]:
            if _setting(r) != first:
                warnings.warn(f"{model} 随机种子 {r['settings'].get('seed')} 的设定 {_setting(r)} 与其他种子 {first} "
                              "不同，不算进同一设定。请检查 seeds/ 里的这个文件。", stacklevel=2)
        records = [r for r in records if _setting(r) == first]
    return records


class SeedRow(NamedTuple):
    """种子表的一行。"""
    seed: int | None  # None：记录里没有写随机种子
    final: float      # 最后一轮的测试准确率
    best: float       # 各轮测试准确率的最高值
    best_epoch: int   # 最高值在第几轮（从 1 数起）
    last3: float      # 最后三轮测试准确率的平均（不足三轮时取全部）


class Spread(NamedTuple):
    """几个种子的一列数：平均、最低、最高与样本标准差（只有一个种子时标准差是 NaN）。"""
    mean: float
    low: float
    high: float
    std: float

    @property
    def width(self) -> float:
        """最高减最低。"""
        return self.high - self.low


def _last_epochs(acc: list[float]) -> list[float]:
    """最后三轮（不足三轮时取全部）：种子表的“最后三轮平均”与 :func:`seed_spread` 的尺度都按它。"""
    return acc[-3:]


def seed_row(record: dict) -> SeedRow:
    """一次运行的最终、最高（及其轮次）与最后三轮平均的测试准确率。"""
    acc = record["history"]["test_acc"]
    best = max(acc)
    return SeedRow((record.get("settings") or {}).get("seed"), acc[-1], best, acc.index(best) + 1,
                   statistics.fmean(_last_epochs(acc)))


def spread(values: list[float]) -> Spread:
    """``values`` 的平均、最低、最高与样本标准差。"""
    values = list(values)
    if not values:
        raise ValueError("spread 需要至少一个数：没有任何种子的结果。")
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return Spread(statistics.fmean(values), min(values), max(values), std)


def _setting_title(model: str, variant_name: str | None) -> str:
    if variant_name is None:
        return "书中设定（Xavier 初始化）"
    return variant(model, variant_name).title


def _devices(records: list[dict]) -> str:
    return "、".join(dict.fromkeys(f"{r['history']['device']}，{r.get('precision', 'fp32')}" for r in records))


def seed_table(model: str, variant_name: str | None = None, directory: str | Path | None = None) -> str | None:
    """一种设定的种子表（Markdown）：每个种子的最终、最高（第几轮）与最后三轮平均的测试准确率，
    以及它们在种子之间的平均、最低–最高与标准差。还没有结果时返回 None。

    在笔记本里用 ``display(Markdown(cnnlib.seed_table("nin")))`` 显示。
    """
    records = seed_runs(model, variant_name, directory)
    if not records:
        return None
    rows = [seed_row(r) for r in records]
    title = model_spec(model).title
    lines = [f"{title}，{_setting_title(model, variant_name)}：{len(rows)} 个随机种子的测试准确率"
             f"（{_devices(records)}）", "",
             "| 随机种子 | 最终 | 最高（第几轮） | 最后三轮平均 |", "|---:|---:|---:|---:|"]
    for row in rows:
        seed = "未记录" if row.seed is None else str(row.seed)
        lines.append(f"| {seed} | {row.final:.3f} | {row.best:.3f}（{row.best_epoch}） | {row.last3:.3f} |")
    cols = [spread([getattr(r, k) for r in rows]) for k in ("final", "best", "last3")]
    lines.append("| 平均 | " + " | ".join(f"{c.mean:.3f}" for c in cols) + " |")
    lines.append("| 最低–最高 | " + " | ".join(f"{c.low:.3f}–{c.high:.3f}" for c in cols) + " |")
    lines.append("| 标准差 | " + " | ".join("—" if math.isnan(c.std) else f"{c.std:.3f}" for c in cols) + " |")
    return "\n".join(lines)


def compare_seed_settings(model: str, directory: str | Path | None = None) -> str | None:
    """书中设定与 :data:`VARIANTS` 中 ``model`` 的其他设定并排（Markdown），每种设定一行：
    种子数、各种子的最终测试准确率、最终与最高的平均和范围、最后三轮的平均。都还没有结果时返回 None。

    7.3 节用它把 NiN 的 He 初始化与书中的 Xavier 初始化放在一起：``display(Markdown(cnnlib.compare_seed_settings("nin")))``。
    """
    settings = [None] + [v.name for v in VARIANTS.get(model, ())]
    lines = ["| 设定 | 种子数 | 各种子的最终测试准确率 | 最终：平均（最低–最高） | 最高：平均（最低–最高） | 最后三轮：平均 | 设备 |",
             "|---|---:|---|---:|---:|---:|---|"]
    found = False
    for name in settings:
        records = seed_runs(model, name, directory)
        title = _setting_title(model, name)
        if not records:
            lines.append(f"| {title} | 0 | 还没有结果 | — | — | — | — |")
            continue
        found = True
        rows = [seed_row(r) for r in records]
        final, best, last3 = (spread([getattr(r, k) for r in rows]) for k in ("final", "best", "last3"))
        each = "、".join(f"{r.final:.3f}" for r in rows)
        lines.append(f"| {title} | {len(rows)} | {each} | {final.mean:.3f}（{final.low:.3f}–{final.high:.3f}） | "
                     f"{best.mean:.3f}（{best.low:.3f}–{best.high:.3f}） | {last3.mean:.3f} | {_devices(records)} |")
    notes = [f"{v.title}：{v.why}。" for v in VARIANTS.get(model, ())]
    return "\n".join(lines + ([""] + notes if notes else [])) if found else None


# ---------------------------------------------------------------------------
# 种子之间的差别有多大：以“同一次运行最后三轮的起伏”为尺度
# ---------------------------------------------------------------------------
# 一次运行最后一轮的测试准确率带着逐轮的起伏（学习率不衰减时到最后几轮仍上下跳动）。两个这样的读数相差
# 不到这个起伏，就分不出高低。所以种子之间、几个来源的报告值之间、两个网络之间的差别，都先与它比较。

_SLACK = 1e-9  # 准确率是“答对的张数 / 张数”，相等的差别在浮点数的最后一位上可能不同


def _exceeds(difference: float, yardstick: float) -> bool:
    return difference > yardstick + _SLACK


class SeedSpread(NamedTuple):
    """:func:`seed_spread` 的结果：打印的几行，以及得出结论用到的数。

    ``seeds_verdict``：``"one_seed"``（只有一个种子）、``"seed_effect"``（按最后三轮平均，种子之间的差别也超过尺度）、
    ``"last_epoch"``（只有最后一轮的差别超过尺度）或 ``"within"``（都不超过）。
    ``sources_verdict``：``"within"``（几个来源的差别不超过尺度）、``"seeds"``（超过尺度，但不超过本书种子之间
    最终值的差别）、``"beyond"``（两者都超过）；不与报告值比较时（另一种设定）为 None。
    ``versus_verdict``：与另一个网络比较时同样三种取值；没有比较时为 None。
    """
    rows: list[SeedRow]
    final: Spread             # 各种子的最终测试准确率
    best: Spread              # 各种子的最高测试准确率
    last3: Spread             # 各种子最后三轮的平均
    scale: float              # 尺度：同一次运行最后三轮测试准确率的最高减最低，取各种子中最大的
    seeds_verdict: str
    sources: dict[str, float]  # 来源 → 最终测试准确率（教学笔记、d2l、本书种子 0）；另一种设定时为空
    sources_verdict: str | None
    versus: SeedSpread | None  # versus 给出时，另一个网络的结果
    versus_verdict: str | None
    lines: list[str]


def _verdict(difference: float, scale: float, seeds: float) -> str:
    """差别与尺度、与种子之间的差别相比：``"within"``、``"seeds"`` 或 ``"beyond"``。"""
    if not _exceeds(difference, scale):
        return "within"
    return "seeds" if not _exceeds(difference, seeds) else "beyond"


def seed_spread(model: str, variant_name: str | None = None, directory: str | Path | None = None, *,
                versus: str | None = None, show: bool = True) -> SeedSpread | None:
    """同一设定的几个随机种子之间、几个来源的报告值之间差多少，是否超过单次运行的起伏；打印结论。

    **尺度**（yardstick，全书只用这一个）：同一次运行最后三轮的测试准确率的最高减最低，取各种子中最大的。
    学习率不衰减时，测试准确率到最后几轮仍上下跳动；两个单次读数的差别不超过这个尺度，单独一轮的起伏就能造成。
    依次比较：

    - 种子之间的最终值、最高值与最后三轮平均（各取最高减最低）。按最后三轮平均也超过尺度，才算换种子改变了结果；
      只有最终值超过，差别主要来自单独一轮的起伏。
    - 教学笔记、d2l 报告的测试准确率与本书种子 0 的最终值（都是单次运行最后一轮的读数；只比较书中设定）。
      超过尺度时，再看它是否超过本书种子之间最终值的差别：不超过，换一个种子就可能差这么多。
    - ``versus`` 给出时，两个网络各自几个种子最后三轮平均的平均，与两者尺度中较大的那个、以及种子之间
      最后三轮平均的差别比较。

    Args:
        model: 模型名，例如 ``"alexnet"``。
        variant_name: None 是书中设定，否则是 :data:`VARIANTS` 中的名字（如 NiN 的 ``"he"``）。
        directory: 改从这个目录读发布的结果（默认是随包发布的目录）。
        versus: 与另一个网络（它的书中设定）比较，例如在 7.2 节与 ``"alexnet"`` 比较。
        show: 是否打印。

    Returns:
        :class:`SeedSpread`；还没有发布任何种子的完整结果时打印一行说明并返回 None。
    """
    records = seed_runs(model, variant_name, directory)
    title, setting = model_spec(model).title, _setting_title(model, variant_name)
    if not records:
        if show:
            print(f"还没有发布 {title} {setting}下随机种子的完整结果（由 GPU 上的 benchmarks/full_run.py 写出），"
                  "无法比较。")
        return None
    rows = [seed_row(r) for r in records]
    final, best, last3 = (spread([getattr(r, k) for r in rows]) for k in ("final", "best", "last3"))
    # 尺度：每个种子最后三轮的最高减最低，取最大的那个种子
    tails = [_last_epochs(r["history"]["test_acc"]) for r in records]
    i = max(range(len(rows)), key=lambda k: max(tails[k]) - min(tails[k]))
    scale = max(tails[i]) - min(tails[i])
    epochs = len(records[i]["history"]["test_acc"])
    who = "未记录随机种子的那次运行" if rows[i].seed is None else f"种子 {rows[i].seed}"
    lines = [f"尺度：在 {title} {setting}的 {len(rows)} 个随机种子里，同一次运行最后三轮的测试准确率最多相差 "
             f"{scale:.3f}（{who}，第 {epochs - len(tails[i]) + 1}–{epochs} 轮：{'、'.join(f'{a:.3f}' for a in tails[i])}）"]

    seeds_verdict = _seed_lines(lines, len(rows), final, best, last3, scale)
    sources, sources_verdict = {}, None
    if variant_name is None:  # 别人报告的值都是书中设定，另一种设定不与它们比较
        sources = _sources(model, rows[0])
        sources_verdict = _source_lines(lines, sources, len(rows), final, scale)
    other, versus_verdict = None, None
    if versus is not None:
        other = seed_spread(versus, directory=directory, show=False)
        versus_verdict = _versus_lines(lines, title, model_spec(versus).title, len(rows), last3, scale, other)
    if show:
        print("\n".join(lines))
    return SeedSpread(rows, final, best, last3, scale, seeds_verdict, sources, sources_verdict,
                      other, versus_verdict, lines)


def _word(difference: float, scale: float) -> str:
    return "超过了" if _exceeds(difference, scale) else "不超过"


def _seed_lines(lines: list[str], n: int, final: Spread, best: Spread, last3: Spread, scale: float) -> str:
    """种子之间的三种差别与结论（加进 ``lines``），返回 ``seeds_verdict``。"""
    if n == 1:
        lines.append("→ 只有 1 个随机种子：还看不出换种子的差别。")
        return "one_seed"
    for name, s in (("最终值", final), ("最高值", best), ("最后三轮平均", last3)):
        lines.append(f"种子之间的{name}相差 {s.width:.3f}，{_word(s.width, scale)}这个尺度")
    if _exceeds(last3.width, scale):
        lines.append(f"→ 按最后三轮平均，种子之间的差别也超过了单次运行的起伏：换种子确实改变了结果"
                     f"（只有 {n} 个种子，还说不出改变通常有多大）。")
        return "seed_effect"
    if _exceeds(final.width, scale):
        lines.append("→ 只看最后一轮，种子之间的差别超过了单次运行的起伏；按最后三轮平均就不超过。"
                     "所以最后一轮的差别不能算作种子的效应，它主要来自单独一轮的起伏。")
        return "last_epoch"
    lines.append("→ 种子之间的差别不超过单次运行的起伏。")
    return "within"


def _sources(model: str, first: SeedRow) -> dict[str, float]:
    """几个来源最后一轮的测试准确率：教学笔记、d2l（是数字时）与本书的第一个种子。"""
    reported = model_spec(model).reported
    sources = {"教学笔记": reported.notes}
    if not isinstance(reported.d2l, str):  # d2l 几种实现并列时是一段文字，不参与比较
        sources["d2l"] = reported.d2l
    sources["本书" if first.seed is None else f"本书种子 {first.seed}"] = first.final
    return sources


def _source_lines(lines: list[str], sources: dict[str, float], n: int, final: Spread, scale: float) -> str:
    """几个来源之间的差别与结论（加进 ``lines``），返回 ``sources_verdict``。"""
    gap = max(sources.values()) - min(sources.values())
    names = list(sources)
    others, last = "、".join(names[:-1]), names[-1]
    lines.append(f"{others}{' ' * others[-1].isascii()}与{last}{' ' * last[-1].isascii()}的最终值（"
                 + "、".join(f"{v:.3f}" for v in sources.values()) + f"）最多相差 {gap:.3f}，{_word(gap, scale)}这个尺度")
    verdict = _verdict(gap, scale, final.width)
    if verdict == "within":
        lines.append("→ 几个来源的报告值之间的差别不超过单次运行的起伏，它们的高低说明不了哪一份实现更好。")
    elif verdict == "seeds":
        lines.append("→ 几个来源的报告值之间的差别超过了单次运行的起伏，但不超过本书几个种子最终值之间的差别："
                     "换一个随机种子就可能差这么多，它们的高低同样说明不了哪一份实现更好。")
    else:
        beyond_seeds = f"，也超过了本书 {n} 个种子最终值之间的差别" if n > 1 else ""
        lines.append(f"→ 几个来源的报告值之间的差别超过了单次运行的起伏{beyond_seeds}：可能来自设定上的不同"
                     "（见本节的“与教学笔记和 d2l 的差异”），也可能只是随机种子不同"
                     f"（本书只有 {n} 个种子，还估计不出换种子通常差多少），值得核对。")
    return verdict


def _versus_lines(lines: list[str], title: str, other_title: str, n: int, last3: Spread, scale: float,
                  other: SeedSpread | None) -> str | None:
    """两个网络各种子最后三轮平均的平均之差与结论（加进 ``lines``），返回 ``versus_verdict``。"""
    if other is None:
        lines.append(f"还没有发布 {other_title} 的完整结果，无法与它比较。")
        return None
    m = len(other.rows)
    d = last3.mean - other.last3.mean
    yardstick = max(scale, other.scale)
    seeds = max(last3.width, other.last3.width)  # 只有一个种子时是 0
    verdict = _verdict(abs(d), yardstick, seeds)
    lines.append(f"与 {other_title} 比较（各种子最后三轮平均的平均）：{title} {last3.mean:.3f}（{n} 个种子），"
                 f"{other_title} {other.last3.mean:.3f}（{m} 个种子）；{title} {'高' if d > 0 else '低'} {abs(d):.3f}，"
                 f"{_word(abs(d), yardstick)}两者的尺度中较大的 {yardstick:.3f}")
    if verdict == "within":
        lines.append("→ 仅凭这些运行分不出两者的高低。")
    elif verdict == "seeds":
        lines.append("→ 超过了单次运行的起伏，但不超过种子之间最后三轮平均的差别：换种子就可能差这么多，"
                     "仅凭这些运行还分不出两者的高低。")
    else:
        lines.append("→ 这个差别不是单独一轮的起伏造成的" + ("，也超出了种子之间最后三轮平均的差别" if seeds > 0 else "")
                     + f"（两者分别只有 {n} 个与 {m} 个种子，换种子通常差多少还估计不准）。")
    return verdict


class Band(NamedTuple):
    """几个种子逐轮的范围：第 ``epochs[i]`` 轮的最低 ``low[i]``、最高 ``high[i]`` 与平均 ``mean[i]``。"""
    epochs: list[int]
    low: list[float]
    high: list[float]
    mean: list[float]


def seed_band(records: list[dict], key: str = "test_acc") -> Band:
    """``records`` 逐轮的最低、最高与平均（``key`` 是训练记录里的一列，默认测试准确率）。

    只取所有记录都有的轮次。
    """
    if not records:
        raise ValueError("seed_band 需要至少一个结果：没有任何种子的记录。")
    series = [r["history"][key] for r in records]
    n = min(len(s) for s in series)
    columns = [[s[i] for s in series] for i in range(n)]
    return Band(list(range(1, n + 1)), [min(c) for c in columns], [max(c) for c in columns],
                [statistics.fmean(c) for c in columns])


class BandComparison(NamedTuple):
    """:func:`compare_with_band` 的结论。

    ``status``：``"within"``（在几个种子的范围内）、``"above"``（高于）、``"below"``（低于）、
    ``"other_setting"``（设定不同，不比较）或 ``"no_band"``（还没有发布的种子）。
    """
    status: str
    message: str
    epoch: int | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None
    mean: float | None = None


def _history_setting(history) -> dict:
    """训练记录里能看出的设定；记录里没有的项（较早的 History 没有分辨率、批量、学习率、初始化）是 None。"""
    return {"profile": history.profile, "num_train": history.num_train, "num_test": history.num_test or None,
            "resolution": getattr(history, "resolution", None), "batch_size": getattr(history, "batch_size", None),
            "lr": getattr(history, "lr", None), "init": getattr(history, "init", None)}


_SETTING_NAMES = {"resolution": "输入分辨率", "batch_size": "批量", "lr": "学习率", "init": "初始化"}


def _setting_differences(mine: dict, theirs: dict) -> list[str]:
    """两组设定中不同的项（一方不知道的项不算不同）。

    运行配置的名字不同、而数据量与各项设定都记下且相同时不算不同：例如 LeNet-BN 的 ``cpu`` 配置就是书中的设定。
    """
    out = []
    # 训练数据量差 1% 以内算相同：分布式训练时各进程均分，除不尽的几张被舍去
    if mine["num_train"] and theirs["num_train"] and \
            abs(mine["num_train"] - theirs["num_train"]) > 0.01 * theirs["num_train"]:
        out.append(f"训练数据量（本次 {mine['num_train']:,} 张，发布的 {theirs['num_train']:,} 张）")
    if mine["num_test"] and theirs["num_test"] and mine["num_test"] != theirs["num_test"]:
        out.append(f"测试数据量（本次 {mine['num_test']:,} 张，发布的 {theirs['num_test']:,} 张）")
    for key, label in _SETTING_NAMES.items():
        if mine[key] is not None and theirs[key] is not None and mine[key] != theirs[key]:
            out.append(f"{label}（本次 {mine[key]}，发布的 {theirs[key]}）")
    all_known = all(side[key] is not None for side in (mine, theirs) for key in ("num_train", "num_test", *_SETTING_NAMES))
    if mine["profile"] != theirs["profile"] and (out or not all_known):
        out.insert(0, f"运行配置（本次 {mine['profile'] or '自定义'}，发布的 {theirs['profile']}）")
    return out


def compare_with_band(history, model: str, variant_name: str | None = None, *,
                      directory: str | Path | None = None, plot: bool = True, ax=None) -> BandComparison:
    """把一次训练（例如读者自己的运行）与发布的几个随机种子放在一起：打印一行中文结论并作图。

    “带”（band）是同一设定下几个种子逐轮测试准确率的最低–最高范围，另画出它们的平均。结论看本次运行
    最后一轮（或发布的种子都有的最后一轮）：在范围内、高于或低于；低于时说明该检查什么。
    数据量或其他设定（分辨率、批量、学习率、初始化，训练记录里有这几项时）与发布的种子不同时，
    只说明不同之处，不作比较（图中只画发布的种子）；只是运行配置的名字不同、各项设定都相同时照样比较。

    Args:
        history: :func:`cnnlib.train` 返回的 :class:`cnnlib.History`。
        model: 模型名，例如 ``"alexnet"``。
        variant_name: 与哪种设定比较：None 是书中设定，否则是 :data:`VARIANTS` 中的名字（如 NiN 的 ``"he"``）。
        directory: 改从这个目录读发布的结果（默认是随包发布的目录）。
        plot: 是否作图。
        ax: 画在这个 matplotlib 坐标轴上；None 时新建一张图。

    Returns:
        :class:`BandComparison`：结论（``status``）、打印的那一行和比较用到的数。
    """
    records = seed_runs(model, variant_name, directory)
    title = model_spec(model).title
    setting = _setting_title(model, variant_name)
    if not records:
        result = BandComparison("no_band", f"还没有发布 {title} {setting}下几个随机种子的完整结果"
                                           "（由 GPU 上的 benchmarks/full_run.py 写出），无法比较。")
        print(result.message)
        return result
    band = seed_band(records)
    theirs = _setting(records[0])
    n = len(records)
    differences = _setting_differences(_history_setting(history), theirs)
    if not history.epochs:
        differences.append("轮数（本次运行还没有完成任何一轮）")
    if differences:
        result = BandComparison(
            "other_setting",
            f"本次运行与发布的 {n} 个随机种子（{title}，{setting}，完整数据 {theirs['num_train']:,} 张 × "
            f"{band.epochs[-1]} 轮，输入 {theirs['resolution']}×{theirs['resolution']}，批量 {theirs['batch_size']}）"
            f"设定不同：{'；'.join(differences)}，所以不作比较。要与书中的结果比较，请在 GPU 上用 full 配置训练"
            "（CNNLIB_PROFILE=full）。")
    else:
        e = min(history.epochs, band.epochs[-1])
        value, low, high, mean = history.test_acc[e - 1], band.low[e - 1], band.high[e - 1], band.mean[e - 1]
        where = (f"本次运行第 {e} 轮的测试准确率 {value:.3f}，发布的 {n} 个随机种子（{setting}）"
                 f"在这一轮是 {low:.3f}–{high:.3f}（平均 {mean:.3f}）")
        if low <= value <= high:
            result = BandComparison("within", f"{where}：落在范围之内，与书中的结果一致。", e, value, low, high, mean)
        elif value > high:
            result = BandComparison("above", f"{where}：高于全部 {n} 个种子。同一设定再跑一次，本来就约有 "
                                             f"1/{n + 1} 的机会高于它们全部，不必在意。", e, value, low, high, mean)
        else:
            precision = history.precision or "fp32"
            theirs_precision = records[0].get("precision", "fp32")
            checks = [f"学习率（书中 lr={theirs['lr']:g}）", f"初始化（发布的结果用 {theirs['init']}）",
                      "数值精度" + (f"（本次 {precision}，发布的 {theirs_precision}）" if precision != theirs_precision else ""),
                      "是否改过网络、数据或训练函数的参数"]
            noise = (f"同一设定再跑一次，约有 1/{n + 1} 的机会低于全部 {n} 个种子，差 {low - value:.3f} 这么一点多半是随机波动；"
                     if low - value <= max(high - low, 0.01) else f"差 {low - value:.3f}，超出了种子之间的差别；")
            result = BandComparison("below", f"{where}：低于全部 {n} 个种子。{noise}请检查：{'、'.join(checks)}。",
                                    e, value, low, high, mean)
    print(result.message)
    if plot:
        _plot_band(band, records, history if result.status != "other_setting" else None,
                   f"{title}，{setting}：{n} 个随机种子（{_devices(records)}）", ax)
    return result


def _plot_band(band: Band, records: list[dict], history, title: str, ax=None):
    from cnnlib.plot import use_cjk_font
    use_cjk_font()
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    ax.fill_between(band.epochs, band.low, band.high, alpha=0.25, color="C0",
                    label=f"{len(records)} 个种子的范围（最低–最高）")
    ax.plot(band.epochs, band.mean, "--", color="C0", label="种子的平均")
    if history is not None:
        ax.plot(range(1, history.epochs + 1), history.test_acc, "o-", color="C3", markersize=4, label="本次运行")
    ax.set_xlabel("轮次（epoch）")
    ax.set_ylabel("测试准确率")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    return ax


def show_full_result(model: str, directory: str | Path | None = None, ax=None):
    """展示 ``model`` 在完整设定（``full`` 配置）下的结果：设备、精度、日期、最终数字与逐轮曲线。

    笔记本在 CPU 上执行时只能跑子集，这个函数让读者同时看到完整设定的真实结果。测试准确率给出
    最终、最高（及其轮次）与最后三轮的平均；同一设定其他随机种子的结果（:func:`seed_results`）一并列出。
    还没有完整结果时只打印一行说明；被中断或没训练满的记录不当作完整结果展示（:func:`is_complete`）。
    默认读随 cnnlib 发布的结果；``directory`` 给出时改读该目录。

    Returns:
        完整结果的 :class:`cnnlib.History`；没有时返回 None。
    """
    from cnnlib.history import History
    record = load_full_result(model, directory)
    where = "cnnlib/published/" if directory is None else f"{Path(directory)}/"
    if record is None:
        print(f"还没有 {model} 在完整设定（full 配置）下的结果：它由 GPU 上的 benchmarks/full_run.py 写进 "
              f"{where}{model}-full.json（见 README）。")
        return None
    if not is_complete(record):
        h = record.get("history") or {}
        why = "被中断" if h.get("interrupted") else "没有训练满设定的轮数"
        print(f"{where}{model}-full.json 是一次没有完成的运行（{why}，只有 {len(h.get('train_loss') or [])} 轮），"
              "不作为完整设定的结果展示：再运行 benchmarks/full_run.py 会从检查点把它训练完。")
        return None
    history = History.from_dict(record["history"])
    date = record.get("date", "")[:10]
    seed = (record.get("settings") or {}).get("seed")
    print(f"完整设定的结果：{history.device}，{history.precision or 'fp32'}，"
          f"torch {record.get('torch', '?')}，{date}，" + ("随机种子未记录" if seed is None else f"随机种子 {seed}"))
    row = seed_row(record)
    print(f"  训练 {history.num_train:,} 张 × {history.epochs} 轮：loss {history.train_loss[-1]:.3f}，"
          f"训练准确率 {history.train_acc[-1]:.3f}，测试准确率 {row.final:.3f}"
          f"（最高 {row.best:.3f}，在第 {row.best_epoch} 轮；最后三轮平均 {row.last3:.3f}）")
    print(f"  {history.overall_examples_per_sec:,.0f} examples/sec，总墙钟时间 {history.wall_time:.1f} 秒"
          "（含取数据与评估）")
    seeds = seed_results(model, directory)
    if seeds:
        print("  同样设定、其他随机种子的测试准确率（最终 / 最高 / 最后三轮平均）：" + "，".join(
            f"种子 {r.seed} → {r.final:.3f} / {r.best:.3f} / {r.last3:.3f}" for r in map(seed_row, seeds)))
    from cnnlib.plot import plot_history
    ax = plot_history(history, ax=ax)
    ax.set_title(f"完整设定（{history.device}，{history.precision or 'fp32'}）", fontsize=10)
    return history
