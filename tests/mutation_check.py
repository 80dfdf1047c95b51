"""变异检查（mutation check）：改动七个模型里任意一个填充、步幅或卷积核，至少有一个快速测试要失败。

对登记表 :data:`cnnlib.SPECS` 里每个模型的每个 ``Conv2d``、``MaxPool2d``、``AvgPool2d``（包括块内的），
逐一做一种改动：填充 ±1、步幅 ±1、卷积核 ±1（只做能建出来的：填充 ≥ 0，步幅与卷积核 ≥ 1，汇聚层的填充不超过
卷积核的一半）。每次改动把登记表的工厂函数（以及 cnnlib 与测试模块里对它的引用）换成“先建原模型、再替换这一层”的
版本，然后运行与模型有关的快速测试：tests/test_models.py 与 tests/test_d2l_reference.py 里以 ``spec``（或模型名）
为参数、或不带参数的测试，由便宜到贵，第一个失败就算“抓到”。

开始前先做一次“空改动”（按原样重建同一层）：那时每个测试都必须通过，免得把测试自身的问题算成抓到。

用法（仓库根目录）::

    .venv/bin/python tests/mutation_check.py                 # 全部模型、全部改动
    .venv/bin/python tests/mutation_check.py nin alexnet     # 只查这几个模型

tests/test_mutations.py 在快速测试里跑一个固定的小样本，在 slow 测试里跑全部。
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import cnnlib  # noqa: E402

TEST_MODULES = ("test_models", "test_d2l_reference")
# 便宜的先跑：大多数改动在第一个测试（一次批量为 1 的前向）就被抓到
FIRST = ("test_layer_shapes_are_the_ones_the_book_states", "test_parameter_count_registry_hand_and_counted_agree",
         "test_equals_the_d2l_layer_list_at_the_book_resolution")
LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
# 这些测试核对登记表、文件与笔记本，不看模型的结构；换掉登记表条目本身就会让它们失败，所以不算
NOT_ABOUT_THE_MODEL = {"test_registry_and_notebooks_match", "test_registry_holds_the_only_copy_of_each_setting",
                       "test_every_registered_model_has_its_book_sizes", "test_every_registered_model_has_a_reference"}


@dataclass(frozen=True)
class Mutation:
    model: str
    path: str      # named_modules 里的名字，例如 "2.0.p3_2"
    field: str     # "padding"、"stride" 或 "kernel_size"；空改动为 ""
    old: int
    new: int
    layer: str = ""  # 类名，只用于报告

    def __str__(self) -> str:
        if not self.field:
            return f"{self.model}：空改动"
        return f"{self.model} 的 {self.path}（{self.layer}）：{self.field} {self.old} → {self.new}"


def _one(v) -> int:
    return v[0] if isinstance(v, tuple) else v


def _geometry(layer: nn.Module) -> dict[str, int]:
    return {"kernel_size": _one(layer.kernel_size), "stride": _one(layer.stride), "padding": _one(layer.padding)}


def _valid(layer: nn.Module, g: dict[str, int]) -> bool:
    if g["padding"] < 0 or g["stride"] < 1 or g["kernel_size"] < 1:
        return False
    # PyTorch 的汇聚层要求填充不超过窗口的一半
    return isinstance(layer, nn.Conv2d) or g["padding"] <= g["kernel_size"] // 2


def mutations(name: str) -> list[Mutation]:
    """模型 ``name`` 的全部改动（在 meta 设备上建模型，只读结构）。"""
    with torch.device("meta"):
        net = cnnlib.model_spec(name).factory()
    found = []
    for path, layer in net.named_modules():
        if not isinstance(layer, LAYERS):
            continue
        g = _geometry(layer)
        for field, delta in itertools.product(("padding", "stride", "kernel_size"), (1, -1)):
            new = dict(g, **{field: g[field] + delta})
            if _valid(layer, new):
                found.append(Mutation(name, path, field, g[field], new[field], type(layer).__name__))
    return found


def _rebuild(layer: nn.Module, field: str, new: int) -> nn.Module:
    """同类的新层，只有 ``field`` 改成 ``new``；卷积核大小不变时拷贝原来的权重。"""
    g = _geometry(layer)
    if field:
        g[field] = new
    if isinstance(layer, nn.Conv2d):
        out = nn.Conv2d(layer.in_channels, layer.out_channels, g["kernel_size"], g["stride"], g["padding"],
                        bias=layer.bias is not None, device=layer.weight.device, dtype=layer.weight.dtype)
        if out.weight.shape == layer.weight.shape:
            with torch.no_grad():
                out.weight.copy_(layer.weight)
                if layer.bias is not None:
                    out.bias.copy_(layer.bias)
        return out
    return type(layer)(g["kernel_size"], g["stride"], g["padding"])


def mutated_factory(original: Callable[..., nn.Module], mutation: Mutation) -> Callable[..., nn.Module]:
    def factory(*args, **kwargs) -> nn.Module:
        net = original(*args, **kwargs)
        parent_path, _, leaf = mutation.path.rpartition(".")
        parent = net.get_submodule(parent_path) if parent_path else net
        old = net.get_submodule(mutation.path)
        new = _rebuild(old, mutation.field, mutation.new)
        if isinstance(parent, nn.Sequential) or leaf.isdigit():
            parent[int(leaf)] = new
        else:
            setattr(parent, leaf, new)
        return net

    factory.__name__ = getattr(original, "__name__", "factory")
    return factory


@contextlib.contextmanager
def patched(mutation: Mutation) -> Iterator:
    """在 with 块里把模型的工厂函数换成改动过的版本：登记表的条目，以及 cnnlib 与测试模块里对原函数的引用。

    Yields:
        改动过的登记表条目（``factory`` 换掉了，其余不变）。
    """
    spec = cnnlib.SPECS[mutation.model]
    factory = mutated_factory(spec.factory, mutation)
    undo: list[tuple[object, str, object]] = []
    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if not (name.startswith("cnnlib") or name in TEST_MODULES or name == "book_sizes"):
            continue
        for attr, value in list(vars(module).items()):
            if value is spec.factory:
                undo.append((module, attr, value))
                setattr(module, attr, factory)
    cnnlib.SPECS[spec.name] = dataclasses.replace(spec, factory=factory)
    try:
        yield cnnlib.SPECS[spec.name]
    finally:
        cnnlib.SPECS[spec.name] = spec
        for module, attr, value in reversed(undo):
            setattr(module, attr, value)


def _cases(model: str, spec) -> list[tuple[str, Callable[[], object]]]:
    """与模型 ``model`` 有关的测试，各带一组参数：(名字, 无参数的调用)。``spec`` 是改动过的登记表条目。

    以 ``spec`` 为参数的测试只取这个模型；参数是模型名的，只取这个名字；不带参数的测试都跑
    （例如 ``test_nin_has_dropout_before_last_block_and_zero_padding_first`` 直接调用 ``cnnlib.nin()``）。
    """
    import importlib
    found = []
    for module_name in TEST_MODULES:
        module = importlib.import_module(module_name)
        for test_name, fn in vars(module).items():
            if (not test_name.startswith("test_") or not inspect.isfunction(fn) or fn.__module__ != module_name
                    or test_name in NOT_ABOUT_THE_MODEL):
                continue
            params = list(inspect.signature(fn).parameters)
            values: dict[str, list] = {}
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "parametrize" and isinstance(mark.args[0], str) and "," not in mark.args[0]:
                    values[mark.args[0]] = list(mark.args[1])
            if set(params) - set(values):
                continue  # 需要夹具（tmp_path、monkeypatch……）的测试与模型结构无关
            for p, vs in values.items():
                if p == "spec":
                    values[p] = [spec for v in vs if v.name == model]
                elif all(isinstance(v, str) and v in cnnlib.SPECS for v in vs):
                    values[p] = [v for v in vs if v == model]
            for combo in itertools.product(*(values[p] for p in params)):
                ids = [v.name if p == "spec" else str(v) for p, v in zip(params, combo)]
                label = f"{module_name}::{test_name}" + (f"[{'-'.join(ids)}]" if ids else "")
                found.append((label, lambda fn=fn, args=dict(zip(params, combo)): fn(**args)))
    found.sort(key=lambda case: next((i for i, name in enumerate(FIRST) if f"::{name}" in case[0]), len(FIRST)))
    return found


def run_case(model: str, mutation: Mutation, stop_at_first: bool) -> list[str]:
    """在 ``mutation`` 之下运行与模型有关的测试，返回失败的测试名（``stop_at_first`` 时至多一个）。"""
    failed = []
    with patched(mutation) as mutated_spec:
        for label, call in _cases(model, mutated_spec):
            torch.manual_seed(0)
            try:
                call()
            except Exception as error:  # noqa: BLE001  任何异常（断言失败、形状对不上的 RuntimeError）都是测试失败
                failed.append(f"{label}：{type(error).__name__}")
                if stop_at_first:
                    break
    return failed


def null_mutation(model: str) -> Mutation:
    first = mutations(model)[0]
    return dataclasses.replace(first, field="", new=first.old)


@dataclass
class Report:
    tried: int
    caught: int
    missed: list[Mutation]
    by_test: Counter
    seconds: float

    def __str__(self) -> str:
        lines = [f"改动 {self.tried} 处，抓到 {self.caught} 处，漏掉 {len(self.missed)} 处（{self.seconds:.0f} 秒）"]
        lines += [f"  抓到的测试：{name} × {n}" for name, n in self.by_test.most_common()]
        lines += [f"  漏掉：{m}" for m in self.missed]
        return "\n".join(lines)


def sample(name: str) -> list[Mutation]:
    """固定的小样本：第一层的填充 ±1（AlexNet、NiN 第一层这样改时输出形状不变），
    以及第一个汇聚层的窗口加 1（形状常常不变，只有数值比对看得出来）。"""
    found = mutations(name)
    first = [m for m in found if m.path == found[0].path and m.field == "padding"]
    pools = [m for m in found if m.layer != "Conv2d" and m.field == "kernel_size" and m.new > m.old]
    return first + pools[:1]


def check(selected: list[Mutation], baseline: bool = True) -> Report:
    """运行 ``selected`` 里的每个改动。

    ``baseline``：先对涉及的每个模型做一次空改动，那时必须没有测试失败（在测试套件里这些测试本来就会不改动地
    各跑一遍，所以那里可以关掉它）。
    """
    torch.set_num_threads(1)
    started = time.perf_counter()
    for model in dict.fromkeys(m.model for m in selected) if baseline else ():
        failed = run_case(model, null_mutation(model), stop_at_first=False)
        if failed:
            raise RuntimeError(f"{model} 没有改动时这些测试就失败了，先修好它们：{failed}")
    missed, by_test = [], Counter()
    for mutation in selected:
        failed = run_case(mutation.model, mutation, stop_at_first=True)
        if failed:
            by_test[failed[0].split("[")[0].split("：")[0]] += 1
        else:
            missed.append(mutation)
    return Report(len(selected), len(selected) - len(missed), missed, by_test, time.perf_counter() - started)


def main(argv: list[str]) -> int:
    models = argv or list(cnnlib.SPECS)
    unknown = [m for m in models if m not in cnnlib.SPECS]
    if unknown:
        print(f"没有这些模型：{unknown}；可用的有 {'、'.join(cnnlib.SPECS)}", file=sys.stderr)
        return 2
    selected = [m for name in models for m in mutations(name)]
    for name in models:
        print(f"{name}：{sum(m.model == name for m in selected)} 处改动", flush=True)
    report = check(selected)
    print(report)
    return 1 if report.missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
