"""命令行 ``python -m cnnlib``：参数不可用时只有一行 ``error:``、退出状态 2、没有 traceback；``list`` 来自登记表。

坏参数的几条命令在一个夹具里同时启动（每条都要导入 torch，一条接一条地跑要慢几倍）。
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cnnlib
from cnnlib.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "CNNLIB_PROFILE": "smoke", "CNNLIB_PROGRESS": "0",
       "OMP_NUM_THREADS": "1"}

# 情形 -> (命令行参数, 错误行里必须出现的坏值)
BAD = {
    "epochs": (["--epochs", "0"], "'0'"),
    "lr": (["--lr", "-1"], "'-1'"),
    "batch-size": (["--batch-size", "0"], "'0'"),
    "amp": (["--amp", "fp16"], "amp='fp16'"),           # CPU 上没有 fp16：由 cnnlib 报错，不是 argparse
    "data": (["--data", "/nonexistent"], "/nonexistent"),
}


@pytest.fixture(scope="module")
def bad_runs() -> dict[str, subprocess.CompletedProcess]:
    env = {k: v for k, v in ENV.items() if k != "CNNLIB_DATA"}
    procs = {case: subprocess.Popen([sys.executable, "-m", "cnnlib", "train", "lenet_bn", *args], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for case, (args, _) in BAD.items()}
    runs = {}
    for case, p in procs.items():
        out, err = p.communicate(timeout=300)
        runs[case] = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    return runs


def check_one_error_line(run: subprocess.CompletedProcess, bad: str) -> str:
    assert run.returncode == 2, f"退出状态 {run.returncode}，应为 2：{run.stderr[-2000:]}"
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, f"应当恰好一行 error:，实际 {len(errors)} 行：{run.stderr}"
    assert errors[0].startswith("python -m cnnlib train: error:"), errors[0]
    assert bad in errors[0], f"错误行没有写出坏值 {bad!r}：{errors[0]}"
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


def test_list_comes_from_the_registry(capsys):
    assert main(["list", "--notebooks"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"notebooks/{s.notebook}.ipynb" for s in cnnlib.SPECS.values()]
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(cnnlib.SPECS)
    resnet = lines[list(cnnlib.SPECS).index("resnet18")]
    assert "96×96" in resnet and "0.05" in resnet and "256" in resnet  # 登记表条目的分辨率、学习率、批量
