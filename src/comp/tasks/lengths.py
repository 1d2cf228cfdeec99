"""Length specifications: ``"1-16"`` for training ranges, ``"1-16,24,32"`` for evaluation."""

from __future__ import annotations

from dataclasses import dataclass

from comp.errors import CompError


@dataclass(frozen=True)
class LengthRange:
    """Inclusive range of input lengths ``lo..hi`` sampled uniformly per sequence."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        if self.lo < 1:
            raise CompError(f"length range {self} starts below 1; lengths count input tokens, use 1 or more")
        if self.hi < self.lo:
            raise CompError(f"length range {self.lo}-{self.hi} is inverted; write it low-high, e.g. {self.hi}-{self.lo}")

    def __str__(self) -> str:
        return f"{self.lo}-{self.hi}" if self.lo != self.hi else str(self.lo)

    @classmethod
    def parse(cls, spec: "str | int | LengthRange") -> "LengthRange":
        """Parse ``"1-16"`` or ``"8"``; a :class:`CompError` explains a bad spec."""
        if isinstance(spec, LengthRange):
            return spec
        if isinstance(spec, int):
            return cls(spec, spec)
        lengths = parse_lengths(spec)
        if lengths != list(range(lengths[0], lengths[-1] + 1)):
            raise CompError(f"training lengths {spec!r} must be one contiguous range like 1-16")
        return cls(lengths[0], lengths[-1])


def parse_lengths(spec: str) -> list[int]:
    """Parse ``"1-16,24,32"`` into a sorted list of distinct lengths.

    >>> parse_lengths("1-3,8")
    [1, 2, 3, 8]
    """
    text = str(spec).strip()
    if not text:
        raise CompError("empty length list; give lengths like 1-16 or 1-16,32,64")
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = (int(v) for v in part.split("-", 1))
            else:
                a = b = int(part)
        except ValueError:
            raise CompError(f"bad length {part!r} in {text!r}; write lengths like 1-16 or 1-16,32,64") from None
        if a < 1:
            raise CompError(f"length {a} in {text!r} is below 1; lengths count input tokens, use 1 or more")
        if b < a:
            raise CompError(f"length range {a}-{b} is inverted; write it low-high, e.g. {b}-{a}")
        out.update(range(a, b + 1))
    return sorted(out)
