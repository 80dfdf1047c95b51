"""环境检查：每本笔记本的第一个输出。说清在什么设备上运行、选了什么精度与内存布局、为什么，
并在学生就要白白浪费时间之前提醒（Colab/Kaggle 没开 GPU、这版 PyTorch 没有这块卡的内核、显存放不下本节的模型）。
"""

import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass, field

import torch

from cnnlib.device import cpu_info, device_name, try_gpu
from cnnlib.memory import GIB, MemoryEstimate, device_memory, estimate_book_memory, suggest_batch_size
from cnnlib.models import model_spec
from cnnlib.profiles import PROFILE_NAMES, default_profile_name
from cnnlib.speed import choose_speed_options

# 开 GPU 的菜单路径（写作时两家页面上的说法，见 README 的“在哪里运行笔记本”）
ENABLE_GPU = {
    "Colab": "菜单“代码执行程序 → 更改运行时类型”，硬件加速器选 T4 GPU，保存",
    "Kaggle": "右侧面板或菜单的 Settings → Accelerator 选 GPU T4 x2（要先在账号里验证手机号）",
}


@dataclass(frozen=True)
class EnvironmentReport:
    """:func:`check_environment` 的结果。内存以字节计；``warnings`` 是打印出来的每条警告。"""
    platform: str                          # "Colab"、"Kaggle" 或 "本机"
    device: str                            # 设备类型："cuda"、"mps" 或 "cpu"
    device_label: str                      # :func:`cnnlib.device_name` 给的名字
    capability: tuple[int, int] | None     # CUDA 的计算能力，例如 (7, 5)
    memory: int | None                     # 设备内存（CPU 上是物理内存）
    precision: str                         # "fp32"、"bf16" 或 "fp16"
    channels_last: bool
    reason: str                            # 为什么选这个精度与布局
    profile: str                           # 运行配置的名字
    torch_version: str
    cnnlib_version: str
    cpu: str                               # CPU 型号与指令集标志
    threads: int
    model: str | None = None               # 本节的模型（SPECS 中的名字）
    estimate: MemoryEstimate | None = None  # 本节模型在书中批量下的内存估计（这台设备的精度）
    suggested_batch_size: int | None = None  # 放不下时按估计能放下的批量
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def lines(self) -> list[str]:
        """打印出来的几行中文。"""
        capability = f"，计算能力 {self.capability[0]}.{self.capability[1]}" if self.capability else ""
        memory = f"，{'内存' if self.device == 'cpu' else '显存'} {self.memory / GIB:.1f} GiB" if self.memory else ""
        layout = "channels_last" if self.channels_last else "NCHW（不换 channels_last）"
        precision = {"fp16": "fp16 自动混合精度 + 梯度缩放", "bf16": "bf16 自动混合精度"}.get(self.precision,
                                                                                          "float32")
        out = [f"环境检查（{self.platform}，{platform.system()} {platform.machine()}，Python {platform.python_version()}）",
               f"  设备：{self.device_label}{capability}{memory}",
               f"  精度与内存布局：{precision}，{layout}。{self.reason}",
               f"  运行配置：{self.profile}；torch {self.torch_version}，cnnlib {self.cnnlib_version}"]
        if self.device != "cpu":
            out.append(f"  CPU：{self.cpu}，{self.threads} 个线程")
        if self.estimate is not None:
            out.append(f"  本节的内存估计：{self.estimate}")
        out += [f"  警告：{w}" for w in self.warnings]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def detect_platform() -> str:
    """``"Colab"``、``"Kaggle"`` 或 ``"本机"``：看 ``google.colab`` 是否已导入与两家设置的环境变量。"""
    if "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ:
        return "Colab"
    if "KAGGLE_KERNEL_RUN_TYPE" in os.environ or "KAGGLE_URL_BASE" in os.environ:
        return "Kaggle"
    return "本机"


def has_kernels(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """这版 PyTorch 编译的架构（``torch.cuda.get_arch_list()``）里有没有能在这块卡上运行的内核。

    ``sm_XY`` 的二进制能在主版本相同、次版本不低于 Y 的卡上运行；``compute_XY`` 是 PTX，
    能在计算能力不低于 X.Y 的卡上即时编译。例如只有 sm_75 及更新架构的 wheel 不能在 P100（sm_60）上运行。
    """
    for arch in arch_list:
        kind, _, digits = arch.partition("_")
        digits = "".join(ch for ch in digits if ch.isdigit())  # sm_90a、sm_100f 之类的后缀不影响判断
        if len(digits) < 2:
            continue
        major, minor = int(digits[:-1]), int(digits[-1])
        if kind == "sm" and major == capability[0] and minor <= capability[1]:
            return True
        if kind == "compute" and (major, minor) <= tuple(capability):
            return True
    return False


def _cnnlib_version() -> str:
    try:
        return importlib.metadata.version("cnnlib")
    except importlib.metadata.PackageNotFoundError:
        return "未安装（从源代码目录导入）"


def check_environment(model: str | None = None) -> EnvironmentReport:
    """打印几行中文的环境检查，并返回同样内容的 :class:`EnvironmentReport`。

    依次说明：平台（Colab、Kaggle 或本机）、设备与计算能力、内存、选定的精度与内存布局及理由
    （:func:`cnnlib.speed.choose_speed_options`）、运行配置、torch 与 cnnlib 的版本、CPU 的型号、指令集标志与线程数；
    给了 ``model`` 时再给出它在书中批量下的内存估计（:func:`cnnlib.estimate_book_memory`）。

    会警告：Colab/Kaggle 的会话没有 GPU（并说怎样打开）；这版 PyTorch 没有这块 GPU 的内核
    （例如 Kaggle 现在的镜像与 P100）；显存按估计放不下本节模型在书中批量下的训练（并给出放得下的批量）；
    环境变量 ``CNNLIB_PROFILE`` 或 ``CNNLIB_AMP`` 的值不可用。

    Args:
        model: 本节的模型在 :data:`cnnlib.SPECS` 中的名字，例如 ``"alexnet"``；None 时不估计内存。
    """
    spec = model_spec(model) if model is not None else None
    device = try_gpu()
    where = detect_platform()
    warnings: list[str] = []
    capability = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        capability = (props.major, props.minor)
        arch_list = torch.cuda.get_arch_list()
        if arch_list and not torch.version.hip and not has_kernels(capability, arch_list):
            advice = ("请在 Settings → Accelerator 里改选 GPU T4 x2，再重新运行" if where == "Kaggle" else
                      "请换一块较新的 GPU（Colab/Kaggle 上选 T4），或安装仍支持这块卡的旧版 PyTorch，或用 CPU")
            warnings.append(f"这版 PyTorch（{torch.__version__}，内核架构 {'、'.join(arch_list)}）没有 {props.name}"
                            f"（sm_{capability[0]}{capability[1]}）的内核：第一次 CUDA 运算就会报 "
                            f"“no kernel image is available for execution on the device”。{advice}。")
    elif where in ENABLE_GPU:
        warnings.append(f"这个 {where} 会话没有 GPU，训练会在 CPU 上跑（cpu 运行配置，只用一部分数据）。"
                        f"要用 GPU：{ENABLE_GPU[where]}，然后重新运行全部单元格（会话会重启，第一个单元格要重新安装 cnnlib）。")
    memory = device_memory(device)

    try:
        chosen = choose_speed_options(device)
        precision, channels_last, reason = chosen.amp or "fp32", chosen.channels_last, chosen.reason
    except ValueError as err:  # CNNLIB_AMP 的值不可用：照样报告其余各项
        precision, channels_last, reason = "fp32", False, "未能选择"
        warnings.append(str(err))
    profile = default_profile_name()
    if profile not in PROFILE_NAMES:
        warnings.append(f"环境变量 CNNLIB_PROFILE={profile!r} 不可用：请用 {'、'.join(PROFILE_NAMES)} 之一，"
                        "或者删掉它（有 GPU 时用 full，没有时用 cpu）。")
    elif "CNNLIB_PROFILE" in os.environ:
        profile += "（由环境变量 CNNLIB_PROFILE 指定）"
    else:
        profile += "（有 GPU 时默认 full）" if device.type != "cpu" else "（没有 GPU 时默认 cpu）"

    estimate = suggestion = None
    if spec is not None:
        estimate = estimate_book_memory(spec.name, precision)
        if device.type != "cpu" and memory and not estimate.fits(memory):
            suggestion = suggest_batch_size(spec.name, memory, precision)
            fix = (f"批量 {suggestion} 按估计放得下（load_fashion_mnist({suggestion}, ...)，学习率可按比例减小）"
                   if suggestion else "按估计连小批量也放不下，请用 cpu 运行配置（CNNLIB_PROFILE=cpu）")
            warnings.append(f"显存 {memory / GIB:.1f} GiB 按估计放不下 {spec.title} 在书中批量 {spec.batch_size} 下的训练"
                            f"（约 {estimate.total / GIB:.1f} GiB，含 {estimate.context_allowance / GIB:.0f} GiB 预留）：{fix}。")

    cpu_model, flags = cpu_info()
    report = EnvironmentReport(
        platform=where, device=device.type, device_label=device_name(device), capability=capability,
        memory=memory, precision=precision, channels_last=channels_last, reason=reason, profile=profile,
        torch_version=torch.__version__, cnnlib_version=_cnnlib_version(),
        cpu=cpu_model + (f"（{', '.join(flags)}）" if flags else ""), threads=torch.get_num_threads(),
        model=spec.name if spec else None, estimate=estimate, suggested_batch_size=suggestion,
        warnings=tuple(warnings))
    print(report)
    return report
