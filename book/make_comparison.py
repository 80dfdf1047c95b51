"""从训练写出的结果文件生成模型对比页：book/comparison.md 与 book/figures/comparison.svg。

用法（在仓库根目录；``make book`` 在构建网站之前运行它）::

    python book/make_comparison.py [--results notebooks/results] [--published cnnlib/published]

几个随机种子的平均与分散程度来自 ``cnnlib/published/`` 与其中的 ``seeds/``（:func:`cnnlib.seed_runs`）。
页面上的每个数字都来自笔记本写出的 ``notebooks/results/<模型>-<运行配置>.json``（由 :func:`cnnlib.save_result`
写出）、随 cnnlib 发布的完整结果 ``cnnlib/published/<模型>-full.json`` 或 cnnlib 本身，不手抄。同一个模型有多个结果时取 full，其次 cpu；smoke 只检查笔记本能否运行，
数字没有意义，不用。还没有结果的模型，页面如实写“还没有结果”。
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cnnlib
from cnnlib.profiles import FULL_TEST, FULL_TRAIN

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "notebooks" / "results"   # 笔记本执行时写出的结果（cpu、smoke 配置）
PUBLISHED = ROOT / "cnnlib" / "published"  # GPU 上完整设定的结果，随 cnnlib 发布
PAGE = ROOT / "book" / "comparison.md"
FIGURE = ROOT / "book" / "figures" / "comparison.svg"

# 章节顺序：(结果文件里的模型名, 显示名, 笔记本)，来自登记表
MODELS = [(spec.name, spec.title, spec.notebook) for spec in cnnlib.SPECS.values()]
PROFILE_ORDER = ("full", "cpu")  # 优先顺序；其余（smoke、自定义）不进对比


def pick_results(records: list[dict]) -> tuple[dict[str, dict], list[str]]:
    """每个模型取一个结果：full 优先，其次 cpu。返回（模型名 -> 结果, 被跳过的非 smoke 结果）。"""
    chosen: dict[str, dict] = {}
    skipped = []
    for r in records:
        profile = r["history"].get("profile")
        if profile not in PROFILE_ORDER:
            if profile != "smoke":  # smoke 结果本来就不进对比，不必一一列出
                skipped.append(f"{r['model']}（运行配置 {profile or '自定义'}）")
            continue
        old = chosen.get(r["model"])
        if old is None or PROFILE_ORDER.index(profile) < PROFILE_ORDER.index(old["history"]["profile"]):
            chosen[r["model"]] = r
    return chosen, skipped


def describe_run(r: dict) -> str:
    h = r["history"]
    epochs = len(h["train_loss"])
    return (f"{h['profile']}：训练 {h['num_train']:,}/{h['total_train']:,} 张 × {epochs} 轮，"
            f"测试 {h['num_test']:,}/{h['total_test']:,} 张")


def _si(value: float, unit: str = "") -> str:
    """带单位前缀的数：46.79 M、1.88 G、552.5 M、44.4 K。"""
    for factor, prefix, digits in ((1e9, "G", 2), (1e6, "M", 2), (1e3, "K", 1)):
        if value >= factor:
            return f"{value / factor:.{digits}f} {prefix}{unit}"
    return f"{value:.0f} {unit}".rstrip()


def _link(name: str, notebook: str) -> str:
    return f"[{name}](../notebooks/{notebook}.ipynb)"


def size_table(chosen: dict[str, dict]) -> list[str]:
    """模型的规模：参数量与一张图像的前向 FLOPs（在训练所用的分辨率下）。"""
    lines = ["| 模型 | 输入 | 参数量 | 前向 FLOPs |", "|---|---:|---:|---:|"]
    for key, name, notebook in MODELS:
        r = chosen.get(key)
        if r is None:
            lines.append(f"| {_link(name, notebook)} | — | — | 还没有结果 |")
        else:
            res = r["resolution"]
            lines.append(f"| {_link(name, notebook)} | {res}×{res} | {_si(r['params'])} | "
                         f"{_si(r['forward_flops'])} |")
    return lines


def training_table(chosen: dict[str, dict]) -> list[str]:
    """训练结果：测试准确率与吞吐量，以及它们来自哪台设备、哪个运行配置。"""
    lines = ["| 模型 | 测试准确率 | examples/sec | 设备与精度 | 运行配置 |", "|---|---:|---:|---|---|"]
    for key, name, notebook in MODELS:
        r = chosen.get(key)
        if r is None:
            lines.append(f"| {_link(name, notebook)} | 还没有结果 | — | — | — |")
        else:
            lines.append(f"| {_link(name, notebook)} | {r['test_acc']:.3f} | {r['examples_per_sec']:,.1f} | "
                         f"{r['history']['device']}，{r.get('precision', 'fp32')} | {describe_run(r)} |")
    return lines


def seeds_table(published: Path | None) -> list[str]:
    """完整设定下每个网络几个随机种子的测试准确率：平均与分散程度（最低–最高、标准差）。

    另一种设定（``cnnlib.results.VARIANTS``，例如 NiN 的 He 初始化）在它的网络下面单列一行。
    """
    lines = ["| 模型 | 设定 | 种子数 | 最终：平均 | 最终：最低–最高 | 最终：标准差 | 最高：平均 | 最后三轮：平均 |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for key, name, notebook in MODELS:
        for variant in [None] + [v.name for v in cnnlib.results.VARIANTS.get(key, ())]:
            setting = "书中设定" if variant is None else cnnlib.results.variant(key, variant).title
            records = cnnlib.seed_runs(key, variant, published) if published is not None else []
            if not records:
                lines.append(f"| {_link(name, notebook)} | {setting} | 0 | 还没有结果 | — | — | — | — |")
                continue
            rows = [cnnlib.results.seed_row(r) for r in records]
            final, best, last3 = (cnnlib.results.spread([getattr(r, k) for r in rows]) for k in ("final", "best", "last3"))
            std = "—" if math.isnan(final.std) else f"{final.std:.3f}"
            lines.append(f"| {_link(name, notebook)} | {setting} | {len(rows)} | {final.mean:.3f} | "
                         f"{final.low:.3f}–{final.high:.3f} | {std} | {best.mean:.3f} | {last3.mean:.3f} |")
    return lines


def reported_table() -> list[str]:
    lines = ["| 模型 | 教学笔记（未知 GPU） | 《动手学深度学习》中文版 |", "|---|---:|---:|"]
    for key, name, _ in MODELS:
        r = cnnlib.model_spec(key).reported
        d2l = r.d2l if isinstance(r.d2l, str) else f"{r.d2l:.3f}"
        lines.append(f"| {name} | {r.notes:.3f} | {d2l} |")
    return lines


def profiles_table() -> list[str]:
    """每个模型在三种运行配置下怎样训练：数据量、轮数、输入分辨率与批量（来自登记表与 cnnlib.get_profile）。"""
    def cell(num_train: int, num_test: int, epochs: int, resolution: int, batch_size: int) -> str:
        return f"{num_train:,} / {num_test:,} 张，{epochs} 轮，输入 {resolution}×{resolution}，批量 {batch_size}"

    lines = ["| 模型 | full | cpu | smoke |", "|---|---|---|---|"]
    for key, name, _ in MODELS:
        spec = cnnlib.model_spec(key)
        cpu = spec.cpu  # 登记表的值（不受 CNNLIB_CPU_FRACTION 影响）
        smoke = cnnlib.get_profile(key, None, "smoke")
        lines.append(f"| {name} | {cell(FULL_TRAIN, FULL_TEST, spec.num_epochs, spec.resolution, spec.batch_size)} | "
                     f"{cell(cpu.num_train, cpu.num_test, cpu.num_epochs, cpu.resolution, cpu.batch_size)} | "
                     f"{cell(smoke.num_train, smoke.num_test, smoke.num_epochs, smoke.resolution, smoke.batch_size)} |")
    return lines


def draw_figure(chosen: dict[str, dict], path: Path) -> None:
    """测试准确率对前向 FLOPs 的散点图（横轴取对数），图例写明运行配置与设备。"""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    cnnlib.use_cjk_font()
    matplotlib.rcParams["svg.hashsalt"] = "modern-cnn-zh"  # 让 SVG 的内部编号可复现
    fig, ax = plt.subplots(figsize=(7, 4.2))
    markers = {"full": ("o", "全部数据"), "cpu": ("s", "数据量按 CPU 缩减")}
    for profile, (marker, data) in markers.items():
        points = [(name, chosen[key]) for key, name, _ in MODELS
                  if key in chosen and chosen[key]["history"]["profile"] == profile]
        if not points:
            continue
        devices = "、".join(sorted({r["history"]["device"] for _, r in points}))
        xs = [r["forward_flops"] / 1e9 for _, r in points]
        ys = [r["test_acc"] for _, r in points]
        ax.scatter(xs, ys, s=60, marker=marker, zorder=3,
                   label=f"运行配置 {profile}（{data}），{devices}")
        for (name, _), x, y in zip(points, xs, ys):
            # 右边不远处有准确率相近的点时，标签改放在左下方，免得两个名字叠在一起
            crowded = any(x < x2 < 4 * x and abs(y2 - y) < 0.04 for x2, y2 in zip(xs, ys))
            offset, align = ((-7, -13), "right") if crowded else ((7, 5), "left")
            ax.annotate(name, (x, y), textcoords="offset points", xytext=offset, ha=align, fontsize=10)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("前向 GFLOPs（每张图像，对数坐标）")
    ax.set_ylabel("测试准确率")
    ax.set_title("Fashion-MNIST 上的测试准确率与计算量", fontsize=12)
    ax.grid(True, alpha=0.3)
    ax.margins(x=0.25, y=0.15)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)


def render_page(chosen: dict[str, dict], skipped: list[str], sources: list[str],
                published: Path | None = None) -> str:
    missing = [name for key, name, _ in MODELS if key not in chosen]
    out = [
        "# 模型对比",
        "",
        "<!-- 本页由 book/make_comparison.py 从 notebooks/results/ 与 cnnlib/published/ 中的结果文件生成，不要手改。 -->",
        "",
        "本页把七个模型放在一起比较：参数量、一张图像前向计算的浮点运算数（FLOPs）、训练吞吐量和测试准确率。",
        "表中的数字全部来自训练结束时用 `cnnlib.save_result` 写出的结果文件"
        "（笔记本写出的 `notebooks/results/<模型>-<运行配置>.json`，以及 GPU 上完整设定的结果、随 cnnlib 发布的"
        " `cnnlib/published/<模型>-full.json`），由 `book/make_comparison.py` 在构建网站时生成，"
        "没有手抄的数字。同一个模型有多个结果时取运行配置 full，其次 cpu；smoke 配置只用来检查笔记本能否运行，不进对比。",
        "",
    ]
    if not chosen:
        out += [
            ":::{note}",
            "**还没有结果。** `notebooks/results/` 与 `cnnlib/published/` 里还没有 full 或 cpu 运行配置的结果文件，所以下表暂时是空的，"
            "也没有散点图。执行笔记本（例如在 GPU 上运行 `make execute PROFILE=full`，"
            "或在 CPU 上运行 `make execute`）之后，重新构建网站，本页就会填上数字。",
            ":::",
            "",
        ]
    elif missing:
        out += [":::{note}", f"以下模型还没有结果：{'、'.join(missing)}。", ":::", ""]
    out += ["## 模型的规模", ""] + size_table(chosen) + [
        "",
        "- **参数量** 是可训练参数的个数（`cnnlib.count_parameters`），不含批量规范化的移动统计量。",
        "- **前向 FLOPs** 是在训练所用的分辨率（“输入”一列）下，一张单通道图像前向计算的浮点运算数"
        "（`cnnlib.count_flops`，一次乘加算 2 次）。它们只取决于模型，与设备和运行配置无关。",
        "",
        "## 训练结果", "",
    ] + training_table(chosen) + [
        "",
        "- **测试准确率** 是最后一轮结束时在测试集（或其子集）上的值。",
        "- **examples/sec** 是训练样本总数除以总墙钟时间，包含取数据与每轮评估；"
        "教学笔记里的 examples/sec 只计训练步，所以两者不能直接比较。",
        "- 不同设备、不同运行配置的结果不能直接比较：cpu 配置只用了一小部分数据和较少的轮数，"
        "准确率低于书中的报告值是意料之中的。",
        "",
    ]
    if chosen:
        out += [
            "```{figure} figures/comparison.svg",
            ":name: fig-comparison",
            ":alt: 测试准确率对前向 FLOPs 的散点图",
            ":width: 90%",
            "",
            "测试准确率对一张图像的前向 FLOPs（横轴为对数坐标）。圆点与方块区分运行配置，图例里写明了设备。",
            "```",
            "",
            "数据来源：" + "、".join(f"`{s}`" for s in sources) + "。",
            "",
        ]
    if skipped:
        out += ["没有进入对比的结果文件：" + "、".join(skipped) + "。", ""]
    out += [
        "## 几个随机种子", "",
        "同一设定只换随机种子（它同时决定初始化和数据顺序）在 GPU 上各训练一次，测试准确率的平均与分散程度"
        "（`cnnlib.seed_runs`，随 cnnlib 发布的 `cnnlib/published/` 与其中的 `seeds/`）。"
        "“最高”是各轮中最高的测试准确率，“最后三轮”是最后三轮的平均；标准差是样本标准差。"
        "只换种子就差这么多，比较两个网络时差距要比这大才说明问题。", "",
    ] + seeds_table(published) + [""]
    out += [
        "## 报告的结果",
        "",
        "同样的模型与超参数、全部数据训练 10 轮后的测试准确率，来自教学大纲与 d2l-zh（登记表 `cnnlib.SPECS` 的 `reported`），"
        "供对照。它们是别人在其他 GPU 上的一次运行。",
        "",
    ] + reported_table() + [
        "",
        "## 运行配置一览",
        "",
        "运行配置决定用多少数据（训练 / 测试图像数）、训练几轮；cpu 与 smoke 配置还换用更小的输入分辨率与批量，"
        "让 2 核 CPU 在几分钟里做足够多次参数更新。模型与学习率不变（见 `cnnlib/profiles.py`）。"
        "有 GPU 时默认 full，否则默认 cpu；环境变量 `CNNLIB_PROFILE` 可以覆盖。",
        "",
    ] + profiles_table() + [""]
    return "\n".join(out)


def _display_path(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def generate(results: Path, page: Path = PAGE, figure: Path = FIGURE,
             published: Path | None = None) -> dict[str, dict]:
    """读 ``results`` 与 ``published`` 中的结果文件，写出对比页 ``page`` 与散点图 ``figure``，返回选中的结果。"""
    records, folder = [], {}  # folder：结果 -> 它所在的目录（页面上写明数据来源）
    for directory in (results, published):
        if directory is not None and directory.is_dir():
            for record in cnnlib.load_results(directory):
                records.append(record)
                folder[id(record)] = directory
    chosen, skipped = pick_results(records)
    sources = [_display_path(folder[id(r)] / f"{r['model']}-{r['history']['profile']}.json")
               for key, _, _ in MODELS if (r := chosen.get(key))]
    if chosen:
        draw_figure(chosen, figure)
    else:
        figure.unlink(missing_ok=True)  # 不留下旧结果画的图
    page.write_text(render_page(chosen, skipped, sources, published), encoding="utf-8")
    print(f"模型对比页：{len(chosen)}/{len(MODELS)} 个模型有结果"
          + (f"；没有用到 {'、'.join(skipped)}" if skipped else ""))
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="笔记本写出的结果文件目录（默认 notebooks/results）")
    parser.add_argument("--published", type=Path, default=PUBLISHED,
                        help="随 cnnlib 发布的完整结果目录（默认 cnnlib/published）")
    args = parser.parse_args()
    generate(args.results, published=args.published)


if __name__ == "__main__":
    main()
