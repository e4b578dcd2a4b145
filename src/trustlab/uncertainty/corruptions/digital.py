"""Digital corruptions (Hendrycks and Dietterich, 2019): pixelate and JPEG compression."""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.uncertainty.corruptions.base import CORRUPTIONS

__all__ = ["jpeg_compression", "pixelate"]

PIXELATE_FACTOR = (0.95, 0.9, 0.85, 0.75, 0.65)
JPEG_QUALITY = (80, 65, 58, 50, 40)

MSG_NO_PILLOW = "The jpeg_compression corruption needs Pillow: pip install 'trustlab[plot]'."
MSG_JPEG_CHANNELS = "jpeg_compression takes grey (1 channel) or RGB (3 channels) images; got {c}."


@CORRUPTIONS.register("pixelate")
def pixelate(x: torch.Tensor, *, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Shrink each image to ``c`` times its size (``c`` from 0.95 to 0.65) by averaging
    areas, then enlarge it back by repeating pixels (PIL's ``BOX`` filter both ways)."""
    del generator
    factor = PIXELATE_FACTOR[severity - 1]
    height, width = x.shape[-2:]
    small = (max(1, int(height * factor)), max(1, int(width * factor)))
    shrunk = F.interpolate(x, size=small, mode="area")
    return F.interpolate(shrunk, size=(height, width), mode="nearest")


@CORRUPTIONS.register("jpeg_compression")
def jpeg_compression(x: torch.Tensor, *, severity: int, generator: torch.Generator) -> torch.Tensor:
    """Encode each image as JPEG at quality 80 down to 40 with Pillow, and decode it.

    Pixels are rounded to 8 bits first, as in the paper's pipeline.
    """
    del generator
    try:
        from PIL import Image
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ConfigurationError(MSG_NO_PILLOW) from err
    channels = x.shape[1]
    if channels not in (1, 3):
        raise DataError(MSG_JPEG_CHANNELS.format(c=channels))
    quality = JPEG_QUALITY[severity - 1]
    pixels = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    out = np.empty(pixels.shape, dtype=np.float32)
    for i, image in enumerate(pixels):
        array = image[0] if channels == 1 else np.transpose(image, (1, 2, 0))
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32)
        out[i] = decoded[None] if channels == 1 else np.transpose(decoded, (2, 0, 1))
    return torch.from_numpy(out / 255.0).to(x)
