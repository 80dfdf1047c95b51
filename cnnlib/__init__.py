"""cnnlib：《现代卷积神经网络》的配套库。

导入本包没有副作用：不打印、不下载、不作图。
"""

from cnnlib import models
from cnnlib.checkpoint import CheckpointError
from cnnlib.data import (DataNotFoundError, FashionMNISTIter, TEXT_LABELS_ZH,
                         balanced_subset, get_fashion_mnist_labels, load_fashion_mnist,
                         read_fashion_mnist)
from cnnlib.device import device_name, try_gpu
from cnnlib.environment import check_environment
from cnnlib.history import History
from cnnlib.memory import (TrainingOutOfMemoryError, estimate_book_memory, estimate_training_memory,
                           memory_table)
from cnnlib.models import *  # noqa: F403  七个网络、它们的构件与登记表 SPECS
from cnnlib.monitor import TrainingDivergedError
from cnnlib.plot import (plot_history, show_feature_maps, show_filters, show_images,
                         use_cjk_font)
from cnnlib.profiles import RunProfile, describe_run, get_profile
from cnnlib.quiz import Question, quiz
from cnnlib.diagrams import show_diagram
from cnnlib.results import (compare_seed_settings, compare_with_band, compare_with_reported, is_complete,
                            load_full_result, load_published, load_results, published, result_record,
                            save_result, seed_results, seed_runs, seed_spread, seed_table, show_full_result,
                            write_record)
from cnnlib.speed import choose_speed_options, probe_cpu_bf16, resolve_speed_options
from cnnlib.summary import (confusion_matrix, conv_activations, count_flops, count_parameters,
                            layer_shapes, layer_table, prediction_counts, print_shapes, show_source)
from cnnlib.train import evaluate_accuracy, kaiming_init, train, xavier_init

__all__ = [
    # 数据
    "load_fashion_mnist", "read_fashion_mnist", "FashionMNISTIter", "DataNotFoundError",
    "balanced_subset", "get_fashion_mnist_labels", "TEXT_LABELS_ZH",
    # 设备与运行配置
    "try_gpu", "device_name", "RunProfile", "get_profile", "describe_run", "check_environment",
    # 结果文件
    "save_result", "result_record", "write_record", "load_results", "compare_with_reported",
    "load_full_result", "show_full_result", "seed_results", "load_published", "published",
    # 几个随机种子：种子表、几种设定的对照、读者的运行与种子的范围（band）
    "seed_runs", "seed_table", "seed_spread", "compare_seed_settings", "compare_with_band", "is_complete",
    # 训练
    "train", "History", "evaluate_accuracy", "xavier_init", "kaiming_init",
    "resolve_speed_options", "choose_speed_options", "probe_cpu_bf16",
    "TrainingDivergedError", "CheckpointError", "TrainingOutOfMemoryError",
    # 内存估计
    "estimate_book_memory", "estimate_training_memory", "memory_table",
    # 查看与作图
    "print_shapes", "layer_shapes", "layer_table", "count_parameters", "count_flops",
    "show_source", "conv_activations", "confusion_matrix", "prediction_counts",
    "use_cjk_font", "plot_history", "show_images", "show_filters", "show_feature_maps",
    "show_diagram",
    # 自测题
    "quiz", "Question",
] + models.__all__  # 模型与登记表
