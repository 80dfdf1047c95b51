"""一本笔记本单独打开也完整：cnnlib 从 wheel 安装，每本笔记本单独放进一个空目录执行（issue 11）。

这是读者在 Colab 或 Kaggle 上的处境：只有一个 .ipynb 和 pip 装好的 cnnlib，没有仓库里的其他文件。
笔记本里的示意图由 cnnlib 画，完整设定的结果随 cnnlib 发布（cnnlib/published/），所以都应当显示出来，
而且单元的代码与输出都不该指向仓库里的文件。

环境：`make wheel` 构建的 _build/wheel/cnnlib-*.whl（没有或比源代码旧时，这里从源代码的副本构建），
装进一个新建的 venv。torch 等依赖不重装：venv 里一行 .pth 借用 .venv 的 site-packages。.venv 里 cnnlib 的
可编辑安装要靠那个目录里的 .pth 与导入钩子生效，借来的目录不处理它们，所以 cnnlib 只能来自 wheel
（``test_cnnlib_comes_from_the_wheel_not_the_repository`` 核对 ``cnnlib.__file__``；内核就是这个 venv 的 python）。
七本笔记本由 nbval 以 smoke 配置执行，两个 nbval 进程并行。这就是 make test 里笔记本的执行：
存储的输出与单独执行的结果在带 nbval-check-output 标签的单元上逐字比对。
"""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import cnnlib

ROOT = Path(__file__).resolve().parents[1]
WHEEL_DIR = ROOT / "_build" / "wheel"
NOTEBOOKS = [spec.notebook for spec in cnnlib.SPECS.values()]
KERNEL = "cnnlib-wheel"
# 指向仓库里其他文件的写法：相对上级目录、图片目录、测速与结果目录
REPO_PATHS = re.compile(r"\.\./|book/figures|benchmarks/results|notebooks/results|"
                        r"results/(seeds|experiments)/|results/[\w-]+-full")


def _newest_source() -> float:
    files = [ROOT / "pyproject.toml", *(ROOT / "cnnlib").rglob("*")]
    return max(p.stat().st_mtime for p in files if p.is_file() and "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """make wheel 构建的 wheel；没有或比源代码旧时，从源代码的一份副本构建（不在仓库里留下 build/）。"""
    built = sorted(WHEEL_DIR.glob("cnnlib-*.whl"), key=lambda p: p.stat().st_mtime)
    if built and built[-1].stat().st_mtime >= _newest_source():
        return built[-1]
    src, out = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "cnnlib", src / "cnnlib", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(out), str(src)], check=True)
    return next(out.glob("cnnlib-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """新建的 venv：cnnlib 从 wheel 安装；其余依赖借用 .venv 的 site-packages。"""
    root = tmp_path_factory.mktemp("alone") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    # 先装 wheel（此时 venv 里还看不到 .venv 的包，pip 不会把那里的可编辑安装当成已安装），再借用依赖
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    str(wheel)], check=True)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    spec = root / "share" / "jupyter" / "kernels" / KERNEL / "kernel.json"
    spec.parent.mkdir(parents=True)
    spec.write_text(json.dumps({"argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                "display_name": "cnnlib（wheel）", "language": "python"}))
    return root


def _environment() -> dict[str, str]:
    """不带仓库的痕迹：没有 PYTHONPATH、没有指向仓库的数据目录；smoke 配置，不显示进度条。"""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CNNLIB_DATA", "JUPYTER_PATH", "KAGGLE_KERNEL_RUN_TYPE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    # 两本笔记本并行，各用一个线程，免得在 2 核的机器上互相抢
    env.update(CNNLIB_PROFILE="smoke", CNNLIB_PROGRESS="0", OMP_NUM_THREADS="1")
    return env


def _texts(cell: dict) -> list[str]:
    """单元输出中的文本（流、纯文本、Markdown、HTML）；图片数据不看。"""
    out = []
    for o in cell.get("outputs", []):
        if "text" in o:
            out.append("".join(o["text"]))
        for key in ("text/plain", "text/markdown", "text/html"):
            if key in o.get("data", {}):
                out.append("".join(o["data"][key]))
    return out


@pytest.mark.slow
def test_the_wheel_ships_the_published_results(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    published = ROOT / "cnnlib" / "published"
    expected = {f"cnnlib/{p.relative_to(ROOT / 'cnnlib').as_posix()}" for p in published.rglob("*")
                if p.suffix in (".json", ".pt") and "smoke" not in p.name}
    assert expected and expected <= names, f"wheel 里缺少：{sorted(expected - names)}"
    assert {f"cnnlib/published/{spec.name}-full.json" for spec in cnnlib.SPECS.values()} <= names
    assert "cnnlib/diagrams.py" in names
    assert not [n for n in names if "smoke" in n], "smoke 演练的结果不该进 wheel"


@pytest.mark.slow
def test_cnnlib_comes_from_the_wheel_not_the_repository(venv, tmp_path):
    out = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import cnnlib, torch; print(cnnlib.__file__); print(cnnlib.published())"],
                         cwd=tmp_path, env=_environment(), capture_output=True, text=True, check=True).stdout
    assert all(line.startswith(str(venv)) for line in out.splitlines()), out


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_refers_to_nothing_outside_itself(name):
    """存储的笔记本：代码与输出都不指向仓库里的文件；示意图与完整结果的单元带严格比对的标签，
    存储的输出里确实有图和结果——下面单独执行时 nbval 逐字比对这些单元，所以单独打开也一样显示。"""
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
    shown = 0
    for i, cell in enumerate(nb["cells"]):
        where = f"{name}.ipynb 的第 {i} 个单元"
        source, texts = "".join(cell["source"]), _texts(cell)
        for text in [source, *texts]:
            assert not REPO_PATHS.search(text), f"{where} 指向仓库里的文件：{REPO_PATHS.search(text)[0]}"
        assert not any(str(ROOT) in t for t in texts), f"{where} 的输出里出现了仓库的路径 {ROOT}"
        for call, evidence in (("show_diagram(", "data:image/svg+xml;base64,"), ("show_full_result(", "完整设定的结果：")):
            if call in source:
                assert "nbval-check-output" in cell["metadata"].get("tags", []), f"{where} 没有 nbval-check-output 标签"
                assert any(evidence in t for t in texts), f"{where} 存储的输出里没有 {evidence!r}"
                shown += 1
    assert shown >= 1, f"{name}.ipynb 既没有示意图也没有完整设定的结果"


@pytest.mark.slow
def test_nbval_runs_every_notebook_alone(venv, tmp_path):
    """每本笔记本单独放进一个空目录（nbval 的内核以它为当前目录），用 wheel 装的 cnnlib 执行：
    带 nbval-check-output 标签的单元（形状、示意图、完整结果）与存储的输出逐字比对，其余只要求不出错。"""
    copies = []
    for name in NOTEBOOKS:
        (tmp_path / name).mkdir()
        copies.append(shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", tmp_path / name))
    # -rfE：结尾列出失败的单元（“FAILED 名字.ipynb::Cell N”）；--color=no：输出里没有终端颜色码
    command = [str(venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE", "--color=no",
               "--nbval-lax", "--nbval-sanitize-with", str(ROOT / "notebooks" / "nbval-sanitize.cfg"),
               "--nbval-kernel-name", KERNEL]
    halves = [copies[0::2], copies[1::2]]
    t = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:  # 两个 nbval 进程各执行一半，2 核的机器上各用一个线程
        runs = list(pool.map(lambda half: subprocess.run(command + half, cwd=tmp_path, env=_environment(),
                                                          capture_output=True, text=True), halves))
    print(f"七本笔记本单独执行（smoke，两个 nbval 进程）：{time.monotonic() - t:.0f} 秒")
    for proc, half in zip(runs, halves):
        print(f"{'、'.join(Path(c).stem for c in half)}：{_last_line(proc.stdout)}")
    failed = [describe_nbval_failure(proc, half) for proc, half in zip(runs, halves) if proc.returncode != 0]
    assert not failed, "nbval 单独执行笔记本时失败：\n" + "\n\n".join(failed)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "（nbval 什么也没有输出）"


FAILED_CELL = re.compile(r"^(?:FAILED|ERROR) (?:\S*/)?([\w.-]+\.ipynb)::Cell (\d+)", re.M)


def describe_nbval_failure(proc: subprocess.CompletedProcess, notebooks: list) -> str:
    """一个失败的 nbval 进程：退出码、失败的单元（序号与源代码）、stdout 与 stderr 的结尾。

    nbval 的单元序号只数代码单元（从 0 起），这里按同样的数法从笔记本里取出那个单元的源代码。
    stdout 是空的（例如内核没起来、pytest 自己出错）时，原因在 stderr 里，所以两者都印出来。
    """
    parts = [f"nbval（{'、'.join(Path(n).name for n in notebooks)}）退出码 {proc.returncode}"]
    by_name = {Path(n).name: Path(n) for n in notebooks}
    for name, index in FAILED_CELL.findall(proc.stdout):
        code_cells = [c for c in json.loads(by_name[name].read_text(encoding="utf-8"))["cells"]
                      if c["cell_type"] == "code"] if name in by_name else []
        source = "".join(code_cells[int(index)]["source"]) if int(index) < len(code_cells) else "（找不到这个单元）"
        parts.append(f"--- 失败的单元：{name} 的 Cell {index}（第 {int(index)} 个代码单元，从 0 数）---\n{source}")
    parts.append(f"--- stdout 的结尾 ---\n{proc.stdout[-6000:].strip() or '（空）'}")
    parts.append(f"--- stderr 的结尾 ---\n{proc.stderr[-3000:].strip() or '（空）'}")
    return "\n".join(parts)


def test_a_failed_nbval_run_is_described_even_without_stdout(tmp_path):
    """nbval 没有任何输出时（内核没起来），报告不会自己出错，并给出 stderr；有失败的单元时印出它的源代码。"""
    nb = tmp_path / "demo.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": ["# 标题"]},
                                        {"cell_type": "code", "source": ["x = 1\n"]},
                                        {"cell_type": "code", "source": ["1 / 0\n"]}]}), encoding="utf-8")
    silent = subprocess.CompletedProcess([], 3, stdout="", stderr="NoSuchKernel: cnnlib-wheel\n")
    assert _last_line(silent.stdout) == "（nbval 什么也没有输出）"
    text = describe_nbval_failure(silent, [nb])
    assert "退出码 3" in text and "NoSuchKernel: cnnlib-wheel" in text
    cell = subprocess.CompletedProcess([], 1, stdout="...\nFAILED demo.ipynb::Cell 1 - ZeroDivisionError\n"
                                       "1 failed, 1 passed in 3.2s\n", stderr="")
    text = describe_nbval_failure(cell, [nb])
    assert "demo.ipynb 的 Cell 1" in text and "1 / 0" in text and "x = 1" not in text
