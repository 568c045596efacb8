"""One fixed VGG-19 yardstick for comparing any two stylizations, whatever objective produced them.

Both distances are measured at the output's resolution with max pooling on the original Caffe weights:
- content distance: mean squared difference of relu4_2 activations to the photo's;
- style distance: mean over relu1_1..relu5_1 of the mean squared difference of normalised Gram matrices
  (FFᵀ/(C·M)) to the painting's, the painting resized to the output's longest side.
Lower is better for both; one result "reaches" another's quality when neither distance is larger.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image

from engine.losses import content_loss, gram, style_loss
from engine.transfer import to_tensor
from engine.vgg import CONTENT_LAYERS, STYLE_LAYERS, load_vgg


@dataclass(frozen=True)
class Distances:
    content: float
    style: float

    def at_least_as_good_as(self, other: Distances) -> bool:
        return self.content <= other.content and self.style <= other.style


class Yardstick:
    def __init__(self, content: Image.Image, style: Image.Image, long_side: int):
        self.vgg = load_vgg("cpu")
        self.long_side = long_side
        with torch.no_grad():
            self.content = self.vgg(to_tensor(content, long_side)[None], CONTENT_LAYERS)
            style_feats = self.vgg(to_tensor(style, long_side)[None], STYLE_LAYERS)
        self.grams = {k: gram(v) for k, v in style_feats.items()}

    @torch.no_grad()
    def __call__(self, image: Image.Image) -> Distances:
        x = to_tensor(image, self.long_side)[None]
        feats = self.vgg(x, CONTENT_LAYERS + STYLE_LAYERS)
        return Distances(
            content=float(sum(content_loss(feats[k], self.content[k]) for k in CONTENT_LAYERS)),
            style=float(style_loss({k: gram(feats[k]) for k in STYLE_LAYERS}, self.grams)),
        )
