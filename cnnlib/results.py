"""训练结果文件：每次训练写一个 JSON，模型对比页从这些文件生成，不手抄数字。

书中完整设定的结果随 cnnlib 一起发布（``cnnlib/published/``），由 :func:`load_full_result`、
:func:`show_full_result`、:func:`seed_results` 与 :func:`load_published` 读出。
"""

from __future__ import annotations

import datetime
import json
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

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
    """把结果写成 JSON 文件（UTF-8，中文不转义）。"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
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
#   published/seeds/<模型>-full-seed<k>.json  同一设定、随机种子 k
#   published/experiments/init-full.json     He 与 Xavier 初始化的第 1 轮（7.3 节）
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
    """同一完整设定、只换随机种子的结果（``seeds/<model>-full-seed*.json``），按文件名排序；没有时是空列表。"""
    seeds = _source(directory) / "seeds"
    if not seeds.is_dir():
        return []
    paths = sorted((p for p in seeds.iterdir() if p.name.startswith(f"{model}-full-seed")
                    and p.name.endswith(".json")), key=lambda p: p.name)
    return [json.loads(p.read_text(encoding="utf-8")) for p in paths]


def show_full_result(model: str, directory: str | Path | None = None, ax=None):
    """展示 ``model`` 在完整设定（``full`` 配置）下的结果：设备、精度、日期、最终数字与逐轮曲线。

    笔记本在 CPU 上执行时只能跑子集，这个函数让读者同时看到完整设定的真实结果。
    同一设定换随机种子的结果（:func:`seed_results`）一并列出。还没有完整结果时只打印一行说明。
    默认读随 cnnlib 发布的结果；``directory`` 给出时改读该目录。

    Returns:
        完整结果的 :class:`cnnlib.History`；没有时返回 None。
    """
    from cnnlib.train import History
    record = load_full_result(model, directory)
    if record is None:
        where = "cnnlib/published/" if directory is None else f"{Path(directory)}/"
        print(f"还没有 {model} 在完整设定（full 配置）下的结果：它由 GPU 上的 benchmarks/full_run.py 写进 "
              f"{where}{model}-full.json（见 README）。")
        return None
    history = History.from_dict(record["history"])
    date = record.get("date", "")[:10]
    print(f"完整设定的结果：{history.device}，{history.precision or 'fp32'}，"
          f"torch {record.get('torch', '?')}，{date}，随机种子 {record['settings'].get('seed', 0)}")
    print(f"  训练 {history.num_train:,} 张 × {history.epochs} 轮：loss {history.train_loss[-1]:.3f}，"
          f"训练准确率 {history.train_acc[-1]:.3f}，测试准确率 {history.test_acc[-1]:.3f}"
          f"（最高 {max(history.test_acc):.3f}，在第 {history.test_acc.index(max(history.test_acc)) + 1} 轮）")
    print(f"  {history.overall_examples_per_sec:,.0f} examples/sec，总墙钟时间 {history.wall_time:.1f} 秒"
          "（含取数据与评估）")
    seeds = seed_results(model, directory)
    if seeds:
        print("  同样设定、其他随机种子的测试准确率：" + "，".join(
            f"种子 {r['settings']['seed']} → {r['test_acc']:.3f}" for r in seeds))
    from cnnlib.plot import plot_history
    ax = plot_history(history, ax=ax)
    ax.set_title(f"完整设定（{history.device}，{history.precision or 'fp32'}）", fontsize=10)
    return history
