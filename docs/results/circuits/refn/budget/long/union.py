"""The 1-16 circuit plus the edges only the circuits found at longer lengths keep (a diagnostic:
chooses nothing).

    python docs/results/circuits/refn/budget/long/union.py MODEL [LENGTHS]   # writes long/MODEL-union[-LENGTHS].json

Reads ``budget/MODEL.json`` (found at lengths 1-16) and ``long/MODEL-L<length>.json`` for each
of LENGTHS (comma-separated, default 64) and writes the first with the others' extra edges
added (their nodes too), for comp circuit score."""
import json
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
m = sys.argv[1]
lengths = sys.argv[2] if len(sys.argv) > 2 else "64"
short = json.loads((here.parent / f"{m}.json").read_text())
have = {e["label"] for e in short["edges"]}
extra = []
for length in lengths.split(","):
    for e in json.loads((here / f"{m}-L{length}.json").read_text())["edges"]:
        if e["label"] not in have:
            have.add(e["label"])
            extra.append(e)
short["edges"] += extra
short["nodes"] = sorted(set(short["nodes"]) | {f"{e['sender']}@{e['cls']}" for e in extra})
short["n_edges"], short["n_nodes"] = len(short["edges"]), len(short["nodes"])
short["effects"].update({e["label"]: None for e in extra})  # the kept units comp circuit score reads (effect not measured)
short["added_from_L64"] = [e["label"] for e in extra]  # (from every length given)
short["added_from_lengths"] = lengths
out = here / (f"{m}-union.json" if lengths == "64" else f"{m}-union-{lengths.replace(',', '-')}.json")
out.write_text(json.dumps(short, indent=1))
print(m, "added", short["added_from_L64"], "->", short["n_edges"], "edges:", out.name)
