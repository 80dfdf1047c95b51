"""变异检查（tests/mutation_check.py）：改动任何一个模型里的一个填充、步幅或卷积核，快速测试就会失败。

快速测试跑一个固定的小样本（每个模型第一层的填充 ±1 与第一个汇聚层的窗口加 1），slow 测试跑全部改动
（数量随模型而定，报告里写出），并先确认不改动时那些测试都通过。
"""

import pytest

import cnnlib
import mutation_check


def test_the_mutated_factory_changes_exactly_one_layer():
    m = next(m for m in mutation_check.mutations("nin") if m.path == "0.0" and m.field == "padding")
    with mutation_check.patched(m):
        assert cnnlib.nin()[0][0].padding == (1, 1) and cnnlib.model_spec("nin").factory()[0][0].padding == (1, 1)
        assert cnnlib.nin()[2][0].padding == (2, 2)
    assert cnnlib.nin()[0][0].padding == (0, 0), "with 块结束后应恢复原来的工厂函数"


@pytest.mark.parametrize("name", list(cnnlib.SPECS))
def test_a_sample_of_mutations_is_caught(name):
    report = mutation_check.check(mutation_check.sample(name), baseline=False)
    assert report.tried >= 2 and not report.missed, str(report)


@pytest.mark.slow
def test_every_mutation_of_every_model_is_caught():
    selected = [m for name in cnnlib.SPECS for m in mutation_check.mutations(name)]
    report = mutation_check.check(selected)
    print(f"\n{report}")
    assert not report.missed, str(report)
