"""Sphinx 扩展：每一页页头的读者链接——在 Kaggle 上运行、报告本页的问题、下载全书 PDF。

Jupyter Book 1.x（sphinx-book-theme）的启动按钮只认 Binder、JupyterHub、Colab、Deepnote 与 JupyterLite，
问题按钮只会打开一个英文模板的 issue。所以在主题排好页头按钮之后（``html-page-context``，优先级 501），
本扩展再往里加：

- 笔记本页的火箭菜单里，Colab 旁边加 Kaggle：``<kaggle_url>?src=<GitHub 上这本笔记本的 blob 地址>``；
- “报告本页的问题”：在 GitHub 上新建 issue，标题与正文已填好本页的标题、小节和源文件地址，再加一段
  “哪里有问题 / 期望是什么 / 运行环境”的模板。链接本身只带本页标题；``reader-links.js`` 在读者点它的那一刻
  把“小节”换成读者正读到的那一节（视口上部最近的标题）、“地址”换成这一节的完整网址；不运行脚本时“小节”就是本页标题；
- 主题的问题按钮改为指向已有问题的列表（``<repo>/issues``），新建 issue 统一走上面那个链接；
- 下载菜单里加“下载 PDF”，指向网站根目录下的全书 PDF（``book_pdf``，由 ``make pdf`` 复制过去）。
  它只是一个普通链接，PDF 还没生成时构建也不会有警告。

全部地址都来自 _config.yml 里唯一的仓库设置（``repository.url``、``branch``、``path_to_book``）与
``launch_buttons.kaggle_url``。改了这个文件之后用 ``jupyter-book build . --all`` 重建：Sphinx 只重写源文件变了的页面。
"""

from __future__ import annotations

import re
from urllib.parse import quote

from pydata_sphinx_theme.utils import get_theme_options_dict
from sphinx.locale import _

REPORT_TEXT = "报告本页的问题"
GENERATED = {"genindex": "Index", "search": "Search"}
# issue 正文的模板。reader-links.js 只改写以“地址：”“小节：”开头的两行，改模板时保留这两行的开头。
ISSUE_BODY = """页面：{title}
地址：{path}
小节：{title}
源文件：{source}

### 哪里有问题
（引用原文、单元里的代码或完整的报错信息）

### 期望是什么


### 运行环境
（只在运行笔记本出错时需要：Colab / Kaggle / 本地；GPU 型号或 CPU；torch 与 cnnlib 的版本）
"""


def _repository(app) -> tuple[str, str, str]:
    """仓库地址、分支、书在仓库里的目录（结尾带 /，或为空）。"""
    opts = get_theme_options_dict(app)
    url = opts.get("repository_url", "").rstrip("/")
    branch = opts.get("repository_branch") or "main"
    folder = opts.get("path_to_docs", "").strip("/")
    return url, branch, f"{folder}/" if folder else ""


def _plain_title(app, pagename: str, context) -> str:
    if pagename in app.env.titles:
        return app.env.titles[pagename].astext().strip()
    if pagename in GENERATED:  # 索引页与搜索页的标题由 Sphinx 的模板按语言翻译，不在上下文里
        return str(_(GENERATED[pagename]))
    return re.sub(r"<[^>]+>", "", context.get("title") or pagename).strip()


def _find(buttons: list[dict], label: str) -> dict | None:
    return next((b for b in buttons if b.get("label") == label), None)


def issue_url(repo: str, title: str, body: str) -> str:
    """GitHub 新建 issue 的地址；中文按 UTF-8 百分号编码。"""
    return f"{repo}/issues/new?title={quote(title, safe='')}&body={quote(body, safe='')}"


def _add_buttons(app, pagename, templatename, context, doctree) -> None:
    buttons = context.get("header_buttons")
    repo, branch, folder = _repository(app)
    if buttons is None or not repo:
        return
    suffix = context.get("page_source_suffix") or ""
    source = f"{folder}{pagename}{suffix}"
    title = _plain_title(app, pagename, context)

    # 1. Kaggle：只有笔记本页才有主题的火箭菜单（launch-buttons）
    kaggle = get_theme_options_dict(app).get("launch_buttons", {}).get("kaggle_url", "").rstrip("/")
    launch = _find(buttons, "launch-buttons")
    if kaggle and launch is not None and suffix == ".ipynb":
        launch["buttons"].append({
            "type": "link", "text": "Kaggle", "tooltip": "在 Kaggle 上运行", "icon": "fab fa-kaggle",
            "label": "launch-kaggle-button", "url": f"{kaggle}?src={repo}/blob/{branch}/{source}",
        })

    # 2. 主题的问题按钮：看已有的问题；新建走“报告本页的问题”
    sources = _find(buttons, "source-buttons")
    for button in (sources or {}).get("buttons", []) + buttons:
        if button.get("label") == "source-issues-button":
            button.update(url=f"{repo}/issues", text="已有的问题", tooltip="看看别人已经报告过的问题")

    # 3. 报告本页的问题（页头最左边，带文字）
    body = ISSUE_BODY.format(title=title, path=f"{pagename}.html",
                             source=f"{repo}/blob/{branch}/{source}" if suffix else "（自动生成的页面）")
    buttons.insert(0, {
        "type": "link", "text": REPORT_TEXT, "icon": "fas fa-bug", "label": "report-page-issue",
        "tooltip": "在 GitHub 上新建 issue，已填好本页的标题与小节",
        "url": issue_url(repo, f"【{title}】", body),
    })

    # 4. 下载 PDF：放进主题的下载菜单；没有下载菜单的页面（搜索、索引）新建一个
    pdf = {"type": "link", "text": "下载 PDF", "tooltip": "全书的 PDF 版本", "icon": "fas fa-file-pdf",
           "label": "download-book-pdf", "url": context["pathto"](app.config.book_pdf, 1)}
    download = _find(buttons, "download-buttons")
    if download is None:
        buttons.append({"type": "group", "tooltip": "下载", "icon": "fas fa-download",
                        "buttons": [pdf], "label": "download-buttons"})
    else:
        download["buttons"].insert(0, pdf)
        for button in download["buttons"]:
            if button.get("label") == "download-pdf-button":  # 主题的 window.print()，打印的只是这一页
                button.update(text="打印本页", tooltip="打印本页，或在打印对话框里另存为 PDF", icon="fas fa-print")


def setup(app):
    app.add_config_value("book_pdf", "modern-cnn-zh.pdf", "html")
    app.add_js_file("reader-links.js", loading_method="defer")
    # 主题在优先级 501 添加页头按钮；数字越大越晚运行
    app.connect("html-page-context", _add_buttons, priority=510)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
