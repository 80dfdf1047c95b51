"""设备选择与设备描述：CUDA 优先，其次 Apple MPS，最后 CPU。"""

import torch


def try_gpu(i: int = 0) -> torch.device:
    """返回第 ``i`` 块 GPU（CUDA 或 Apple MPS）；没有 GPU 时返回 CPU。"""
    if torch.cuda.is_available() and i < torch.cuda.device_count():
        return torch.device(f"cuda:{i}")
    if i == 0 and getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device: torch.device | str) -> str:
    """人能读懂的设备名，例如 ``NVIDIA T4`` 或 ``cpu (2 threads)``。"""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"cpu ({torch.get_num_threads()} threads)"
