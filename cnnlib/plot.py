"""作图：中文字体、训练时的实时曲线、训练记录与图像网格。

matplotlib 在函数里才导入，让 ``import cnnlib`` 保持轻快。
"""

import os
import warnings
from pathlib import Path

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


def _interactive_backend() -> bool:
    """当前的 matplotlib 后端能不能开窗口（TkAgg、QtAgg、macosx……）；Agg 之类只能存文件。"""
    import matplotlib
    name = matplotlib.get_backend().lower()
    try:
        from matplotlib.backends import BackendFilter, backend_registry
        interactive = backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # matplotlib 3.8
        from matplotlib import rcsetup
        interactive = rcsetup.interactive_bk
    return name in {b.lower() for b in interactive}


class LivePlot:
    """训练时的实时曲线，在哪里运行都能看到。

    - Jupyter（``notebook=True``）：所有更新都写到同一个显示输出（``display_id``）里，所以保存后的
      笔记本和网站上只留下一张最终的静态图。
    - 普通的 ``python`` 进程（PyCharm、VS Code、终端）：后端能开窗口时画在一个 matplotlib 窗口里，
      每次读数时刷新；不能开窗口时（没有显示器，或 ``MPLBACKEND=Agg``）在结束时存成 PNG，并打印路径。
    """

    def __init__(self, num_epochs: int, history=None, *, notebook: bool = True,
                 path: str | os.PathLike | None = None) -> None:
        use_cjk_font()
        self.num_epochs, self.path = num_epochs, path
        self.series: dict[str, tuple[list, list]] = {k: ([], []) for k in _STYLE}
        if history is not None:  # 续训：先画出已完成的轮次
            for key in _STYLE:
                for epoch, value in enumerate(getattr(history, key), start=1):
                    self.series[key][0].append(epoch)
                    self.series[key][1].append(value)
        self.handle = None
        if notebook:
            import matplotlib.pyplot as plt
            from IPython.display import display
            self.fig, self.ax = plt.subplots(figsize=(5.5, 3.5))
            plt.close(self.fig)  # 由我们自己显示，避免单元格结束时 inline 后端再画一次
            _draw(self.ax, self.series, num_epochs)
            self.handle = display(self.fig, display_id=True)  # 没有 Jupyter 内核时返回 None
            if self.handle is not None:
                self.mode = "notebook"
                return
        self.mode = "window" if _interactive_backend() else "file"
        if self.mode == "window":
            import matplotlib.pyplot as plt
            self.fig, self.ax = plt.subplots(figsize=(5.5, 3.5))
            self.fig.show()
        else:  # 不经过 pyplot：不留下全局的图，也不会有“无法显示”的警告
            from matplotlib.figure import Figure
            self.fig = Figure(figsize=(5.5, 3.5))
            self.ax = self.fig.subplots()
        self._refresh()

    def _refresh(self) -> None:
        _draw(self.ax, self.series, self.num_epochs)
        if self.mode == "notebook":
            self.handle.update(self.fig)
        elif self.mode == "window":
            self.fig.canvas.draw_idle()
            self.fig.canvas.flush_events()  # 让窗口在训练的间隙重画，而不必等到脚本结束

    def add(self, x: float, **values: float) -> None:
        for key, value in values.items():
            self.series[key][0].append(x)
            self.series[key][1].append(value)
        self._refresh()

    def close(self) -> None:
        """最后画一次。存文件的模式下把图存成 PNG 并打印路径（当前目录不可写时存到临时目录）。"""
        self._refresh()
        if self.mode == "window":
            print("训练曲线画在 matplotlib 窗口里；脚本结束时窗口会随之关闭，想留着看就在脚本最后调用 plt.show()。")
        elif self.mode == "file":
            import tempfile
            import time
            name = f"cnnlib-training-{time.strftime('%Y%m%d-%H%M%S')}.png"
            target = Path(self.path) if self.path is not None else Path.cwd() / name
            try:
                self.fig.savefig(target, dpi=120, bbox_inches="tight")
            except OSError:
                if self.path is not None:
                    raise
                target = Path(tempfile.gettempdir()) / name
                self.fig.savefig(target, dpi=120, bbox_inches="tight")
            print(f"训练曲线已保存到 {target.resolve()}（当前的 matplotlib 后端不能开窗口，所以存成了图片文件）")


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


def show_filters(weight, num_cols: int = 12, scale: float = 0.8, title: str | None = None):
    """把单通道输入的卷积核画成灰度图网格（例如 AlexNet 第一层的 96 个 11×11 卷积核），返回 Axes 数组。

    每个卷积核**各自**线性映射到 [黑, 白]：该核的最小权重画成黑色、最大权重画成白色。
    所以只能比较同一个核内部的明暗图案（边缘、条纹、斑点），不能比较不同核之间的亮度或权重大小。

    Args:
        weight: 形状为 (输出通道, 1, k, k) 或 (输出通道, k, k) 的张量，例如 ``net[0].weight``。
        num_cols: 每行画几个卷积核。
        scale: 每个小图的边长（英寸）。
        title: 图的总标题；None 时写出卷积核的个数、大小和归一化方式。

    Returns:
        matplotlib 的 Axes 数组（已展平），第 i 个对应第 i 个卷积核。
    """
    use_cjk_font()
    import math
    import matplotlib.pyplot as plt
    import torch
    w = weight.detach().float().cpu()
    if w.dim() == 4:
        if w.shape[1] != 1:
            raise ValueError(f"show_filters 只画单通道输入的卷积核，这里的形状是 {tuple(w.shape)}："
                             "请先选出一个输入通道，例如 weight[:, :1]。")
        w = w[:, 0]
    if w.dim() != 3:
        raise ValueError(f"weight 的形状 {tuple(weight.shape)} 不可用：应为 (输出通道, 1, k, k) 或 (输出通道, k, k)。")
    # 每个核各自归一化到 [0, 1]；全零的核（max == min）画成灰色
    lo = w.amin(dim=(1, 2), keepdim=True)
    span = w.amax(dim=(1, 2), keepdim=True) - lo
    w = torch.where(span > 0, (w - lo) / span.clamp_min(1e-12), torch.full_like(w, 0.5))
    num_rows = math.ceil(len(w) / num_cols)
    fig, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale),
                             squeeze=False)
    axes = axes.flatten()
    for ax in axes:
        ax.axis("off")
    for ax, kernel in zip(axes, w):
        ax.imshow(kernel.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if title is None:
        title = f"{len(w)} 个 {w.shape[1]}×{w.shape[2]} 卷积核（每个核各自归一化：最小权重为黑，最大为白）"
    fig.suptitle(title, fontsize=10)
    return axes


def _feature_rows(activations, num_channels: int, order: str):
    """把两种输入格式统一成 [(层名, 总通道数, [(通道号, 二维特征图), ...]), ...]。"""
    if isinstance(activations, dict):  # 保存的格式：{"layers": {层名: {"channels", "maps", "num_channels"}}, ...}
        layers = activations.get("layers", activations)
        items = [(name, int(d["num_channels"]), d["channels"].tolist(), d["maps"].float())
                 for name, d in layers.items()]
    else:  # cnnlib.conv_activations 的输出：[(层名, (1, C, H, W) 或 (C, H, W)), ...]
        items = []
        for name, t in activations:
            t = t.detach().float().cpu()
            if t.dim() == 4:
                t = t[0]
            if t.dim() != 3:
                raise ValueError(f"{name} 的特征图形状 {tuple(t.shape)} 不可用：应为 (1, C, H, W) 或 (C, H, W)。")
            items.append((name, t.shape[0], list(range(t.shape[0])), t))
    rows = []
    for name, total, channels, maps in items:
        if order == "strongest":  # 按整张特征图的平均激活从大到小
            pick = maps.mean(dim=(1, 2)).argsort(descending=True)[:num_channels].tolist()
        elif order == "first":
            pick = list(range(min(num_channels, len(channels))))
        else:
            raise ValueError(f"order={order!r} 不可用：请用 'strongest'（平均激活最大的通道）或 'first'（前几个通道）。")
        rows.append((name, total, [(channels[i], maps[i]) for i in pick]))
    return rows


def show_feature_maps(activations, num_channels: int = 8, image=None, order: str = "strongest",
                      scale: float = 1.1):
    """把一张图像在各卷积层的特征图画成网格：每行一个卷积层，行首是输入图像，后面是几个通道。

    每张特征图各自把最小值画成最暗、最大值画成最亮（同一行的不同通道之间亮度不可比较）；
    行首的标签写出层名、该层的通道总数和特征图尺寸，每张图上方是通道号。

    Args:
        activations: :func:`cnnlib.conv_activations` 的输出 ``[(层名, 张量), ...]``，张量形状为
            (1, C, H, W) 或 (C, H, W)；或者保存下来的字典（``{"layers": {层名: {"channels": 通道号,
            "maps": (n, H, W), "num_channels": C}}, "image": ...}``，只含其中 n 个通道）。
        num_channels: 每层画几个通道。
        image: 输入图像（二维，或 (1, H, W)、(1, 1, H, W)）；为 None 且 ``activations`` 是含 ``"image"``
            的字典时用字典里的图像；都没有时不画输入列。
        order: ``"strongest"`` 取平均激活最大的几个通道（从大到小）；``"first"`` 取前几个
            （对保存的字典，是其中保存的前几个）。
        scale: 每个小图的边长（英寸）。

    Returns:
        matplotlib 的 Axes 数组，形状为 (层数, 列数)。
    """
    use_cjk_font()
    import matplotlib.pyplot as plt
    import torch
    if image is None and isinstance(activations, dict):
        image = activations.get("image")
    rows = _feature_rows(activations, num_channels, order)
    offset = 0 if image is None else 1
    num_cols = offset + max(len(r[2]) for r in rows)
    fig, axes = plt.subplots(len(rows), num_cols, figsize=(num_cols * scale + 1.2, len(rows) * scale * 1.15),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    if image is not None:
        image = image.detach().float().cpu() if torch.is_tensor(image) else torch.as_tensor(image).float()
        image = image.squeeze()
    for r, (name, total, maps) in enumerate(rows):
        h, w = maps[0][1].shape
        label = f"{name}\n{total} 个通道\n{h}×{w}"
        if image is not None:
            axes[r, 0].imshow(image.numpy(), cmap="gray")
            if r == 0:
                axes[r, 0].set_title("输入", fontsize=8)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        for c, (channel, fmap) in enumerate(maps):
            ax = axes[r, offset + c]
            ax.imshow(fmap.numpy(), cmap="viridis")
            ax.set_title(f"通道 {channel}", fontsize=7)
    fig.tight_layout()
    return axes
