"""vaekit-series: a VAE over fixed-length univariate time series.

    pip install -e examples/vaekit-series
    vaekit train examples/vaekit-series/series.yaml
    vaekit sample runs/series -n 16          # -> samples.csv (+ samples.png with matplotlib)

Data: `sines` (noisy sines of random frequency, phase and amplitude, generated from the seed) or `csv` (one
series per row, all rows of one length; a non-numeric first row is a header). Every file this plugin writes
holds one series per row; a CLI input (reconstruct, interpolate, traverse --input, encode) is one series, the
first row of a CSV file, so a file written here reads back as an input.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from vaekit.plugin_api import (
    VAE,
    DataBundle,
    DiagonalGaussian,
    Gaussian,
    Plugin,
    PluginError,
    RecipeError,
    atomic_open,
    latent_path,
    parse_dims,
    traversal,
)

PLOTTED = 16  # series drawn in a PNG; the CSV holds all of them


@dataclass
class SeriesData:
    """The recipe's data section."""

    source: Literal["sines", "csv"] = "sines"
    path: str | None = field(default=None, metadata={"must_exist": True})  # for source: csv
    length: int = 64  # steps per series (sines; a CSV's rows give their own)
    n_train: int = 4000
    n_val: int = 400
    n_test: int = 400
    noise: float = 0.05  # standard deviation of the additive noise (sines)
    min_cycles: float = 1.0  # frequency range, in cycles per series (sines)
    max_cycles: float = 4.0
    min_amplitude: float = 0.5
    max_amplitude: float = 1.5
    val_fraction: float = 0.1  # of a CSV's rows, and as many again for test


@dataclass
class SeriesModel:
    """The recipe's model section."""

    encoder: Literal["conv", "mlp"] = "conv"
    latent_dim: int = 4
    hidden: int = 128
    channels: int = 16  # conv encoder only


def sines(n: int, data: SeriesData, generator: torch.Generator) -> torch.Tensor:
    """n noisy sines of data.length steps: [n, length]."""

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, 1, generator=generator)

    t = torch.arange(data.length) / data.length
    cycles = uniform(data.min_cycles, data.max_cycles)
    phase = uniform(0.0, 2 * math.pi)
    amplitude = uniform(data.min_amplitude, data.max_amplitude)
    clean = amplitude * torch.sin(2 * math.pi * cycles * t + phase)
    return clean + data.noise * torch.randn(n, data.length, generator=generator)


def read_csv(path: str, length: int | None = None) -> torch.Tensor:
    """The rows of a CSV file, one series each (a non-numeric first row is a header): [n, length].

    A ValueError names the file and line of a row that is not numbers or not of the expected length.
    """
    rows = []
    with open(path, newline="") as f:
        for line_no, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            try:
                values = [float(v) for v in row]
            except ValueError:
                if line_no == 1:
                    continue  # header
                raise ValueError(f"{path}:{line_no}: expected numbers, got {row[:4]}") from None
            expected = length if length is not None else (len(rows[0]) if rows else len(values))
            if len(values) != expected:
                raise ValueError(f"{path}:{line_no}: expected {expected} values, got {len(values)}")
            rows.append(values)
    if not rows:
        raise ValueError(f"{path}: no rows of numbers")
    return torch.tensor(rows)


def write_csv(series: torch.Tensor, path: Path) -> Path:
    """One series per row, no header: the file reads back as a `csv` source or a CLI input."""
    with atomic_open(path, "w", newline="") as f:  # never through a link in the run folder
        csv.writer(f).writerows([[f"{v:.6g}" for v in row] for row in series.tolist()])
    return path


def write_plot(panels: list[tuple[str, list[torch.Tensor]]], path: Path) -> list[Path]:
    """A PNG with one panel per (title, curves), when matplotlib is installed; else nothing."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state
    except ImportError:
        return []
    if not panels:
        return []
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(3 * cols, 1.8 * rows))
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, (title, curves) in zip(axes.flat, panels, strict=False):
        for i, curve in enumerate(curves):
            ax.plot(curve.tolist(), "--" if len(curves) == 2 and i else "-", linewidth=1)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=80)
    return [path]


class Series(torch.utils.data.Dataset):
    def __init__(self, series: torch.Tensor):
        self.series = series

    def __len__(self):
        return len(self.series)

    def __getitem__(self, i):
        return {"x": self.series[i]}


class ConvEncoder(nn.Module):
    """Two stride-2 1-D convolutions, then a linear layer to the posterior's mean and log-variance."""

    def __init__(self, length: int, cfg: SeriesModel):
        super().__init__()
        ch = cfg.channels
        self.conv = nn.Sequential(
            nn.Conv1d(1, ch, 5, stride=2, padding=2), nn.SiLU(),
            nn.Conv1d(ch, 2 * ch, 5, stride=2, padding=2), nn.SiLU(), nn.Flatten())
        flat = 2 * ch * math.ceil(math.ceil(length / 2) / 2)
        self.head = nn.Sequential(nn.Linear(flat, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, 2 * cfg.latent_dim))

    def forward(self, x, c=None):
        mean, logvar = self.head(self.conv(x.unsqueeze(1))).chunk(2, -1)
        return DiagonalGaussian(mean, logvar)


class MLPEncoder(nn.Module):
    def __init__(self, length: int, cfg: SeriesModel):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(length, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.hidden),
                                 nn.SiLU(), nn.Linear(cfg.hidden, 2 * cfg.latent_dim))

    def forward(self, x, c=None):
        mean, logvar = self.net(x).chunk(2, -1)
        return DiagonalGaussian(mean, logvar)


class Decoder(nn.Module):
    """An MLP from z to the series' means, with a Gaussian likelihood of one learned standard deviation."""

    def __init__(self, length: int, cfg: SeriesModel):
        super().__init__()
        self.length = length
        self.net = nn.Sequential(nn.Linear(cfg.latent_dim, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.hidden),
                                 nn.SiLU(), nn.Linear(cfg.hidden, length))
        self.likelihood = Gaussian(scale="learned")

    def log_prob(self, x, z, c=None):
        # z may carry leading sample axes [k, B, D]: score each (series, latent) pair as one row, give [k, B] back
        batch = z.shape[:-1]
        x = x.expand(*batch, self.length).reshape(-1, self.length)
        return self.likelihood.log_prob(self.net(z.reshape(-1, z.shape[-1])), x).reshape(batch)

    def generate(self, z, c=None):
        return self.likelihood.mean(self.net(z))


def no_condition(condition) -> None:
    if condition is not None:
        raise PluginError("series: this model is unconditional; leave out --condition")


class SeriesPlugin(Plugin):
    name = "series"
    description = "VAE over fixed-length univariate time series (noisy sines, CSV rows)"
    data_config = SeriesData
    model_config = SeriesModel

    def build_data(self, data, *, seed, assets):
        if data.source == "csv":
            if data.path is None:
                raise RecipeError("data.path: required when data.source is csv")
            try:
                series = read_csv(data.path)
            except ValueError as e:
                raise RecipeError(f"data.path: {e}") from None
            data.length = series.shape[1]  # the run's recipe.yaml then records the file's length
            order = torch.randperm(len(series), generator=torch.Generator().manual_seed(seed))
            series = series[order]
            held = int(data.val_fraction * len(series))
            if len(series) - 2 * held < 1 or held < 1:
                raise RecipeError(f"data.path: {data.path}: {len(series)} rows are too few to split with "
                                  f"data.val_fraction {data.val_fraction}")
            train, val, test = series[2 * held:], series[:held], series[held:2 * held]
        else:
            if not 0 < data.min_cycles <= data.max_cycles:
                raise RecipeError(f"data.max_cycles: expected 0 < min_cycles <= max_cycles, got "
                                  f"{data.min_cycles} and {data.max_cycles}")
            if not data.min_amplitude <= data.max_amplitude:
                raise RecipeError(f"data.max_amplitude: expected at least min_amplitude {data.min_amplitude}, got "
                                  f"{data.max_amplitude}")
            if data.length < 4:
                raise RecipeError(f"data.length: expected at least 4 steps, got {data.length}")
            g = torch.Generator().manual_seed(seed)
            train, val, test = (sines(n, data, g) for n in (data.n_train, data.n_val, data.n_test))
        return DataBundle(Series(train), Series(val), Series(test), info={"length": train.shape[1]})

    def build_model(self, model, info, *, assets):
        encoder = ConvEncoder if model.encoder == "conv" else MLPEncoder
        return VAE(encoder(info["length"], model), Decoder(info["length"], model), model.latent_dim)

    def load_inputs(self, model, inputs):
        length = model.decoder.length
        try:  # one example per input, as the engine expects: each file's first series
            series = torch.cat([read_csv(path, length)[:1] for path in inputs])
        except (OSError, ValueError) as e:
            raise PluginError(f"series: {e}") from None
        return series.to(model.device)

    @torch.no_grad()
    def sample(self, model, n, condition, out_dir, temperature=1.0, **options):
        no_condition(condition)
        out_dir = Path(out_dir)
        series = model.sample(n, temperature=temperature).cpu()
        panels = [(f"sample {i}", [s]) for i, s in enumerate(series[:PLOTTED])]
        return [write_csv(series, out_dir / "samples.csv"), *write_plot(panels, out_dir / "samples.png")]

    @torch.no_grad()
    def reconstruct(self, model, inputs, condition, out_dir, **options):
        no_condition(condition)
        out_dir = Path(out_dir)
        x = self.load_inputs(model, inputs)
        recon = model.reconstruct(x).cpu()
        panels = [(f"input {i} (solid), reconstruction (dashed)", [a, b]) for i, (a, b) in
                  enumerate(zip(x.cpu()[:PLOTTED], recon[:PLOTTED], strict=True))]
        return [write_csv(x.cpu(), out_dir / "inputs.csv"), write_csv(recon, out_dir / "reconstructions.csv"),
                *write_plot(panels, out_dir / "reconstructions.png")]

    @torch.no_grad()
    def interpolate(self, model, a, b, out_dir, steps=8, method="linear", **options):
        out_dir = Path(out_dir)
        z = model.encode(self.load_inputs(model, [a, b])).mean
        series = model.decode(latent_path(z[0], z[1], steps, method)).cpu()
        panels = [(f"step {i}", [s]) for i, s in enumerate(series[:PLOTTED])]
        return [write_csv(series, out_dir / "interpolation.csv"), *write_plot(panels, out_dir / "interpolation.png")]

    @torch.no_grad()
    def traverse(self, model, out_dir, input=None, dims=None, span=3.0, steps=9, **options):
        out_dir = Path(out_dir)
        if input is None:
            base = model.sample_latents(1, temperature=0.0)[0]  # the prior's mean
        else:
            base = model.encode(self.load_inputs(model, [input])).mean[0]
        units = parse_dims(dims, base.numel())
        series = model.decode(traversal(base, units, span, steps)).cpu()
        rows = series.reshape(len(units), steps, -1)
        panels = [(f"unit {d}: {steps} steps", list(row)) for d, row in zip(units, rows, strict=True)]
        return [write_csv(series, out_dir / "traversal.csv"), *write_plot(panels, out_dir / "traversal.png")]


plugin = SeriesPlugin()
