"""Stylize's engine: Gatys et al.'s neural style transfer on the original VGG-19, in plain PyTorch."""

from .animate import Animation, AnimationProgress, animate
from .params import SPECS, ParamError, Settings, Spec, format_value
from .batch import Request, batch_key, stylize, stylize_batch
from .transfer import MIN_SIDE, Cancelled, EngineError, OutOfMemory, Progress, Result, check_shape, pick_device, style_side
from .vgg import load_vgg

__all__ = ["MIN_SIDE", "SPECS", "Animation", "AnimationProgress", "Cancelled", "EngineError", "OutOfMemory",
           "ParamError", "Progress", "Request", "Result", "Settings", "Spec", "animate", "batch_key", "check_shape",
           "format_value", "load_vgg", "pick_device", "style_side", "stylize", "stylize_batch"]
