"""Circuit analysis on TransformerLens hooks, for every task and encoding.

- :mod:`~comp.circuits.heads`: attention-head scores (previous-token, iteration, EoI, BOS, self);
- :mod:`~comp.circuits.ablate`: accuracy and loss with heads or MLPs ablated (zero, mean, resample);
- :mod:`~comp.circuits.patching`: batched activation patching, equal to ``transformer_lens.patching``;
- :mod:`~comp.circuits.hypotheses`: named circuit hypotheses tested with score, necessity,
  sufficiency and a verdict; :mod:`~comp.circuits.roles` finds the component or group
  playing each role, in the layers asked;
- :mod:`~comp.circuits.discover`: automatic circuit discovery over the nodes and edges of
  :mod:`~comp.circuits.graph` (exact greedy pruning under the targets of
  :mod:`~comp.circuits.pruning`, EAP, EAP-IG), scored by
  :mod:`~comp.circuits.circuit_eval` with path patching (:mod:`~comp.circuits.edge_patching`),
  compared by :mod:`~comp.circuits.circuit_diff`.

They share :mod:`~comp.circuits.data` (evaluation and reference sets, answer steps),
:mod:`~comp.circuits.components` (heads and MLPs by name) and
:mod:`~comp.circuits.interventions` (many edited copies of a batch in one forward pass).
"""
