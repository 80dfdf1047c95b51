"""PDF 版（``make pdf`` 由 book/make_pdf.py 写出的 _build/pdf/modern-cnn-zh.pdf）的检查。

- 页数就是打印时各节页数之和（_build/pdf/build.json 记下每一节网页打印成了几页），每本笔记本的文字密度与其他
  笔记本相当（没有哪一节的版式坏到大半页空着），每页页脚有书名和它的页码；书签按 _toc.yml 的顺序列出每一页；
- 抽出的文字里有七节的中文标题（节的清单来自 ``cnnlib.SPECS``，标题来自各笔记本的一级标题），
  而且就在书签指向的那一页；
- 正文（非等宽字体的文字）里没有残留的 TeX 源码（``\\frac``、``$$``、``\\mathbf`` 之类）；
- 网页上的每张位图都嵌进了 PDF，每张 SVG 图里的中文标注都能在 PDF 里找到；
- 中文是用 CJK 字体画的；
- hide-input 单元只印输出，不印代码；
- 网站上有一份同样的副本（“下载 PDF”链接指向它）。
构建的页数、大小与用时记在 _build/pdf/build.json（book/make_pdf.py 写出），这里打印出来（用 ``pytest -s`` 查看）。

PDF 不存在时跳过：先运行 ``make pdf``（``make test`` 会先构建它）。在 CI（``CI=true``）中缺 PDF 是错误
（规则在 tests/conftest.py 的 ``skip_or_fail``）。
文字用 pypdf 抽取：Chromium 把 Noto Sans CJK 嵌成许多个 Type 3 字体，全书抽一遍要几十秒，所以只抽一次。
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from pypdf import PdfReader

from cnnlib import SPECS
from conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_pdf", ROOT / "book" / "make_pdf.py")
make_pdf = importlib.util.module_from_spec(_spec)
sys.modules["make_pdf"] = make_pdf  # dataclasses 要在 sys.modules 里找到定义它们的模块
_spec.loader.exec_module(make_pdf)

PDF = make_pdf.OUT_DIR / make_pdf.PDF_NAME
# 一本笔记本的文字密度（每页字数）低于各笔记本中位数的这个比例，说明那一节的版式坏了：图片没有缩放、
# 大块内容被挤到下一页而留下大半页空白之类。比例是相对这本书自己的，书变厚、加了新页都不用改。
# 只比笔记本：它们都是正文、代码、输出与图混排，彼此可比；目录、术语表、对比页这类页面的密度天然不同
SPARSE_SECTION = 1 / 3
CJK_CHAR = re.compile(r"[\u3400-\u9fff]")
CJK_FONT = re.compile(r"CJK|SourceHan|NotoSansSC|PingFang|Hiragino|YaHei|WenQuanYi", re.I)
MONOSPACE_FONT = re.compile(r"Mono|Courier|Menlo|Consolas", re.I)


def _squeeze(text: str) -> str:
    """去掉全部空白：抽出的文字在换行、字距处会多出或少掉空格。"""
    return re.sub(r"\s+", "", text)


@dataclass
class Book:
    reader: PdfReader
    pages: list[str]           # 每页抽出的全部文字
    prose: list[str]           # 每页非等宽字体的文字（去掉代码与输出）
    cjk_fonts: Counter         # 字体名 → 用它画的汉字个数
    starts: list[int]          # _toc.yml 里每一页网页在 PDF 里从第几页开始（从 0 起，取自书签）

    def section(self, index: int) -> str:
        end = self.starts[index + 1] if index + 1 < len(self.starts) else len(self.pages)
        return "\n".join(self.pages[self.starts[index]:end])


def _section_starts(reader: PdfReader) -> list[int]:
    """每一页网页在 PDF 里的首页（从 0 起），取自书签：第一层是“目录”、前言与各部分，部分下面是它的各节。"""
    parts = {part for _, part in make_pdf.toc_entries() if part}
    items, starts = reader.outline, []
    for i, item in enumerate(items):
        if isinstance(item, list) or item.title == "目录":
            continue
        if item.title in parts:
            starts += [reader.get_destination_page_number(child) for child in items[i + 1]
                       if not isinstance(child, list)]
        else:
            starts.append(reader.get_destination_page_number(item))
    return starts


@pytest.fixture(scope="module")
def book() -> Book:
    if not PDF.exists():
        skip_or_fail(f"还没有 PDF（{PDF.relative_to(ROOT)}）：先运行 make pdf（make test 会先构建它）")
    started = time.perf_counter()
    reader = PdfReader(PDF)
    pages, prose, cjk_fonts = [], [], Counter()
    for page in reader.pages:
        chunks: list[str] = []

        def visit(text, cm, tm, font, size) -> None:
            name = make_pdf.font_name(font) if font else ""
            cjk_fonts[name] += len(CJK_CHAR.findall(text))
            if not MONOSPACE_FONT.search(name):
                chunks.append(text)

        pages.append(page.extract_text(visitor_text=visit))
        prose.append("".join(chunks))
    print(f"\n抽取 {len(pages)} 页的文字用了 {time.perf_counter() - started:.0f} 秒")
    return Book(reader, pages, prose, cjk_fonts, _section_starts(reader))


def _text_length(page_text: str) -> int:
    """一页的字数：去掉空白与页脚（书名、页码）。"""
    return len(_squeeze(page_text.replace(make_pdf.CONFIG["title"], "")))


def test_page_count_is_what_was_printed(book: Book) -> None:
    """页数 = 目录页 + 各节网页打印出的页数（build.json），各节按 _toc.yml 的顺序、从书签指向的页开始；
    每本笔记本（去掉没写满的最后一页）的每页字数不低于各笔记本中位数的 SPARSE_SECTION。"""
    record = json.loads((make_pdf.OUT_DIR / "build.json").read_text(encoding="utf-8"))
    count, sections = len(book.pages), record["sections"]
    print(f"\nPDF：{count} 页，{PDF.stat().st_size / 2**20:.1f} MiB；上次构建用时 {record['seconds']:.0f} 秒"
          f"（Chromium {record['chromium']}）")
    assert record["pages"] == count, "build.json 与 PDF 不是同一次构建写出的：重新运行 make pdf"
    assert [s["file"] for s in sections] == [file for file, _ in make_pdf.toc_entries()], \
        "build.json 里打印的网页与 _toc.yml 不同：重新运行 make pdf"
    assert all(s["pages"] >= 1 for s in sections), [s["title"] for s in sections if s["pages"] < 1]
    assert count == record["toc_pages"] + sum(s["pages"] for s in sections), \
        f"{count} 页，而目录 {record['toc_pages']} 页加各节 {sum(s['pages'] for s in sections)} 页对不上"
    assert [s["first_page"] - 1 for s in sections] == book.starts, "各节的起始页与书签不一致"
    notebooks = {f"notebooks/{spec.notebook}" for spec in SPECS.values()}
    density = {}
    for s in sections:
        full_pages = book.pages[s["first_page"] - 1:s["first_page"] - 1 + s["pages"]][:-1]
        per_page = sum(map(_text_length, full_pages)) / len(full_pages) if full_pages else float("nan")
        if s["file"] in notebooks:
            density[s["title"]] = per_page
        print(f"  第 {s['first_page']:>3} 页起 {s['pages']:>3} 页  {per_page:>6.0f} 字/页  {s['title']}")
    assert len(density) == len(notebooks), "有笔记本只打印出一页，或不在 build.json 里"
    median = sorted(density.values())[len(density) // 2]
    sparse = {title: round(d) for title, d in density.items() if d < SPARSE_SECTION * median}
    assert not sparse, (f"这些笔记本每页的字数不到各笔记本中位数 {median:.0f} 的 {SPARSE_SECTION:.2f}，"
                        f"版式可能坏了：{sparse}")
    not_a4 = [i + 1 for i, page in enumerate(book.reader.pages)  # A4 = 595.3 × 841.9 pt
              if abs(float(page.mediabox.width) - 595.3) > 2 or abs(float(page.mediabox.height) - 841.9) > 2]
    assert not not_a4, f"这些页不是 A4：{not_a4[:10]}"


def test_every_page_has_a_numbered_footer(book: Book) -> None:
    title = make_pdf.CONFIG["title"]
    missing = [i + 1 for i, text in enumerate(book.pages)
               if title not in text or not re.search(rf"(?<!\d){i + 1}(?!\d)", text)]
    assert not missing, f"这些页的页脚没有书名或页码：{missing[:20]}"


def test_bookmarks_follow_the_toc(book: Book) -> None:
    entries = make_pdf.toc_entries()
    assert len(book.starts) == len(entries), f"书签里有 {len(book.starts)} 节，_toc.yml 有 {len(entries)} 页"
    assert book.starts == sorted(book.starts) and len(set(book.starts)) == len(book.starts)


@pytest.mark.parametrize("spec", SPECS.values(), ids=lambda s: s.section)
def test_section_title_is_on_its_bookmarked_page(book: Book, spec) -> None:
    notebook = json.loads((ROOT / "notebooks" / f"{spec.notebook}.ipynb").read_text(encoding="utf-8"))
    heading = next(line[2:].strip() for cell in notebook["cells"] if cell["cell_type"] == "markdown"
                   for line in "".join(cell["source"]).splitlines() if line.startswith("# "))
    assert heading.startswith(spec.section) and CJK_CHAR.search(heading), heading
    files = [file for file, _ in make_pdf.toc_entries()]
    index = files.index(f"notebooks/{spec.notebook}")
    first_page = book.pages[book.starts[index]]
    assert _squeeze(heading) in _squeeze(first_page), \
        f"{spec.section} 的标题“{heading}”不在书签指向的第 {book.starts[index] + 1} 页上"
    assert spec.title in book.section(index), f"{spec.section} 一节里没有出现模型名 {spec.title}"


def test_no_raw_tex_in_the_text(book: Book) -> None:
    found = {i + 1: sorted(set(make_pdf.LEFTOVER_TEX.findall(text))) for i, text in enumerate(book.prose)}
    found = {page: tex for page, tex in found.items() if tex}
    assert not found, f"这些页的正文里有没排版的 TeX 源码：{dict(list(found.items())[:10])}"
    # 自检：抽出的正文确实有内容，公式也确实印出来了（MathJax 的字体）
    assert sum(len(t) for t in book.prose) > 50_000
    assert any(name.startswith("MathJax_") for name in make_pdf.font_names(book.reader.pages))


def test_chinese_is_drawn_with_a_cjk_font(book: Book) -> None:
    fonts = make_pdf.font_names(book.reader.pages)
    print(f"\n嵌入的字体：{', '.join(fonts)}")
    print("画汉字的字体：" + "，".join(f"{name or '（无名）'} {n} 字"
                                 for name, n in book.cjk_fonts.most_common() if n))
    assert any(CJK_FONT.search(name) for name in fonts), fonts
    not_cjk = {name: n for name, n in book.cjk_fonts.items() if n and not CJK_FONT.search(name)}
    assert not not_cjk, f"这些汉字不是用 CJK 字体画的：{not_cjk}"
    # 字形与部首共用时，PDF 记下的字符应是汉字（“网”）而不是部首（“⽹”），否则阅读器里搜不到、复制出来也不对
    radicals = sorted({ch for text in book.pages for ch in text if "\u2e80" <= ch <= "\u2fdf"})
    assert not radicals, f"抽出的文字里有部首字符：{radicals}"


def _article_images(file: str) -> list[str]:
    """网页正文（<article>）里每张图的地址。"""
    html = (make_pdf.SITE / f"{file}.html").read_text(encoding="utf-8")
    article = html[html.find("<article"):html.rfind("</article>")]
    return re.findall(r'<img[^>]*\ssrc="([^"]+)"', article)


def _svg_text(src: str, file: str) -> str | None:
    """SVG 图（文件或 data: 地址）的内容；不是 SVG 时返回 None。"""
    if src.startswith("data:image/svg+xml;base64,"):
        return base64.b64decode(src.split(",", 1)[1]).decode("utf-8")
    if src.startswith("data:image/svg+xml"):
        return unquote(src.split(",", 1)[1])
    if src.split("?")[0].endswith(".svg"):
        return (make_pdf.SITE / Path(file).parent / unquote(src.split("?")[0])).read_text(encoding="utf-8")
    return None


def _label_pattern(label: str) -> re.Pattern:
    """SVG 标注在抽出的文字里的样子。Chromium 给 SVG 文字里的个别数字字形不写对应的字符（ToUnicode 里是 U+0000），
    抽出来是 \\x00：这样的位置只接受 \\x00 或原来的字符，其余字符必须逐字相同、顺序不变。"""
    return re.compile("".join(f"(?:{re.escape(ch)}|\x00)" if ch.isdigit() else re.escape(ch) for ch in _squeeze(label)))


def test_figures_are_in_the_pdf(book: Book) -> None:
    images = {ref.idnum for page in book.reader.pages for ref in _image_refs(page)}
    raster, checked = set(), 0
    for index, (file, _) in enumerate(make_pdf.toc_entries()):
        text = _squeeze(book.section(index))
        for src in _article_images(file):
            svg = _svg_text(src, file)
            if svg is None:
                raster.add(src)
                continue
            # 矢量图画成路径和文字，没有图片对象可数：检查图里的中文标注印出来了
            labels = [t for t in re.findall(r"<text[^>]*>([^<]+)</text>", svg) if CJK_CHAR.search(t)]
            missing = [t for t in labels if not _label_pattern(unescape(t)).search(text)]
            # 每一条都要在（matplotlib 画的图把文字画成路径，没有 <text>，这里查不了）
            assert not missing, f"{file} 的 SVG 图里这些中文标注不在 PDF 的这一节里：{missing}"
            checked += len(labels)
    print(f"\n位图：网页上 {len(raster)} 张，PDF 里 {len(images)} 个图片对象；"
          f"SVG 图的 {checked} 条中文标注都在 PDF 里")
    assert len(images) >= len(raster), "有网页上的位图没有嵌进 PDF"
    for spec in SPECS.values():
        index = [f for f, _ in make_pdf.toc_entries()].index(f"notebooks/{spec.notebook}")
        end = book.starts[index + 1] if index + 1 < len(book.starts) else len(book.pages)
        assert any(_image_refs(book.reader.pages[i]) for i in range(book.starts[index], end)), \
            f"{spec.section} 一节里没有位图（训练曲线）"


def _image_refs(page) -> list:
    """一页上（包括其中的表单 XObject 里）的位图对象。"""
    found, stack = [], [page.get("/Resources")]
    while stack:
        resources = stack.pop()
        xobjects = resources.get_object().get("/XObject", {}) if resources else {}
        for ref in xobjects.values():
            obj = ref.get_object()
            if obj.get("/Subtype") == "/Image":
                found.append(ref)
            elif obj.get("/Subtype") == "/Form":
                stack.append(obj.get("/Resources"))
    return found


def _is_hidden(cell: dict) -> bool:
    return "hide-input" in cell.get("metadata", {}).get("tags", [])


def _output_text(output: dict) -> str:
    if output["output_type"] == "stream":
        return "".join(output["text"])
    return "".join("".join(v) if isinstance(v, list) else str(v)
                   for k, v in output.get("data", {}).items() if k.startswith("text/"))


def test_hidden_input_cells_print_outputs_but_not_code(book: Book) -> None:
    """hide-input 单元的代码行不在 PDF 里（只查那些在书中别处——其他单元的代码与输出、book/ 下的页面——
    都没有出现的行），它们的文字输出在。"""
    text = _squeeze("\n".join(book.pages))
    notebooks = {spec.notebook: json.loads((ROOT / "notebooks" / f"{spec.notebook}.ipynb")
                                           .read_text(encoding="utf-8"))["cells"] for spec in SPECS.values()}
    elsewhere = _squeeze("\n".join(["".join(c["source"]) for cells in notebooks.values() for c in cells
                                    if not _is_hidden(c)]
                                   + [_output_text(o) for cells in notebooks.values() for c in cells
                                      for o in c.get("outputs", [])]
                                   + [p.read_text(encoding="utf-8") for p in (ROOT / "book").glob("*.md")]))
    hidden_lines = printed_outputs = 0
    for name, cells in notebooks.items():
        for cell in filter(_is_hidden, cells):
            for line in map(_squeeze, "".join(cell["source"]).splitlines()):
                if len(line) >= 12 and line not in elsewhere:
                    assert line not in text, f"{name} 的隐藏代码印进了 PDF：{line}"
                    hidden_lines += 1
            for output in cell.get("outputs", []):
                if output["output_type"] == "stream":
                    first = next(_squeeze(line) for line in output["text"] if line.strip())
                    assert first[:40] in text, f"{name} 的隐藏单元的输出没有印出来：{first[:40]}"
                    printed_outputs += 1
    print(f"\n检查了 {hidden_lines} 行隐藏的代码（都不在 PDF 里）与 {printed_outputs} 段它们的输出（都在）")
    assert hidden_lines and printed_outputs


def test_the_site_serves_the_same_pdf() -> None:
    if not PDF.exists():
        skip_or_fail(f"还没有 PDF（{PDF.relative_to(ROOT)}）：先运行 make pdf")
    copy = make_pdf.SITE / make_pdf.PDF_NAME
    assert copy.is_file(), f"{copy} 不存在：make pdf 会把 PDF 复制到网站里，供“下载 PDF”链接使用"
    assert copy.read_bytes() == PDF.read_bytes(), f"{copy} 与 {PDF} 不同：重新运行 make pdf"


class _QuizKey(HTMLParser):
    """自测题输出里静态的题目与答案：每道题的题干（class cnnlib-quiz-q）与答案行（class cnnlib-quiz-a）的文字。"""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[list[str]] = []
        self._field: int | None = None

    def handle_starttag(self, tag, attrs) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if "cnnlib-quiz-q" in classes:
            self.items.append(["", ""])
            self._field = 0
        elif "cnnlib-quiz-a" in classes:
            self._field = 1

    def handle_endtag(self, tag) -> None:
        if tag == "p":
            self._field = None

    def handle_data(self, data) -> None:
        if self._field is not None:
            self.items[-1][self._field] += data


def _quiz_key(notebook: str) -> list[list[str]]:
    """笔记本里存下的自测题输出（cnnlib.quiz 写出的 text/html）中的 [题干, 答案行]。"""
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    html = ["".join(o["data"]["text/html"]) for c in cells if c["cell_type"] == "code"
            for o in c.get("outputs", []) if 'class="cnnlib-quiz"' in "".join(o.get("data", {}).get("text/html", ""))]
    assert len(html) == 1, f"{notebook}.ipynb 应当正好存有一组自测题的输出，找到 {len(html)} 组"
    parser = _QuizKey()
    parser.feed(html[0])
    return parser.items


def _plain(text: str) -> str:
    """去掉空白，再统一全角与半角：抽出的文字与网页上的原文逐字比较。"""
    return unicodedata.normalize("NFKC", _squeeze(text))


@pytest.mark.parametrize("spec", SPECS.values(), ids=lambda s: s.section)
def test_quiz_questions_and_answers_are_printed_in_their_section(book: Book, spec) -> None:
    """网页上可以点选的自测题，在 PDF 里印成题目加答案与解释（cnnlib/quiz.py 的 @media print），就在本节之内。"""
    items = _quiz_key(spec.notebook)
    assert 5 <= len(items) <= 8, f"{spec.notebook}.ipynb 的自测题有 {len(items)} 道"
    index = [file for file, _ in make_pdf.toc_entries()].index(f"notebooks/{spec.notebook}")
    text = _plain(book.section(index))
    missing = [part for question, answer in items for part in (question, answer) if _plain(part) not in text]
    assert not missing, f"{spec.section} 的 PDF 里没有这些自测题的题干或答案：{missing[:3]}"
    assert all(answer.startswith("答案：") for _, answer in items), items
