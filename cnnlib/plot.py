"""作图：中文字体、训练时的实时曲线、训练记录与图像网格。

matplotlib 在函数里才导入，让 ``import cnnlib`` 保持轻快。
"""

import warnings

# 按优先顺序排列的中文字体。Debian/Ubuntu 的 fonts-noto-cjk 提供第一个；
# 其余是 macOS、Windows 与其他发行版上常见的字体。
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "PingFang SC", "Heiti SC", "Microsoft YaHei", "SimHei",
             "Noto Sans CJK JP", "Arial Unicode MS")

_font: list[str | None] = []  # 缓存查找结果：[字体名] 或 [None]


def use_cjk_font() -> str | None:
    """让 matplotlib 用一种中文字体（避免“豆腐块”），返回字体名；找不到时警告并返回 None。"""
    if _font:
        return _font[0]
    import matplotlib
    from matplotlib import font_manager

    def find() -> str | None:
        available = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in available), None)

    name = find()
    if name is None:  # 字体可能是刚装上的（例如 Colab 的第一个单元格）：重建一次字体缓存
        font_manager.fontManager = font_manager._load_fontmanager(try_read_cache=False)
        name = find()
    if name is None:
        warnings.warn("没有找到中文字体，图中的中文会显示成方块。Debian/Ubuntu/Colab："
                      "apt-get install fonts-noto-cjk；macOS 与 Windows 自带的中文字体会被自动使用。",
                      stacklevel=2)
    else:
        matplotlib.rcParams["font.family"] = "sans-serif"
        matplotlib.rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
        matplotlib.rcParams["axes.unicode_minus"] = False  # 负号用 ASCII 的 '-'，中文字体里不一定有 U+2212
    _font.append(name)
    return name


_STYLE = {"train_loss": ("训练损失", "-"), "train_acc": ("训练准确率", "--"),
          "test_acc": ("测试准确率", "-.")}


def _draw(ax, series: dict, num_epochs: int | None = None) -> None:
    ax.cla()
    for key, (xs, ys) in series.items():
        if xs:
            label, style = _STYLE[key]
            ax.plot(xs, ys, style, label=label, marker="o" if key == "test_acc" else None, markersize=4)
    ax.set_xlabel("轮次（epoch）")
    if num_epochs:
        ax.set_xlim(0, num_epochs)
    ax.grid(True, alpha=0.3)
    if ax.lines:  # 还没有数据时不画图例，免得 matplotlib 警告
        ax.legend(loc="center right")


class LivePlot:
    """Jupyter 中训练时的实时曲线。

    所有更新都写到同一个显示输出（``display_id``）里，所以保存后的笔记本和网站上
    只留下一张最终的静态图。
    """

    def __init__(self, num_epochs: int, history=None) -> None:
        use_cjk_font()
        import matplotlib.pyplot as plt
        from IPython.display import display
        self.num_epochs = num_epochs
        self.series: dict[str, tuple[list, list]] = {k: ([], []) for k in _STYLE}
        if history is not None:  # 续训：先画出已完成的轮次
            for key in _STYLE:
                for epoch, value in enumerate(getattr(history, key), start=1):
                    self.series[key][0].append(epoch)
                    self.series[key][1].append(value)
        self.fig, self.ax = plt.subplots(figsize=(5.5, 3.5))
        plt.close(self.fig)  # 由我们自己显示，避免单元格结束时 inline 后端再画一次
        _draw(self.ax, self.series, num_epochs)
        self.handle = display(self.fig, display_id=True)

    def add(self, x: float, **values: float) -> None:
        for key, value in values.items():
            self.series[key][0].append(x)
            self.series[key][1].append(value)
        _draw(self.ax, self.series, self.num_epochs)
        self.handle.update(self.fig)

    def close(self) -> None:
        self.handle.update(self.fig)


def plot_history(history, ax=None):
    """把一次训练的逐轮记录画成曲线，返回 matplotlib 的 Axes。"""
    use_cjk_font()
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    epochs = list(range(1, history.epochs + 1))
    _draw(ax, {key: (epochs, list(getattr(history, key))) for key in _STYLE})
    return ax


def show_images(imgs, num_rows: int, num_cols: int, titles=None, scale: float = 1.5):
    """把一批图像画成 ``num_rows`` × ``num_cols`` 的网格，返回 Axes 数组。"""
    use_cjk_font()
    import matplotlib.pyplot as plt
    import torch
    fig, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale))
    axes = axes.flatten() if hasattr(axes, "flatten") else [axes]
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        if torch.is_tensor(img):
            img = img.detach().cpu().squeeze().numpy()
        ax.imshow(img, cmap="gray")
        ax.axis("off")
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    return axes
