"""The on-device statistics against numpy's reference computation."""

import math

import numpy as np
import pytest
import torch

from postmortem import _stats


def reference(values: np.ndarray) -> dict:
    flat = values.reshape(-1).astype(np.float64)
    finite = flat[np.isfinite(flat)]
    return {
        "count": flat.size,
        "mean": finite.mean(),
        "std": finite.std(),
        "min": finite.min(),
        "max": finite.max(),
        "abs_mean": np.abs(finite).mean(),
        "l2": np.sqrt((finite * finite).sum()),
        "zero_frac": (flat == 0).sum() / flat.size,
        "nonfinite": int(flat.size - finite.size),
    }


def stats_of(tensor, activation=None, channels_first=False) -> dict:
    (row,) = _stats.to_host([_stats.sums(tensor, activation, channels_first)])
    return _stats.statistics(row, tensor.numel())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_plain_statistics_match_numpy(dtype):
    generator = torch.Generator().manual_seed(1)
    tensor = (torch.randn(37, 29, generator=generator) * 3 + 0.5).to(dtype)
    tensor[0, 0], tensor[3, 4], tensor[5, 5], tensor[7, 1] = math.nan, math.inf, -math.inf, 0.0
    # Sums in the tensor's own float type (float32 for the half types).
    rel = 1e-12 if dtype == torch.float64 else 2e-6
    for finite_only in (True, False):
        if finite_only:
            values = tensor.clone()
            values[~torch.isfinite(values)] = 1.0
        else:
            values = tensor
        ours, theirs = stats_of(values), reference(values.to(torch.float64).numpy())
        for key, value in theirs.items():
            assert ours[key] == pytest.approx(value, rel=rel, abs=1e-12), (key, finite_only)
        assert "dead_frac" not in ours


def test_no_finite_element_gives_no_moments():
    ours = stats_of(torch.tensor([math.nan, math.inf]))
    assert ours["nonfinite"] == 2 and math.isnan(ours["mean"]) and math.isnan(ours["l2"])
    assert stats_of(torch.zeros(0))["count"] == 0


def test_units_of_a_linear_layer():
    generator = torch.Generator().manual_seed(2)
    pre = torch.randn(200, 6, generator=generator)
    pre[:, 0] = -1.0 - pre[:, 0].abs()  # never positive: dead after a ReLU
    pre[:199, 1] = -1.0  # positive on 1 of 200 examples (0.5%): dead too
    out = torch.relu(pre)
    ours = stats_of(out, "relu")
    assert ours["dead_frac"] == pytest.approx(2 / 6)
    values = out.numpy().astype(np.float64)
    assert ours["batch_std"] == pytest.approx(values.std(axis=0).mean(), rel=1e-6)
    assert "saturated_frac" not in ours
    # A sequence's outputs: every position is an example, features are units.
    assert stats_of(out.reshape(20, 10, 6), "relu")["dead_frac"] == pytest.approx(2 / 6)


def test_saturated_units_and_channels():
    generator = torch.Generator().manual_seed(3)
    pre = torch.randn(100, 4, generator=generator)
    pre[:, 0] = 8.0  # tanh(8) = 0.99999977: saturated on every example
    pre[:, 1] = torch.where(torch.arange(100) < 50, -9.0, 9.0)  # both bounds
    assert stats_of(torch.tanh(pre), "tanh")["saturated_frac"] == pytest.approx(2 / 4)
    # A convolution's channel is a unit, its value the spatial mean.
    conv = torch.randn(16, 3, 5, 5, generator=generator)
    conv[:, 2] = -conv[:, 2].abs()
    ours = stats_of(torch.relu(conv), "relu", channels_first=True)
    assert ours["dead_frac"] == pytest.approx(1 / 3)
    means = torch.relu(conv).numpy().astype(np.float64).mean(axis=(2, 3))
    assert ours["batch_std"] == pytest.approx(means.std(axis=0).mean(), rel=1e-6)
