"""内存估计（cnnlib.memory）与训练中内存不足时的错误。

估计的期望值是手数的：小网络里 autograd 为反向保存哪些张量，由每个运算的求导公式决定（见各测试的注释），
参数是 4 字节 × :func:`cnnlib.count_parameters`，数据集是 7 万张 28×28 的 uint8 图像加 int64 标签。
"""

import pytest
import torch
from torch import nn

import cnnlib
from cnnlib import memory
from cnnlib.data import FashionMNISTIter

GIB = 1024 ** 3


def linear_net() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10))


def conv_net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))


def test_weights_gradients_and_optimizer_state_by_count():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    n = cnnlib.count_parameters(net)
    plain = cnnlib.estimate_training_memory(net, 64, 8, dataset_on_device=False)
    assert plain.parameters == plain.gradients == 4 * n
    assert plain.optimizer_state == 0                        # 不带动量的 SGD 没有状态
    assert cnnlib.estimate_training_memory(net, 64, 8, momentum=0.9).optimizer_state == 4 * n
    # BatchNorm2d(4) 的缓冲区：移动均值与移动方差各 4 个 float32，num_batches_tracked 一个 int64
    assert plain.buffers == 4 * 4 + 4 * 4 + 8
    assert plain.dataset == 0
    assert cnnlib.estimate_training_memory(net, 64, 8).dataset == 70_000 * (28 * 28 + 8)


def test_saved_activations_of_a_linear_net_counted_by_hand():
    # 每个样本（float32）：输入 16 个数（第一个全连接层为求权重梯度保存它）64 字节；ReLU 的输出 16 个数 64 字节
    # （第二个全连接层保存的输入是同一块内存，只算一次）；log_softmax 的输出 10 个数 40 字节；int64 标签 8 字节。
    # 与批量无关：nll_loss 保存的 total_weight（一个 float32）4 字节。权重本身是参数，不算
    for batch in (32, 1000):
        e = cnnlib.estimate_training_memory(linear_net(), batch, 4)
        assert e.activations == (64 + 64 + 40 + 8) * batch + 4
        assert e.backward_transient == 2 * 64 * batch        # 最大的一块：每个样本 64 字节


def test_two_byte_precision_counted_by_hand():
    # CPU 上 bf16 autocast：全连接层的输入转成 bf16 副本保存（16 × 2 字节），ReLU 保存 bf16 的输出（16 × 2）；
    # 交叉熵按 float32 算，log_softmax 的输出 10 × 4；标签 8；float32 的输入批量本身一直活着 16 × 4。
    # 与批量无关：第二层权重的 bf16 副本 10 × 16 × 2 字节（第一层的输入不要梯度，所以它的权重副本不保存）与 total_weight 4
    e = cnnlib.estimate_training_memory(linear_net(), 1000, 4, precision="bf16")
    assert e.activations == (32 + 32 + 40 + 8 + 64) * 1000 + 10 * 16 * 2 + 4
    fp16 = cnnlib.estimate_training_memory(linear_net(), 1000, 4, precision="fp16")
    assert fp16.activations == e.activations                 # fp16 与 bf16 都是 2 字节


def test_saved_activations_of_a_conv_net_counted_by_hand():
    # 每个样本：输入 1 × 8 × 8 float32 256 字节（卷积保存它）；ReLU 的输出 4 × 8 × 8 × 4 = 1024 字节
    # （展平后被全连接层保存的是同一块内存）；log_softmax 40；标签 8。与批量无关：total_weight 4
    e = cnnlib.estimate_training_memory(conv_net(), 100, 8)
    assert e.activations == (256 + 1024 + 40 + 8) * 100 + 4
    assert e.backward_transient == 2 * 1024 * 100


def test_estimate_leaves_the_network_and_the_random_state_alone():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 10))
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    cnnlib.estimate_training_memory(net, 64, 8)
    cnnlib.estimate_book_memory("lenet_bn", "bf16")
    assert torch.equal(torch.rand(3), expected)
    assert not net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BN 的统计量没被更新


def test_book_estimate_takes_the_registry_settings():
    spec = cnnlib.model_spec("lenet_bn")
    e = cnnlib.estimate_book_memory("lenet_bn")
    assert (e.model, e.batch_size, e.resolution, e.precision) == ("LeNet-BN", 256, 28, "fp32")  # 7.5 节的设定
    assert e.parameters == 4 * 44_878 == 4 * spec.params
    assert e.total == e.tensors + memory.CONTEXT_ALLOWANCE   # 预留与张量的估计分开
    half = cnnlib.estimate_book_memory("lenet_bn", "bf16")
    assert half.activations < e.activations and half.parameters == e.parameters  # 主副本仍是 float32
    # 按批量线性外推：每加 256 个样本增加的一样多
    a128, a512 = (cnnlib.estimate_book_memory("lenet_bn", batch_size=b).activations for b in (128, 512))
    assert abs((a512 - e.activations) - 2 * (e.activations - a128)) <= 1


def test_suggested_batch_is_the_largest_power_of_two_that_fits():
    memory_2gib = 2 * GIB
    s = memory.suggest_batch_size("resnet18", memory_2gib)
    assert s is not None and s < 256 and s & (s - 1) == 0
    assert cnnlib.estimate_book_memory("resnet18", batch_size=s).fits(memory_2gib)
    assert not cnnlib.estimate_book_memory("resnet18", batch_size=2 * s).fits(memory_2gib)
    assert memory.suggest_batch_size("resnet18", 16 * GIB) == 256       # T4：书中的批量放得下
    assert memory.suggest_batch_size("resnet18", GIB) is None           # 连预留都放不下


def test_memory_table_has_both_precisions():
    table = cnnlib.memory_table(["lenet_bn", "resnet18"])
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].count("fp32") == 2 and rows[0].count("fp16/bf16") == 2
    assert rows[1].startswith("| LeNet-BN | 28×28，批量 256") and rows[2].startswith("| ResNet-18 | 96×96，批量 256")
    assert "1.00 GiB" in table and "不是估计" in table


# ---- 训练中内存不足 ----
def synthetic_iter(n: int, batch_size: int) -> FashionMNISTIter:
    """不需要数据文件的 cnnlib 迭代器：随机的 28×28 uint8 图像。"""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    return FashionMNISTIter(images, labels, batch_size, True, None, torch.device("cpu"))


class RunsOutOfMemory(nn.Sequential):
    """LeNet-BN 的各层（参数个数相同，所以被认作 LeNet-BN），前向到第 ``fail_at`` 次大批量时报 CUDA 内存不足。"""

    def __init__(self, fail_at: int = 1, *, in_eval: bool = False) -> None:
        super().__init__(*cnnlib.lenet_bn())
        self.calls, self.fail_at, self.in_eval = 0, fail_at, in_eval

    def forward(self, X):
        if X.shape[0] > 2 and self.training != self.in_eval:  # 训练前检查分辨率用的 2 个样本不算
            self.calls += 1
            if self.calls >= self.fail_at:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB")
        return super().forward(X)


@pytest.fixture
def card_4gib(monkeypatch):
    monkeypatch.setattr(memory, "device_memory", lambda device: 4 * GIB)


def test_out_of_memory_in_training_names_model_batch_and_memory(card_4gib):
    data = synthetic_iter(256, 64)
    with pytest.raises(cnnlib.TrainingOutOfMemoryError) as caught:
        cnnlib.train(RunsOutOfMemory(), data, data, 1, 0.1, "cpu", amp=None, progress=False, plot=False)
    err = caught.value
    text = str(err)
    assert "LeNet-BN" in text and "批量 64" in text and "4.0 GiB" in text, text
    assert (err.model, err.batch_size, err.device_memory, err.epoch) == ("LeNet-BN", 64, 4 * GIB, 1)
    # LeNet-BN 在 4 GiB 上按估计放得下，却报了不足：至少减半
    assert err.suggested_batch_size == 32 and "把批量减到 32" in text
    assert isinstance(err, torch.cuda.OutOfMemoryError)          # 原来的 except 照样接得住
    assert "Tried to allocate" in str(err.__cause__)


def test_out_of_memory_in_evaluation_is_explained_too(card_4gib):
    data = synthetic_iter(256, 64)
    with pytest.raises(cnnlib.TrainingOutOfMemoryError, match="批量 64"):
        cnnlib.train(RunsOutOfMemory(in_eval=True), data, data, 1, 0.1, "cpu", amp=None, progress=False,
                     plot=False)


def test_a_checkpointed_run_resumes_after_running_out(card_4gib, tmp_path, capsys):
    data = synthetic_iter(128, 64)  # 每轮 2 批：第 3 次大批量前向是第 2 轮的第一批
    ckpt = tmp_path / "lenet.pt"
    with pytest.raises(cnnlib.TrainingOutOfMemoryError) as caught:
        cnnlib.train(RunsOutOfMemory(fail_at=3), data, data, 2, 0.1, "cpu", amp=None, progress=False, plot=False,
                     checkpoint=ckpt)
    assert caught.value.epoch == 2 and "已完成的 1 轮保存在检查点" in str(caught.value)
    capsys.readouterr()
    h = cnnlib.train(cnnlib.lenet_bn(), data, data, 2, 0.1, "cpu", amp=None, progress=False, plot=False,
                     checkpoint=ckpt)
    assert h.epochs == 2 and "已完成 1 轮" in capsys.readouterr().out


def test_a_model_too_big_for_the_card_points_to_the_cpu_profile(monkeypatch):
    monkeypatch.setattr(memory, "device_memory", lambda device: GIB // 2)
    data = synthetic_iter(64, 16)

    class Unknown(nn.Module):  # 不是书中的模型：估计不了，16 减半就小于建议的下限
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(28 * 28, 7)

        def forward(self, X):
            if X.shape[0] > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory.")
            return self.fc(X.flatten(1))

    with pytest.raises(cnnlib.TrainingOutOfMemoryError) as caught:
        cnnlib.train(Unknown(), data, data, 1, 0.1, "cpu", amp=None, progress=False, plot=False)
    err = caught.value
    assert err.suggested_batch_size is None and err.estimate is None
    assert "Unknown（5,495 个参数）" in str(err) and "cpu 运行配置" in str(err) and "批量 16" in str(err)


def test_other_runtime_errors_pass_through_unchanged():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, X):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    data = [(torch.randn(4, 1, 4, 4), torch.zeros(4, dtype=torch.long))]
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied") as caught:
        cnnlib.train(Broken(), data, data, 1, 0.1, "cpu", amp=None, progress=False, plot=False, init=None)
    assert not isinstance(caught.value, cnnlib.TrainingOutOfMemoryError)
