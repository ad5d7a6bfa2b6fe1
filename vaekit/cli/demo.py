"""`vaekit demo RUN [--port N] [--share no]`: a Gradio page over a trained run, served on 127.0.0.1.

    vaekit demo runs/shapes              # then open http://127.0.0.1:7860
    vaekit demo runs/fsdd --port 8000

gradio is an optional extra (`pip install -e ".[demo]"`); without it the verb says so in one line.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import socket
import tempfile
import time
from pathlib import Path

import torch

from ..io.safe_writes import describe
from ..plugin import PluginError
from ..runs import load
from .parsers import Parser, at_least

LOCAL = "127.0.0.1"  # the page is for the person at this machine unless --share yes
INSTALL = 'pip install -e ".[demo]" (from the vaekit repository) or pip install gradio'


def demo_parser() -> Parser:
    p = Parser(prog="vaekit demo", description="Serve a page to sample, reconstruct, interpolate and traverse a "
                                                "trained run in a browser (Gradio), on 127.0.0.1.")
    p.add_argument("run", help="run folder, checkpoint folder or save_pretrained folder")
    p.add_argument("--port", type=at_least(1), default=7860, help="port on 127.0.0.1 (default 7860)")
    p.add_argument("--share", choices=["no", "yes"], default="no",
                   help="yes: also a public gradio.live link through Gradio's servers (default no: this machine only)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, mps")
    p.add_argument("--seed", type=at_least(0), default=0, help="random seed (default 0)")
    return p


def gradio_installed() -> bool:
    try:
        return importlib.util.find_spec("gradio") is not None
    except (ImportError, ValueError):  # a module entry set to None (blocked) has no spec
        return False


def check_port(port: int) -> None:
    """One line when the port cannot be served on 127.0.0.1 (out of range, in use)."""
    if port > 65535:
        raise ValueError(f"--port {port}: expected a port number from 1 to 65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOCAL, port))
        except OSError as exc:
            raise ValueError(f"--port {port}: cannot serve on {LOCAL}:{port} ({describe(exc)}); "
                             f"pick another, e.g. --port {port + 1 if port < 65535 else 8000}") from None


def main(argv: list[str]) -> int:
    args = demo_parser().parse_args(argv)
    if not gradio_installed():
        raise RuntimeError(f"vaekit demo needs gradio, which is not installed: {INSTALL}")
    check_port(args.port)
    torch.manual_seed(args.seed)
    model, plugin = load(args.run, device=args.device)
    if hasattr(model, "class_logits"):  # the plugin's verbs read its own networks, which M2 wraps in its own
        raise PluginError(f"{args.run}: a semi-supervised (objective.kind m2) run; `vaekit demo` works on a VAE run: "
                          "use `vaekit classify` or `vaekit eval` on this one")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine unless --share yes
    # gradio is an optional heavy dependency: imported here, once the run has loaded, and only for this verb.
    app_module = importlib.import_module("vaekit.demo.app")
    requests_module = importlib.import_module("vaekit.demo.requests")
    with tempfile.TemporaryDirectory(prefix="vaekit-demo-") as root:
        requests = requests_module.RunRequests(model, plugin, Path(root))
        app = app_module.build_app(requests, title=str(args.run), run=str(args.run))
        app.queue(default_concurrency_limit=1)
        try:
            _, local_url, share_url = app.launch(server_name=LOCAL, server_port=args.port, share=args.share == "yes",
                                                 quiet=True, prevent_thread_lock=True, allowed_paths=[root],
                                                 max_file_size="20mb", ssr_mode=False, footer_links=[],
                                                 css=app_module.CSS)
            url = local_url or f"http://{LOCAL}:{args.port}/"
            print(f"vaekit demo: {args.run} at {url}" + (f" and {share_url}" if share_url else "") + " (Ctrl-C stops)",
                  flush=True)
            while True:
                time.sleep(0.5)
        finally:
            app.close()
