"""模型对比页的生成器（book/make_comparison.py）：数字只来自结果文件，full 优先于 cpu，smoke 不用。

期望的表格行是手写的字面值：一个手搭的小网络（参数量与 FLOPs 手算）加一份编造的训练记录。
"""

import importlib.util
from pathlib import Path

import pytest
from torch import nn

import cnnlib

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("make_comparison", ROOT / "book" / "make_comparison.py")
make_comparison = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_comparison)


def _save(directory: Path, model: str, profile: str, test_acc: float) -> None:
    """写一个结果文件（只为测试生成器，不训练）。

    网络：3×3 卷积 1→4 通道，28×28 → 26×26，再接全连接 4·26·26 → 10。
    参数 4·9 + 4 + 2704·10 + 10 = 27,090；FLOPs 2·(4·26·26·9) + 2·(2704·10) = 102,752。
    记录：2 轮，每轮 300 张、3.0 秒，所以吞吐量是 600 / 6.0 = 100.0 examples/sec。
    """
    net = nn.Sequential(nn.Conv2d(1, 4, kernel_size=3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    history = cnnlib.History(train_loss=[0.9, 0.5], train_acc=[0.7, 0.8], test_acc=[0.6, test_acc],
                             examples_per_sec=[100.0, 100.0], epoch_time=[3.0, 3.0],
                             device="cpu (2 threads)", precision="fp32", profile=profile,
                             num_train=300, num_test=100, total_train=60_000, total_test=10_000)
    cnnlib.save_result(model, net, history, resolution=28, directory=directory)


@pytest.fixture
def out(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "comparison.md", tmp_path / "figures" / "comparison.svg"


def test_without_results_the_page_says_so(tmp_path: Path, out) -> None:
    page, figure = out
    _save(tmp_path / "results", "alexnet", "smoke", 0.5)  # smoke 不算结果
    chosen = make_comparison.generate(tmp_path / "results", page, figure)
    lines = page.read_text(encoding="utf-8").splitlines()
    assert chosen == {}
    assert "| [AlexNet](../notebooks/alexnet.ipynb) | — | — | 还没有结果 |" in lines
    assert "| [AlexNet](../notebooks/alexnet.ipynb) | 还没有结果 | — | — | — |" in lines
    before_seeds = lines[:lines.index("## 几个随机种子")]
    assert sum("还没有结果 |" in line for line in before_seeds) == 2 * len(cnnlib.SPECS)  # 每个模型在两张表里各一行
    assert sum("| 书中设定 | 0 | 还没有结果 |" in line for line in lines) == len(cnnlib.SPECS)  # 种子表也如实说
    assert not any(line.startswith("```{figure}") for line in lines)
    assert not figure.exists()


def test_full_is_preferred_over_cpu_and_numbers_come_from_the_files(tmp_path: Path, out) -> None:
    page, figure = out
    results = tmp_path / "results"
    _save(results, "alexnet", "cpu", 0.712)
    _save(results, "alexnet", "full", 0.883)
    _save(results, "resnet18", "cpu", 0.654)
    chosen = make_comparison.generate(results, page, figure)
    lines = page.read_text(encoding="utf-8").splitlines()

    assert {k: r["history"]["profile"] for k, r in chosen.items()} == {"alexnet": "full", "resnet18": "cpu"}
    # 规模表与训练结果表：手写的整行
    assert "| [AlexNet](../notebooks/alexnet.ipynb) | 28×28 | 27.1 K | 102.8 K |" in lines
    assert ("| [AlexNet](../notebooks/alexnet.ipynb) | 0.883 | 100.0 | cpu (2 threads)，fp32 | "
            "full：训练 300/60,000 张 × 2 轮，测试 100/10,000 张 |") in lines
    assert ("| [ResNet-18](../notebooks/resnet.ipynb) | 0.654 | 100.0 | cpu (2 threads)，fp32 | "
            "cpu：训练 300/60,000 张 × 2 轮，测试 100/10,000 张 |") in lines
    assert not any("0.712" in line for line in lines), "被 full 取代的 cpu 结果不应出现"
    # 登记表里的报告值与 cpu 配置的数据量
    assert "| AlexNet | 0.880 | 0.883 |" in lines
    # 运行配置一览：登记表里 ResNet-18 的书中设定（96×96、批量 256）与 cpu 配置（手抄的字面值），smoke 的数据量
    assert ("| ResNet-18 | 60,000 / 10,000 张，10 轮，输入 96×96，批量 256 | 10,240 / 1,000 张，3 轮，输入 64×64，批量 64 | "
            "256 / 128 张，1 轮，输入 64×64，批量 64 |") in lines
    missing = [line for line in lines if "还没有结果：" in line]
    assert len(missing) == 1 and "VGG-11" in missing[0] and "AlexNet" not in missing[0]
    assert figure.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert "```{figure} figures/comparison.svg" in lines


def _seed_record(model: str, seed: int, test_acc: list[float]) -> dict:
    net = nn.Sequential(nn.Conv2d(1, 4, kernel_size=3), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    n = len(test_acc)
    history = cnnlib.History(train_loss=[0.5] * n, train_acc=[0.8] * n, test_acc=test_acc,
                             examples_per_sec=[100.0] * n, epoch_time=[3.0] * n, device="GPU 甲",
                             precision="bf16", profile="full", num_train=60_000, num_test=10_000,
                             total_train=60_000, total_test=10_000)
    return cnnlib.result_record(model, net, history, 28, lr=0.1, batch_size=128, num_epochs=n, seed=seed)


def test_seeds_table_gives_mean_and_spread_per_network(tmp_path: Path, out) -> None:
    page, figure = out
    published = tmp_path / "published"
    # 三个种子的最终测试准确率 0.80、0.84、0.90：平均 0.8467，样本标准差 √((0.0467² + 0.0067² + 0.0533²)/2) = 0.0503；
    # 最高 0.85、0.84、0.90 → 平均 0.8633；最后三轮 (0.7+0.85+0.8)/3、(0.8+0.82+0.84)/3、(0.6+0.7+0.9)/3 → 平均 0.7789
    for seed, acc in ((0, [0.5, 0.7, 0.85, 0.80]), (1, [0.6, 0.8, 0.82, 0.84]), (2, [0.4, 0.6, 0.7, 0.90])):
        cnnlib.write_record(_seed_record("googlenet", seed, acc), published / cnnlib.results.run_file("googlenet", seed))
    cnnlib.write_record(_seed_record("nin", 0, [0.5, 0.88]), published / cnnlib.results.run_file("nin", 0, "he"))
    make_comparison.generate(tmp_path / "results", page, figure, published=published)
    lines = page.read_text(encoding="utf-8").splitlines()
    assert ("| [GoogLeNet](../notebooks/googlenet.ipynb) | 书中设定 | 3 | 0.847 | 0.800–0.900 | 0.050 | "
            "0.863 | 0.779 |") in lines
    assert "| [NiN](../notebooks/nin.ipynb) | He 初始化 | 1 | 0.880 | 0.880–0.880 | — | 0.880 | 0.690 |" in lines
    assert "| [NiN](../notebooks/nin.ipynb) | 书中设定 | 0 | 还没有结果 | — | — | — | — |" in lines
