"""Which numbers in the chapters' ``measured`` comments no executed notebook shows any more.

Usage (from the repository root, after a build or after executing the chapters at other scales)::

    .venv/bin/python scripts/audit_measured.py                       # against _build/jupyter_execute/chapters
    .venv/bin/python scripts/audit_measured.py DIR [DIR ...]          # folders of executed chapters

A notebook assert carries its margin; the comment beside it (``# measured 4.5 (fast), 4.3 (default)``) records what
the run gave when the margin was chosen. Nothing executes a comment, so a change to a chapter or to the library can
leave it stale. This script reads every comment of the stored chapters that says "measured" (``# measured 4.5``, or
``# ... (measured 6.4 × L*)``), from that word on and with the comment lines that continue it. It looks for each
number the comment quotes among what the executed copies of the same chapter print, in the comment's own cell and the
few code cells before it (a chapter often prints in one cell and asserts in the next). A number counts as shown when
some printed number rounds to it at the precision the comment gives, or the other way round (``8.0e4`` is shown by
``8.0e+04`` and by ``80,000``; a percentage also matches its fraction).

Give it executed copies at every scale the comments quote (``OVERPARAM_FAST=1 make book`` executes the fast scale,
``make book`` the reader's default, each into ``_build/jupyter_execute``). What is left is worth a look: a number
that is quoted but never printed (a bound, a count of the widths, a step the cell does not print), or a stale one.
It prints one line per number it could not find and exits 1 if there is any. This is a maintainer's check, not a
test: it matches by value, so a number quoted in a comment can be "shown" by an unrelated output of the same value.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Code cells before a comment's own whose outputs may show its numbers.
CELLS_BEFORE = 4
#: a comment that quotes a measurement: ``# measured 4.5``, or ``# ... (measured 6.4 × L*)`` later in it
MARK = re.compile(r"#.*?\bmeasured\b")
# a number not glued to a word (ℓ4, σ_5, 1e-3's exponent) or to a decimal point: 8.0e4, -7.9e-5, 1,527, 33%, −0.31
NUMBER = re.compile(r"(?<![\w.])[-−]?\d(?:[\d,]*\d)?(?:\.\d+)?(?:e[-+−]?\d+)?%?")


@dataclass(frozen=True)
class Quoted:
    """One number of a ``# measured`` comment: its text, its value, and half a unit of its last digit."""

    text: str
    value: float
    half_unit: float


def parse_number(text: str) -> list[Quoted]:
    """The value(s) a number's text may stand for: a percentage stands for itself and for its fraction."""
    plain = text.replace("−", "-").replace(",", "")
    percent = plain.endswith("%")
    plain = plain.rstrip("%")
    mantissa, _, exponent = plain.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    half_unit = 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0))
    value = float(plain)
    found = [Quoted(text, value, half_unit)]
    if percent:
        found.append(Quoted(text, value / 100, half_unit / 100))
    return found


def numbers_in(text: str) -> list[Quoted]:
    """Every number in ``text``, in order (each percentage twice: as written and as a fraction)."""
    return [q for match in NUMBER.finditer(text) for q in parse_number(match.group())]


def is_shown(quoted: Quoted, printed: list[Quoted]) -> bool:
    """Whether some printed number agrees with ``quoted`` at the coarser of the two precisions (signs aside)."""
    return any(
        abs(abs(quoted.value) - abs(p.value)) <= max(quoted.half_unit, p.half_unit) * (1 + 1e-9)
        for p in printed
    )


def measured_comments(source: str) -> list[str]:
    """A cell's comments that quote a measurement, each from the word "measured" on, joined with the comment lines
    that continue it (up to the next line that is not a comment or quotes another measurement)."""
    lines = source.splitlines()
    comments = []
    for i, line in enumerate(lines):
        mark = MARK.search(line)
        if not mark:
            continue
        text = line[mark.end():]
        for following in lines[i + 1:]:
            stripped = following.strip()
            if not stripped.startswith("#") or MARK.search(stripped):
                break
            text += " " + stripped.lstrip("#").strip()
        comments.append(text.strip())
    return comments


def printed_text(cell: dict) -> str:
    """What an executed code cell printed or displayed as text (streams, Markdown, plain-text results)."""
    parts = []
    for output in cell.get("outputs", []):
        if "text" in output:
            parts.append("".join(output["text"]))
        data = output.get("data", {})
        for kind in ("text/markdown", "text/plain"):
            if kind in data:
                parts.append("".join(data[kind]))
    return "\n".join(parts)


def audit(chapter: Path, executed: list[Path]) -> list[tuple[str, str, str]]:
    """``(cell id, number, comment)`` for each number of ``chapter``'s comments that no executed copy shows.

    Each copy in ``executed`` must be the same notebook executed (the cells are matched by their ids).
    """
    stored = json.loads(chapter.read_text())
    copies = [json.loads(path.read_text()) for path in executed]
    printed_near: dict[str, list[Quoted]] = {}
    for copy in copies:
        code = [c for c in copy["cells"] if c["cell_type"] == "code"]
        for i, cell in enumerate(code):
            window = "\n".join(printed_text(c) for c in code[max(0, i - CELLS_BEFORE): i + 1])
            printed_near.setdefault(cell["id"], []).extend(numbers_in(window))
    missing = []
    for cell in stored["cells"]:
        if cell["cell_type"] != "code":
            continue
        if cell["id"] not in printed_near:
            raise ValueError(f"cell {cell['id']!r} of {chapter.name} is missing from the executed copies: "
                             "execute the chapter as it is stored now")
        for comment in measured_comments("".join(cell["source"])):
            for text in dict.fromkeys(match.group() for match in NUMBER.finditer(comment)):
                if not any(is_shown(q, printed_near[cell["id"]]) for q in parse_number(text)):
                    missing.append((cell["id"], text, comment))
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("executed", nargs="*", type=Path,
                        default=[ROOT / "_build" / "jupyter_execute" / "chapters"],
                        help="folders holding the executed chapters (default: the last build's)")
    args = parser.parse_args()
    for folder in args.executed:
        if not folder.is_dir():
            parser.error(f"executed: {folder} is not a folder of executed notebooks (build the book first, or "
                         "execute the chapters into a folder with jupyter nbconvert --execute)")
    total = 0
    for chapter in sorted((ROOT / "chapters").glob("*.ipynb")):
        copies = [folder / chapter.name for folder in args.executed if (folder / chapter.name).exists()]
        if not copies:
            print(f"{chapter.name}: no executed copy in {', '.join(map(str, args.executed))}", file=sys.stderr)
            total += 1
            continue
        for cell_id, number, comment in audit(chapter, copies):
            total += 1
            print(f"{chapter.stem} {cell_id}: {number} not printed | {comment[:100]}")
    print(f"{total} quoted number(s) that no executed copy shows", file=sys.stderr)
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
