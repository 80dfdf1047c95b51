"""训练记录 :class:`History` 与平台期提示。"""

import math
from dataclasses import asdict, dataclass, field


@dataclass
class History:
    """逐轮的训练记录。列表的第 i 项对应第 i+1 轮。"""
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    examples_per_sec: list[float] = field(default_factory=list)  # 每轮：训练样本数 / 该轮总墙钟时间
    epoch_time: list[float] = field(default_factory=list)        # 每轮墙钟时间（秒），含评估
    # 轮内的读数：[轮次位置（如 0.25）, 自上次读数以来各批的平均损失, 同一区间的训练准确率]
    readouts: list[list[float]] = field(default_factory=list)
    device: str = ""
    precision: str = ""  # 训练的精度："fp32"、"bf16" 或 "fp16"（自动混合精度）
    # 测试准确率 test_acc 的精度。train() 总是用 float32 评估，与 evaluate_accuracy 的默认相同，
    # 所以一次训练只有一个测试准确率；""：早于这个字段的记录，不知道
    eval_precision: str = ""
    profile: str | None = None
    # 这次训练的设定（train() 从迭代器与参数记下；早于这些字段的记录为 None）：
    # 输入分辨率、全局批量（分布式时是各进程之和）、学习率、初始化函数的名字、随机种子
    resolution: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    init: str | None = None
    seed: int | None = None
    num_train: int = 0   # 每轮训练的样本数（训练时逐批数出来，分布式时是各进程之和）
    num_test: int = 0
    total_train: int = 0  # 完整数据集的大小（用子集时大于 num_train）
    total_test: int = 0
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def wall_time(self) -> float:
        """全部轮次的墙钟时间（秒），含取数据与评估。"""
        return float(sum(self.epoch_time))

    @property
    def overall_examples_per_sec(self) -> float:
        """按全部墙钟时间计算的吞吐量：训练样本总数 / 总时间。"""
        return self.num_train * self.epochs / self.wall_time if self.wall_time else 0.0

    def summary(self) -> str:
        """d2l 风格的总结行，加上吞吐量、设备与运行配置。"""
        if not self.epochs:
            return "还没有完成任何一轮训练。"
        data = (f"训练 {self.num_train:,}/{self.total_train:,} 张 × {self.epochs} 轮，"
                f"测试 {self.num_test:,}/{self.total_test:,} 张")
        profile = f"运行配置 {self.profile}，" if self.profile else ""
        return (f"loss {self.train_loss[-1]:.3f}, train acc {self.train_acc[-1]:.3f}, "
                f"test acc {self.test_acc[-1]:.3f}\n"
                f"{self.overall_examples_per_sec:.1f} examples/sec on {self.device}, {self.precision or 'fp32'} "
                f"（按总墙钟时间 {self.wall_time:.1f} 秒计，含取数据与评估；{profile}{data}）")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        return cls(**d)


PLATEAU_BAND = 0.03  # 训练损失离 ln(类别数) 不到这么多，就算停在平台期


def plateau_hint(train_loss: list[float], num_classes: int) -> str | None:
    """每一轮的训练损失都停在 ``ln(num_classes)`` 附近时，返回一行中文说明；否则返回 None。

    ``ln C`` 是对 C 个类别给出均匀预测时的交叉熵：损失停在这里，说明网络的输出几乎不随输入变化。
    """
    if not train_loss or num_classes < 2:
        return None
    flat = math.log(num_classes)
    if any(not math.isfinite(l) or abs(l - flat) > PLATEAU_BAND for l in train_loss):
        return None
    return (f"提示：{len(train_loss)} 轮的训练损失都停在 ln {num_classes} ≈ {flat:.3f} 附近"
            f"（{min(train_loss):.3f}–{max(train_loss):.3f}），这是对 {num_classes} 个类别给出均匀预测时的损失，"
            "网络还没有学到东西（平台期）。常见原因：学习率不合适；初始化让信号在没有批量规范化的深层 ReLU "
            "网络里逐层衰减（可试 init=cnnlib.kaiming_init）；参数更新次数太少（例如 cpu 配置的子集）。"
            "详见 7.3 节（NiN）关于平台期与初始化的实验。")
