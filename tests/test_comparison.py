"""模型对比页的生成器（book/make_comparison.py）：数字只来自结果文件，full 优先于 cpu，smoke 不用。"""

import importlib.util
from pathlib import Path

import pytest
from torch import nn

import cnnlib

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("make_comparison", ROOT / "book" / "make_comparison.py")
make_comparison = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_comparison)


def _save(directory: Path, model: str, profile: str, test_acc: float) -> dict:
    """用一个很小的网络和编造的训练记录写一个结果文件（只为测试生成器，不训练）。"""
    net = nn.Sequential(nn.Conv2d(1, 4, kernel_size=3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    history = cnnlib.History(train_loss=[0.9, 0.5], train_acc=[0.7, 0.8], test_acc=[0.6, test_acc],
                             examples_per_sec=[100.0, 100.0], epoch_time=[3.0, 3.0],
                             device="cpu (2 threads)", profile=profile, num_train=300, num_test=100,
                             total_train=60_000, total_test=10_000)
    cnnlib.save_result(model, net, history, resolution=28, directory=directory)
    return {"params": cnnlib.count_parameters(net)}


@pytest.fixture
def out(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "comparison.md", tmp_path / "figures" / "comparison.svg"


def test_without_results_the_page_says_so(tmp_path: Path, out) -> None:
    page, figure = out
    _save(tmp_path / "results", "alexnet", "smoke", 0.5)  # smoke 不算结果
    chosen = make_comparison.generate(tmp_path / "results", page, figure)
    text = page.read_text(encoding="utf-8")
    assert chosen == {}
    assert "还没有结果" in text and "{figure}" not in text
    assert not figure.exists()
    assert text.count("还没有结果 |") == 2 * len(make_comparison.MODELS)  # 规模表与训练结果表


def test_full_is_preferred_over_cpu_and_numbers_come_from_the_files(tmp_path: Path, out) -> None:
    page, figure = out
    results = tmp_path / "results"
    facts = _save(results, "alexnet", "cpu", 0.712)
    _save(results, "alexnet", "full", 0.883)
    _save(results, "resnet18", "cpu", 0.654)
    chosen = make_comparison.generate(results, page, figure)
    text = page.read_text(encoding="utf-8")

    assert chosen["alexnet"]["history"]["profile"] == "full"
    assert "0.883" in text and "0.712" not in text and "0.654" in text
    assert f"| {make_comparison._si(facts['params'])} |" in text
    assert "cpu (2 threads)" in text
    assert "full：训练 300/60,000 张 × 2 轮" in text
    assert "以下模型还没有结果：VGG-11" in text
    assert figure.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "figures/comparison.svg" in text
