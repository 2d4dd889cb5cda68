"""An independent reference implementation of the instrument scoring, written from the
published rules (../shared/reference/clinical.md section 1 and the instruments' manuals), not
from the service's data files: the tests compare the service against it.

Answers: link id -> points for ordinal items, True/False for yes/no items.
"""

from __future__ import annotations

from collections.abc import Mapping

Answers = Mapping[str, int | bool]


def _n(answers: Answers, *items: int) -> list[int]:
    return [int(answers[str(i)]) for i in items]


def _band(total: int, table: list[tuple[int, str]]) -> str:
    """``table``: (lowest total of the band, band), ascending."""
    out = table[0][1]
    for low, name in table:
        if total >= low:
            out = name
    return out


def phq9(a: Answers) -> tuple[int, str]:
    total = sum(_n(a, *range(1, 10)))
    return total, _band(total, [(0, "minimal"), (5, "mild"), (10, "moderate"),
                                (15, "moderately-severe"), (20, "severe")])


def gad7(a: Answers) -> tuple[int, str]:
    total = sum(_n(a, *range(1, 8)))
    return total, _band(total, [(0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")])


def pcl5(a: Answers) -> tuple[int, str, dict[str, int], bool]:
    b, c, d, e = (_n(a, *range(1, 6)), _n(a, 6, 7), _n(a, *range(8, 15)),
                  _n(a, *range(15, 21)))
    total = sum(b) + sum(c) + sum(d) + sum(e)

    def endorsed(values: list[int]) -> int:
        return sum(1 for v in values if v >= 2)  # "Moderately" or more

    dsm = endorsed(b) >= 1 and endorsed(c) >= 1 and endorsed(d) >= 2 and endorsed(e) >= 2
    clusters = {"pcl5-cluster-b": sum(b), "pcl5-cluster-c": sum(c),
                "pcl5-cluster-d": sum(d), "pcl5-cluster-e": sum(e)}
    return total, ("provisional-ptsd" if total >= 33 else "below-cutoff"), clusters, dsm


def audit(a: Answers) -> tuple[int, str]:
    total = sum(_n(a, *range(1, 11)))
    return total, _band(total, [(0, "low-risk"), (8, "hazardous"), (16, "harmful"),
                                (20, "probable-dependence")])


def audit_c(a: Answers, sex: str | None) -> tuple[int, str]:
    total = sum(_n(a, 1, 2, 3))
    cut = 4 if sex == "male" else 3
    return total, "positive" if total >= cut else "negative"


def dast10(a: Answers) -> tuple[int, str]:
    # Every "yes" scores 1, except item 3 ("always able to stop"), where "no" scores 1.
    total = sum(1 for i in range(1, 11) if a[str(i)] is (i != 3))
    return total, _band(total, [(0, "none"), (1, "low"), (3, "moderate"), (6, "substantial"),
                                (9, "severe")])


def madrs(a: Answers) -> tuple[int, str]:
    total = sum(_n(a, *range(1, 11)))
    return total, _band(total, [(0, "normal"), (7, "mild"), (20, "moderate"), (35, "severe")])


def qids(a: Answers) -> tuple[int, str]:
    v = {i: int(a[str(i)]) for i in range(1, 17)}
    total = (max(v[1], v[2], v[3], v[4]) + v[5] + max(v[6], v[7], v[8], v[9]) + v[10] + v[11]
             + v[12] + v[13] + v[14] + max(v[15], v[16]))
    return total, _band(total, [(0, "none"), (6, "mild"), (11, "moderate"), (16, "severe"),
                                (21, "very-severe")])


def cssrs(a: Answers) -> str:
    def yes(link: str) -> bool:
        return a.get(link) is True

    if yes("4") or yes("5") or yes("6-recent"):
        return "high-risk"
    if yes("3") or yes("6"):
        return "moderate-risk"
    return "low-risk"


def cadss(a: Answers, items: tuple[int, ...]) -> int:
    return sum(_n(a, *items))


def moaas(a: Answers) -> tuple[int, str]:
    value = int(a["1"])
    return value, "sedation-warning" if value <= 3 else "responsive"
