"""Attention views: circuitsvis ``AttentionHeads`` for every layer, as offline HTML.

circuitsvis's own ``render`` writes a page that imports its JavaScript from unpkg
(or, offline, inlines the 1.3 MB bundle once per view). :func:`attention_page` writes one
self-contained page instead: the bundle that ships inside the installed circuitsvis
wheel (``circuitsvis/dist/cdn/iife.js``, MIT licence) is inlined once, then each layer
is rendered into its own ``<div>``. Nothing is fetched from the network.

Token labels are the task's position labels, ``<task> x1 .. xL EoI s1 .. sL``; the
sequence's values are printed above the views.
"""

from __future__ import annotations

import html
from pathlib import Path

import torch
from transformer_lens.utilities import get_act_name

from comp.catalog import EVAL_SEED
from comp.errors import CompError
from comp.resources import check_fits, row_bytes
from comp.runs.load import load_run_config, load_run_for_lengths
from comp.runs.names import resolve_run
from comp.tasks import Batch, Task, member_task, vocab

_BUNDLE = Path("dist") / "cdn" / "iife.js"


def circuitsvis_bundle() -> str:
    """The circuitsvis browser bundle from the installed package, safe to inline in ``<script>``."""
    import circuitsvis

    path = Path(circuitsvis.__file__).parent / _BUNDLE
    if not path.exists():
        raise CompError(f"circuitsvis {circuitsvis.__version__} ships no {_BUNDLE}; reinstall it: pip install 'circuitsvis>=1.43'")
    return path.read_text(encoding="utf-8").replace("</script", "<\\/script")


def parse_input(spec: str, task: Task) -> torch.Tensor:
    """``"0110"`` (one digit per input) or ``"3,2,10"`` -> [L] tensor, checked against the alphabet."""
    text = spec.strip()
    parts = [p for p in text.replace(",", " ").split() if p] if ("," in text or " " in text) else list(text)
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise CompError(f"bad --input {spec!r}; write digits like 0110, or comma-separated values like 3,2,10") from None
    lo, hi = task.alphabet
    if not values or any(v < lo or v > hi for v in values):
        raise CompError(f"--input {spec!r} must hold 1 or more values in {lo}..{hi} for task {task.name!r}")
    return torch.tensor(values)


def one_sequence(task: Task, input_spec: str = "", length: int = 8, seed: int = 0) -> Batch:
    """A batch of one sequence: the given input, or a random one of ``length`` drawn with ``seed``."""
    if input_spec:
        x = parse_input(input_spec, task)
        return task.make_batch(x[None], torch.tensor([len(x)]))
    if length < 1:
        raise CompError(f"--length {length} is below 1; give the number of input tokens")
    return task.sample(torch.Generator().manual_seed(seed), length, 1)


@torch.no_grad()
def attention_patterns(model, tokens: torch.Tensor) -> torch.Tensor:
    """[layer, head, query_pos, key_pos] attention patterns of one sequence ``tokens`` [pos]."""
    names = [get_act_name("pattern", layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens[None], names_filter=lambda name: name in names)
    return torch.stack([cache[name][0] for name in names]).float().cpu()


def attention_page(patterns: torch.Tensor, labels: list[str], layers: list[int], title: str, caption: str) -> str:
    """A self-contained HTML page: one circuitsvis ``AttentionHeads`` view per layer."""
    from circuitsvis.utils.convert_props import convert_props

    sections = []
    for layer in layers:
        props = convert_props(
            {
                "attention": patterns[layer],  # [head, query_pos, key_pos]
                "tokens": labels,
                "attentionHeadNames": [f"L{layer}H{h}" for h in range(patterns.shape[1])],
            }
        ).replace("</", "<\\/")  # no tag can close the <script> early
        div = f"attention-layer-{layer}"
        sections.append(
            f'<h2>Layer {layer}</h2>\n<div id="{div}" class="attention-view"></div>\n'
            f'<script>CircuitsVis.render("{div}", CircuitsVis.AttentionHeads, {props});</script>'
        )
    body = "\n".join(sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>body {{ font-family: sans-serif; margin: 20px; }} pre {{ background: #f4f4f4; padding: 8px; }}</style>
<script>{circuitsvis_bundle()}</script>
</head>
<body>
<h1>{html.escape(title)}</h1>
<pre>{html.escape(caption)}</pre>
{body}
</body>
</html>
"""


def attention_view(model, task: Task, batch: Batch, layer: "int | None" = None, title: str = "") -> str:
    """The HTML page of every head (of every layer, or of ``layer``) on the one sequence of
    ``batch``, drawn from the single task ``task`` (a mixture's member, see :func:`member_task`)."""
    n_layers = model.cfg.n_layers
    if layer is not None and not 0 <= layer < n_layers:
        raise CompError(f"--layer {layer} does not exist; this model has layers 0..{n_layers - 1}")
    tokens = batch.tokens[0].to(next(model.parameters()).device)
    width, shown = tokens.shape[0], (1 if layer is not None else n_layers)
    html_bytes = shown * model.cfg.n_heads * width * width * 12  # every weight as JSON text
    check_fits(row_bytes(model.cfg, width, cached_patterns=n_layers) + html_bytes, tokens.device,
               f"an attention view of {width} tokens", "use a shorter --length or --input, or one --layer")
    labels = task.position_labels(int(batch.lengths[0]))
    patterns = attention_patterns(model, tokens)
    caption = "\n".join(
        [" ".join(f"{lab:>5}" for lab in labels), " ".join(f"{vocab.token_name(int(t)):>5}" for t in tokens)]
    )
    layers = [layer] if layer is not None else list(range(n_layers))
    return attention_page(patterns, labels, layers, title or "attention patterns", caption)


def attention_html(
    ckpt: str, input_spec: str = "", length: int = 0, seed: int = EVAL_SEED, layer: "int | None" = None, task: str = "",
    device: str = "cpu",
) -> str:
    """The attention page of a run on a given input, or on a random one of ``length`` (default:
    the longest training length). ``task`` picks a member of a multi-task run."""
    cfg = load_run_config(resolve_run(ckpt))
    single = member_task(cfg.task.build(), task)
    n = len(parse_input(input_spec, single)) if input_spec else (length or cfg.train.lengths.hi)
    run = load_run_for_lengths(ckpt, [n], device=device)
    batch = one_sequence(single, input_spec, n, seed)
    return attention_view(run.model, single, batch, layer, title=f"{run.name}: attention on {single.name}, L={n}")
