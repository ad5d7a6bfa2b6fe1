"""vaekit-image: conv/ResNet VAE and CVAE for images, registered as the `image` plugin of vaekit.

    pip install -e plugins/image
    vaekit train recipes/image/shapes.yaml     # about a minute on a laptop CPU
    vaekit sample runs/shapes -n 64
"""

from .config import ImageDataConfig, ImageModelConfig
from .plugin import ImagePlugin

plugin = ImagePlugin()

__all__ = ["ImagePlugin", "ImageDataConfig", "ImageModelConfig", "plugin"]
