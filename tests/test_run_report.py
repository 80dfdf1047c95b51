"""各节共用的两段分析：几个随机种子之间差多少（seed_spread），以及一次运行与书中设定的差别（describe_run）。

发布目录是测试里写出的编造记录（tmp 目录，传给 ``directory``），每个期望值都是手算的字面值；
教学笔记与 d2l 的报告值取自 7.1、7.2 节的对比表（AlexNet 0.880 / 0.883，VGG-11 0.917 / 0.920）。
最后一个测试检查笔记本没有再各写一份同样的计算。
"""

import json
import re
from pathlib import Path

import pytest

import cnnlib

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
BOOK = {"alexnet": (224, 128, 0.01), "vgg11": (224, 128, 0.05), "nin": (224, 128, 0.1)}  # 书中的输入、批量、学习率


def _write(directory: Path, model: str, seed: int, test_acc: list[float], variant: str | None = None,
           init: str = "xavier_init") -> None:
    """写一个编造的完整运行（书中设定、full 配置）到 ``directory`` 里 seed_runs 会读的位置。"""
    resolution, batch_size, lr = BOOK[model]
    n = len(test_acc)
    history = cnnlib.History(train_loss=[1.0] * n, train_acc=[0.5] * n, test_acc=list(test_acc),
                             examples_per_sec=[100.0] * n, epoch_time=[1.0] * n, device="GPU 甲",
                             precision="bf16", profile="full", num_train=60_000, num_test=10_000,
                             total_train=60_000, total_test=10_000)
    record = {"model": model, "resolution": resolution, "precision": "bf16",
              "settings": {"lr": lr, "batch_size": batch_size, "num_epochs": n, "seed": seed, "init": init},
              "history": history.to_dict()}
    path = directory / cnnlib.results.run_file(model, seed, variant)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record), encoding="utf-8")


def test_the_reported_values_these_tests_use_are_the_registry_s():
    for model, notes, d2l in (("alexnet", 0.880, 0.883), ("vgg11", 0.917, 0.920)):
        reported = cnnlib.model_spec(model).reported
        assert (reported.notes, reported.d2l) == (notes, d2l)


# ---------------------------------------------------------------------------
# seed_spread：尺度是各种子最后三轮测试准确率的最高减最低中最大的那个
# ---------------------------------------------------------------------------

def test_only_the_last_epoch_differs_and_the_sources_differ_like_the_seeds(tmp_path, capsys):
    # 种子 0：最后三轮 0.84、0.85、0.86（相差 0.02，平均 0.850），最终 0.86，最高 0.86
    # 种子 1：最后三轮 0.852、0.85、0.835（相差 0.017，平均 0.8457），最终 0.835，最高 0.852
    # 尺度 0.020（种子 0）；最终相差 0.025 > 0.020；最高相差 0.008；最后三轮平均相差 0.0043 ≤ 0.020
    # 来源：0.880、0.883、0.860 相差 0.023 > 0.020，但不超过种子之间最终值的 0.025
    _write(tmp_path, "alexnet", 0, [0.5, 0.84, 0.85, 0.86])
    _write(tmp_path, "alexnet", 1, [0.5, 0.852, 0.85, 0.835])
    result = cnnlib.seed_spread("alexnet", directory=tmp_path)
    assert result.scale == pytest.approx(0.020)
    assert (result.final.width, result.best.width, result.last3.width) == pytest.approx((0.025, 0.008, 0.0043), abs=1e-4)
    assert result.seeds_verdict == "last_epoch"
    assert result.sources == {"教学笔记": 0.880, "d2l": 0.883, "本书种子 0": 0.86}
    assert result.sources_verdict == "seeds"
    out = capsys.readouterr().out.splitlines()
    assert out == result.lines
    assert out[0] == ("尺度：在 AlexNet 书中设定（Xavier 初始化）的 2 个随机种子里，同一次运行最后三轮的测试准确率"
                      "最多相差 0.020（种子 0，第 2–4 轮：0.840、0.850、0.860）")
    assert out[1:4] == ["种子之间的最终值相差 0.025，超过了这个尺度", "种子之间的最高值相差 0.008，不超过这个尺度",
                        "种子之间的最后三轮平均相差 0.004，不超过这个尺度"]
    assert out[4].startswith("→ 只看最后一轮，种子之间的差别超过了单次运行的起伏；按最后三轮平均就不超过。")
    assert out[5] == "教学笔记、d2l 与本书种子 0 的最终值（0.880、0.883、0.860）最多相差 0.023，超过了这个尺度"
    assert out[6].startswith("→ 几个来源的报告值之间的差别超过了单次运行的起伏，但不超过本书几个种子最终值之间的差别")


def test_seeds_change_the_result_and_the_sources_differ_beyond_the_seeds(tmp_path, capsys):
    # 种子 0：第 1 轮 0.87 最高；最后三轮 0.80、0.81、0.80（相差 0.01，平均 0.8033），最终 0.80
    # 种子 1：最后三轮 0.85、0.862、0.855（相差 0.012，平均 0.8557），最终 0.855，最高 0.862
    # 尺度 0.012（种子 1）；最高值只差 0.008，最后三轮平均却相差 0.052 > 0.012；
    # 来源 0.880、0.883、0.800 相差 0.083 > 最终值之差 0.055
    _write(tmp_path, "alexnet", 0, [0.87, 0.80, 0.81, 0.80])
    _write(tmp_path, "alexnet", 1, [0.5, 0.85, 0.862, 0.855])
    result = cnnlib.seed_spread("alexnet", directory=tmp_path)
    assert result.scale == pytest.approx(0.012)
    assert (result.seeds_verdict, result.sources_verdict) == ("seed_effect", "beyond")
    out = capsys.readouterr().out
    assert "（种子 1，第 2–4 轮：0.850、0.862、0.855）" in out
    assert "种子之间的最高值相差 0.008，不超过这个尺度" in out
    assert "→ 按最后三轮平均，种子之间的差别也超过了单次运行的起伏：换种子确实改变了结果（只有 2 个种子" in out
    assert "最多相差 0.083，超过了这个尺度" in out
    assert "超过了单次运行的起伏，也超过了本书 2 个种子最终值之间的差别：可能来自设定上的不同" in out


def test_everything_within_one_run_s_wobble(tmp_path, capsys):
    # 种子 0：最后三轮 0.87、0.89、0.88（相差 0.02），最终 0.88；种子 1：0.875、0.885、0.89（相差 0.015），最终 0.89
    # 最终相差 0.010，最后三轮平均 0.880 与 0.8833；来源 0.880、0.883、0.880 相差 0.003
    _write(tmp_path, "alexnet", 0, [0.5, 0.87, 0.89, 0.88])
    _write(tmp_path, "alexnet", 1, [0.5, 0.875, 0.885, 0.89])
    result = cnnlib.seed_spread("alexnet", directory=tmp_path)
    assert (result.seeds_verdict, result.sources_verdict) == ("within", "within")
    out = capsys.readouterr().out
    assert "种子之间的最终值相差 0.010，不超过这个尺度" in out
    assert "→ 种子之间的差别不超过单次运行的起伏。" in out
    assert "最多相差 0.003，不超过这个尺度\n→ 几个来源的报告值之间的差别不超过单次运行的起伏" in out


def test_a_gap_equal_to_the_yardstick_does_not_exceed_it(tmp_path, capsys):
    # 尺度：种子 0 最后三轮 0.1、0.2、0.3，相差 0.2；最终值 0.3 与 0.5 也相差 0.2（浮点数里 0.3 − 0.1 略小于 0.5 − 0.3）
    _write(tmp_path, "alexnet", 0, [0.1, 0.2, 0.3])
    _write(tmp_path, "alexnet", 1, [0.5, 0.5, 0.5])
    cnnlib.seed_spread("alexnet", directory=tmp_path)
    assert "种子之间的最终值相差 0.200，不超过这个尺度" in capsys.readouterr().out


def test_one_seed_still_compares_the_sources(tmp_path, capsys):
    # 只有种子 0：最后三轮 0.86、0.87、0.85，尺度 0.02；来源 0.880、0.883、0.850 相差 0.033
    _write(tmp_path, "alexnet", 0, [0.5, 0.86, 0.87, 0.85])
    result = cnnlib.seed_spread("alexnet", directory=tmp_path)
    assert (result.seeds_verdict, result.sources_verdict) == ("one_seed", "beyond")
    out = capsys.readouterr().out
    assert "→ 只有 1 个随机种子：还看不出换种子的差别。" in out
    assert "种子之间" not in out
    assert "（本书只有 1 个种子，还估计不出换种子通常差多少）" in out


def test_without_seeds_it_says_so_and_returns_none(tmp_path, capsys):
    assert cnnlib.seed_spread("alexnet", directory=tmp_path) is None
    assert "还没有发布 AlexNet 书中设定" in capsys.readouterr().out
    assert cnnlib.seed_spread("alexnet", directory=tmp_path, show=False) is None
    assert capsys.readouterr().out == ""


def test_another_setting_is_not_compared_with_the_reported_values(tmp_path, capsys):
    _write(tmp_path, "nin", 0, [0.5, 0.86, 0.87, 0.85], variant="he", init="kaiming_init")
    _write(tmp_path, "nin", 1, [0.5, 0.86, 0.87, 0.86], variant="he", init="kaiming_init")
    result = cnnlib.seed_spread("nin", "he", directory=tmp_path)
    assert (result.sources, result.sources_verdict) == ({}, None)
    out = capsys.readouterr().out
    assert out.startswith("尺度：在 NiN He 初始化的 2 个随机种子里") and "教学笔记" not in out


# AlexNet 两个种子：最后三轮平均 0.880 与 0.8833（平均 0.88167），尺度 0.02，最后三轮平均相差 0.0033
ALEXNET = ([0.5, 0.87, 0.89, 0.88], [0.5, 0.875, 0.885, 0.89])


@pytest.mark.parametrize("vgg, verdict, numbers, words", [
    # 最后三轮平均 0.880 与 0.890：平均 0.885，比 AlexNet 高 0.0033 ≤ 尺度 0.02
    (([0.5, 0.87, 0.89, 0.88], [0.5, 0.88, 0.895, 0.895]), "within", "VGG-11 0.885（2 个种子）",
     "高 0.003，不超过两者的尺度中较大的 0.020\n→ 仅凭这些运行分不出两者的高低。"),
    # 0.880 与 0.930：平均 0.905，高 0.0233 > 0.02（VGG 自己的尺度只有 0.01，取 AlexNet 的 0.02），
    # 但不超过 VGG 种子之间最后三轮平均的差别 0.05
    (([0.5, 0.875, 0.88, 0.885], [0.5, 0.925, 0.935, 0.93]), "seeds", "VGG-11 0.905（2 个种子）",
     "高 0.023，超过了两者的尺度中较大的 0.020\n→ 超过了单次运行的起伏，但不超过种子之间最后三轮平均的差别"),
    # 0.910 与 0.9167：平均 0.9133，高 0.0317 > 0.02，也超过两者种子之间的差别（0.0067、0.0033）
    (([0.5, 0.90, 0.91, 0.92], [0.5, 0.91, 0.915, 0.925]), "beyond", "VGG-11 0.913（2 个种子）",
     "高 0.032，超过了两者的尺度中较大的 0.020\n→ 这个差别不是单独一轮的起伏造成的，也超出了种子之间最后三轮平均的差别"),
])
def test_two_networks_compared_by_their_last_three_epochs(tmp_path, capsys, vgg, verdict, numbers, words):
    for seed, acc in enumerate(ALEXNET):
        _write(tmp_path, "alexnet", seed, acc)
    for seed, acc in enumerate(vgg):
        _write(tmp_path, "vgg11", seed, acc)
    result = cnnlib.seed_spread("vgg11", directory=tmp_path, versus="alexnet")
    assert result.versus.last3.mean == pytest.approx(0.88167, abs=1e-5)
    assert result.versus_verdict == verdict
    out = capsys.readouterr().out
    assert f"与 AlexNet 比较（各种子最后三轮平均的平均）：{numbers}，AlexNet 0.882（2 个种子）；VGG-11 " in out
    assert words in out
    # 反过来比较，结论相同（两者的尺度与种子之间的差别都取较大的那个）
    assert cnnlib.seed_spread("alexnet", directory=tmp_path, versus="vgg11", show=False).versus_verdict == verdict


def test_comparing_with_a_network_without_results(tmp_path, capsys):
    _write(tmp_path, "vgg11", 0, [0.5, 0.87, 0.89, 0.88])
    result = cnnlib.seed_spread("vgg11", directory=tmp_path, versus="alexnet")
    assert (result.versus, result.versus_verdict) == (None, None)
    assert "还没有发布 AlexNet 的完整结果，无法与它比较。" in capsys.readouterr().out


# ---------------------------------------------------------------------------
# describe_run：参数更新次数、时间、设备，以及与书中设定（7.1：224×224、批量 128、学习率 0.01、10 轮）的不同
# ---------------------------------------------------------------------------

def _run(num_train: int, epochs: int, **kwargs) -> cnnlib.History:
    fields = dict(resolution=96, batch_size=32, lr=0.01, init="xavier_init", num_test=128, profile="cpu")
    fields.update(kwargs)
    return cnnlib.History(train_loss=[2.302, 1.5][:epochs], train_acc=[0.1] * epochs, test_acc=[0.1, 0.42][:epochs],
                          epoch_time=[30.0, 31.4][:epochs], device="cpu (2 threads)", precision="fp32",
                          num_train=num_train, total_train=60_000, total_test=10_000, **fields)


def test_a_cpu_run_counts_its_updates_and_lists_every_difference(capsys):
    # 1,000 张、批量 32：每轮 ⌈1000/32⌉ = 32 次更新（最后一批 8 张也算一次），2 轮共 64 次；墙钟 30.0 + 31.4 = 61 秒
    report = cnnlib.describe_run(_run(1_000, 2), cnnlib.get_profile("alexnet", name="cpu"))
    assert report.updates == 64
    assert report.differences == ["训练集 1,000/60,000 张", "测试集 128/10,000 张", "2 轮（书中 10 轮）",
                                  "输入 96×96（书中 224×224）", "批量 32（书中 128）"]
    out = capsys.readouterr().out.splitlines()
    assert out == report.lines
    assert out[0] == ("本次运行（cpu (2 threads)，fp32，运行配置 cpu）：训练 1,000 张 × 2 轮，批量 32："
                      "每轮 32 个小批量，共 64 次参数更新；总墙钟时间 61 秒（含取数据与评估）")
    assert out[1] == ("逐轮的训练损失 2.302、1.500（ln 10 ≈ 2.303 是对 10 类均匀猜测的损失）；"
                      "最后一轮的测试准确率 0.420（随机猜测约 0.1）")
    assert out[2].startswith("与书中设定不同：训练集 1,000/60,000 张；测试集 128/10,000 张；2 轮（书中 10 轮）；")


def test_the_book_setting_is_recognised():
    # 60,000 张、批量 128：每轮 ⌈468.75⌉ = 469 次，10 轮共 4,690 次
    history = _run(60_000, 2, resolution=224, batch_size=128, num_test=10_000, profile="full")
    history.train_loss, history.test_acc, history.epoch_time = [1.0] * 10, [0.8] * 10, [3.0] * 10
    report = cnnlib.describe_run(history, cnnlib.get_profile("alexnet", name="full"))
    assert (report.updates, report.differences) == (4_690, [])
    assert report.lines[-1].startswith("这次运行就是书中的设定")


def test_what_the_history_records_wins_over_the_profile():
    # 读者在 full 配置下自己改了分辨率、批量、学习率与初始化：按训练记录算，每轮 ⌈60000/64⌉ = 938 次，2 轮共 1,876 次
    history = _run(60_000, 2, resolution=160, batch_size=64, num_test=10_000, lr=0.05, init="kaiming_init")
    report = cnnlib.describe_run(history, cnnlib.get_profile("alexnet", name="full"))
    assert report.updates == 1_876
    assert report.differences == ["2 轮（书中 10 轮）", "输入 160×160（书中 224×224）", "批量 64（书中 128）", "学习率 0.05（书中 0.01）",
                                  "初始化 kaiming_init（书中 xavier_init）"]


def test_an_older_record_falls_back_on_the_profile_and_an_interrupted_run_says_so():
    # 较早的 History 没有分辨率、批量、学习率：取 smoke 配置的 96×96、批量 32、学习率 0.01；256 张 → 每轮 8 次
    history = _run(256, 1, resolution=None, batch_size=None, lr=None, init=None, interrupted=True)
    report = cnnlib.describe_run(history, cnnlib.get_profile("alexnet", name="smoke"))
    assert report.updates == 8
    assert "输入 96×96（书中 224×224）" in report.differences and "批量 32（书中 128）" in report.differences
    assert report.lines[0].endswith("；训练被中断")


def test_an_empty_history_is_refused():
    with pytest.raises(ValueError, match="没有完成任何一轮"):
        cnnlib.describe_run(cnnlib.History(), cnnlib.get_profile("alexnet", name="smoke"))


# ---------------------------------------------------------------------------
# 笔记本调用这两个函数，而不是各写一份
# ---------------------------------------------------------------------------
# 已经改用它们的笔记本；nin 与 batch-norm 改好以后加进来。
CONVERTED = tuple(s.notebook for s in cnnlib.SPECS.values())  # 七节都调用共享的函数
SEED_ANALYSIS = ("alexnet", "vgg", "googlenet", "densenet")  # 有种子分析的几节
REIMPLEMENTED = {
    "自己定义 gap / wobble / spread_of": re.compile(r"^\s*def (gap|wobble|spread_of)\(", re.M),
    "自己取最后三轮的测试准确率": re.compile(r"test_acc(\"\])?\[-3:\]"),
    "自己数参数更新次数": re.compile(r"len\(train_iter\)\s*\*\s*history\.epochs|history\.epochs\s*\*\s*len\(train_iter\)"),
}


@pytest.mark.parametrize("stem", CONVERTED)
def test_notebooks_call_the_shared_analysis_instead_of_repeating_it(stem):
    cells = json.loads((NOTEBOOKS / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    found = [what for what, pattern in REIMPLEMENTED.items() if pattern.search(code)]
    assert not found, f"{stem}.ipynb 的代码单元{'、'.join(found)}：请改用 cnnlib.seed_spread / cnnlib.describe_run。"
    assert "cnnlib.describe_run(" in code
    if stem in SEED_ANALYSIS:
        assert "cnnlib.seed_spread(" in code
