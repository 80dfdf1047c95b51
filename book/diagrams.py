"""把 cnnlib 画的架构示意图写成 book/figures/ 下的 SVG，供笔记本以外的页面（book/overview.md）使用。

用法（在仓库根目录；``make figures``）::

    python book/diagrams.py

图本身由 :mod:`cnnlib.diagrams` 画（笔记本用 ``cnnlib.show_diagram`` 直接显示，不读这些文件），
层与形状取自 cnnlib 的模型。生成的 SVG 与本脚本一起提交；tests/test_diagrams.py 检查它们与
cnnlib 画出的图一致，改了模型或画法之后记得重新运行本脚本。
"""

from pathlib import Path

from cnnlib.diagrams import DIAGRAMS, diagram_svg

FIGURES = Path(__file__).resolve().parent / "figures"


def main() -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    for name in DIAGRAMS:
        path = FIGURES / f"{name}.svg"
        path.write_text(diagram_svg(name), encoding="utf-8")
        print(f"写出 {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
