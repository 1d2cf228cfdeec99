"""The computational graph circuit discovery prunes: nodes, edges and position classes.

Nodes (:class:`Node`) are the parts of a model that write into the residual stream, each
at one *position class* of the sequence (``input``: the task token and ``x_1..x_L``;
``eoi``: EoI and any slack; ``answer``: ``s_1..s_L``), or at every position (class
``all``) when classes are not split:

- ``embed``: everything the embeddings write (``blocks.0.hook_resid_pre``);
- every head ``L{l}H{h}`` (its result, ``z @ W_O``) and every MLP ``MLP{l}``;
- ``logits``: the unembedding, the graph's only sink (never ablated).

Edges (:class:`Edge`) run from an upstream output (*sender*: ``embed``, a head, an MLP)
to a downstream input (*receiver*: the ``q``, ``k`` or ``v`` input of each head
separately, an MLP's input, the logits) at one position class. The residual stream is
position-wise, so a sender's output at position ``p`` reaches a receiver's input at the
same ``p``. Removing an edge replaces, in that receiver's input and at those positions
only, the sender's output by its ablated value (path patching).

A graph's order: a sender at stage ``s`` reaches receivers at later stages only
(embed 0; attention of layer ``l``: ``2l + 1``; MLP ``l``: ``2l + 2``; logits ``2L + 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from comp.tasks import Task

CLASSES = ("input", "eoi", "answer")
ALL = "all"
QKV = ("q", "k", "v")


@dataclass(frozen=True)
class Node:
    """One component at one position class: ``name`` is ``embed``, ``L1H0``, ``MLP1`` or ``logits``."""

    name: str
    cls: str = ALL

    @property
    def label(self) -> str:
        return self.name if self.cls == ALL else f"{self.name}@{self.cls}"


@dataclass(frozen=True)
class Edge:
    """From a sender's output to a receiver's input (``L1H0.q``, ``MLP1``, ``logits``) at one class."""

    sender: str
    receiver: str
    cls: str = ALL

    @property
    def label(self) -> str:
        at = "" if self.cls == ALL else f"@{self.cls}"
        return f"{self.sender}{at} -> {self.receiver}"

    @property
    def receiver_node(self) -> str:
        return self.receiver.split(".")[0]


def position_classes(task: Task, length: int) -> list[str]:
    """The class of each position of a sequence of input length ``length``."""
    answers = length if task.cot else 1
    return ["input"] * (length + 1) + ["eoi"] * (1 + task.slack_for(length)) + ["answer"] * answers


def class_masks(task: Task, length: int, classes: tuple[str, ...]) -> torch.Tensor:
    """``[n_classes, pos]`` bool: which positions each class covers (``(ALL,)``: all of them)."""
    labels = position_classes(task, length)
    if classes == (ALL,):
        return torch.ones(1, len(labels), dtype=torch.bool)
    return torch.tensor([[lab == c for lab in labels] for c in classes])


def stage(name: str, n_layers: int) -> int:
    """Where a sender or receiver sits in the forward pass (module docstring)."""
    base = name.split(".")[0]
    if base == "embed":
        return 0
    if base == "logits":
        return 2 * n_layers + 1
    if base.startswith("MLP"):
        return 2 * int(base[3:]) + 2
    return 2 * int(base[1 : base.index("H")]) + 1


@dataclass
class Graph:
    """Every node and edge of one model (``classes``: position classes, or ``("all",)``)."""

    n_layers: int
    n_heads: int
    has_mlps: bool
    classes: tuple[str, ...]

    @classmethod
    def of(cls, model, split_positions: bool = True) -> "Graph":
        c = model.cfg
        return cls(c.n_layers, c.n_heads, not c.attn_only, CLASSES if split_positions else (ALL,))

    @property
    def senders(self) -> list[str]:
        """Upstream outputs in forward order: embed, then each layer's heads and MLP."""
        out = ["embed"]
        for layer in range(self.n_layers):
            out += [f"L{layer}H{h}" for h in range(self.n_heads)]
            out += [f"MLP{layer}"] if self.has_mlps else []
        return out

    @property
    def receivers(self) -> list[str]:
        """Downstream inputs in forward order: each head's q, k, v, each MLP, the logits."""
        out = []
        for layer in range(self.n_layers):
            out += [f"L{layer}H{h}.{x}" for h in range(self.n_heads) for x in QKV]
            out += [f"MLP{layer}"] if self.has_mlps else []
        return out + ["logits"]

    def upstream(self, receiver: str) -> list[str]:
        """The senders that can reach ``receiver``."""
        at = stage(receiver, self.n_layers)
        return [s for s in self.senders if stage(s, self.n_layers) < at]

    @property
    def edges(self) -> list[Edge]:
        return [Edge(s, r, c) for r in self.receivers for s in self.upstream(r) for c in self.classes]

    @property
    def nodes(self) -> list[Node]:
        """The ablatable nodes (every sender at every class); ``logits`` is implied."""
        return [Node(s, c) for s in self.senders for c in self.classes]

