"""The one vocabulary every task shares, so checkpoints of different tasks compare.

Token ids (``d_vocab = 32``)::

    0..10   the digits 0..10 (parity and copy use 0/1, polynomial iteration 0..10)
    11      PAD     right padding after a sequence ends (never attended by real tokens)
    12      EOI     end of input; the answer region starts after it
    13      SLACK   a filler token between EOI and the answer (``--slack k``)
    16..31  task tokens: the first token of every sequence names its task

A digit's id equals its value, so ``tokens[i]`` reads directly as a number.
"""

from __future__ import annotations

N_DIGITS = 11
PAD = 11
EOI = 12
SLACK = 13
FIRST_TASK_TOKEN = 16
D_VOCAB = 32

# Task tokens are appended, never renumbered, so old checkpoints stay readable.
TASK_TOKENS: dict[str, int] = {
    "parity": 16,
    "parity_nocot": 17,
    "copy": 18,
    "polynomial": 19,
}

_SPECIAL = {PAD: "PAD", EOI: "EoI", SLACK: "_"}


def token_name(token: int) -> str:
    """Readable name of one token id (``'1'``, ``'EoI'``, ``'<parity>'``)."""
    if 0 <= token < N_DIGITS:
        return str(token)
    if token in _SPECIAL:
        return _SPECIAL[token]
    for name, tok in TASK_TOKENS.items():
        if tok == token:
            return f"<{name}>"
    return f"<{token}>"


def decode(tokens: list[int]) -> str:
    """Space-separated readable form of a token sequence, PAD dropped."""
    return " ".join(token_name(t) for t in tokens if t != PAD)
