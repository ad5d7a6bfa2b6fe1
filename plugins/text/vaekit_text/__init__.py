"""vaekit-text: sentence VAEs (LSTM/GRU after Bowman et al. 2016, Transformer after Optimus) for vaekit.

    pip install -e plugins/text
    vaekit train recipes/text/ptb_lstm.yaml
"""

from .config import TextDataConfig, TextModelConfig
from .data import TextDataError
from .plugin import TextPlugin

plugin = TextPlugin()

__all__ = ["plugin", "TextPlugin", "TextDataConfig", "TextModelConfig", "TextDataError"]
