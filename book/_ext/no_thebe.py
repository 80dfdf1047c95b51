"""Sphinx 扩展：去掉 sphinx-thebe 写进每一页的脚本与配置。

Jupyter Book 1.x 总会加载 sphinx-thebe。即使 _config.yml 里 ``launch_buttons.thebe: false``，
它也在每一页写入指向 unpkg.com 的 ``THEBE_JS_URL``、一个 ``sphinx-thebe.js`` 和一段示例 Binder 配置。
本书用 Colab 运行笔记本，不用 thebe；网站也不应引用外部脚本。所以在写出 HTML 之前把它们去掉。
"""

from docutils import nodes


def _is_thebe(asset) -> bool:
    body = getattr(asset, "attributes", {}).get("body") or ""
    return "thebe" in (asset.filename or "") or "THEBE_JS_URL" in body


def _strip_doctree(app, doctree, docname) -> None:
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if "x-thebe-config" in text or "kernelName =" in text:
            node.parent.remove(node)


def _strip_page(app, pagename, templatename, context, doctree) -> None:
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [asset for asset in context[key] if not _is_thebe(asset)]


def setup(app):
    # 优先级数字越大越晚运行：在 sphinx-thebe 与主题加完资源之后再过滤
    app.connect("doctree-resolved", _strip_doctree, priority=900)
    app.connect("html-page-context", _strip_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
