"""第 7 章的七个网络，每节一个模块：alexnet、vgg、nin、googlenet、batchnorm、resnet、densenet。"""

from cnnlib.models.alexnet import alexnet
from cnnlib.models.batchnorm import BatchNorm, batch_norm, lenet_bn
from cnnlib.models.densenet import DenseBlock, conv_block, densenet, transition_block
from cnnlib.models.googlenet import Inception, googlenet
from cnnlib.models.nin import nin, nin_block
from cnnlib.models.resnet import Residual, conv_stack, plain_block, resnet18, resnet_block
from cnnlib.models.vgg import VGG11_ARCH, vgg, vgg11, vgg_block

__all__ = [
    "alexnet",
    "vgg_block", "vgg", "vgg11", "VGG11_ARCH",
    "nin_block", "nin",
    "Inception", "googlenet",
    "batch_norm", "BatchNorm", "lenet_bn",
    "Residual", "resnet_block", "resnet18", "plain_block", "conv_stack",
    "conv_block", "DenseBlock", "transition_block", "densenet",
]
