"""Linear probes and control tasks.

A probe is multinomial logistic regression (softmax over the label classes; binary
targets are the two-class case) on standardised activations, fitted full-batch with
L-BFGS and an L2 penalty. It starts from zero weights and the problem is convex, so a
fit is deterministic: no seed is needed.

Selectivity (Hewitt & Liang 2019, "Designing and Interpreting Probes with Control
Tasks") is the probe's test accuracy on the true labels minus its accuracy on a
*control task*: labels with the same structure but no meaning. The true label of a site
is a fixed function of a few variables (for ``s_t``: the task, the step t and the inputs
``x_1..x_t``, see ``comp.probes.sites.CONDITIONS``); the control label is a fixed
*random* function of the same variables and of the site's token, dealing out label
values in the true labels' training proportions. A probe that scores as well on the control task is reading
"which sequence is this", from which it could compute anything; a selective probe
reads the property itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class ProbeScore:
    """Test-set result of one probe."""

    acc: float  # test accuracy
    chance: float  # test accuracy of always answering the most common training label
    n_classes: int  # distinct labels over train and test


class LinearProbe(torch.nn.Module):
    """``softmax(W (x - mean) / std + b)`` over ``n_classes`` labels."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, n_classes: int):
        super().__init__()
        self.register_buffer("mean", mean)  # [d]
        self.register_buffer("std", std)  # [d]
        self.linear = torch.nn.Linear(mean.shape[0], n_classes)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((x - self.mean) / self.std)  # [n, n_classes]


def fit_probe(
    x: torch.Tensor, y: torch.Tensor, n_classes: int, steps: int = 200, weight_decay: float = 1e-3
) -> LinearProbe:
    """Fit a probe to activations ``x`` [n, d] and labels ``y`` [n] in ``0..n_classes-1``."""
    x = x.float()
    probe = LinearProbe(x.mean(0), x.std(0).clamp_min(1e-6), n_classes).to(x.device)
    params = list(probe.linear.parameters())
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(probe(x), y) + weight_decay * probe.linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return probe.eval()


def encode_labels(y_train: torch.Tensor, y_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Map raw label values (e.g. positions 1..16) to class indices 0..K-1 shared by both splits."""
    values, inverse = torch.unique(torch.cat([y_train, y_test]), return_inverse=True)
    return inverse[: len(y_train)], inverse[len(y_train) :], len(values)


@torch.no_grad()
def probe_score(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    steps: int = 200,
    weight_decay: float = 1e-3,
) -> ProbeScore:
    """Fit on the training split, score on the test split. Labels are raw values."""
    c_train, c_test, k = encode_labels(y_train, y_test)
    probe = fit_probe(x_train, c_train, k, steps, weight_decay)
    acc = (probe(x_test.float()).argmax(-1) == c_test).float().mean().item()
    majority = torch.bincount(c_train, minlength=k).argmax()
    chance = (c_test == majority).float().mean().item()
    return ProbeScore(acc=acc, chance=chance, n_classes=k)


def control_labels(
    cond_train: torch.Tensor, cond_test: torch.Tensor, y_train: torch.Tensor, gen: torch.Generator, tries: int = 100
) -> tuple[torch.Tensor, torch.Tensor]:
    """Control-task labels: a fixed random label per distinct row ("type") of the
    conditioning variables ``cond_*`` [n, k] (widths may differ; the narrower is padded
    with -1).

    Types are shuffled and dealt label values in proportion to the true training labels'
    frequencies, so the control uses every value in about the true proportions. A deal
    that is only a renaming of the true labels (a one-to-one map between true and control
    values on the training sites) is redealt, up to ``tries`` times: a softmax probe scores
    the same on a renaming, so it would say nothing. When the types allow nothing else (a
    single type per label), the renaming stays and selectivity is 0.
    """
    width = max(cond_train.shape[1], cond_test.shape[1])
    padded = [F.pad(c, (0, width - c.shape[1]), value=-1) for c in (cond_train, cond_test)]
    types, inverse = torch.unique(torch.cat(padded), dim=0, return_inverse=True)
    values, counts = torch.unique(y_train, return_counts=True)
    n = len(types)
    quantiles = (torch.arange(n, dtype=torch.float64) + 0.5) / n  # [n_types]
    cumulative = (counts.cpu().double().cumsum(0) / counts.sum().item())[:-1]
    dealt = torch.searchsorted(cumulative, quantiles, right=True)  # label index of the i-th type in the shuffle
    for _ in range(tries):
        label_of_type = values[dealt[torch.randperm(n, generator=gen)].to(values.device)]  # [n_types]
        labels = label_of_type[inverse]
        c_train = labels[: len(cond_train)]
        if not _renaming(y_train, c_train):
            break
    return c_train, labels[len(cond_train) :]


def _renaming(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether labels ``b`` are a one-to-one relabelling of labels ``a``."""
    pairs = torch.unique(torch.stack([a, b], dim=1), dim=0)
    return len(pairs) == len(torch.unique(a)) == len(torch.unique(b))
