"""Tensor statistics as docs/FORMAT.md defines them, reduced on the tensor's
own device. Each tensor becomes a short row of sums; all rows of a step are
stacked and cross to the host in one transfer, where the row becomes the
statistics of a ``tensors.jsonl`` line.

Sums are taken in the tensor's float type (half precision is widened to
float32); torch's reductions sum in trees, which keeps the relative error
near float32's epsilon. On an accelerator every tensor takes the same
branch-free path (reading a value would wait for the device). On the CPU there
is no device to wait for, so a tensor whose sum is finite (no NaN or
infinity in it, the usual case) takes a path of fused reductions that makes
no full-size temporary, about 15 times faster."""

from __future__ import annotations

import math

import torch

# docs/FORMAT.md's definitions of dead and saturated units.
DEAD_ACTIVE_FRACTION = 0.01
SATURATION_MARGIN = 0.03
SATURATED_EXAMPLE_FRACTION = 0.99
SATURATION_BOUNDS = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}

# Positions in a row of sums.
_FINITE, _ZEROS, _SUM, _ABS_SUM, _SQ_SUM, _MIN, _MAX, _CENTRED_SQ = range(8)
_PLAIN = 8
# Unit statistics follow, for activations.
_DEAD, _SATURATED, _BATCH_STD = range(_PLAIN, _PLAIN + 3)
ROW = _PLAIN + 3


def _work_dtype(tensor: torch.Tensor) -> torch.dtype:
    return torch.float64 if tensor.dtype == torch.float64 else torch.float32


def sums(tensor: torch.Tensor, activation: str | None = None, channels_first: bool = False) -> torch.Tensor:
    """The row of sums of one tensor, on its device; on an accelerator
    nothing crosses to the host. ``activation`` (the layer's nonlinearity)
    asks for unit statistics too: units are the last dimension (a linear
    layer's features, examples being every leading index), or with
    ``channels_first`` the channels of a convolution's
    ``[batch, channels, spatial...]`` output, each example's value being the
    channel's spatial mean."""
    work = _work_dtype(tensor)
    x = tensor.detach().reshape(-1).to(work)
    total = x.sum() if x.device.type == "cpu" and x.numel() else None
    if total is not None and torch.isfinite(total):
        row = _finite_row(x, total)
    else:
        row = _guarded_row(x, work)
    return torch.cat([row, _unit_row(tensor.detach(), activation, channels_first, work)])


def _finite_row(x: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
    """The sums of a CPU tensor with no NaN or infinity: fused reductions
    only. The centred sum of squares comes from the plain one unless the
    variance is under a thousandth of the mean square (a near-constant
    tensor), where that would lose digits and a second pass is taken."""
    n = x.numel()
    low, high = torch.aminmax(x)
    squares = torch.linalg.vector_norm(x) ** 2
    mean = total / n
    centred = squares - n * mean * mean
    if not centred > 1e-3 * squares:
        centred = torch.linalg.vector_norm(x - mean) ** 2
    return torch.stack([
        torch.tensor(float(n), dtype=x.dtype),
        (n - torch.count_nonzero(x)).to(x.dtype),
        total,
        torch.linalg.vector_norm(x, 1),
        squares,
        low,
        high,
        centred,
    ])


def _guarded_row(x: torch.Tensor, work: torch.dtype) -> torch.Tensor:
    """The sums over the finite elements, without reading any value."""
    finite = torch.isfinite(x)
    n = finite.sum().to(work)
    clean = torch.where(finite, x, torch.zeros((), dtype=work, device=x.device))
    total = clean.sum()
    mean = total / n.clamp(min=1)
    centred = torch.where(finite, x - mean, torch.zeros((), dtype=work, device=x.device))
    inf = torch.tensor(math.inf, dtype=work, device=x.device)
    return torch.stack([
        n,
        (x == 0).sum().to(work),
        total,
        clean.abs().sum(),
        (clean * clean).sum(),
        torch.where(finite, x, inf).min() if x.numel() else inf,
        torch.where(finite, x, -inf).max() if x.numel() else -inf,
        (centred * centred).sum(),
    ])


def _unit_row(tensor: torch.Tensor, activation: str | None, channels_first: bool, work: torch.dtype) -> torch.Tensor:
    """Dead and saturated fractions and the batch std of a layer's output;
    NaN where they do not apply."""
    nan = torch.tensor(math.nan, dtype=work, device=tensor.device)
    units = _unit_values(tensor, channels_first, work) if activation is not None else None
    row = []
    if units is None:
        row += [nan, nan, nan]
    else:
        examples = units.shape[0]
        positive = (units > 0).to(work).mean(dim=0)
        row.append((positive < DEAD_ACTIVE_FRACTION).to(work).mean())
        bounds = SATURATION_BOUNDS.get(activation)
        if bounds is None:
            row.append(nan)
        else:
            low, high = bounds
            at_bound = ((units < low + SATURATION_MARGIN) | (units > high - SATURATION_MARGIN)).to(work).sum(dim=0)
            row.append((at_bound > SATURATED_EXAMPLE_FRACTION * examples).to(work).mean())
        row.append(units.std(dim=0, unbiased=False).mean())
    return torch.stack(row)


def _unit_values(tensor: torch.Tensor, channels_first: bool, work: torch.dtype) -> torch.Tensor | None:
    """``[examples, units]``, or ``None`` when the shape has no unit axis."""
    if tensor.dim() < 2 or tensor.numel() == 0:
        return None
    if channels_first:
        batch, channels = tensor.shape[0], tensor.shape[1]
        return tensor.reshape(batch, channels, -1).to(work).mean(dim=2)
    return tensor.reshape(-1, tensor.shape[-1]).to(work)


def to_host(tensors: list[torch.Tensor]) -> list[list[float]]:
    """The values of every tensor, flattened, in one transfer per device (on
    an accelerator, one wait for it): rows of sums, scalars, class counts."""
    out: list[list[float]] = [[] for _ in tensors]
    by_device: dict[torch.device, list[int]] = {}
    for i, tensor in enumerate(tensors):
        by_device.setdefault(tensor.device, []).append(i)
    for indices in by_device.values():
        flat = [tensors[i].reshape(-1).to(torch.float64) for i in indices]
        values = torch.cat(flat).cpu().tolist()
        at = 0
        for i, part in zip(indices, flat):
            out[i] = values[at:at + part.numel()]
            at += part.numel()
    return out


def statistics(row: list[float], count: int) -> dict:
    """A ``tensors.jsonl`` line's statistics from a row of sums of a tensor of
    ``count`` elements."""
    n = row[_FINITE]
    finite = n > 0
    mean = row[_SUM] / n if finite else math.nan
    stats = {
        "count": int(count),
        "mean": mean,
        "std": math.sqrt(max(row[_CENTRED_SQ] / n, 0.0)) if finite else math.nan,
        "min": row[_MIN] if finite else math.nan,
        "max": row[_MAX] if finite else math.nan,
        "abs_mean": row[_ABS_SUM] / n if finite else math.nan,
        "l2": math.sqrt(row[_SQ_SUM]) if finite else math.nan,
        "zero_frac": row[_ZEROS] / count if count else 0.0,
        "nonfinite": int(count - n),
    }
    for key, position in (("dead_frac", _DEAD), ("saturated_frac", _SATURATED), ("batch_std", _BATCH_STD)):
        if not math.isnan(row[position]):
            stats[key] = row[position]
    return stats
