"""自测题（quiz）：在笔记本和网站上点选作答、答后给出解释的单选题；打印（PDF）时印出题目与答案。

交互部分由 jupyterquiz（John M. Shea，https://github.com/jmshea/jupyterquiz，MIT 许可）渲染。它把题目和
脚本都写进单元的输出，所以在 JupyterLab、Colab 和 Jupyter Book 的静态网页上都能作答，不需要内核，也不联网。
本模块是它外面薄薄的一层，只做四件事：

1. 把 :class:`Question` 转成 jupyterquiz 的题目格式：每个选项都带中文反馈，答对时显示解释，答错时请读者再试；
2. 容器的 id 由题目内容决定（不是随机的），同样的题目每次执行得到同样的输出；
3. 把 jupyterquiz 的脚本包进一个函数，函数里的 ``MathJax`` 是 undefined。jupyterquiz 发现页面上的 MathJax 3
   还没加载完时，会从 CDN 另取一份；本书的题目不含公式（:class:`Question` 拒绝 ``$``），不需要它排版，
   脚本里那个 CDN 地址也一并删去；
4. 另附一份静态的“题目与答案”：脚本没有运行时（例如在 GitHub 上预览笔记本）代替交互部分显示，答案折叠；
   打印时（``@media print``）交互部分隐去，印出每道题的选项、答案与解释。

jupyterquiz 的公开接口 ``display_quiz`` 会直接显示、返回 None，也不能指定容器的 id；这里用的是它的
``dynamic.loader`` 与 ``dynamic.renderer`` 两个模块，所以 pyproject.toml 把版本限制在 2.9.x（tests/test_quiz.py 检查输出）。
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from html import escape
from typing import Mapping, NamedTuple, Sequence

from cnnlib.monitor import _in_notebook  # 与训练曲线同一个判断：有 Jupyter 内核时才显示富输出

# jupyterquiz 在 MathJax 3 未就绪时加载的地址（它的 js/show_questions.js）；包进函数后那段代码不会运行，地址也删去
_MATHJAX_CDN = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg.js"
_LETTERS = "ABCDEF"
_MAX_ANSWERS = len(_LETTERS)

# jupyterquiz 的配色（CSS 变量，它的 display_quiz 的默认值），题干的底色换成与本书主题相近的深蓝
_COLORS = {
    "--jq-multiple-choice-bg": "#2b4a75",
    "--jq-mc-button-bg": "#fafafa",
    "--jq-mc-button-border": "#e0e0e0e0",
    "--jq-mc-button-inset-shadow": "#555555",
    "--jq-many-choice-bg": "#f75c03ff",
    "--jq-numeric-bg": "#392061ff",
    "--jq-numeric-input-bg": "#c0c0c0",
    "--jq-numeric-input-label": "#101010",
    "--jq-numeric-input-shadow": "#999999",
    "--jq-string-bg": "#4c1a57",
    "--jq-incorrect-color": "#c80202",
    "--jq-correct-color": "#007a10",
    "--jq-text-color": "#fafafa",
    "--jq-link-color": "#9abafa",
}

# 本书的样式：字号随正文；反馈左对齐；单选按钮只作键盘焦点用（jupyterquiz 给它 sr-only，却没有定义这个类）；
# 交互题渲染出来以后（容器里有 .Quiz）藏起静态的题目与答案；打印时反过来
_CSS = """
.cnnlib-quiz .Quiz { font-size: 1.05rem; line-height: 1.5; }
.cnnlib-quiz .MCButton { font-size: 1rem; }
.cnnlib-quiz .Feedback { font-size: 1rem; text-align: left; margin: 0.4em 0 1.2em; }
.cnnlib-quiz .sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
@media screen { .cnnlib-quiz:has(.Quiz) > .cnnlib-quiz-key { display: none; } }
@media print {
  .cnnlib-quiz > .cnnlib-quiz-live { display: none !important; }
  .cnnlib-quiz > .cnnlib-quiz-key { display: block !important; }
  .cnnlib-quiz-key details { border: none; padding: 0; margin: 0.2em 0 0.8em; }
  .cnnlib-quiz-key details > summary { display: none; }
}
"""

# 浏览器自己的“打印”也要印出答案：打印前展开静态版里折叠的答案（book/make_pdf.py 另外展开全部 <details>）
_OPEN_KEY_BEFORE_PRINT = ('window.addEventListener("beforeprint", function () {\n'
                          '  document.querySelectorAll(".cnnlib-quiz-key details")'
                          '.forEach(function (d) { d.open = true; });\n});\n')


@dataclass(frozen=True)
class Question:
    """一道单选题。

    Args:
        text: 题干。纯文本，用反引号标出代码（`` `nn.Conv2d` ``）；不能含 ``$``，题目不排版公式（写 3×3）。
        answers: 2–6 个互不相同的选项。整数按千位分隔显示（``46,764,746``），其他值用 ``str()``；
            所以形状、参数量可以直接传 cnnlib 算出的值。
        correct: 正确的选项，必须是 ``answers`` 中的一项。
        explanation: 答对后显示的解释，也印在打印版的答案后面。
        why: 可选，答错某个选项时的提示：``{选项: 提示}``，选项同样必须在 ``answers`` 中。
    """
    text: str
    answers: Sequence[object]
    correct: object
    explanation: str
    why: Mapping[object, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "answers", tuple(self.answers))  # 生成器也可以；之后不会被改动
        object.__setattr__(self, "why", dict(self.why))
        for name in ("text", "explanation"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"Question 的 {name}={value!r} 不可用：请给一段非空的文字。")
        labels = [_label(a) for a in self.answers]
        if not 2 <= len(labels) <= _MAX_ANSWERS:
            raise ValueError(f"题目“{self.text}”有 {len(labels)} 个选项：请给 2 到 {_MAX_ANSWERS} 个。")
        repeated = sorted({x for x in labels if labels.count(x) > 1})
        if repeated:
            raise ValueError(f"题目“{self.text}”的选项 {repeated} 重复了：每个选项只能出现一次。")
        if _label(self.correct) not in labels:
            raise ValueError(f"题目“{self.text}”的正确选项 {self.correct!r} 不在选项 {labels} 之中："
                             "correct 必须等于 answers 中的一项。")
        for answer, hint in self.why.items():
            if _label(answer) not in labels or _label(answer) == _label(self.correct):
                raise ValueError(f"题目“{self.text}”的 why 里有 {answer!r}：它必须是一个错误的选项。")
            if not isinstance(hint, str) or not hint.strip():
                raise ValueError(f"题目“{self.text}”对选项 {answer!r} 的提示 {hint!r} 不可用：请给一段非空的文字。")
        for piece in [self.text, self.explanation, *labels, *self.why.values()]:
            if "$" in piece:
                raise ValueError(f"“{piece}”里有 $：自测题不排版公式，请直接写 3×3、⌊n/2⌋ 这样的文字。")

    @property
    def labels(self) -> list[str]:
        """选项显示的文字。"""
        return [_label(a) for a in self.answers]

    @property
    def correct_index(self) -> int:
        """正确选项的下标（从 0 数）。"""
        return self.labels.index(_label(self.correct))


class RenderedQuiz(NamedTuple):
    """:func:`render_quiz` 的结果：两份单元输出，以及同样内容的纯文本。"""
    html: str          # text/html：样式、jupyterquiz 的容器、静态的题目与答案
    javascript: str    # application/javascript：jupyterquiz 的脚本与题目
    text: str          # 纯文本的题目与答案（不在 Jupyter 中时打印它）


def _label(answer: object) -> str:
    if isinstance(answer, int) and not isinstance(answer, bool):
        return f"{answer:,}"
    return str(answer)


def _markup(text: str) -> str:
    """纯文本转成 HTML：转义，再把反引号标出的代码变成 <code>。"""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text, quote=False))


def _plain(text: str) -> str:
    return text.replace("`", "")


def _jupyterquiz_questions(questions: Sequence[Question]) -> list[dict]:
    """jupyterquiz 的题目格式：每个选项都有反馈，所以读者看不到它内置的英文提示。"""
    out = []
    for q in questions:
        answers = []
        for i, label in enumerate(q.labels):
            if i == q.correct_index:
                feedback = f"答对了。{_markup(q.explanation)}"
            else:
                hint = next((h for a, h in q.why.items() if _label(a) == label), "")
                feedback = f"不对。{_markup(hint)}再想一想，试试别的选项。" if hint else "不对，再想一想，试试别的选项。"
            answers.append({"answer": _markup(label), "correct": i == q.correct_index, "feedback": feedback})
        out.append({"question": _markup(q.text), "type": "multiple_choice", "answers": answers})
    return out


def _key_html(questions: Sequence[Question]) -> str:
    """静态的题目与答案：每题列出选项，答案与解释折叠在 <details> 里。"""
    items = []
    for q in questions:
        options = "".join(f'<li>{_markup(label)}</li>' for label in q.labels)
        letter, label = _LETTERS[q.correct_index], _markup(q.labels[q.correct_index])
        items.append(
            f'<li class="cnnlib-quiz-item"><p class="cnnlib-quiz-q">{_markup(q.text)}</p>'
            f'<ol type="A" class="cnnlib-quiz-options">{options}</ol>'
            f'<details><summary>答案</summary><p class="cnnlib-quiz-a">答案：{letter}（{label}）。'
            f'{_markup(q.explanation)}</p></details></li>')
    return ('<div class="cnnlib-quiz-key"><p class="cnnlib-quiz-note">题目与答案（交互版需要运行脚本；'
            f'打印版在这里列出答案）：</p><ol>{"".join(items)}</ol></div>')


def _key_text(questions: Sequence[Question]) -> str:
    lines = []
    for n, q in enumerate(questions, 1):
        lines.append(f"{n}. {_plain(q.text)}")
        lines += [f"   {_LETTERS[i]}. {_plain(label)}" for i, label in enumerate(q.labels)]
        lines.append(f"   答案：{_LETTERS[q.correct_index]}（{_plain(q.labels[q.correct_index])}）。{_plain(q.explanation)}")
    return "\n".join(lines)


def render_quiz(questions: Sequence[Question]) -> RenderedQuiz:
    """把一组题目变成两份单元输出（HTML 与脚本），不显示。笔记本里用 :func:`quiz`。

    Args:
        questions: 一个或多个 :class:`Question`。

    Returns:
        :class:`RenderedQuiz`。
    """
    questions = list(questions)
    if not questions:
        raise ValueError("没有题目：请至少给一个 cnnlib.Question。")
    bad = [q for q in questions if not isinstance(q, Question)]
    if bad:
        raise ValueError(f"{bad[0]!r} 不是 cnnlib.Question：请用 cnnlib.Question(题干, 选项, 正确选项, 解释) 写每道题。")
    try:
        from jupyterquiz.dynamic.loader import load_questions_script
        from jupyterquiz.dynamic.renderer import build_script, build_styles, render_div
    except ImportError as e:
        raise ImportError("自测题需要 jupyterquiz 2.9.x：请运行 pip install 'jupyterquiz>=2.9.6,<2.10'"
                          "（pip install cnnlib 会一并安装它）。") from e

    data = _jupyterquiz_questions(questions)
    # id 由题目决定，同样的题目得到同样的输出；它也是脚本里的变量名，所以只用字母和数字。
    # 同一页上把同一组题显示两次时两个容器的 id 相同，第二组不会渲染——每节只有一组自测题
    div_id = "cnnlibQuiz" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    prefix, static, url = load_questions_script(data, div_id)
    container = render_div(div_id, shuffle_questions=False, shuffle_answers=False, preserve_responses=False,
                           num=len(data), max_width=760, border_radius=8, question_alignment="left")
    script = build_script(prefix, static, url, div_id, load_js=True).replace(_MATHJAX_CDN, "")
    javascript = ("// jupyterquiz 的脚本（见 cnnlib/quiz.py）：包在函数里，其中的 MathJax 是 undefined，不会从 CDN 加载\n"
                  f"(function (MathJax) {{\n{script}\n}})();\n{_OPEN_KEY_BEFORE_PRINT}")
    leftover = re.findall(r"https?://[^\s'\"]+", javascript)
    if leftover:
        raise RuntimeError(f"jupyterquiz 的脚本里有网络地址 {leftover}：离线的网站不能用它。"
                           "请用 pyproject.toml 里写的 jupyterquiz 版本，或更新 cnnlib/quiz.py。")
    # render_div 只写出容器的开始标签：补上结束标签，静态的题目与答案才不会落进容器里
    container += "</div>" * (container.count("<div") - container.count("</div>"))
    html = (f'<div class="cnnlib-quiz">{build_styles(div_id, _COLORS)}<style>{_CSS}</style>'
            f'<div class="cnnlib-quiz-live">{container}</div>{_key_html(questions)}</div>')
    return RenderedQuiz(html, javascript, _key_text(questions))


def quiz(questions: Sequence[Question]) -> None:
    """显示一组自测题：在 Jupyter 中是可以点选作答的题目，在普通的 Python 里打印题目与答案。

    Args:
        questions: 一个或多个 :class:`Question`。
    """
    rendered = render_quiz(questions)
    if not _in_notebook():
        print(rendered.text)
        return
    from IPython.display import display
    display({"text/html": rendered.html, "text/plain": rendered.text}, raw=True)
    display({"application/javascript": rendered.javascript,
             "text/plain": "（自测题的脚本：在 Jupyter 中运行这个单元后即可作答）"}, raw=True)
