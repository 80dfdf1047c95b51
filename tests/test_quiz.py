"""cnnlib.quiz 的测试：交给 jupyterquiz 的题目数据、静态的题目与答案、坏输入的中文错误，以及在真正的浏览器里
作答、离线、打印时的行为。

期望值都来自这里手写的题目（选项、正确答案、解释、提示），不来自被测的代码。浏览器里的检查用 Debian 的 Chromium
（与 tests/test_site.py 相同，由 playwright 的 Python 接口驱动）：找不到 Chromium 时跳过，``CI=true`` 时缺它是错误
（tests/conftest.py 的 ``skip_or_fail``）。
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import re
import threading
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import cnnlib
from cnnlib.quiz import Question, render_quiz
from conftest import skip_or_fail

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CJK = re.compile(r"[\u3400-\u9fff]")

SHAPE = Question("AlexNet 第一个卷积层的输出高宽是多少？", [55, 54, 56], 54,
                 "按公式 ⌊(224 − 11 + 2)/4⌋ + 1 = 54。", why={55: "这是论文 227×227 输入时的大小。"})
COUNT = Question("`nn.Linear(6400, 4096)` 有多少个参数？", [26_214_400, 26_218_496], 26_218_496,
                 "(6400 + 1) × 4096：每个输出还有一个偏置。")
ESCAPE = Question("x < y & z 时选哪个？", ["<b>", "&"], "&", "选 & 。")


def _questions_in(javascript: str) -> tuple[str, list[dict]]:
    """脚本里 jupyterquiz 的题目变量：(容器 id, 题目列表)。"""
    match = re.search(r"var questions(\w+)=(\[.*?\]);\n", javascript, re.S)
    assert match, "脚本里没有 jupyterquiz 的题目变量"
    return match[1], json.loads(match[2])


class _Key(HTMLParser):
    """静态版里每道题的题干、选项与答案行（按 class 收集文字）。"""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict] = []
        self._field: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if "cnnlib-quiz-item" in classes:
            self.items.append({"q": "", "options": [], "a": ""})
        elif "cnnlib-quiz-q" in classes:
            self._field = "q"
        elif "cnnlib-quiz-a" in classes:
            self._field = "a"
        elif tag == "li" and self.items and self._field is None:
            self.items[-1]["options"].append("")
            self._field = "option"

    def handle_endtag(self, tag) -> None:
        if tag in ("p", "li"):
            self._field = None

    def handle_data(self, data) -> None:
        if self._field == "option":
            self.items[-1]["options"][-1] += data
        elif self._field:
            self.items[-1][self._field] += data


def _key(html: str) -> list[dict]:
    parser = _Key()
    parser.feed(html)
    return parser.items


# ---------------------------------------------------------------------------
# 输出的内容
# ---------------------------------------------------------------------------
def test_the_script_carries_each_question_with_exactly_its_correct_answer() -> None:
    rendered = render_quiz([SHAPE, COUNT])
    div_id, data = _questions_in(rendered.javascript)
    assert f'id="{div_id}"' in rendered.html, "脚本里的题目与 HTML 里的容器不是同一个 id"
    assert [q["question"] for q in data] == ["AlexNet 第一个卷积层的输出高宽是多少？",
                                             "<code>nn.Linear(6400, 4096)</code> 有多少个参数？"]
    first, second = data
    assert [a["answer"] for a in first["answers"]] == ["55", "54", "56"]
    assert [a["answer"] for a in second["answers"]] == ["26,214,400", "26,218,496"]  # 整数按千位分隔
    assert [a["correct"] for a in first["answers"]] == [False, True, False]
    assert [a["correct"] for a in second["answers"]] == [False, True]
    # 答对时给出解释；答错时提示再试，给了 why 的选项还带上那句提示
    assert first["answers"][1]["feedback"] == "答对了。按公式 ⌊(224 − 11 + 2)/4⌋ + 1 = 54。"
    assert first["answers"][0]["feedback"] == "不对。这是论文 227×227 输入时的大小。再想一想，试试别的选项。"
    assert first["answers"][2]["feedback"] == "不对，再想一想，试试别的选项。"
    assert all(q["type"] == "multiple_choice" for q in data)


def test_text_is_escaped_because_the_script_writes_it_with_innerHTML() -> None:
    rendered = render_quiz([ESCAPE])
    _, data = _questions_in(rendered.javascript)
    assert data[0]["question"] == "x &lt; y &amp; z 时选哪个？"
    assert [a["answer"] for a in data[0]["answers"]] == ["&lt;b&gt;", "&amp;"]
    assert "<b>" not in rendered.html.split('class="cnnlib-quiz-key"')[1]
    assert _key(rendered.html)[0]["options"] == ["<b>", "&"]  # 解析回来的文字与原文相同


def test_the_static_key_lists_every_question_with_its_answer() -> None:
    items = _key(render_quiz([SHAPE, COUNT]).html)
    assert items == [
        {"q": "AlexNet 第一个卷积层的输出高宽是多少？", "options": ["55", "54", "56"],
         "a": "答案：B（54）。按公式 ⌊(224 − 11 + 2)/4⌋ + 1 = 54。"},
        {"q": "nn.Linear(6400, 4096) 有多少个参数？", "options": ["26,214,400", "26,218,496"],
         "a": "答案：B（26,218,496）。(6400 + 1) × 4096：每个输出还有一个偏置。"},
    ]
    html = render_quiz([SHAPE]).html
    # 答案折叠着：没有运行脚本的读者先看到题目，点开才看到答案
    assert re.search(r"<details><summary>答案</summary><p class=\"cnnlib-quiz-a\">答案：B", html)


def test_same_questions_give_the_same_output() -> None:
    """id 由题目决定：重新执行笔记本，存下来的输出不变；不同的题目有不同的 id。"""
    assert render_quiz([SHAPE, COUNT]) == render_quiz([SHAPE, COUNT])
    assert _questions_in(render_quiz([SHAPE]).javascript)[0] != _questions_in(render_quiz([COUNT]).javascript)[0]


def test_nothing_is_loaded_from_the_network() -> None:
    rendered = render_quiz([SHAPE, COUNT])
    for part in (rendered.html, rendered.javascript):
        assert not re.search(r"https?://|cdn\.|jsdelivr", part), re.findall(r"\S*(?:https?://|cdn\.)\S*", part)


def test_outside_jupyter_the_questions_and_answers_are_printed(capsys) -> None:
    cnnlib.quiz([SHAPE])
    assert capsys.readouterr().out.splitlines() == [
        "1. AlexNet 第一个卷积层的输出高宽是多少？", "   A. 55", "   B. 54", "   C. 56",
        "   答案：B（54）。按公式 ⌊(224 − 11 + 2)/4⌋ + 1 = 54。"]


# ---------------------------------------------------------------------------
# 坏输入：中文错误，指出坏的值
# ---------------------------------------------------------------------------
Q = "一个 2×2 卷积核有几个权重？"


@pytest.mark.parametrize("args, why, names", [
    ((Q, [1, 2], 3, "2×2 = 4。"), {}, "3"),                         # 正确选项不在选项里
    ((Q, [1, 1, 4], 4, "2×2 = 4。"), {}, "['1']"),                  # 选项重复
    ((Q, [4], 4, "2×2 = 4。"), {}, "1 个选项"),
    ((Q, list(range(7)), 4, "2×2 = 4。"), {}, "7 个选项"),
    (("$2\\times2$ 的卷积核有几个权重？", [1, 4], 4, "2×2 = 4。"), {}, "$2\\times2$"),  # 不排版公式
    ((Q, [1, 4], 4, "  "), {}, "explanation"),
    ((Q, [1, 4], 4, "2×2 = 4。"), {4: "……"}, "4"),                 # 正确选项不能有“答错时”的提示
    ((Q, [1, 4], 4, "2×2 = 4。"), {9: "……"}, "9"),                 # 不是选项
    ((Q, [1, 4], 4, "2×2 = 4。"), {1: ""}, "''"),                  # 空的提示
])
def test_bad_questions_get_a_chinese_error_naming_the_value(args, why, names) -> None:
    with pytest.raises(ValueError) as error:
        Question(*args, why=why)
    message = str(error.value)
    assert CJK.search(message) and names in message, message


def test_render_quiz_refuses_an_empty_list_and_plain_dicts() -> None:
    with pytest.raises(ValueError, match="没有题目"):
        render_quiz([])
    with pytest.raises(ValueError, match="不是 cnnlib.Question") as error:
        render_quiz([{"question": "?", "answers": ["a", "b"]}])
    assert "'question'" in str(error.value)


# ---------------------------------------------------------------------------
# 在浏览器里：作答、离线、打印
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chromium():
    if not CHROMIUM.exists():
        skip_or_fail(f"找不到 Chromium（{CHROMIUM}）：apt-get install chromium，或用环境变量 CHROMIUM 指定可执行文件")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def quiz_page(tmp_path_factory) -> str:
    """一页只有两道题的网页（与 myst-nb 一样，把脚本放进 <script type="application/javascript">），由本机服务器提供。"""
    rendered = render_quiz([SHAPE, COUNT])
    root = tmp_path_factory.mktemp("quiz")
    (root / "index.html").write_text(
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"></head><body>{rendered.html}'
        f'<script type="application/javascript">{rendered.javascript}</script></body></html>', encoding="utf-8")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()


def _squeeze(text: str) -> str:
    """比较 PDF 抽出的文字：去掉空白，统一全角与半角（抽出的文字会把部分汉字记成形状相同的部首）。"""
    return unicodedata.normalize("NFKC", re.sub(r"\s+", "", text))


def test_the_quiz_answers_back_offline_and_prints_its_answers(chromium, quiz_page: str) -> None:
    page = chromium.new_page()
    external, errors = [], []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.route("**/*", lambda route: route.continue_() if urlsplit(route.request.url).hostname == "127.0.0.1"
               else (external.append(route.request.url), route.abort()))
    # MathJax 3 已经声明了版本、还没有 typeset 方法——jupyterquiz 这时会去 CDN 另取一份
    page.add_init_script("window.MathJax = {version: '3.2.2'};")
    try:
        page.goto(quiz_page, wait_until="networkidle")
        page.wait_for_selector(".cnnlib-quiz .Quiz")
        page.wait_for_timeout(800)  # jupyterquiz 在 500 毫秒后再检查一次 MathJax
        questions = page.locator(".cnnlib-quiz .Quiz")
        assert questions.count() == 2
        wrong = questions.nth(0).locator("label", has_text="55")
        assert wrong.get_attribute("data-correct") == "false"
        wrong.click()
        feedback = questions.nth(0).locator(".Feedback")
        assert feedback.inner_text() == "不对。这是论文 227×227 输入时的大小。再想一想，试试别的选项。"
        assert "incorrect" in feedback.get_attribute("class").split()
        questions.nth(1).locator("label", has_text="26,218,496").click()
        feedback = questions.nth(1).locator(".Feedback")
        assert feedback.inner_text() == "答对了。(6400 + 1) × 4096：每个输出还有一个偏置。"
        assert "correct" in feedback.get_attribute("class").split()
        # 交互版渲染出来以后，屏幕上不再显示静态的题目与答案
        assert not page.locator(".cnnlib-quiz-key").is_visible()
        scripts = page.evaluate("() => [...document.scripts].filter(s => s.hasAttribute('src')).length")

        page.emulate_media(media="print")
        assert not page.locator(".cnnlib-quiz-live").is_visible()
        assert page.locator(".cnnlib-quiz-key").is_visible()
        from pypdf import PdfReader
        text = _squeeze("".join(p.extract_text() for p in PdfReader(io.BytesIO(page.pdf(format="A4"))).pages))
    finally:
        page.close()
    assert not external, f"自测题请求了外部地址：{external}"
    assert scripts == 0, "自测题往页面里加了外部脚本（jupyterquiz 的 MathJax CDN 加载没有被挡住）"
    assert not errors, errors
    for line in ("AlexNet 第一个卷积层的输出高宽是多少？", "答案：B（54）。按公式 ⌊(224 − 11 + 2)/4⌋ + 1 = 54。",
                 "nn.Linear(6400, 4096) 有多少个参数？", "答案：B（26,218,496）。(6400 + 1) × 4096：每个输出还有一个偏置。"):
        assert _squeeze(line) in text, f"打印出的 PDF 里没有“{line}”"
    assert _squeeze("不对。") not in text, "打印版里不该有交互版的反馈"
