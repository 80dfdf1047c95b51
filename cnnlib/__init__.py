"""cnnlib：《现代卷积神经网络》的配套库。

导入本包没有副作用：不打印、不下载、不作图。
"""

from cnnlib.data import (DataNotFoundError, FashionMNISTIter, TEXT_LABELS_EN, TEXT_LABELS_ZH,
                         balanced_subset, get_fashion_mnist_labels, load_fashion_mnist,
                         read_fashion_mnist)
from cnnlib.device import device_name, try_gpu
from cnnlib.inspect import (conv_activations, count_flops, count_parameters, layer_table,
                            shape_trace, show_source, trace_shapes)
from cnnlib.models import (BatchNorm, DenseBlock, Inception, Residual, VGG11_ARCH, alexnet,
                           batch_norm, conv_block, conv_stack, densenet, googlenet, lenet_bn, nin,
                           nin_block, plain_block, resnet18, resnet_block, transition_block, vgg,
                           vgg11, vgg_block)
from cnnlib.plot import (LivePlot, plot_history, show_feature_maps, show_filters, show_images,
                         use_cjk_font)
from cnnlib.profiles import RunProfile, get_profile
from cnnlib.results import (REPORTED, compare_with_reported, load_full_result, load_results,
                            result_record, save_result, show_full_result, write_record)
from cnnlib.train import (CheckpointError, History, TrainingDivergedError, accuracy,
                          evaluate_accuracy, kaiming_init, probe_cpu_bf16, resolve_speed_options, train,
                          xavier_init)

__all__ = [
    # 数据
    "load_fashion_mnist", "read_fashion_mnist", "FashionMNISTIter", "DataNotFoundError",
    "balanced_subset", "get_fashion_mnist_labels", "TEXT_LABELS_ZH", "TEXT_LABELS_EN",
    # 设备与运行配置
    "try_gpu", "device_name", "RunProfile", "get_profile",
    # 结果文件
    "save_result", "result_record", "write_record", "load_results", "compare_with_reported", "REPORTED",
    "load_full_result", "show_full_result",
    # 训练
    "train", "History", "evaluate_accuracy", "accuracy", "xavier_init", "kaiming_init",
    "resolve_speed_options", "probe_cpu_bf16",
    "TrainingDivergedError", "CheckpointError",
    # 查看与作图
    "shape_trace", "trace_shapes", "layer_table", "count_parameters", "count_flops", "show_source",
    "conv_activations",
    "use_cjk_font", "LivePlot", "plot_history", "show_images", "show_filters", "show_feature_maps",
    # 模型
    "alexnet", "vgg_block", "vgg", "vgg11", "VGG11_ARCH", "nin_block", "nin",
    "Inception", "googlenet", "batch_norm", "BatchNorm", "lenet_bn",
    "Residual", "resnet_block", "resnet18", "plain_block", "conv_stack",
    "conv_block", "DenseBlock", "transition_block", "densenet",
]
