# 两条命令：make book（安装环境并构建网站）与 make test（安装环境、构建网站并运行全部测试）。
# 第二次运行很快：requirements.txt 与 pyproject.toml 不变就不会重装，MathJax 也只装一次。

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROFILE ?= cpu
# 较慢的 CPU 上按比例缩小 cpu 配置的数据量，例如 make execute CPU_FRACTION=0.2（见 cnnlib/profiles.py）
CPU_FRACTION ?=
AMP ?= $(if $(filter cpu,$(PROFILE)),fp32,)
# 七本笔记本来自 cnnlib 的模型登记表（cnnlib/models/__init__.py 的 SPECS），在用到时才问（那时 .venv 已装好）
NOTEBOOKS = $(shell $(BIN)/python -m cnnlib list --notebooks)
# 以 root 运行时安装的 Debian 软件包：真实数据、中文字体、浏览器测试用的 Chromium
APT_PACKAGES := dataset-fashion-mnist fonts-noto-cjk chromium

# 网站自带的 MathJax 3：npm 包 mathjax（版本锁在 package-lock.json）的 es5 目录，
# 复制到 _build/vendor/mathjax，Sphinx 再把它拷进 _build/html/_static/mathjax（见 _config.yml）
MATHJAX := _build/vendor/mathjax/tex-mml-chtml.js

.PHONY: setup system book pdf figures wheel test execute full-run device-data clean

setup: system $(STAMP)

system:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "安装 Debian 软件包：$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  fi; \
	else \
	  echo "提示：不是 root，跳过 apt 软件包（$(APT_PACKAGES)）。没有它们时数据由 torchvision 下载。"; \
	fi

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# ---- 网站 ----
# 先从 notebooks/results/ 与 cnnlib/published/ 生成模型对比页，再用存储的笔记本输出构建（不执行笔记本），警告即失败
book: setup $(MATHJAX)
	$(BIN)/python book/make_comparison.py
	$(BIN)/jupyter-book build . -W --keep-going

$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(dir $(MATHJAX))
	mkdir -p $(dir $(MATHJAX))
	cp -R node_modules/mathjax/es5/. $(dir $(MATHJAX))

# 重画 book/figures/ 下的架构示意图（由 cnnlib/diagrams.py 画；生成的 SVG 与脚本一起提交）
figures: setup
	$(BIN)/python book/diagrams.py

# cnnlib 的 wheel（含 cnnlib/published/ 的结果）：pip install _build/wheel/cnnlib-*.whl。
# tests/test_alone.py 用它在一个全新的 venv 里单独执行每本笔记本。先删掉 setuptools 的 build/，免得旧文件混进 wheel
wheel: setup
	rm -rf build _build/wheel
	$(BIN)/python -m pip wheel -q --no-deps --no-build-isolation -w _build/wheel .

# ---- PDF ----
# 把构建好的网站逐页打印成 _build/pdf/modern-cnn-zh.pdf（无头 Chromium，见 book/make_pdf.py），并复制到
# _build/html/ 供网站的“下载 PDF”链接。网站按需增量构建；打印的网页、图片与脚本都没变时沿用上次的 PDF。
pdf: book
	$(BIN)/python book/make_pdf.py

# ---- 测试 ----
# 一次 pytest：tests/ 下的单元测试、浏览器测试与 PDF 的测试（检查构建好的网站与 PDF，所以先构建它们），
# 以及 tests/test_alone.py：每本笔记本单独放进一个空目录，用 wheel 装的 cnnlib 由 nbval 以 smoke 配置执行——
# 带 nbval-check-output 标签的单元（形状、示意图、完整结果）与存储的输出严格比对，其余单元只要求运行不出错。
test: setup book pdf wheel
	CNNLIB_PROFILE=smoke CNNLIB_PROGRESS=0 $(BIN)/python -m pytest tests

# 单元测试（make test 的快速子集，2 核 CPU 上一分钟以内）：不含标记为 slow 的测试（训练超过几秒、
# 启动 torchrun、单独执行笔记本）、检查构建产物的 tests/test_site.py 与 tests/test_pdf.py，以及笔记本。
# 改代码时先跑它；make test 仍运行全部。
.PHONY: test-fast
test-fast: setup
	CNNLIB_PROFILE=smoke CNNLIB_PROGRESS=0 $(BIN)/python -m pytest tests -m "not slow" \
	  --ignore=tests/test_site.py --ignore=tests/test_pdf.py

# 用指定的运行配置重新执行全部笔记本并保存输出，例如 GPU 上：make execute PROFILE=full。
# cpu 配置默认用 float32（AMP=fp32）：网站上的 CPU 输出就是没有 AMX 的笔记本电脑得到的精度；AMP= 留空则按设备自动选
execute: setup
	CNNLIB_PROFILE=$(PROFILE) CNNLIB_AMP=$(AMP) CNNLIB_CPU_FRACTION=$(CPU_FRACTION) CNNLIB_PROGRESS=0 $(BIN)/jupyter nbconvert --to notebook --execute \
	  --inplace --ExecutePreprocessor.timeout=3600 $(NOTEBOOKS)

# ---- 书中的完整设定（GPU）----
# 七个网络各三个随机种子、NiN 的推荐设定三个种子、精度检查、内存峰值、测速与初始化对照，几个工作进程
# 同时训练；结果写进 cnnlib/published/ 与 benchmarks/results/。做完的跳过，被时限打断的从检查点继续，
# 所以同一条命令可以再运行一次。只需要装了 torch 的 python3（不建 .venv、不联网），所以也能在没有网络的
# GPU 机器上运行。例如 make full-run FULL_RUN_ARGS="--deadline 450 --pack out.tar"；
# 先看计划：make full-run FULL_RUN_ARGS=--plan。CPU 上的演练（--profile smoke）在 tests/test_full_run.py 里。
full-run:
	$(PYTHON) benchmarks/full_run.py $(FULL_RUN_ARGS)

# 把 Debian 软件包的四个数据文件复制到 .data/fashion-mnist/（已被 git 忽略），随仓库带到不能联网的 GPU 机器上
device-data: system
	mkdir -p .data/fashion-mnist
	cp /usr/share/datasets/fashion-mnist/*.gz .data/fashion-mnist/

clean:
	rm -rf _build .pytest_cache book/comparison.md book/figures/comparison.svg
