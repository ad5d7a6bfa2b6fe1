"""vaekit-speech: log-mel VAE and CVAE, Griffin-Lim back to audio, voice conversion.

    vaekit train recipes/speech/tones.yaml
    vaekit reconstruct runs/fsdd_cvae 0_george_3.wav --condition speaker=jackson
"""

from .plugin import SpeechPlugin

plugin = SpeechPlugin()

__all__ = ["SpeechPlugin", "plugin"]
