"""几个随机种子的结果：种子表、几种设定的对照、读者的运行与种子的范围（band）、混淆矩阵。

发布目录是测试里写出的编造记录（tmp 目录，传给 ``directory``），每个期望值都是手算的字面值。
"""

import math

import matplotlib
import pytest
import torch
from torch import nn

import cnnlib

matplotlib.use("Agg")

# 三个种子、每个 4 轮的测试准确率（手写）。手算：
#   最终 0.75、0.79、0.85：平均 0.7967，最低–最高 0.750–0.850，样本标准差 √(0.0050667/2) = 0.0503
#   最高 0.80（第 3 轮）、0.80（第 2 轮）、0.90（第 3 轮）：平均 0.8333，标准差 √(0.0066667/2) = 0.0577
#   最后三轮平均 (0.7+0.8+0.75)/3 = 0.750、(0.8+0.78+0.79)/3 = 0.790、(0.6+0.9+0.85)/3 = 0.7833：
#   平均 0.7744，标准差 0.0214
#   逐轮范围：第 1 轮 0.40–0.60，第 2 轮 0.60–0.80，第 3 轮 0.78–0.90，第 4 轮 0.75–0.85（平均 0.7967）
ACC = {0: [0.5, 0.7, 0.8, 0.75], 1: [0.6, 0.8, 0.78, 0.79], 2: [0.4, 0.6, 0.9, 0.85]}


def _record(model: str, seed: int | None, test_acc: list[float], *, init: str | None = "xavier_init",
            profile: str = "full", num_epochs: int | None = 4, interrupted: bool = False,
            num_train: int = 60_000) -> dict:
    """一个编造的结果记录（网络是手搭的小网络，只为让 result_record 数得出参数量）。"""
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 10))
    n = len(test_acc)
    history = cnnlib.History(train_loss=[1.0] * n, train_acc=[0.5] * n, test_acc=list(test_acc),
                             examples_per_sec=[100.0] * n, epoch_time=[1.0] * n,
                             device="GPU 甲", precision="bf16", profile=profile, num_train=num_train,
                             num_test=10_000, total_train=60_000, total_test=10_000, interrupted=interrupted)
    spec = cnnlib.model_spec(model)
    settings = {"lr": spec.lr, "batch_size": spec.batch_size}
    if num_epochs is not None:
        settings["num_epochs"] = num_epochs
    if seed is not None:
        settings["seed"] = seed
    if init is not None:
        settings["init"] = init
    return cnnlib.result_record(model, net, history, spec.resolution, **settings)


def _publish(directory, model: str, variant: str | None = None, **kwargs) -> None:
    for seed, acc in ACC.items():
        cnnlib.write_record(_record(model, seed, acc, **kwargs), directory / cnnlib.results.run_file(model, seed, variant))


def _history(test_acc: list[float], profile: str = "full", **kwargs) -> cnnlib.History:
    n = len(test_acc)
    return cnnlib.History(train_loss=[1.0] * n, train_acc=[0.5] * n, test_acc=list(test_acc),
                          examples_per_sec=[10.0] * n, epoch_time=[1.0] * n, device="你的 GPU",
                          precision=kwargs.get("precision", "bf16"), profile=profile,
                          num_train=kwargs.get("num_train", 60_000), num_test=10_000,
                          total_train=60_000, total_test=10_000)


def test_run_file_names_match_what_the_wheel_ships():
    # pyproject.toml 的 package-data 只收 published/*-full.json 与 published/seeds/*-full-seed*.json
    assert cnnlib.results.run_file("nin", 0) == "nin-full.json"
    assert cnnlib.results.run_file("nin", 2) == "seeds/nin-full-seed2.json"
    assert cnnlib.results.run_file("nin", 0, "he") == "seeds/nin-he-full-seed0.json"
    assert cnnlib.results.run_file("alexnet", 1, profile="smoke") == "seeds/alexnet-smoke-seed1.json"


def test_seed_table_gives_final_best_and_last_three_with_mean_and_spread(tmp_path):
    _publish(tmp_path, "alexnet")
    lines = cnnlib.seed_table("alexnet", directory=tmp_path).splitlines()
    assert lines[0].startswith("AlexNet，书中设定（Xavier 初始化）：3 个随机种子") and "GPU 甲，bf16" in lines[0]
    assert lines[4:] == [
        "| 0 | 0.750 | 0.800（3） | 0.750 |",
        "| 1 | 0.790 | 0.800（2） | 0.790 |",
        "| 2 | 0.850 | 0.900（3） | 0.783 |",
        "| 平均 | 0.797 | 0.833 | 0.774 |",
        "| 最低–最高 | 0.750–0.850 | 0.800–0.900 | 0.750–0.790 |",
        "| 标准差 | 0.050 | 0.058 | 0.021 |",
    ]
    assert cnnlib.seed_table("vgg11", directory=tmp_path) is None


def test_interrupted_short_or_other_setting_records_are_not_seeds(tmp_path):
    _publish(tmp_path, "nin")
    # 被中断的一个、只训练了 2/4 轮的一个：都不算（审计第 12 条：半途的运行不是结果）
    cnnlib.write_record(_record("nin", 3, [0.9, 0.95], interrupted=True), tmp_path / cnnlib.results.run_file("nin", 3))
    cnnlib.write_record(_record("nin", 4, [0.9, 0.95]), tmp_path / cnnlib.results.run_file("nin", 4))
    with pytest.warns(UserWarning, match="随机种子 5"):  # 学习率不同的一个：不是同一设定
        record = _record("nin", 5, [0.1, 0.1, 0.1, 0.1])
        record["settings"]["lr"] = 0.5
        cnnlib.write_record(record, tmp_path / cnnlib.results.run_file("nin", 5))
        seeds = [r["settings"]["seed"] for r in cnnlib.seed_runs("nin", directory=tmp_path)]
    assert seeds == [0, 1, 2]
    assert not cnnlib.is_complete(_record("nin", 0, [0.5] * 10, num_epochs=None, interrupted=True))
    assert not cnnlib.is_complete(_record("nin", 0, [0.5] * 9, num_epochs=None))  # full：登记表的 10 轮
    assert cnnlib.is_complete(_record("nin", 0, [0.5] * 10, num_epochs=None))


def test_show_full_result_never_shows_an_interrupted_record(tmp_path, capsys):
    cnnlib.write_record(_record("resnet18", 0, [0.5, 0.6], num_epochs=10, interrupted=True),
                        tmp_path / "resnet18-full.json")
    assert cnnlib.show_full_result("resnet18", tmp_path) is None
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "没有完成" in out and "完整设定的结果：" not in out


def test_show_full_result_shows_best_and_last_three_and_no_invented_seed(tmp_path, capsys):
    cnnlib.write_record(_record("densenet", None, ACC[2]), tmp_path / "densenet-full.json")  # 没有记下种子
    cnnlib.write_record(_record("densenet", 1, ACC[1]), tmp_path / cnnlib.results.run_file("densenet", 1))
    history = cnnlib.show_full_result("densenet", tmp_path)
    out = capsys.readouterr().out
    assert history.test_acc == ACC[2]
    assert "随机种子未记录" in out and "随机种子 0" not in out  # 审计第 44 条
    assert "测试准确率 0.850（最高 0.900，在第 3 轮；最后三轮平均 0.783）" in out
    assert "种子 1 → 0.790 / 0.800 / 0.790" in out


def test_compare_seed_settings_puts_the_variant_beside_the_book(tmp_path):
    _publish(tmp_path, "nin")
    for seed, acc in ((0, [0.8, 0.85, 0.88, 0.89]), (1, [0.8, 0.86, 0.87, 0.88])):
        record = _record("nin", seed, acc, init="kaiming_init")
        cnnlib.write_record(record, tmp_path / cnnlib.results.run_file("nin", seed, "he"))
    lines = cnnlib.compare_seed_settings("nin", tmp_path).splitlines()
    assert lines[2] == ("| 书中设定（Xavier 初始化） | 3 | 0.750、0.790、0.850 | 0.797（0.750–0.850） | "
                        "0.833（0.800–0.900） | 0.774 | GPU 甲，bf16 |")
    # He：最终 0.89、0.88 → 平均 0.885；最高同最终；最后三轮 (0.85+0.88+0.89)/3 = 0.8733、(0.86+0.87+0.88)/3 = 0.87
    assert lines[3] == ("| He 初始化 | 2 | 0.890、0.880 | 0.885（0.880–0.890） | "
                        "0.885（0.880–0.890） | 0.872 | GPU 甲，bf16 |")
    assert cnnlib.compare_seed_settings("vgg11", tmp_path) is None
    with pytest.raises(ValueError, match="he"):
        cnnlib.seed_runs("nin", "xavier2", tmp_path)


@pytest.mark.parametrize("final, status, words", [
    (0.80, "within", ["0.800", "0.750–0.850", "平均 0.797", "范围之内"]),
    (0.86, "above", ["高于全部 3 个种子", "1/4"]),
    (0.74, "below", ["低于全部 3 个种子", "1/4 的机会", "随机波动", "学习率（书中 lr=0.01）", "xavier_init"]),
    (0.50, "below", ["差 0.250", "超出了种子之间的差别", "学习率（书中 lr=0.01）"]),
])
def test_a_full_history_inside_above_and_below_the_band(tmp_path, capsys, final, status, words):
    _publish(tmp_path, "alexnet")
    result = cnnlib.compare_with_band(_history([0.5, 0.7, 0.8, final]), "alexnet", directory=tmp_path)
    out = capsys.readouterr().out.strip()
    assert result.status == status and len(out.splitlines()) == 1 and out == result.message
    assert (result.epoch, result.low, result.high) == (4, 0.75, 0.85)
    assert all(w in out for w in words), out


def test_band_compares_at_the_students_own_last_epoch(tmp_path, capsys):
    _publish(tmp_path, "alexnet")
    # 只训练了 2 轮：和第 2 轮的范围 0.60–0.80 比，0.65 在范围内（和第 4 轮的 0.75–0.85 比就低了）
    result = cnnlib.compare_with_band(_history([0.5, 0.65]), "alexnet", directory=tmp_path, plot=False)
    assert (result.status, result.epoch, result.low, result.high) == ("within", 2, 0.6, 0.8)


def test_band_says_the_precision_differs_when_below(tmp_path, capsys):
    _publish(tmp_path, "alexnet")
    result = cnnlib.compare_with_band(_history([0.5, 0.6, 0.7, 0.7], precision="fp16"), "alexnet",
                                      directory=tmp_path, plot=False)
    assert result.status == "below" and "本次 fp16，发布的 bf16" in result.message


def test_smoke_or_other_setting_is_not_compared(tmp_path, capsys):
    _publish(tmp_path, "alexnet")
    smoke = _history([0.1], profile="smoke", num_train=256)
    result = cnnlib.compare_with_band(smoke, "alexnet", directory=tmp_path)
    assert result.status == "other_setting" and result.value is None
    assert "运行配置（本次 smoke，发布的 full）" in result.message and "不作比较" in result.message
    other = _history([0.5, 0.7, 0.8, 0.8])
    other.resolution = 64  # 训练记录写了分辨率时（cpu 配置的较小输入）：也不比较
    result = cnnlib.compare_with_band(other, "alexnet", directory=tmp_path, plot=False)
    assert result.status == "other_setting" and "输入分辨率（本次 64，发布的 224）" in result.message
    other.resolution, other.init = 224, "kaiming_init"
    result = cnnlib.compare_with_band(other, "alexnet", directory=tmp_path, plot=False)
    assert result.status == "other_setting" and "初始化（本次 kaiming_init，发布的 xavier_init）" in result.message


def test_another_profile_name_with_the_same_setting_is_compared(tmp_path, capsys):
    # LeNet-BN 的 cpu 配置就是书中的设定：名字不同，数据量、分辨率、批量、学习率、初始化都记下且相同，照样比较
    _publish(tmp_path, "lenet_bn")
    spec = cnnlib.model_spec("lenet_bn")
    mine = _history([0.5, 0.7, 0.8, 0.8], profile="cpu")
    mine.resolution, mine.batch_size, mine.lr, mine.init = spec.resolution, spec.batch_size, spec.lr, "xavier_init"
    assert cnnlib.compare_with_band(mine, "lenet_bn", directory=tmp_path, plot=False).status == "within"
    mine.num_test = 1_000  # 测试集只取一部分：估计更粗，不比较
    result = cnnlib.compare_with_band(mine, "lenet_bn", directory=tmp_path, plot=False)
    assert result.status == "other_setting" and "测试数据量（本次 1,000 张，发布的 10,000 张）" in result.message
    assert "运行配置（本次 cpu，发布的 full）" in result.message
    mine.num_test, mine.lr = 10_000, None  # 记录里少了一项设定：只凭配置名判断，名字不同就不比较
    assert cnnlib.compare_with_band(mine, "lenet_bn", directory=tmp_path, plot=False).status == "other_setting"


def test_band_of_a_variant_and_without_any_seeds(tmp_path, capsys):
    _publish(tmp_path, "nin", "he", init="kaiming_init")
    he = _history([0.5, 0.7, 0.8, 0.8])
    assert cnnlib.compare_with_band(he, "nin", "he", directory=tmp_path, plot=False).status == "within"
    result = cnnlib.compare_with_band(he, "nin", directory=tmp_path, plot=False)  # 书中设定还没有结果
    assert result.status == "no_band" and "无法比较" in result.message


def test_band_plot_shows_the_band_and_the_run(tmp_path, capsys):
    import matplotlib.pyplot as plt
    _publish(tmp_path, "alexnet")
    fig, ax = plt.subplots()
    cnnlib.compare_with_band(_history([0.5, 0.7, 0.8, 0.8]), "alexnet", directory=tmp_path, ax=ax)
    assert [line.get_label() for line in ax.lines] == ["种子的平均", "本次运行"]
    assert list(ax.lines[0].get_ydata()) == pytest.approx([0.5, 0.7, (0.8 + 0.78 + 0.9) / 3, (0.75 + 0.79 + 0.85) / 3])
    fig, ax = plt.subplots()
    cnnlib.compare_with_band(_history([0.1], profile="smoke"), "alexnet", directory=tmp_path, ax=ax)
    assert [line.get_label() for line in ax.lines] == ["种子的平均"]  # 设定不同：只画发布的种子
    plt.close("all")


def test_spread_of_one_seed_has_no_standard_deviation():
    s = cnnlib.results.spread([0.5])
    assert (s.mean, s.low, s.high) == (0.5, 0.5, 0.5) and math.isnan(s.std)
    with pytest.raises(ValueError):
        cnnlib.results.spread([])


def test_confusion_matrix_counts_by_hand_in_prediction_mode():
    # 输入就是 one-hot 的对数几率，所以预测是已知的：两个批量，预测 [0, 1, 2] 与 [2, 1]，
    # 真实标签 [0, 1, 1] 与 [2, 0]。手数：第 0 行（真实 0）预测 0、1 各一次；第 1 行预测 1、2 各一次；第 2 行预测 2 一次
    batches = [(torch.eye(3)[[0, 1, 2]], torch.tensor([0, 1, 1])), (torch.eye(3)[[2, 1]], torch.tensor([2, 0]))]
    net = nn.Sequential(nn.Dropout(0.9))  # 训练模式下会随机清零、打乱预测：必须在预测模式下数
    net.train()
    confusion = cnnlib.confusion_matrix(net, batches, num_classes=3, device="cpu")
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert cnnlib.prediction_counts(net, batches, num_classes=3, device="cpu").tolist() == [1, 2, 2]
    assert net.training  # 数完恢复原来的模式
    with pytest.raises(ValueError, match="num_classes=10"):
        cnnlib.confusion_matrix(net, batches, device="cpu")
