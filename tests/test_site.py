"""网站的浏览器测试：用真正的无头 Chromium（Debian 的 /usr/bin/chromium）逐页检查 _build/html。

对目录（_toc.yml）里的每一页，以及索引页与搜索页：
- 没有控制台错误，也没有请求本机以外的地址（不依赖 CDN）；
- 站内链接指向存在的页面与锚点，图片都加载出来了；
- MathJax 排版了每个公式，可见文本里没有残留的 ``$$``、``\\frac`` 之类的 TeX 源码；
- 中文是用 CJK 字体绘制的（CDP 的 ``CSS.getPlatformFontsForNode``）。
每页的整页截图存到 _build/screenshots/，供人眼检查版式。另外检查中文搜索能找到对应的节，
在浏览器里点“报告本页的问题”（拦下去 GitHub 的请求，不联网），以及不需要浏览器的几件事：页面不从外部
加载资源、MathJax 3 由网站自带、目录列出全部笔记本（来自 cnnlib.SPECS）、Colab 与 Kaggle 按钮、问题按钮、
“报告本页的问题”与“下载 PDF”都来自 _config.yml 中唯一的仓库地址与 PDF 文件名（book/_ext/reader_links.py）。

网站不存在时跳过（先运行 ``make book``）；测试自己不构建网站。浏览器由 playwright 的 Python 接口驱动，
用系统的 Chromium，不运行 ``playwright install``；找不到 Chromium 时跳过。在 CI（``CI=true``）中这些都是失败，
不是跳过（规则在 tests/conftest.py 的 ``skip_or_fail``）。
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import urllib.request
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import parse_qs, unquote, urldefrag, urljoin, urlsplit

import pytest
import yaml

from cnnlib import SPECS
from conftest import skip_or_fail

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
# 笔记本来自 cnnlib 的模型登记表（cnnlib/models/__init__.py），不在这里另抄一份
NOTEBOOKS = [spec.notebook.removesuffix(".ipynb") for spec in SPECS.values()]

# _config.yml：唯一的仓库地址与分支、书在仓库里的目录、全书 PDF 的文件名
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
REPO = CONFIG["repository"]["url"].rstrip("/")
BRANCH = CONFIG["repository"].get("branch", "main")
BOOK_DIR = CONFIG["repository"].get("path_to_book", "").strip("/")
PDF = CONFIG["sphinx"]["config"]["book_pdf"]

# 公式没排版时留在页面上的 TeX 源码，以及没被解析的行内公式 $...$
LEFTOVER_TEX = re.compile(r"\$\$|\\(?:frac|mathbf|mathrm|boldsymbol|sum|sqrt|begin|end|left|right)\b"
                          r"|\\[()\[\]]|\$[^$\s][^$\n]{0,200}?\$")
CJK_CHAR = re.compile(r"[\u3400-\u9fff]")
CJK_FONT = re.compile(r"CJK|Source Han|Noto Sans SC|PingFang|Hiragino|YaHei|Hei|WenQuanYi", re.I)


def _toc_files(node) -> list[str]:
    """按目录顺序列出 _toc.yml 里的全部文件。"""
    if isinstance(node, list):
        return [f for item in node for f in _toc_files(item)]
    if isinstance(node, dict):
        files = [node[k] for k in ("root", "file") if k in node]
        for key in ("parts", "chapters", "sections"):
            files += _toc_files(node.get(key, []))
        return files
    return []


TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
PAGES = [f + ".html" for f in _toc_files(TOC)] + ["genindex.html", "search.html"]


# ---------------------------------------------------------------------------
# 网站与本机服务器
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "index.html").exists():
        skip_or_fail(f"没有构建好的网站（{SITE.relative_to(ROOT)}/index.html）：先运行 make book")
    return SITE


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="session")
def base_url(site: Path):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # 端口 0：随机空闲端口
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        skip_or_fail(f"找不到 Chromium（{CHROMIUM}）：Debian/Ubuntu 上 apt-get install chromium，"
                    "或用环境变量 CHROMIUM 指定可执行文件。")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        self.ids.update(v for k, v in attrs if k in ("id", "name") and v)


@functools.cache
def _fetch(url: str) -> tuple[int, frozenset[str]]:
    """取一个站内地址：返回 HTTP 状态码，以及（HTML 页面的）全部 id。"""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body, status, kind = response.read(), response.status, response.headers.get_content_type()
    except HTTPError as e:
        return e.code, frozenset()
    if kind != "text/html":
        return status, frozenset()
    parser = _Ids()
    parser.feed(body.decode("utf-8", errors="replace"))
    return status, frozenset(parser.ids)


# ---------------------------------------------------------------------------
# 在浏览器里逐页检查
# ---------------------------------------------------------------------------
PAGE_FACTS = """() => {
  const math = [...document.querySelectorAll("span.math, div.math")];
  const unrendered = math.filter(el => !el.querySelector("mjx-container"))
                         .map(el => el.textContent.trim().slice(0, 80));
  // 可见的正文：跳过代码、脚本和已排版的公式
  const skip = "pre, code, script, style, textarea, mjx-container, .highlight";
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const text = [];
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (el && !el.closest(skip) && el.getClientRects().length) text.push(walker.currentNode.textContent);
  }
  const images = [...document.images].map(img => ({src: img.currentSrc || img.src,
                                                   ok: img.complete && img.naturalWidth > 0}));
  const links = [...document.querySelectorAll("a[href]")].map(a => a.href);
  return {math: math.length, unrendered, text: text.join(" "), images, links,
          bodyFont: getComputedStyle(document.body).fontFamily};
}"""

# 给最多 3 个“自身文字含中文”的元素（标题、正文段落）做记号，供 CDP 查询字体
MARK_CJK = """() => {
  const candidates = [...document.querySelectorAll("article h1, article p, article li, article td"),
                      ...document.querySelectorAll("h1, p, li, a, label")];
  let k = 0;
  for (const el of new Set(candidates)) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join("");
    if (/[\\u3400-\\u9fff]/.test(own) && el.getClientRects().length) {
      el.setAttribute("data-cjk-probe", String(k));
      if (++k === 3) break;
    }
  }
  return k;
}"""

WAIT_MATHJAX = """async () => {
  if (!window.MathJax || !MathJax.startup) return false;
  await MathJax.startup.promise;
  return true;
}"""


def _offline_page(browser):
    """新开一页：控制台错误与页面异常记进 errors，本机以外的请求一律拦下、记进 external（网站应自带全部资源）。"""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    external: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def only_local(route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    return context, page, errors, external


@pytest.mark.parametrize("path", PAGES)
def test_page(browser, base_url: str, path: str) -> None:
    context, page, errors, external = _offline_page(browser)
    broken: list[str] = []
    page.on("response", lambda r: broken.append(f"{r.url}（HTTP {r.status}）") if r.status >= 400 else None)
    try:
        page.goto(base_url + path, wait_until="networkidle")
        # 展开所有折叠的参考答案，让其中的公式也接受检查、出现在截图里
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        has_mathjax = page.evaluate(WAIT_MATHJAX)
        page.wait_for_load_state("networkidle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / (path[:-5].replace("/", "-") + ".png")), full_page=True)
        facts = page.evaluate(PAGE_FACTS)
        cjk_fonts = _cjk_fonts(context, page)
    finally:
        context.close()

    assert not external, f"{path} 请求了外部地址（网站应自带全部资源）：{external}"
    assert not broken, f"{path} 有加载失败的资源：{broken}"
    assert not errors, f"{path} 有控制台错误：{errors}"

    # 公式
    if facts["math"]:
        assert has_mathjax, f"{path} 有 {facts['math']} 个公式，但 MathJax 没有加载"
    assert not facts["unrendered"], f"{path} 有没排版的公式：{facts['unrendered'][:5]}"
    leftover = sorted(set(LEFTOVER_TEX.findall(facts["text"])))
    assert not leftover, f"{path} 的可见文本里残留 TeX 源码：{leftover[:10]}"

    # 图片与站内链接
    bad_images = [img["src"] for img in facts["images"] if not img["ok"]]
    assert not bad_images, f"{path} 有没加载出来的图片：{bad_images}"
    # 全书 PDF 由 make pdf 另外生成，它的链接由 test_pdf_link_resolves 检查
    bad_links = [link for link in set(facts["links"]) - {base_url + PDF} if not _link_ok(link, base_url)]
    assert not bad_links, f"{path} 有坏的站内链接：{sorted(bad_links)}"

    # 中文字体
    assert facts["bodyFont"].strip("'\"").startswith("Noto Sans CJK SC"), facts["bodyFont"]
    if CJK_CHAR.search(facts["text"]):
        assert cjk_fonts, f"{path} 有中文，却没找到可检查字体的中文段落"
        for text, fonts in cjk_fonts:
            used = sum(f["glyphCount"] for f in fonts if CJK_FONT.search(f["familyName"]))
            assert used >= len(CJK_CHAR.findall(text)), \
                f"{path} 的中文“{text[:20]}”不是用 CJK 字体绘制的：{fonts}"


@pytest.mark.parametrize("query, expected", [("残差", "7.6 残差网络"), ("稠密块", "7.7 稠密连接网络"),
                                             ("全局平均汇聚", "7.3 网络中的网络")])
def test_chinese_search_finds_the_section(browser, base_url: str, query: str, expected: str) -> None:
    """中文搜索要靠 jieba 分词（requirements.txt）与本书的术语表（book/search_words.txt）。"""
    page = browser.new_page()
    try:
        page.goto(f"{base_url}search.html?q={query}", wait_until="networkidle")
        page.wait_for_selector("#search-results ul.search li", timeout=10_000)
        titles = page.locator("#search-results ul.search li > a").all_text_contents()
    finally:
        page.close()
    assert any(expected in t for t in titles), f"搜索“{query}”没有找到“{expected}”：{titles}"


# 滚到第一个“下面半屏之内没有别的标题”的 h2（主题的 scroll-padding 把它停在页头下方），
# 返回它的文字（去掉 ¶ 链接）与所在节的 id；这样读者所在的小节没有歧义
SCROLL_TO_H2 = """() => {
  const headings = [...document.querySelectorAll("article.bd-article :is(h1, h2, h3)")];
  const top = el => el.getBoundingClientRect().top + scrollY;
  const h = headings.find((el, i) => el.tagName === "H2" &&
                          (i + 1 === headings.length || top(headings[i + 1]) - top(el) > innerHeight / 2));
  if (!h) return null;
  h.scrollIntoView();
  const copy = h.cloneNode(true);
  copy.querySelectorAll(".headerlink").forEach(el => el.remove());
  return {text: copy.textContent.replace(/\\s+/g, " ").trim(), id: h.closest("section[id]").id};
}"""


@pytest.mark.parametrize("path", PAGES)
def test_report_link_opens_a_prefilled_issue(browser, base_url: str, path: str) -> None:
    """在浏览器里点“报告本页的问题”：先在页首点一次，再滚到一个 h2 点一次。

    去 GitHub 的导航被拦下（不联网）并记下地址：它必须是 ``<仓库>/issues/new``，标题与正文里有本页标题，
    滚动之后“小节”是读者所在的那一节（reader-links.js 在点击时改写）。
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened: list[str] = []
    external: list[str] = []

    def intercept(route) -> None:
        url = route.request.url
        if "/_static/mathjax/" in url:
            route.abort()  # 公式由 test_page 检查；这里不排版，标题的位置就不会在滚动之后再变
        elif urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        elif url.startswith(f"{REPO}/issues/new?"):
            opened.append(url)
            route.fulfill(status=200, content_type="text/html", body="<title>GitHub</title>")
        else:
            external.append(url)
            route.abort()

    def follow_report_link(page) -> tuple[str, dict[str, str]]:
        # 在链接所在的位置按下鼠标，像读者那样点；locator.click() 会先把页面滚回页头的原位（页首）
        box = page.locator("a.btn-report-page-issue").bounding_box()
        with context.expect_page() as popup:
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        popup.value.wait_for_load_state()
        popup.value.close()
        assert opened, f"{path}：点“报告本页的问题”没有打开 GitHub"
        parts = urlsplit(opened.pop())
        query = {k: v[0] for k, v in parse_qs(parts.query, strict_parsing=True).items()}
        return f"{parts.scheme}://{parts.netloc}{parts.path}", query

    context.route("**/*", intercept)
    page = context.new_page()
    try:
        page.goto(base_url + path, wait_until="load")
        title = _strip_site_title(page.title())
        where, query = follow_report_link(page)
        section = page.evaluate(SCROLL_TO_H2)
        scrolled = follow_report_link(page) if section else None
    finally:
        context.close()

    assert not external, f"{path} 请求了外部地址：{external}"
    assert where == f"{REPO}/issues/new", where
    assert query["title"] == f"【{title}】", query["title"]
    assert scrolled or not path.startswith("notebooks/"), f"{path} 里没找到可以滚到页头下方的 h2"
    for line in (f"页面：{title}", f"小节：{title}", f"地址：{base_url}{path}\n", "哪里有问题", "期望是什么", "运行环境"):
        assert line in query["body"], f"{path}：issue 正文里没有“{line.strip()}”：\n{query['body']}"
    if scrolled:
        where, query = scrolled
        assert where == f"{REPO}/issues/new", where
        assert title in query["title"] and section["text"] in query["title"], query["title"]
        for line in (f"页面：{title}", f"小节：{section['text']}\n", f"地址：{base_url}{path}#{section['id']}\n"):
            assert line in query["body"], f"{path}：滚到“{section['text']}”后，正文里没有“{line.strip()}”"


def _cjk_fonts(context, page) -> list[tuple[str, list[dict]]]:
    """对做了记号的元素，返回（自身文字, 绘制这些文字所用的字体）。"""
    if not page.evaluate(MARK_CJK):
        return []
    cdp = context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node_ids = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "[data-cjk-probe]"})["nodeIds"]
    texts = page.evaluate("""() => [...document.querySelectorAll("[data-cjk-probe]")].map(el =>
        [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join(""))""")
    return [(text, cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node_id})["fonts"])
            for text, node_id in zip(texts, node_ids)]


def _link_ok(link: str, base_url: str) -> bool:
    """站内链接：目标存在（HTTP 200），带锚点时目标页里有这个 id。站外链接不在这里检查。"""
    if not link.startswith(base_url):
        return True
    url, fragment = urldefrag(link)
    status, ids = _fetch(url)
    return status == 200 and (not fragment or not ids or unquote(fragment) in ids)


# ---------------------------------------------------------------------------
# 不需要浏览器的检查
# ---------------------------------------------------------------------------
class _Assets(HTMLParser):
    """收集页面加载的资源地址（脚本、样式、图片、框架），不含普通链接。"""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href") and a.get("rel") not in ("canonical", "alternate"):
            self.urls.append(a["href"])


def _built_pages(site: Path) -> list[Path]:
    return [p for p in sorted(site.rglob("*.html"))
            if p.relative_to(site).parts[0] not in ("_static", "_sources", "_images")]


def test_pages_load_nothing_from_outside(site: Path) -> None:
    for path in _built_pages(site):
        html = path.read_text(encoding="utf-8")
        parser = _Assets()
        parser.feed(html)
        outside = [u for u in parser.urls if re.match(r"(https?:)?//", u)]
        assert not outside, f"{path.relative_to(site)} 从外部加载资源：{outside}"
        for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "googleapis.com"):
            assert cdn not in html, f"{path.relative_to(site)} 引用了 {cdn}"


def test_mathjax_3_is_served_by_the_site(site: Path) -> None:
    assert (site / "_static" / "mathjax" / "tex-mml-chtml.js").is_file()
    version = json.loads((ROOT / "node_modules" / "mathjax" / "package.json").read_text())["version"]
    assert version.startswith("3."), f"MathJax 应为 3.x，装的是 {version}"
    html = (site / "book" / "overview.html").read_text(encoding="utf-8")
    assert 'src="../_static/mathjax/tex-mml-chtml.js' in html


def test_every_built_page_is_checked(site: Path) -> None:
    built = {p.relative_to(site).as_posix() for p in _built_pages(site)} - {"index.html"}
    assert built <= set(PAGES), f"这些页面不在浏览器测试里：{sorted(built - set(PAGES))}"


def test_toc_lists_every_notebook() -> None:
    listed = {f for f in _toc_files(TOC) if f.startswith("notebooks/")}
    assert listed == {f"notebooks/{name}" for name in NOTEBOOKS}
    on_disk = {f"notebooks/{p.stem}" for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert on_disk <= listed, f"这些笔记本不在 _toc.yml 里：{sorted(on_disk - listed)}"


class _Links(HTMLParser):
    """页面里的全部链接：(class 属性, href, 链接文字)。"""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[list[str]] = []
        self._open: list[str] | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "a":
            a = dict(attrs)
            self._open = [a.get("class") or "", a.get("href") or "", ""]
            self.links.append(self._open)

    def handle_data(self, data) -> None:
        if self._open is not None:
            self._open[2] += data

    def handle_endtag(self, tag) -> None:
        if tag == "a":
            self._open = None


def _links(page: Path, css_class: str) -> list[tuple[str, str]]:
    """页面里带某个 class 的链接：(href, 去掉空白的链接文字)。"""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return [(href, " ".join(text.split()))
            for classes, href, text in parser.links if css_class in classes.split()]


def _strip_site_title(title: str) -> str:
    """浏览器标题“7.6 残差网络（ResNet） — 现代卷积神经网络”中本页的部分。"""
    return re.sub(rf"\s+[—-]\s+{re.escape(CONFIG['title'])}$", "", title).strip()


def _page_title(page: Path) -> str:
    title = re.search(r"<title>(.*?)</title>", page.read_text(encoding="utf-8"), re.S).group(1)
    return _strip_site_title(unescape(title))


def _notebook_in_repository(name: str) -> str:
    """GitHub 上这本笔记本的地址，由 _config.yml 的仓库、分支与书的目录拼成。"""
    path = "/".join(part for part in (BOOK_DIR, "notebooks", f"{name}.ipynb") if part)
    return f"{REPO}/blob/{BRANCH}/{path}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_page_launches_colab_and_kaggle(site: Path, name: str) -> None:
    """笔记本页的火箭菜单里有 Colab 与 Kaggle，都打开仓库里的这本笔记本；仓库按钮指向同一个仓库。"""
    page = site / "notebooks" / f"{name}.html"
    launch = {text: href for href, text in _links(page, "dropdown-item") if text in ("Colab", "Kaggle")}
    blob = _notebook_in_repository(name)
    colab = "https://colab.research.google.com/github/" + blob.removeprefix("https://github.com/")
    assert launch.get("Colab") == colab, f"{name}.html 的 Colab 链接不对：{launch.get('Colab')}"
    assert launch.get("Kaggle") == f"https://kaggle.com/kernels/welcome?src={blob}", \
        f"{name}.html 的 Kaggle 链接不对：{launch.get('Kaggle')}"
    assert parse_qs(urlsplit(launch["Kaggle"]).query) == {"src": [blob]}
    assert _links(page, "btn-source-repository-button")[0][0] == REPO
    # 笔记本第一个代码单元在 Colab 上安装的 cnnlib 必须来自同一个仓库
    nb = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert f"git+{REPO}" in "".join(first["source"]), f"{name}.ipynb 的安装地址与 _config.yml 不一致"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_links_to_issues_and_the_pdf(site: Path, path: str) -> None:
    """每一页：问题按钮（已有的问题）、不靠脚本也能用的“报告本页的问题”、指向网站根目录全书 PDF 的“下载 PDF”。"""
    page = site / path
    title = _page_title(page)

    assert [href for href, _ in _links(page, "btn-source-issues-button")] == [f"{REPO}/issues"]

    report = _links(page, "btn-report-page-issue")
    assert [text for _, text in report] == ["报告本页的问题"], report
    parts = urlsplit(report[0][0])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{REPO}/issues/new"
    query = parse_qs(parts.query, strict_parsing=True)
    assert title in query["title"][0] and f"页面：{title}" in query["body"][0], query

    pdf = _links(page, "btn-download-book-pdf")
    assert [text for _, text in pdf] == ["下载 PDF"], pdf
    assert urljoin(f"http://site/{path}", pdf[0][0]) == f"http://site/{PDF}", pdf


def test_pdf_link_resolves(site: Path, base_url: str) -> None:
    """“下载 PDF”指向的文件存在（make pdf 生成它并复制到 _build/html/）。"""
    if not (site / PDF).is_file():
        skip_or_fail(f"还没有 {SITE.relative_to(ROOT)}/{PDF}：先运行 make pdf")
    status, _ = _fetch(base_url + PDF)
    assert status == 200, f"{PDF}：HTTP {status}"


# ---------------------------------------------------------------------------
# 排错页（book/troubleshooting.md）
# ---------------------------------------------------------------------------
TROUBLESHOOTING = "book/troubleshooting"


def test_troubleshooting_page_is_listed_under_comparison_and_reference() -> None:
    part = next(p for p in TOC["parts"] if p["caption"] == "对比与参考")
    assert TROUBLESHOOTING in [c["file"] for c in part["chapters"]]
    text = (ROOT / f"{TROUBLESHOOTING}.md").read_text(encoding="utf-8")
    assert text.startswith("# 排错\n")


def _messages_cnnlib_prints(tmp_path: Path, monkeypatch) -> dict[str, str]:
    """真正触发 cnnlib 的错误与提示，返回 {排错页引用的开头（… 代表可变部分）: cnnlib 打印的原文}。"""
    import torch
    from torch import nn

    import cnnlib
    from cnnlib import data, history, profiles, speed

    def message(fn, *args, **kwargs) -> str:
        try:
            fn(*args, **kwargs)
        except Exception as e:  # 各种 cnnlib 错误，只要它们的文字
            return str(e)
        raise AssertionError(f"{fn.__name__} 没有报错")

    out = {}
    monkeypatch.setenv("CNNLIB_AMP", "fp8")
    out["环境变量 CNNLIB_AMP=… 不可用"] = message(speed.resolve_speed_options, torch.device("cpu"))
    monkeypatch.setenv("CNNLIB_AMP", "fp32")
    out["amp='fp16' 只用于 CUDA GPU"] = message(speed.resolve_speed_options, torch.device("cpu"), "fp16")
    out["运行配置 '…' 不存在"] = message(profiles.get_profile, "alexnet", None, "gpu")
    monkeypatch.setenv("CNNLIB_CPU_FRACTION", "2")
    out["环境变量 CNNLIB_CPU_FRACTION=… 不可用"] = message(profiles.cpu_fraction)
    monkeypatch.delenv("CNNLIB_DATA", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(data, "DOWNLOAD_DIR", tmp_path / "cache")
    out["找不到可用的 Fashion-MNIST 数据"] = message(data.read_fashion_mnist, download=False)
    monkeypatch.setenv("CNNLIB_DATA", str(tmp_path / "nowhere"))
    out["环境变量 CNNLIB_DATA 指定的数据目录 … 不可用"] = message(data.read_fashion_mnist)
    monkeypatch.delenv("CNNLIB_DATA")

    batches = [(torch.randn(4, 1, 4, 4), torch.zeros(4, dtype=torch.long))]

    def net() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))

    class NaN(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(16, 2)

        def forward(self, X):
            return self.fc(X.flatten(1)) * float("nan")

    class OutOfMemory(NaN):
        def forward(self, X):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory.")

    train = functools.partial(cnnlib.train, train_iter=batches, test_iter=batches, num_epochs=1, lr=0.1,
                              device="cpu", amp=None, progress=False, plot=False)
    out["损失变成了 NaN 或 Inf，训练已停止"] = message(train, NaN())
    out["设备内存不够"] = message(train, OutOfMemory())
    garbage, foreign = tmp_path / "garbage.pt", tmp_path / "foreign.pt"
    garbage.write_bytes(b"not a checkpoint")
    torch.save({"weights": torch.zeros(1)}, foreign)
    out["检查点 … 无法安全读取"] = message(train, net(), checkpoint=garbage)
    out["… 不是 cnnlib 的检查点"] = message(train, net(), checkpoint=foreign)
    out["训练损失都停在 ln 10 ≈ 2.303 附近"] = history.plateau_hint([2.302, 2.303], 10) or ""
    return out


def test_troubleshooting_quotes_what_cnnlib_actually_prints(tmp_path: Path, monkeypatch) -> None:
    """排错页按原文查找：它引用的每条 cnnlib 消息的开头，cnnlib 真的这样打印（… 处可以是任何值）。"""
    page = (ROOT / f"{TROUBLESHOOTING}.md").read_text(encoding="utf-8")
    for quoted, printed in _messages_cnnlib_prints(tmp_path, monkeypatch).items():
        assert quoted in page, f"排错页没有引用 “{quoted}”"
        pattern = ".*?".join(re.escape(part) for part in quoted.split("…"))
        assert re.search(pattern, printed), f"排错页引用 “{quoted}”，cnnlib 打印的却是：{printed[:200]}"


@pytest.mark.parametrize("query", ["CUDA out of memory", "no kernel image"])
def test_search_finds_the_troubleshooting_page(browser, base_url: str, query: str) -> None:
    """像学生那样：在搜索页的搜索框里键入报错的原文、回车，结果里有排错页。"""
    page = browser.new_page()
    try:
        page.goto(f"{base_url}search.html", wait_until="networkidle")
        box = page.locator('input[name="q"]:visible').first
        box.fill(query)
        box.press("Enter")
        page.wait_for_url(re.compile(r"search\.html\?q="), timeout=10_000)
        page.wait_for_selector("#search-results ul.search li", timeout=10_000)
        # 结果是逐条加进列表的：等到排错页出现，或者搜索结束（searchtools.js 这时才写出结果数的那一句）
        page.wait_for_function("""() => [...document.querySelectorAll('#search-results ul.search li > a')]
                                   .some(a => a.href.includes('troubleshooting'))
                                 || (document.querySelector('#search-results > p.search-summary')
                                       ?.innerText || '').trim() !== ''""",
                               timeout=10_000)
        links = page.locator("#search-results ul.search li > a")
        found = [(links.nth(i).text_content(), links.nth(i).get_attribute("href")) for i in range(links.count())]
        typed = parse_qs(urlsplit(page.url).query).get("q", [""])[0]
    finally:
        page.close()
    assert typed == query
    assert any(href and TROUBLESHOOTING in unquote(href) and "排错" in (text or "") for text, href in found), \
        f"搜索“{query}”没有找到排错页：{found}"


# ---------------------------------------------------------------------------
# 每节的学习材料：课程视频、自测题、开放练习（读笔记本；自测题还在浏览器里作答）
# ---------------------------------------------------------------------------
# 课程视频的 bilibili 号取自 d2l-ai/courses-zh-v2 的 _modules/part_1.md（commit 3d1b8b8，与同目录的 part_1.json 一致），
# 那里每个视频都写在它所讲小节的标题旁边。课程没有 DenseNet 的视频：7.7 节链接 7.6 节 ResNet 的视频，并说明这一点。
LECTURES = {"alexnet": "BV1h54y1L7oe", "vgg": "BV1Ao4y117Pd", "nin": "BV1Uv411G71b", "googlenet": "BV1b5411g7Xo",
            "batch-norm": "BV1X44y1r77r", "resnet": "BV1bV41177ap", "densenet": "BV1bV41177ap"}
NO_LECTURE = {"densenet"}
BILIBILI = re.compile(r"https?://[^\s)\"'<>]*bilibili\.com[^\s)\"'<>]*")
LECTURE_LINK = re.compile(r"https://www\.bilibili\.com/video/(BV[0-9A-Za-z]{10})/?")


def _notebook_cells(name: str) -> list[dict]:
    return json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]


def _markdown(name: str) -> str:
    return "\n\n".join("".join(c["source"]) for c in _notebook_cells(name) if c["cell_type"] == "markdown")


def test_lectures_cover_every_section() -> None:
    assert set(LECTURES) == set(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_section_links_its_lecture(name: str) -> None:
    """每节正好一个 bilibili 链接，形如 ``https://www.bilibili.com/video/BV…``，在第一个二级标题之前，号与课程仓库一致。"""
    text = _markdown(name)
    links = BILIBILI.findall(text)
    assert len(links) == 1, f"{name}.ipynb 应当正好有一个课程视频的链接，找到 {len(links)} 个：{links}"
    match = LECTURE_LINK.fullmatch(links[0])
    assert match, f"{name}.ipynb 的视频链接 {links[0]} 不是 https://www.bilibili.com/video/BV… 的形式"
    assert match[1] == LECTURES[name], f"{name}.ipynb 链接的是 {match[1]}，课程仓库里这一节是 {LECTURES[name]}"
    first_h2 = re.search(r"^## ", text, re.M)
    assert first_h2 and text.find(links[0]) < first_h2.start(), f"{name}.ipynb 的视频链接应在页首（第一个二级标题之前）"
    if name in NO_LECTURE:
        paragraph = next(p for p in text.split("\n\n") if links[0] in p)
        assert "没有" in paragraph, f"{name}.ipynb 链接的是别一节的视频，应当说明本节没有视频：{paragraph}"


def _quiz_cells(name: str) -> list[dict]:
    return [c for c in _notebook_cells(name) if c["cell_type"] == "code" and "cnnlib.quiz(" in "".join(c["source"])]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_section_has_a_quiz(name: str) -> None:
    """一个调用 ``cnnlib.quiz`` 的单元，存着 5–8 道题的输出（HTML 加脚本）；代码里写着答案，所以折叠（hide-input）。"""
    cells = _quiz_cells(name)
    assert len(cells) == 1, f"{name}.ipynb 应当正好有一个自测题单元（调用 cnnlib.quiz），找到 {len(cells)} 个"
    cell = cells[0]
    assert "hide-input" in cell.get("metadata", {}).get("tags", []), f"{name}.ipynb 的自测题单元应带 hide-input 标签"
    html = [o["data"]["text/html"] for o in cell.get("outputs", []) if "text/html" in o.get("data", {})]
    scripts = [o for o in cell.get("outputs", []) if "application/javascript" in o.get("data", {})]
    assert len(html) == 1 and len(scripts) == 1, f"{name}.ipynb 的自测题单元没有存下输出：先执行笔记本"
    count = "".join(html[0]).count('class="cnnlib-quiz-q"')
    assert 5 <= count <= 8, f"{name}.ipynb 的自测题有 {count} 道，应为 5–8 道"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_section_has_open_exercises(name: str) -> None:
    """“开放练习”一节：2–3 道题，每道有提示，并把好的答案折叠在 <details> 里。"""
    text = _markdown(name)
    start = text.find("\n## 开放练习")
    assert start >= 0, f"{name}.ipynb 没有“## 开放练习”一节"
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else None]
    items = re.findall(r"^\d+\. ", section, re.M)
    assert 2 <= len(items) <= 3, f"{name}.ipynb 的开放练习有 {len(items)} 道，应为 2–3 道"
    assert section.count("提示：") >= len(items), f"{name}.ipynb 的开放练习不是每道都有提示"
    assert section.count("<summary>好的答案是什么样的</summary>") == len(items), \
        f"{name}.ipynb 的开放练习不是每道都有折叠的“好的答案是什么样的”"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_quiz_answers_back_with_no_network(browser, base_url: str, name: str) -> None:
    """在网站的这一页上作答：第一题选错、第二题选对，看反馈；本机以外的请求一律拦下。

    答对时的反馈必须是“答对了。”加上静态版（打印版）里同一道题的解释，点中的选项就是静态版写的答案。
    """
    context, page, errors, external = _offline_page(browser)

    def feedback(question) -> tuple[str, list[str]]:
        box = question.locator(".Feedback")
        return " ".join(box.inner_text().split()), (box.get_attribute("class") or "").split()

    try:
        page.goto(f"{base_url}notebooks/{name}.html", wait_until="networkidle")
        quiz = page.locator(".cnnlib-quiz")
        assert quiz.count() == 1, f"{name}.html 应当正好有一组自测题，找到 {quiz.count()} 组"
        page.wait_for_selector(".cnnlib-quiz .Quiz", timeout=10_000)
        questions, key = quiz.locator(".Quiz"), quiz.locator(".cnnlib-quiz-item")
        counts = questions.count(), key.count()
        first, second = questions.nth(0), questions.nth(1)
        first.locator('label[data-correct="false"]').first.click()
        wrong = feedback(first)
        labels = [" ".join(t.split()) for t in second.locator("label").all_inner_texts()]
        right = second.locator('label[data-correct="true"]')
        chosen = " ".join(right.inner_text().split())
        right.click()
        answered = feedback(second)
        answer_line = " ".join((key.nth(1).locator(".cnnlib-quiz-a").text_content() or "").split())
        key_hidden = not quiz.locator(".cnnlib-quiz-key").is_visible()
    finally:
        context.close()

    assert not external, f"{name}.html 的自测题请求了外部地址：{external}"
    assert not errors, f"{name}.html 有控制台错误：{errors}"
    assert counts[0] == counts[1] and 5 <= counts[0] <= 8, f"{name}.html：交互版 {counts[0]} 题，静态版 {counts[1]} 题"
    assert wrong[0].startswith("不对") and wrong[0].endswith("再想一想，试试别的选项。"), wrong
    assert "incorrect" in wrong[1], wrong
    letter = "ABCDEF"[labels.index(chosen)]
    prefix = f"答案：{letter}（{chosen}）。"
    assert answer_line.startswith(prefix), f"{name}.html：点中的是 {prefix}，静态版写的是 {answer_line}"
    assert answered[0] == "答对了。" + answer_line.removeprefix(prefix), answered
    assert "correct" in answered[1], answered
    assert key_hidden, f"{name}.html：交互版已经渲染，静态的题目与答案却还显示在屏幕上"
