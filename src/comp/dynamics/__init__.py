"""Training dynamics: measures of every weight snapshot of a run, and the stages they show.

    comp train parity --save-every log          # keeps snapshots/step_XXXXXX.safetensors
    comp dynamics parity-rotary-s0 --measures acc,heads --lengths 1-32 --json d.json --plot d.html

- :mod:`comp.dynamics.measures`: what is measured on one snapshot (the :data:`MEASURES` registry:
  accuracy by length, head scores, probe accuracy, circuit size and faithfulness);
- :mod:`comp.dynamics.stages`: where a measure changes stage (a head forms, an accuracy jumps);
- :mod:`comp.dynamics.report`: every snapshot of a run measured, as typed results;
- :mod:`comp.views.dynamics`: the measures against the step, stages marked (the plot).
"""

from comp.dynamics.measures import MEASURES
from comp.dynamics.report import Dynamics, SnapshotMeasures, dynamics_run
from comp.dynamics.stages import Stage, find_stages

__all__ = ["MEASURES", "Dynamics", "SnapshotMeasures", "Stage", "dynamics_run", "find_stages"]
