"""`vaekit demo RUN`: a Gradio page over a trained run, built from what the run's plugin declares.

`requests` checks what a person typed or uploaded and runs the plugin's verbs into a fresh folder per request
(no gradio needed); `forms` reads a plugin verb's argparse options as form fields; `app` builds the Gradio page
(imported only when gradio is installed: `pip install -e ".[demo]"`).
"""
