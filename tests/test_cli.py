"""命令行 ``python -m cnnlib`` 与安装的命令 ``cnnlib``：参数不可用、``--out`` 写不了、训练发散时只有一行中文的
``error:``、退出状态 2、没有 traceback；Ctrl-C 说明检查点在哪里并以 130 退出；``list`` 来自登记表。

坏参数的几条命令在一个夹具里同时启动（每条都要导入 torch，一条接一条地跑要慢几倍）。只看命令行自己的
逻辑（Ctrl-C、轮数的说明）的测试在本进程里调用 ``main``，把训练换成一个假的。
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from torch import nn

import cnnlib
from cnnlib import __main__ as cli
from cnnlib.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "CNNLIB_PROFILE": "smoke", "CNNLIB_PROGRESS": "0",
       "OMP_NUM_THREADS": "1"}

UNWRITABLE = ROOT / "pyproject.toml" / "x.json"  # 父目录是一个文件：以 root 运行也写不了

# 情形 -> (python -m cnnlib train 之后的参数, 错误行里必须出现的坏值)
BAD = {
    "epochs": (["lenet_bn", "--epochs", "0"], "'0'"),
    "lr": (["lenet_bn", "--lr", "-1"], "'-1'"),
    "batch-size": (["lenet_bn", "--batch-size", "0"], "'0'"),
    "amp": (["lenet_bn", "--amp", "fp16"], "amp='fp16'"),           # CPU 上没有 fp16：由 cnnlib 报错，不是 argparse
    "data": (["lenet_bn", "--data", "/nonexistent"], "/nonexistent"),
    "out": (["lenet_bn", "--out", str(UNWRITABLE)], str(UNWRITABLE)),
    # 没有批量规范化的 GoogLeNet 在 lr=1e6 下第 2 批就是 NaN（LeNet-BN 的损失很大，但不是 NaN）
    "diverged": (["googlenet", "--lr", "1e6", "--batch-size", "16"], "lr=1000000.0"),
}


@pytest.fixture(scope="module")
def bad_runs() -> dict[str, subprocess.CompletedProcess]:
    env = {k: v for k, v in ENV.items() if k != "CNNLIB_DATA"}
    procs = {case: subprocess.Popen([sys.executable, "-m", "cnnlib", "train", *args], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for case, (args, _) in BAD.items()}
    runs = {}
    for case, p in procs.items():
        out, err = p.communicate(timeout=300)
        runs[case] = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    return runs


ENGLISH = ("usage:", "the following arguments", "invalid choice", "unrecognized arguments", "argument ")


def check_one_error_line(run: subprocess.CompletedProcess, bad: str, prog: str = "python -m cnnlib train") -> str:
    assert run.returncode == 2, f"退出状态 {run.returncode}，应为 2：{run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, f"应当恰好一行 error:，实际 {len(errors)} 行：{run.stderr}"
    assert errors[0].startswith(f"{prog}: error:"), errors[0]
    assert bad in errors[0], f"错误行没有写出坏值 {bad!r}：{errors[0]}"
    assert not any(english in run.stderr for english in ENGLISH), f"argparse 的英文没有换成中文：{run.stderr}"
    return errors[0]


@pytest.mark.parametrize("case", ["epochs", "lr", "batch-size"])
def test_non_positive_numbers_are_refused_by_argparse(bad_runs, case):
    check_one_error_line(bad_runs[case], BAD[case][1])


def test_fp16_on_cpu_is_one_error_line(fashion_mnist, bad_runs):
    # 先加载数据（smoke 配置）再训练，train() 发现 CPU 上不能用 fp16
    check_one_error_line(bad_runs["amp"], BAD["amp"][1])


def test_explicit_data_directory_that_does_not_exist(bad_runs):
    """--data 给出的目录不可用时是错误，不会悄悄换用 Debian 的那一份。"""
    run = bad_runs["data"]
    check_one_error_line(run, "/nonexistent")
    assert "test acc" not in run.stdout, "不应开始训练"


def test_unwritable_out_is_refused_before_training(bad_runs):
    """--out 写不了：训练之前就报错（以前训练到最后才抛出 traceback，结果丢失）。"""
    run = bad_runs["out"]
    check_one_error_line(run, BAD["out"][1])
    assert "运行配置" not in run.stdout, "不应开始加载数据或训练"


def test_a_diverged_run_is_one_error_line(fashion_mnist, bad_runs):
    line = check_one_error_line(bad_runs["diverged"], BAD["diverged"][1])
    assert "lr=100000" in line  # 建议的学习率


def _fake_training(history: cnnlib.History, calls: list | None = None):
    """代替 train_book_model：不训练，返回给定的记录；``calls`` 收下传给它的运行配置。"""
    def fake(model, profile, *args, **kwargs):
        if calls is not None:
            calls.append(profile)
        return nn.Linear(1, 1), history
    return fake


def _interrupted_history(epochs: int) -> cnnlib.History:
    return cnnlib.History(train_loss=[1.0] * epochs, train_acc=[0.5] * epochs, test_acc=[0.5] * epochs,
                          examples_per_sec=[1.0] * epochs, epoch_time=[1.0] * epochs, interrupted=True)


def test_ctrl_c_exits_non_zero_and_says_where_the_checkpoint_is(monkeypatch, tmp_path, capsys):
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "run.json"
    ckpt.write_bytes(b"")  # train() 在第 1 轮结束时写了它
    monkeypatch.setattr(cli, "train_book_model", _fake_training(_interrupted_history(1)))
    assert main(["train", "lenet_bn", "--profile", "smoke", "--checkpoint", str(ckpt), "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(ckpt) in err[0] and "第 1 轮" in err[0], err
    assert not out.exists(), "被中断的训练不应写出结果文件"
    # 没有用检查点：说明进度没有保存、下次怎样才能续训
    assert main(["train", "lenet_bn", "--profile", "smoke"]) == 130
    err = capsys.readouterr().err
    assert "--checkpoint" in err and str(ckpt) not in err, err

    def interrupted_while_loading(*args, **kwargs):  # 训练之外的 Ctrl-C（例如加载数据时）
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "train_book_model", interrupted_while_loading)
    try:
        assert main(["train", "lenet_bn", "--profile", "smoke", "--checkpoint", str(ckpt)]) == 130
    except KeyboardInterrupt:  # 漏出来的 KeyboardInterrupt 会让 pytest 以为是用户按了 Ctrl-C，整组停下
        pytest.fail("main() 没有接住训练之外的 KeyboardInterrupt")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(ckpt) in err[0], err


def test_epochs_above_the_profile_limit_are_said_not_silently_dropped(monkeypatch, capsys):
    """smoke 配置只训练 1 轮：--epochs 5 照配置训练 1 轮，并用一行说明（要 5 轮请用 --profile full）。"""
    calls = []
    done = _interrupted_history(1)
    done.interrupted = False
    monkeypatch.setattr(cli, "train_book_model", _fake_training(done, calls))
    assert main(["train", "lenet_bn", "--profile", "smoke", "--epochs", "5"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "--epochs 5" in line]
    assert len(notes) == 1 and "1 轮" in notes[0] and "--profile full" in notes[0], notes
    assert [p.num_epochs for p in calls] == [1]
    assert main(["train", "lenet_bn", "--profile", "full", "--epochs", "5"]) == 0  # full 配置照办，不说明
    assert "--epochs" not in capsys.readouterr().err and calls[-1].num_epochs == 5


def test_program_name_and_chinese_argparse_messages(capsys):
    """安装的命令 cnnlib（pyproject 的 [project.scripts] 调用 main()）与 python -m cnnlib 各报自己的名字。"""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'cnnlib = "cnnlib.__main__:main"' in pyproject
    for argv, prog, bad in (([], "cnnlib", "命令"), (["train", "lenet"], "cnnlib train", "'lenet'"),
                            (["train", "lenet_bn", "--seed", "x"], "cnnlib train", "'x'")):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        check_one_error_line(subprocess.CompletedProcess(argv, e.value.code, "", err), bad, prog)
        assert err.startswith(f"用法：{prog}"), err
    with pytest.raises(SystemExit):
        main(["--help"], prog="python -m cnnlib")
    assert capsys.readouterr().out.startswith("用法：python -m cnnlib")


def test_list_comes_from_the_registry(capsys):
    assert main(["list", "--notebooks"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"notebooks/{s.notebook}.ipynb" for s in cnnlib.SPECS.values()]
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(cnnlib.SPECS)
    resnet = lines[list(cnnlib.SPECS).index("resnet18")]
    assert "96×96" in resnet and "0.05" in resnet and "256" in resnet  # 登记表条目的分辨率、学习率、批量
