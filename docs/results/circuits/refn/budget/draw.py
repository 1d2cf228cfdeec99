"""The pictures of the budget rule's circuits, drawn from their JSON as ``comp circuit --plot`` draws
them (Chromium), then shrunk to 2/3 and 32 colours with PIL like the keep/ ones.

    python docs/results/circuits/refn/budget/draw.py MODEL...   # writes budget/MODEL.png"""
import json
import sys
from pathlib import Path

from PIL import Image

from comp.views.circuit import circuit_figure
from comp.views.patching import write_figure

here = Path(__file__).resolve().parent
for m in sys.argv[1:]:
    out = here / f"{m}.png"
    write_figure(circuit_figure(json.loads((here / f"{m}.json").read_text())), out)
    img = Image.open(out).convert("RGB")
    img = img.resize((img.width * 2 // 3, img.height * 2 // 3), Image.LANCZOS).quantize(32)
    img.save(out, optimize=True)
    print("wrote", out, img.size)
