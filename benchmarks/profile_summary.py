"""Summarise py-spy ``--format raw`` output (collapsed stacks): top functions, self and total.

Usage::

    py-spy record -r 100 -f raw -o prof.raw -p PID -d 15
    python benchmarks/profile_summary.py prof.raw [--top 25] [--filter ehr/]

"Total" counts a sample once for every distinct function on its stack (inclusive time); "self"
counts only the innermost frame. Frames are shown as ``function (file:line-less)`` so that the
same function called from several lines adds up.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::\d+)?\)$")
# Site-packages paths are long and say little; keep the package-relative part.
_TRIM = re.compile(r"^.*?/(?:site-packages|lib/python3\.\d+)/")


def frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = _TRIM.sub("", match.group("file"))
    path = re.sub(r"^.*/work/main/", "", path)
    return f"{match.group('func')} ({path})"


def summarise(lines: list[str]) -> tuple[int, Counter[str], Counter[str]]:
    total: Counter[str] = Counter()
    own: Counter[str] = Counter()
    samples = 0
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [frame_name(f) for f in stack.split(";") if f]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            total[name] += count
    return samples, own, total


def render(samples: int, own: Counter[str], total: Counter[str], top: int,
           needle: str | None) -> str:
    def rows(counter: Counter[str]) -> list[str]:
        picked = [(n, c) for n, c in counter.most_common() if not needle or needle in n][:top]
        return [f"  {100.0 * c / samples:5.1f}%  {n}" for n, c in picked]

    out = [f"{samples} samples", "", "inclusive (on the stack):"]
    out += rows(total)
    out += ["", "self (innermost frame):"]
    out += rows(own)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Summarise py-spy raw output")
    parser.add_argument("raw", type=Path, nargs="+")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--filter", default=None, help="only frames containing this text")
    args = parser.parse_args(argv)
    lines: list[str] = []
    for path in args.raw:
        lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    samples, own, total = summarise(lines)
    if not samples:
        print("no samples")
        return 1
    print(render(samples, own, total, args.top, args.filter))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
