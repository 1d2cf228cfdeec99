"""How well a candidate circuit does: many candidates scored in a few batched passes.

A candidate is given by what it *removes*: a row of ``removed`` ``[K, n_units]`` (1:
ablated) over the units being pruned, nodes (:class:`NodeEvaluator`, ablating a node's
output at its positions with :func:`comp.circuits.interventions.run_edited`) or edges
(:class:`EdgeEvaluator`, path patching with :func:`comp.circuits.edge_patching.run_edges`).
Each candidate is one stacked copy of the batch; :meth:`evaluate` returns, per copy,
``[logit_diff, acc_answer, acc_cot]`` over every answer token of every group:

- ``logit_diff``: logit of the right answer value minus the mean logit of the other
  answer values, averaged over answer tokens (teacher-forced);
- ``acc_answer`` / ``acc_cot``: final-answer and whole-CoT exact match (argmax).
"""

from __future__ import annotations

import torch

from comp.circuits.ablate import check_method
from comp.circuits.data import Group
from comp.circuits.edge_patching import (
    ablated_outputs,
    edge_hooks,
    fork_layer,
    layer_of,
    receiver_hook,
    receiver_hooks,
    run_edges,
    split_inputs,
)
from comp.circuits.graph import Edge, Graph, Node, class_masks, stage
from comp.circuits.interventions import run_edited
from comp.circuits.mid_layer import run_after_attention, start_layer

METRICS = ("logit_diff", "acc_answer", "acc_cot")
# rows per stacked pass (copies x sequences): on CPU, small chunks stay in cache (a 2L4H model
# patches edges about 3x faster at 128-256 rows than at 4096); a GPU wants large ones
CPU_ROWS, GPU_ROWS = 256, 8192


def answer_scores(group: Group, n_classes: int, weights: "torch.Tensor | None" = None):
    """``logits [k, B, pos, V] -> [k, 3]``: sums of (logit difference over answer tokens,
    right final answers, right whole CoTs), row ``b`` counted ``weights[b]`` times (default 1)."""
    batch = group.batch
    target = batch.tokens[:, 1:]  # [B, pos-1]
    mask = batch.loss_mask[:, 1:]  # [B, pos-1]
    last = (batch.answer_pos - 1)[None, :, None]  # [1, B, 1]: where the final answer is predicted

    def reduce(logits: torch.Tensor) -> torch.Tensor:
        lg = logits[:, :, :-1]  # [k, B, pos-1, V]
        digits = lg[..., :n_classes].to(torch.promote_types(lg.dtype, torch.float32))  # [k, B, pos-1, C]
        right = digits.gather(-1, target.clamp(max=n_classes - 1)[None, ..., None].expand(len(lg), -1, -1, 1))[..., 0]
        others = (digits.sum(-1) - right) / max(1, n_classes - 1)
        w = torch.ones(len(target), dtype=digits.dtype, device=digits.device) if weights is None else weights.to(digits)
        diff = ((right - others) * mask).sum(2) @ w  # [k]
        hit = lg.argmax(-1) == target  # [k, B, pos-1]
        cot = (hit | ~mask).all(-1).to(w.dtype) @ w
        answer = hit.gather(2, last.expand(len(lg), -1, 1))[..., 0].to(w.dtype) @ w
        return torch.stack([diff, answer, cot], dim=1)

    return reduce


def distinct_rows(group: Group) -> tuple[Group, torch.Tensor]:
    """The group with each repeated sequence kept once, and how often each appears ``[B']``.
    Short lengths repeat (parity has ``2^L`` inputs of length ``L``): with a mean ablation
    (the same for every row) the weighted sums over distinct rows are the sums over all."""
    unique, inverse, counts = torch.unique(group.batch.tokens, dim=0, return_inverse=True, return_counts=True)
    first = torch.full((len(unique),), len(inverse), dtype=torch.long, device=inverse.device)
    first = first.scatter_reduce(0, inverse, torch.arange(len(inverse), device=inverse.device), "amin")
    order = first.argsort()  # distinct rows in the order they first appear
    return Group(group.task, group.length, group.batch.select(first[order]), group.reference), counts[order]


class Evaluator:
    """Scores candidates over every group (subclasses say what a unit is and how to remove it)."""

    units: list

    def __init__(self, model, graph: Graph, groups: list[Group], method: str = "mean", max_rows: int = 0):
        on_cpu = next(model.parameters()).device.type == "cpu"
        self.model, self.graph = model, graph
        self.max_rows = max_rows or (CPU_ROWS if on_cpu else GPU_ROWS)
        self.replace = check_method(method)
        self.n_tokens = sum(int(g.batch.loss_mask.sum()) for g in groups)
        self.n_rows = sum(len(g.batch.tokens) for g in groups)
        # a mean ablation is the same for every row: a repeated sequence runs once, weighted
        self.groups, self.weights = (list(x) for x in zip(*map(distinct_rows, groups))) if method == "mean" else \
            (list(groups), [None] * len(groups))

    def stage(self, unit) -> int:
        raise NotImplementedError

    def _group(self, group: Group, index: int, removed: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, index: int):
        group = self.groups[index]
        return answer_scores(group, group.task.n_classes, self.weights[index])

    def sources(self, full: torch.Tensor, index: int) -> torch.Tensor:
        """An ablated activation of the reference set ``[B, ...]``, for the rows group ``index`` runs
        (a mean is one row, repeated for as many rows as the group runs, whatever the reference's size)."""
        if self.weights[index] is None:
            return full
        return full[:1].expand(len(self.groups[index].batch.tokens), *full.shape[1:])

    def evaluate(self, removed: torch.Tensor) -> torch.Tensor:
        """``removed [K, n_units] -> [K, 3]``: (logit_diff, acc_answer, acc_cot) of each candidate."""
        totals = sum(self._group(g, i, removed.double()).cpu() for i, g in enumerate(self.groups))
        return totals / torch.tensor([self.n_tokens, self.n_rows, self.n_rows])

    def each_alone(self) -> torch.Tensor:
        """``[n_units, 3]``: every unit removed alone, one batch of copies per stage (copies
        of one stage share the layers before it, which then run once)."""
        stages = torch.tensor([self.stage(u) for u in self.units])
        out = torch.zeros(len(self.units), len(METRICS), dtype=torch.float64)
        for st in stages.unique().tolist():
            idx = (stages == st).nonzero()[:, 0]
            removed = torch.zeros(len(idx), len(self.units), dtype=torch.float64)
            removed[torch.arange(len(idx)), idx] = 1
            out[idx] = self.evaluate(removed).double()
        return out


class NodeEvaluator(Evaluator):
    """Units are :class:`Node` s: removing one ablates its output at its class's positions."""

    def __init__(self, model, graph: Graph, groups: list[Group], method: str = "mean", max_rows: int = 0):
        super().__init__(model, graph, groups, method, max_rows)
        self.units: list[Node] = graph.nodes
        self._sources = []  # per group: {hook: ablated activation [B, pos, ...]}
        hooks = self._hooks()
        for i, g in enumerate(self.groups):
            _, ref = model.run_with_cache(g.reference.tokens, names_filter=lambda n: n in hooks)
            self._sources.append({h: self.sources(self.replace(ref[h]), i) for h in hooks})

    def stage(self, unit: Node) -> int:
        return stage(unit.name, self.graph.n_layers)

    def _hook(self, name: str) -> str:
        if name == "embed":
            return "blocks.0.hook_resid_pre"
        if name.startswith("MLP"):
            return f"blocks.{name[3:]}.hook_mlp_out"
        return f"blocks.{name[1 : name.index('H')]}.attn.hook_z"

    def _hooks(self) -> list[str]:
        return list(dict.fromkeys(self._hook(n.name) for n in self.units))

    def _group(self, group: Group, index: int, removed: torch.Tensor) -> torch.Tensor:
        cm = class_masks(group.task, group.length, self.graph.classes)  # [n_cls, pos]
        n_pos, n_heads, classes = cm.shape[1], self.graph.n_heads, list(self.graph.classes)
        places = {h: torch.zeros(len(self.units), n_pos, *([n_heads] if h.endswith("hook_z") else []), dtype=torch.float64)
                  for h in self._hooks()}
        for u, node in enumerate(self.units):
            at = cm[classes.index(node.cls)].float()  # [pos]
            hook = self._hook(node.name)
            if hook.endswith("hook_z"):
                places[hook][u, :, int(node.name.split("H")[1])] = at
            else:
                places[hook][u] = at
        masks = {h: (removed.to(p.dtype) @ p.flatten(1) > 0).view(len(removed), *p.shape[1:], 1) for h, p in places.items()}
        sources, start = self._sources[index], None
        mid = start_layer(self.model, masks)
        if mid is not None:  # copies start after that layer's attention, run once
            read = torch.cat([group.batch.loss_mask[:, 1:].any(0), group.batch.loss_mask.new_zeros(1)])  # [pos]
            return run_after_attention(self.model, group.batch.tokens, masks, sources, mid, self.scores(index),
                                       self.max_rows, read)
        fork = fork_layer(self.model, masks)
        if fork:  # layers whose edits every copy shares run once, on B rows
            def edit(act: torch.Tensor, hook) -> torch.Tensor:
                return torch.where(masks[hook.name][0], sources[hook.name], act)

            early = [(h, edit) for h in masks if layer_of(h) < fork]
            with torch.no_grad():
                start = fork, self.model.run_with_hooks(group.batch.tokens, fwd_hooks=early, stop_at_layer=fork)
            masks = {h: m for h, m in masks.items() if layer_of(h) >= fork}
        return run_edited(self.model, group.batch.tokens, masks, sources, self.scores(index), self.max_rows, start=start)


class EdgeEvaluator(Evaluator):
    """Units are :class:`Edge` s: removing one path-patches the sender's ablated output
    into the receiver's input at the edge's positions."""

    def __init__(self, model, graph: Graph, groups: list[Group], method: str = "mean", max_rows: int = 0):
        super().__init__(model, graph, groups, method, max_rows)
        self.units: list[Edge] = graph.edges
        self.ablated = [ablated_outputs(model, graph, g.reference.tokens, self.replace) for g in self.groups]  # [B, ...]
        self._places = [self._placements(g) for g in self.groups]

    def stage(self, unit: Edge) -> int:
        return stage(unit.receiver, self.graph.n_layers)

    def _placements(self, group: Group) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per receiver hook: (indices of its edges, where each sits: ``[E_R, S_R, pos(, head)]``)."""
        cm = class_masks(group.task, group.length, self.graph.classes).float()  # [n_cls, pos]
        classes, n_layers = list(self.graph.classes), self.graph.n_layers
        senders = self.graph.senders
        out = {}
        for hook in receiver_hooks(self.graph):
            idx = [i for i, e in enumerate(self.units) if receiver_hook(e.receiver, n_layers) == hook]
            n_s = len(self.graph.upstream(self.units[idx[0]].receiver))
            heads = [self.graph.n_heads] if "_input" in hook else []
            w = torch.zeros(len(idx), n_s, cm.shape[1], *heads, dtype=torch.float64)
            for j, i in enumerate(idx):
                e = self.units[i]
                at = cm[classes.index(e.cls)]
                if heads:
                    w[j, senders.index(e.sender), :, int(e.receiver.split(".")[0].split("H")[1])] = at
                else:
                    w[j, senders.index(e.sender)] = at
            out[hook] = (torch.tensor(idx), w)
        return out

    def masks(self, index: int, removed: torch.Tensor) -> dict[str, torch.Tensor]:
        """Receiver masks ``[K, S_R, pos(, head)]`` of group ``index`` for ``removed [K, n_edges]``."""
        return {h: (removed[:, idx].to(w.dtype) @ w.flatten(1)).view(len(removed), *w.shape[1:])
                for h, (idx, w) in self._places[index].items()}

    def _group(self, group: Group, index: int, removed: torch.Tensor) -> torch.Tensor:
        return run_edges(self.model, group.batch.tokens, self.masks(index, removed),
                         self.sources(self.ablated[index], index), self.scores(index), self.max_rows)

    def attribution(self, alphas: list[float]) -> torch.Tensor:
        """``[n_edges]``: first-order estimate of each edge's effect on the logit difference
        when removed: ``(ablated - clean output) . d metric / d receiver input``, the gradient
        averaged over runs with every edge removed by ``alpha`` (``[0]``: EAP; a grid: EAP-IG)."""
        scores = torch.zeros(len(self.units), dtype=torch.float64)
        for index, group in enumerate(self.groups):
            clean = self._clean_diffs(group, index)  # [1, B, pos, S, d]
            grads: dict[str, torch.Tensor] = {}
            for alpha in alphas:
                store: dict = {}
                removed = torch.full((1, len(self.units)), float(alpha), dtype=torch.float64)
                with split_inputs(self.model):
                    hooks = edge_hooks(self.model, self.masks(index, removed), self.sources(self.ablated[index], index), 1, store)
                    logits = self.model.run_with_hooks(group.batch.tokens, fwd_hooks=hooks)
                    self.scores(index)(logits[None])[0, 0].backward()
                for h, act in store.items():
                    grads[h] = grads.get(h, 0) + act.grad.detach() / len(alphas)
                self.model.zero_grad(set_to_none=True)
            for h, (idx, w) in self._places[index].items():
                g = grads[h]  # [B, pos(, head), d_model]
                d = -clean[0, :, :, : w.shape[1]]  # [B, pos, S_R, d_model]: ablated - clean
                if g.dim() == 4:
                    per = torch.einsum("bphd,bpsd->sph", g, d)  # [S_R, pos, head]
                else:
                    per = torch.einsum("bpd,bpsd->sp", g, d)  # [S_R, pos]
                scores[idx] += w.flatten(1).double() @ per.flatten().double()
        return scores / self.n_tokens

    @torch.no_grad()
    def _clean_diffs(self, group: Group, index: int) -> torch.Tensor:
        """``[1, B, pos, S, d_model]``: each sender's clean output minus its ablated output."""
        clean = ablated_outputs(self.model, self.graph, group.batch.tokens, lambda x: x)
        return (clean - self.sources(self.ablated[index], index))[None]
