"""Stylize's engine: Gatys et al.'s neural style transfer on the original VGG-19, in plain PyTorch."""

from .params import SPECS, ParamError, Settings, Spec, format_value
from .transfer import Cancelled, EngineError, OutOfMemory, Progress, Result, pick_device, stylize
from .vgg import load_vgg

__all__ = ["SPECS", "Cancelled", "EngineError", "OutOfMemory", "ParamError", "Progress", "Result", "Settings",
           "Spec", "format_value", "load_vgg", "pick_device", "stylize"]
