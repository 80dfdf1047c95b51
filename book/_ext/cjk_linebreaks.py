"""Sphinx 扩展：去掉中文段落里由源文件换行变成的多余空格。

Markdown 把段落内的换行当作空白，写进 HTML 后显示为一个空格。英文需要这个空格，中文不需要：
源文件里的“特征⏎可以”会显示成“特征 可以”，而浏览器不会自动去掉汉字之间的换行空白。
所以在解析之后，删掉两边都是汉字或中文标点的换行。代码、公式与原始 HTML 保持原样。
"""

import re

from docutils import nodes

CJK = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef\u2018\u2019\u201c\u201d\u2014\u2026]")
SOFT_BREAK = re.compile(rf"(?<={CJK.pattern})[ \t]*\n[ \t]*(?={CJK.pattern})")
UNTOUCHED = (nodes.FixedTextElement, nodes.literal, nodes.raw, nodes.math, nodes.comment)


def _is_cjk(char: str) -> bool:
    return bool(char) and CJK.match(char) is not None


def _join_cjk_lines(app, doctree) -> None:
    for text in list(doctree.findall(nodes.Text)):
        parent = text.parent
        if "\n" not in text or parent is None or isinstance(parent, UNTOUCHED):
            continue
        # 按身份找位置：Text 是 str 的子类，parent.index() 会找到第一个“相等”的节点
        i = next(k for k, child in enumerate(parent.children) if child is text)
        if not str(text).strip():
            # MyST 把段落内的换行解析成单独的 "\n" 文本节点：看它前后两个兄弟节点的文字
            before = parent[i - 1].astext() if i > 0 else ""
            after = parent[i + 1].astext() if i + 1 < len(parent) else ""
            if _is_cjk(before[-1:]) and _is_cjk(after[:1]):
                del parent[i]
            continue
        joined = SOFT_BREAK.sub("", str(text))
        if joined != str(text):
            parent[i] = nodes.Text(joined)


def setup(app):
    app.connect("doctree-read", _join_cjk_lines)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
