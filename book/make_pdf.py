"""把构建好的网站打印成一本 A4 的 PDF（``make pdf``）。

写出 ``_build/pdf/modern-cnn-zh.pdf``，再复制到 ``_build/html/``，供网站每页的“下载 PDF”链接
（文件名是 _config.yml 里的 book_pdf）。
它读的是 ``make book`` 构建好的 ``_build/html``（同一份源文件、同一份存储的笔记本输出），不另行构建。

做法：
1. 无头 Chromium（Debian 的 /usr/bin/chromium，由 playwright 的 Python 接口驱动，与 tests/test_site.py 相同，
   不运行 ``playwright install``）按 ``_toc.yml`` 的顺序逐页打开网站。等 MathJax 排版完每个公式（找到没排版的
   TeX 就报错停下），展开参考答案，套上打印样式 ``PRINT_CSS``，再把每一页打印成一份 PDF。打印时带上标题结构
   （tagged PDF），Chromium 据此生成各级标题的书签，我们由此知道每个标题在第几页。
2. 有了每一节的页数，就能排出带页码的目录页（也用 Chromium 打印）。
3. pypdf 把目录与各节接成一本，建立书签（部分 → 节 → 小节），把指向本书其他页的链接改成 PDF 内部的跳转，
   并把 Chromium 记成部首的汉字改回来（见 :func:`fix_chinese_text`）。
4. 连续的页码：用 Chromium 的页眉页脚模板（displayHeaderFooter）打印一份同样页数的空白页，页脚里是页码，
   再逐页叠到正文上。逐节打印时 Chromium 的页码每节都会从 1 开始，叠一层才能连续。

在仓库根目录运行：``.venv/bin/python book/make_pdf.py``（``--force``：网站没变也重新打印）。
页数、用时、字体与输入的摘要写在 ``_build/pdf/build.json``：打印的网页、图片与脚本都没变时直接沿用上次的 PDF；
tests/test_pdf.py 检查 PDF 时把页数与用时打印出来。
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import threading
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from urllib.parse import urldefrag

import yaml
from playwright.sync_api import Page, sync_playwright
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, FloatObject, NameObject, NumberObject, TextStringObject

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"
OUT_DIR = ROOT / "_build" / "pdf"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
# 文件名只在 _config.yml 里写一次（book_pdf）：网站每页的“下载 PDF”链接也指向它
PDF_NAME = CONFIG["sphinx"]["config"]["book_pdf"]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
# A4；下边距留给页码
MARGIN = {"top": "15mm", "bottom": "17mm", "left": "15mm", "right": "15mm"}
CJK_FONT = "'Noto Sans CJK SC', 'Source Han Sans SC', 'Noto Sans SC', sans-serif"

# 打印样式：网页上的外框（侧栏、页眉按钮与其中的“下载 PDF”、搜索、上一节/下一节、页脚、
# 主题在每页开头加的打印版小目录）在纸上没有用处；正文铺满版心。
PRINT_CSS = """
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-header-article, .bd-footer,
.bd-footer-article, .bd-footer-content, .prev-next-footer, .prev-next-area, .skip-link,
#pst-back-to-top, .search-button-field, #jb-print-docs-body, a.headerlink, button.copybtn,
.d-print-none, .noprint { display: none !important; }
/* sphinx-book-theme 打印时藏起正文的 h1、改在小目录上方印标题；小目录去掉了，所以把 h1 放回来 */
.bd-main .bd-content .bd-article h1:first-of-type { display: block !important; }
.bd-page-width, .bd-container, .bd-container__inner, .bd-main, .bd-content, .bd-article-container,
.bd-article { max-width: none !important; width: auto !important; margin: 0 !important; padding: 0 !important; }
html { font-size: 13px; }
/* 代码与输出：长行在纸上折行，而不是被右边缘切掉 */
pre { white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important;
      max-height: none !important; }
div.highlight, .cell_output, .output, .table-wrapper, .pst-scrollable-table-container {
  overflow: visible !important; }
/* 隐藏输入（hide-input）的单元：只印输出，不印折起来的代码和“显示代码”按钮 */
.tag_hide-input details.above-input { display: none !important; }
/* 参考答案在纸上点不开：脚本把它们全部展开，这里去掉“展开/收起”的小三角 */
details > summary { list-style: none; }
details > summary::-webkit-details-marker { display: none; }
img, svg, figure, table, .admonition, .cell_input, .cell_output { break-inside: avoid; }
h1, h2, h3, h4 { break-after: avoid; }
img { max-width: 100% !important; height: auto; }
table { font-size: 0.92em; }
"""

# 打开一页之后：展开参考答案（hide-input 的折叠块除外），图片立即加载，等 MathJax 排版完，
# 再报告没排版的公式、可见正文（检查残留的 TeX 源码）与没加载出来的图片
PREPARE = """async () => {
  if (document.readyState !== "complete") await new Promise(done => addEventListener("load", done));
  document.querySelectorAll("details:not(.above-input)").forEach(d => d.open = true);
  document.querySelectorAll("img").forEach(img => img.loading = "eager");
  const mathjax = Boolean(window.MathJax && MathJax.startup);
  if (mathjax) await MathJax.startup.promise;
  await Promise.all([...document.images].map(img => img.complete ? null :
    new Promise(done => { img.onload = img.onerror = done; })));
  const math = [...document.querySelectorAll("span.math, div.math")];
  const unrendered = math.filter(el => !el.querySelector("mjx-container"))
                         .map(el => el.textContent.trim().slice(0, 80));
  const article = document.querySelector("article") || document.body;
  const skip = "pre, code, script, style, mjx-container, .highlight";
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  const text = [];
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (el && !el.closest(skip)) text.push(walker.currentNode.textContent);
  }
  const brokenImages = [...document.images].filter(img => !(img.naturalWidth > 0)).map(img => img.src);
  return {mathjax, math: math.length, unrendered, text: text.join(" "), brokenImages};
}"""

# 套上打印样式之后正文里看得见的各级标题（不含 “#” 链接），按文档顺序
HEADINGS = """() => [...document.querySelectorAll("article :is(h1, h2, h3, h4, h5, h6)")]
  .filter(h => h.getClientRects().length)
  .map(h => [...h.childNodes].filter(n => !(n.classList && n.classList.contains("headerlink")))
                             .map(n => n.textContent).join("").replace(/\\s+/g, " ").trim())"""

# 公式没排版时留在页面上的 TeX 源码（与 tests/test_site.py 的检查相同）
LEFTOVER_TEX = re.compile(r"\$\$|\\(?:frac|mathbf|mathrm|boldsymbol|sum|sqrt|begin|end|left|right)\b"
                          r"|\\[()\[\]]|\$[^$\s][^$\n]{0,200}?\$")

FOOTER = f"""<div style="width: 100%; margin: 0 {MARGIN['left']} 5mm; font-family: {CJK_FONT};
  font-size: 8pt; color: #666; display: flex; justify-content: space-between;">
  <span>{{title}}</span><span class="pageNumber"></span></div>"""


@dataclass
class Heading:
    """PDF 书签里的一个标题：文字、所在页（本节内从 0 起）、下一级标题。"""
    title: str
    page: int
    children: list[Heading] = field(default_factory=list)


@dataclass
class Section:
    """目录里的一页网页，打印成 PDF 之后的样子。"""
    file: str                   # 例如 "notebooks/alexnet"
    part: str | None            # 所在部分的标题（_toc.yml 的 caption）；前言没有
    title: str = ""
    reader: PdfReader | None = None
    headings: list[Heading] = field(default_factory=list)   # h2 及以下
    # 网页里的 id → 本节内的页（Chromium 只为有链接指向的 id 记下位置）
    anchors: dict[str, int] = field(default_factory=dict)
    start: int = 0              # 在整本书里从第几页开始（从 0 起）


def toc_entries(toc_file: Path = ROOT / "_toc.yml") -> list[tuple[str, str | None]]:
    """按 _toc.yml 的顺序列出 (文件, 所在部分的标题)。"""
    toc = yaml.safe_load(toc_file.read_text(encoding="utf-8"))
    entries: list[tuple[str, str | None]] = [(toc["root"], None)]

    def walk(chapters: list[dict], part: str | None) -> None:
        for chapter in chapters:
            entries.append((chapter["file"], part))
            walk(chapter.get("sections", []), part)

    for part in toc.get("parts", []):
        walk(part.get("chapters", []), part.get("caption"))
    walk(toc.get("chapters", []), None)
    return entries


@contextmanager
def serve(directory: Path):
    """在本机随机端口上提供 directory 的静态文件，产出根地址。"""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _headings(reader: PdfReader, items: list) -> list[Heading]:
    """把 pypdf 的书签列表（一项之后的列表是它的下一级）转成 Heading 树。"""
    out: list[Heading] = []
    for item in items:
        if isinstance(item, list):
            out[-1].children.extend(_headings(reader, item))
        else:
            out.append(Heading(str(item.title).strip(), reader.get_destination_page_number(item)))
    return out


def print_section(page: Page, url: str, section: Section) -> None:
    """打开一页网页，检查公式都已排版，打印成 PDF，填入 section 的标题、PDF 与各级标题。"""
    page.goto(url, wait_until="networkidle")
    facts = page.evaluate(PREPARE)
    leftover = sorted(set(LEFTOVER_TEX.findall(facts["text"])))
    if facts["unrendered"] or leftover:
        loaded = "" if facts["mathjax"] else "MathJax 没有加载（网站正在重新构建？）；"
        raise SystemExit(f"{section.file}：MathJax 没有排版全部公式，不能打印。{loaded}"
                         f"没排版的公式：{facts['unrendered'][:5]}；残留的 TeX：{leftover[:5]}。"
                         f"先用 make book 重新构建网站，再检查 tests/test_site.py 是否通过。")
    if facts["brokenImages"]:
        raise SystemExit(f"{section.file}：有图片没加载出来：{facts['brokenImages'][:5]}。先运行 make book。")
    page.add_style_tag(content=PRINT_CSS)
    page.emulate_media(media="print")
    titles = page.evaluate(HEADINGS)
    data = page.pdf(format="A4", margin=MARGIN, print_background=True, tagged=True, outline=True)
    section.reader = PdfReader(io.BytesIO(data))
    section.anchors = {name.lstrip("/"): section.reader.get_destination_page_number(dest)
                       for name, dest in section.reader.named_destinations.items()}
    tree = _headings(section.reader, section.reader.outline)
    # 页码取自 Chromium 的书签；文字取自网页，因为书签文字偶尔把标题重复一遍（标题后紧跟一张图时）
    flat = list(_flatten(tree))
    if len(flat) == len(titles):
        for heading, title in zip(flat, titles):
            heading.title = title
    else:
        print(f"  注意：{section.file} 的书签有 {len(flat)} 个标题，网页上有 {len(titles)} 个，"
              "书签文字照 Chromium 的用。", flush=True)
    if len(tree) != 1:
        raise SystemExit(f"{section.file}：应当正好有一个一级标题（h1），书签里却有 {len(tree)} 个："
                         f"{[h.title for h in tree]}")
    section.title, section.headings = tree[0].title, tree[0].children


def _flatten(headings: list[Heading]):
    """按文档顺序（先序）逐个产出标题。"""
    for heading in headings:
        yield heading
        yield from _flatten(heading.children)


def toc_html(book_title: str, sections: list[Section], toc_pages: int, base: str) -> str:
    """目录页：部分、节与小节，带页码（页码与 PDF 的页序一致，从 1 起）。

    每一行链接到 ``{base}#page-N``，接成一本之后由 :func:`link_inside` 改成跳到第 N 页。
    """
    def entry(title: str, page: int, css: str) -> str:
        return (f'<a class="entry {css}" href="{base}#page-{page}"><span class="t">{escape(title)}</span>'
                f'<span class="dots"></span><span class="n">{page + 1}</span></a>')

    rows, part = [], None
    for s in sections:
        if s.part != part and s.part:
            rows.append(f'<div class="part">{escape(s.part)}</div>')
        part = s.part
        rows.append(entry(s.title, toc_pages + s.start, "section"))
        rows += [entry(h.title, toc_pages + s.start + h.page, "sub") for h in s.headings]
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><style>
body {{ font-family: {CJK_FONT}; font-size: 10.5pt; line-height: 1.55; color: #222; margin: 0; }}
h1 {{ font-size: 26pt; margin: 20mm 0 2mm; }}
h2 {{ font-size: 15pt; margin: 10mm 0 4mm; font-weight: 600; }}
.part {{ font-weight: 700; font-size: 12pt; margin: 5mm 0 1mm; break-after: avoid; }}
.entry {{ display: flex; color: inherit; text-decoration: none; align-items: baseline; }}
.entry .dots {{ flex: 1; border-bottom: 1px dotted #999; margin: 0 2mm; }}
.section {{ font-weight: 600; margin-top: 1.5mm; }}
.sub {{ padding-left: 2em; font-size: 9.5pt; color: #444; }}
</style></head><body><h1>{escape(book_title)}</h1><h2>目录</h2>{"".join(rows)}</body></html>"""


def print_html(page: Page, html: str, **options) -> PdfReader:
    """用 Chromium 打印一段 HTML。"""
    page.set_content(html, wait_until="load")
    page.evaluate("() => document.fonts.ready.then(() => true)")
    return PdfReader(io.BytesIO(page.pdf(format="A4", margin=MARGIN, **options)))


def page_numbers(page: Page, count: int, book_title: str) -> PdfReader:
    """count 页空白页，页脚是书名与连续的页码（Chromium 的页脚模板），用来叠到正文上。"""
    body = '<div style="height: 1px; break-after: page;"></div>' * (count - 1) + "<div></div>"
    reader = print_html(page, f"<!doctype html><html><body>{body}</body></html>",
                        display_header_footer=True, header_template="<span></span>",
                        footer_template=FOOTER.format(title=escape(book_title)))
    if len(reader.pages) != count:
        raise SystemExit(f"页码层有 {len(reader.pages)} 页，正文有 {count} 页，对不上。")
    return reader


def _link_target(uri: str, base: str, sections: list[Section], toc_pages: int) -> int | None:
    """本书内的链接（目录的 #page-N、指向本书其他网页的地址）在整本 PDF 里跳到的页（从 0 起）；
    站外链接与本机服务器上的其他文件返回 None。"""
    if not uri.startswith(base):
        return None
    path, anchor = urldefrag(uri[len(base):])
    if not path and anchor.startswith("page-"):
        return int(anchor[5:])
    for s in sections:
        if path == s.file + ".html":
            return toc_pages + s.start + s.anchors.get(anchor, 0)
    return None


def link_inside(writer: PdfWriter, base: str, sections: list[Section], toc_pages: int) -> int:
    """把指向本书网页的链接改成 PDF 内部跳转，返回改了几个。

    指向本机服务器上其他文件的链接（Sphinx 给图片套的、指向 SVG 原图的链接）在 PDF 里打不开，去掉。
    """
    changed = 0
    for page in writer.pages:
        annots = page.get("/Annots")
        if not annots:
            continue
        annots = annots.get_object()
        for ref in list(annots):
            annot = ref.get_object()
            action = annot.get("/A")
            if annot.get("/Subtype") != "/Link" or not action or action.get("/S") != "/URI":
                continue
            uri = str(action["/URI"])
            target = _link_target(uri, base, sections, toc_pages)
            if target is None:
                if uri.startswith(base):
                    annots.remove(ref)
                continue
            del annot[NameObject("/A")]
            annot[NameObject("/Dest")] = ArrayObject([writer.pages[target].indirect_reference,
                                                      NameObject("/XYZ"), NumberObject(0),
                                                      FloatObject(writer.pages[target].mediabox.top),
                                                      NumberObject(0)])
            changed += 1
    return changed


# Noto Sans CJK SC 里与统一汉字共用同一个字形的部首（由字体的 cmap 求出）：CJK 部首补充区（U+2E80–）的 67 个，
# 加上康熙部首区（U+2F00–）里 NFKC 给出繁体“戶”、字体的字形却是“户”的 ⼾。其余康熙部首与兼容汉字用 NFKC 换回。
# 同样的事也发生在连接号上：en dash “–”（U+2013，本书写范围用它，例如“7.3.6–7.3.7”）与 figure dash “‒”（U+2012）
# 共用一个字形，被记成了 U+2012；本书不用 figure dash，换回 en dash。
RADICALS = str.maketrans(
    "⺂⺃⺅⺉⺏⺐⺒⺓⺔⺕⺖⺘⺙⺛⺞⺟⺠⺡⺣⺤⺦⺨⺭⺯⺰⺱⺹⺺⺾⻂⻅⻆⻈⻉"
    "⻋⻌⻐⻑⻒⻓⻔⻖⻘⻙⻚⻛⻜⻝⻟⻠⻢⻣⻤⻥⻦⻧⻨⻩⻪⻫⻬⻮⻯⻰⻱⻲⻳⼾\u2012",
    "乛乚亻刂尣尢巳幺彑彐忄扌攵旡歺母民氵灬爫丬犭礻糹纟罓耂肀艹衤见角讠贝"
    "车辶钅長镸长门阝青韦页风飞食飠饣马骨鬼鱼鸟卤麦黄黾斉齐齿竜龙龜亀龟户\u2013")


def _ideograph(char: str) -> str:
    """部首或兼容汉字 → 统一汉字；其他字符原样返回。"""
    char = char.translate(RADICALS)
    if "\u2f00" <= char <= "\u2fdf" or "\uf900" <= char <= "\ufaff":
        return unicodedata.normalize("NFKC", char)
    return char


def _plain_ideographs(cmap: bytes) -> bytes:
    """ToUnicode 表（bfchar 段）里的部首换成与它共用字形的统一汉字。"""
    def fix(match: re.Match) -> bytes:
        text = bytes.fromhex(match[2].decode()).decode("utf-16-be", errors="replace")
        text = "".join(map(_ideograph, text))
        return match[1] + b" <" + text.encode("utf-16-be").hex().upper().encode() + b">"

    return re.sub(rb"beginbfchar.*?endbfchar",
                  lambda block: re.sub(rb"(<[0-9A-Fa-f]+>)\s+<([0-9A-Fa-f]+)>", fix, block[0]),
                  cmap, flags=re.S)


def fix_chinese_text(writer: PdfWriter) -> int:
    """让 PDF 里的汉字能搜索、能复制：返回改了几个字体。

    Noto Sans CJK 里“网”和康熙部首“⽹”、“见”和部首“⻅”等共用一个字形，Chromium 记录字形对应的字符时
    取了码位小的部首，于是在阅读器里搜“网络”找不到、复制出来的是“⽹络”。本书正文里不用部首，所以一律换回汉字。
    """
    fixed, seen = 0, set()
    for page in writer.pages:
        for ref in page.get("/Resources", {}).get("/Font", {}).values():
            font = ref.get_object()
            to_unicode = font.get("/ToUnicode")
            if to_unicode is None or to_unicode.idnum in seen:
                continue
            seen.add(to_unicode.idnum)
            stream = to_unicode.get_object()
            data = stream.get_data()
            new = _plain_ideographs(data)
            if new != data:
                stream.set_data(new)
                fixed += 1
    return fixed


def add_bookmarks(writer: PdfWriter, sections: list[Section], toc_pages: int) -> None:
    """书签：目录、前言，然后每个部分下面是它的各节与各节的小节。"""
    writer.add_outline_item(title="目录", page_number=0)
    parents: dict[str, object] = {}

    def add(headings: list[Heading], offset: int, parent) -> None:
        for h in headings:
            item = writer.add_outline_item(title=h.title, page_number=offset + h.page, parent=parent,
                                           is_open=False)
            add(h.children, offset, item)

    for s in sections:
        parent = None
        if s.part:
            if s.part not in parents:
                parents[s.part] = writer.add_outline_item(title=s.part, page_number=toc_pages + s.start)
            parent = parents[s.part]
        item = writer.add_outline_item(title=s.title, page_number=toc_pages + s.start, parent=parent,
                                       is_open=False)
        add(s.headings, toc_pages + s.start, item)


def font_name(font) -> str:
    """字体字典里的字体名，去掉子集前缀 ``ABCDEF+``。

    Chromium 把 CFF 轮廓的字体（Noto Sans CJK 就是）嵌成 Type 3 字体，它没有 /BaseFont，名字在 FontDescriptor 里。
    """
    name = font.get("/BaseFont")
    if name is None and "/FontDescriptor" in font:
        name = font["/FontDescriptor"].get_object().get("/FontName")
    return str(name or "").lstrip("/").split("+")[-1]


def font_names(pages) -> list[str]:
    """这些页上用到的全部字体名。"""
    names = {font_name(ref.get_object()) for page in pages
             for ref in page.get("/Resources", {}).get("/Font", {}).values()}
    return sorted(names - {""})


def inputs_digest(site: Path = SITE) -> str:
    """打印用到的一切的 SHA-256：目录里每一页的 HTML、网站的图片与样式表、这个脚本本身。

    Sphinx 每次构建都会重写几页（例如每次重新生成的模型对比页），内容却不变，所以比内容而不比修改时间。
    """
    files = [site / f"{file}.html" for file, _ in toc_entries()]
    files += sorted((site / "_images").glob("*")) + sorted((site / "_static").glob("*.css")) + [Path(__file__)]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(site) if path.is_relative_to(site) else path.name).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def require_site(site: Path = SITE) -> None:
    """网站与目录里的每一页都已构建、Chromium 在，否则说明怎么办并退出。"""
    missing = [file for file, _ in toc_entries() if not (site / f"{file}.html").exists()]
    if missing:
        raise SystemExit(f"构建好的网站（{site}）里缺这些页：{missing}。先运行 make book。")
    if not CHROMIUM.exists():
        raise SystemExit(f"找不到 Chromium（{CHROMIUM}）：Debian/Ubuntu 上 apt-get install chromium，"
                         "或用环境变量 CHROMIUM 指定可执行文件。")


def build(site: Path = SITE, out_dir: Path = OUT_DIR) -> dict:
    """打印整本书，返回 build.json 的内容（页数、大小、用时、字体、输入的摘要）。"""
    require_site(site)
    started = time.perf_counter()
    digest = inputs_digest(site)
    book_title = CONFIG["title"]
    sections = [Section(file, part) for file, part in toc_entries()]

    with serve(site) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        start = 0
        for s in sections:
            t = time.perf_counter()
            # 每页一个新标签页：在打印过的标签页里跳到下一页，偶尔会在文档还没加载完时就返回
            page = browser.new_page(viewport={"width": 1000, "height": 1400})
            print_section(page, base + s.file + ".html", s)
            page.close()
            s.start, start = start, start + len(s.reader.pages)
            print(f"  {s.title}：{len(s.reader.pages)} 页（{time.perf_counter() - t:.0f} 秒）", flush=True)

        pages_done = time.perf_counter()
        # 目录的页数决定正文从第几页开始，正文的页码又写在目录里：排到页数不再变为止
        page = browser.new_page()
        toc_pages = 1
        for _ in range(3):
            toc = print_html(page, toc_html(book_title, sections, toc_pages, base), print_background=True)
            if len(toc.pages) == toc_pages:
                break
            toc_pages = len(toc.pages)

        writer = PdfWriter()
        writer.append(toc, import_outline=False)
        for s in sections:
            writer.append(s.reader, import_outline=False)
        numbers = page_numbers(page, len(writer.pages), book_title)
        browser_version = browser.version
        browser.close()

    printed = time.perf_counter()
    links = link_inside(writer, base, sections, toc_pages)
    for body, number in zip(writer.pages, numbers.pages):
        body.merge_page(number)
        body.compress_content_streams()  # merge_page 写回的内容流是未压缩的
    fix_chinese_text(writer)  # 在叠上页码之后：页脚里的书名也要改
    add_bookmarks(writer, sections, toc_pages)
    writer.page_mode = "/UseOutlines"
    writer.root_object[NameObject("/Lang")] = TextStringObject("zh-CN")
    writer.add_metadata({"/Title": book_title, "/Author": CONFIG.get("author", ""),
                         "/Creator": f"book/make_pdf.py（Chromium {browser_version} + pypdf）"})
    # 各节分别打印，同一个字形、同一张图在每节的 PDF 里各有一份：合并成一份
    writer.compress_identical_objects()

    # 先写到临时文件再改名：中途失败时不留下一份 make 会当作最新的半截 PDF
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf, partial = out_dir / PDF_NAME, out_dir / (PDF_NAME + ".part")
    with open(partial, "wb") as f:
        writer.write(f)
    os.replace(partial, pdf)
    shutil.copyfile(pdf, site / PDF_NAME)
    finished = time.perf_counter()
    print(f"  用时：逐页打印 {pages_done - started:.0f} 秒，目录、接合与页码 {printed - pages_done:.0f} 秒，"
          f"链接、书签与写出 {finished - printed:.0f} 秒", flush=True)

    record = {"pages": len(writer.pages), "bytes": pdf.stat().st_size,
              "seconds": round(finished - started, 1),
              "sections": [{"file": s.file, "title": s.title, "first_page": toc_pages + s.start + 1,
                            "pages": len(s.reader.pages)} for s in sections],
              "toc_pages": toc_pages, "internal_links": links,
              "fonts": font_names(writer.pages), "chromium": browser_version, "inputs": digest}
    (out_dir / "build.json").write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="把构建好的网站（_build/html）打印成 _build/pdf/modern-cnn-zh.pdf。")
    parser.add_argument("--force", action="store_true", help="网站没有变化也重新打印")
    args = parser.parse_args(argv)
    require_site()
    pdf, record_file = OUT_DIR / PDF_NAME, OUT_DIR / "build.json"
    if not args.force and pdf.exists() and record_file.exists():
        record = json.loads(record_file.read_text(encoding="utf-8"))
        if record.get("inputs") == inputs_digest():
            if not (SITE / PDF_NAME).exists():  # 网站重新构建过（内容没变）：补上副本
                shutil.copyfile(pdf, SITE / PDF_NAME)
            print(f"{pdf.relative_to(ROOT)} 已是最新（打印的网页、图片与脚本都没变，{record['pages']} 页）；"
                  "要重新打印：python book/make_pdf.py --force")
            return
    record = build()
    print(f"写出 {pdf.relative_to(ROOT)}（并复制到 _build/html/{PDF_NAME}）："
          f"{record['pages']} 页，{record['bytes'] / 2**20:.1f} MiB，用时 {record['seconds']:.0f} 秒；"
          f"字体：{', '.join(record['fonts'])}")


if __name__ == "__main__":
    main()
