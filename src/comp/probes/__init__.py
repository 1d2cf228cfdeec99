"""Linear probes on the residual stream, with control tasks (Hewitt & Liang 2019).

``probe_run("parity-rotary-s0", "s_t")`` fits one probe per residual-stream point
(``resid_pre``/``resid_mid`` of every block and the final ``resid_post``) and position
class (input, EoI, answer, and slack where the task has it) and reports test accuracy and selectivity. Targets and
position classes are defined in :mod:`comp.probes.sites`; the probe and the control
task in :mod:`comp.probes.linear`.
"""

from comp.probes.analysis import probe_model, probe_run, residual_activations, residual_points
from comp.probes.linear import LinearProbe, ProbeScore, control_labels, fit_probe, probe_score
from comp.probes.sites import POSITION_CLASSES, TARGETS, Sites, find_sites

__all__ = [
    "POSITION_CLASSES",
    "TARGETS",
    "LinearProbe",
    "ProbeScore",
    "Sites",
    "control_labels",
    "find_sites",
    "fit_probe",
    "probe_model",
    "probe_run",
    "probe_score",
    "residual_activations",
    "residual_points",
]
