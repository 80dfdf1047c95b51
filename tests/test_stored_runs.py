"""网站展示的 CPU 运行：每节存储的那次训练学到了东西，而笔记本说的正是那次训练。

期望值来自别处：数据量、分辨率与批量来自登记表的 cpu 配置（:func:`cnnlib.get_profile`），
学到多少的门槛来自 issue 16（不带批量规范化的网络至少 0.5，带的至少 0.75；训练墙钟时间至多 300 秒）；
笔记本打印的配置行与总结行必须与结果文件 ``notebooks/results/<模型>-cpu.json`` 逐字一致。
重新执行笔记本（``make execute``）之后这些测试才有意义：它们检查的是提交的存储输出。
"""

import json
import re
from pathlib import Path

import pytest
from torch import nn

import cnnlib

ROOT = Path(__file__).resolve().parents[1]
SPECS = list(cnnlib.SPECS.values())
IDS = [s.name for s in SPECS]
MAX_TRAIN_SECONDS = 300


def record(spec) -> dict:
    return json.loads((ROOT / "notebooks" / "results" / f"{spec.name}-cpu.json").read_text(encoding="utf-8"))


def stored_text(spec) -> str:
    """笔记本里全部代码单元的文本输出（stdout 与 text/plain），按单元顺序连在一起。"""
    nb = json.loads((ROOT / "notebooks" / f"{spec.notebook}.ipynb").read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            parts.append("".join(text) if isinstance(text, list) else text)
    return "\n".join(parts)


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, cnnlib.BatchNorm)) for m in net.modules())


@pytest.fixture(autouse=True)
def _no_fraction(monkeypatch):
    monkeypatch.delenv("CNNLIB_CPU_FRACTION", raising=False)  # 网站上的运行用的是登记表的 cpu 配置本身


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_the_stored_cpu_run_used_the_registry_profile_in_fp32_on_a_named_cpu(spec):
    r, profile = record(spec), cnnlib.get_profile(spec.name, name="cpu")
    h = r["history"]
    assert (h["num_train"], h["num_test"], len(h["train_loss"])) == (
        profile.num_train, profile.num_test, profile.num_epochs), "结果文件不是按登记表的 cpu 配置跑的：请重新执行笔记本"
    assert (r["resolution"], r["settings"]["batch_size"], r["settings"]["lr"]) == (
        profile.resolution, profile.batch_size, profile.lr)
    assert r["profile"] == "cpu" and r["precision"] == "fp32", (r["profile"], r["precision"])
    assert re.fullmatch(r"cpu \(.+, \d+ threads; .*AVX.*\)", r["device"]), f"CPU 没有写明型号与指令集：{r['device']}"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_each_section_learns_on_the_cpu_within_five_minutes(spec):
    r = record(spec)
    bar = 0.75 if has_batch_norm(spec.factory()) else 0.5
    assert r["test_acc"] >= bar, f"{spec.title} 的 cpu 运行测试准确率 {r['test_acc']:.3f} < {bar}"
    assert r["wall_time"] <= MAX_TRAIN_SECONDS, f"{spec.title} 的 cpu 运行训练了 {r['wall_time']:.0f} 秒"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_the_notebook_prints_the_run_it_stored(spec):
    """配置行与总结行都由代码从同一次运行生成：它们与结果文件一致，正文就没有可以过期的数字。"""
    text = stored_text(spec)
    assert str(cnnlib.get_profile(spec.name, name="cpu")) in text, "笔记本打印的运行配置与登记表不同"
    summary = cnnlib.History.from_dict(record(spec)["history"]).summary()
    assert summary in text, f"{spec.notebook}.ipynb 里没有结果文件那次运行的总结行：\n{summary}"


# 正文（Markdown）里关于某次运行的数字：更新次数、用时、速度。它们只能由代码从运行记录打印
RUN_NUMBERS = re.compile(r"\d[\d,.]*\s*(?:次参数更新|次更新|秒|分钟|张/秒|examples/sec)")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_markdown_states_no_numbers_about_a_run(spec):
    nb = json.loads((ROOT / "notebooks" / f"{spec.notebook}.ipynb").read_text(encoding="utf-8"))
    found = [(i, m.group()) for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == "markdown"
             for m in RUN_NUMBERS.finditer("".join(cell["source"]))]
    assert not found, f"{spec.notebook}.ipynb 的正文写死了运行的数字（请改由代码打印）：{found}"


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
def test_the_environment_check_is_the_first_output(spec):
    """每本笔记本打印的第一样东西是 cnnlib.check_environment：设备、精度与理由、运行配置、本节的显存估计。"""
    nb = json.loads((ROOT / "notebooks" / f"{spec.notebook}.ipynb").read_text(encoding="utf-8"))
    first = next(cell for cell in nb["cells"] if cell["cell_type"] == "code" and cell.get("outputs"))
    assert f'cnnlib.check_environment("{spec.name}")' in "".join(first["source"])
    text = "".join("".join(out.get("text", "")) for out in first["outputs"])
    assert text.startswith("环境检查（") and "精度与内存布局" in text and spec.title in text, text[:300]
