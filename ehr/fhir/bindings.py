"""Required-binding checks and the one walk over a resource's typed structure.

fhir.resources accepts any string in a coded element (``Patient.gender: "banana"``), so the codes
of every required binding are checked here against ``data/required_bindings.json``, generated
from the official R4 JSON schema by ``scripts/gen_required_bindings.py``. The table holds only
the elements that can reach such a code, which is also every ``Reference``, so the same walk
hands each ``Reference.reference`` string to a visitor and the validator needs no second pass.

The data is R4 while the models are R4B: the codes come from R4 on purpose, since R4 is what the
server speaks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ehr.errors import Issue
from ehr.fhir.resource_types import R4_RESOURCE_TYPES, has_model

RESOURCE_LIST = "ResourceList"
# Keys fhir.resources accepts through its Python field names but that are not FHIR JSON.
_PYTHON_ONLY_KEYS = frozenset({"fhir_comments", "resource_type"})
_MAX_LISTED_CODES = 12


@dataclass(frozen=True)
class Codes:
    """The codes of one required binding, in the schema's order for messages."""

    allowed: frozenset[str]
    ordered: tuple[str, ...]

    def describe(self) -> str:
        shown = ", ".join(self.ordered[:_MAX_LISTED_CODES])
        more = len(self.ordered) - _MAX_LISTED_CODES
        return shown + (f", ... ({more} more)" if more > 0 else "")


Rule = Codes | str  # a binding, or the name of the definition to descend into
Rules = dict[str, dict[str, Rule]]


@dataclass(frozen=True)
class Scope:
    """Where a local reference (``#id``) resolves: the contained ids of the enclosing resource."""

    contained_ids: frozenset[str]
    inside_contained: bool


# (reference string, its FHIRPath expression, scope) -> an issue or None
ReferenceVisitor = Callable[[str, str, Scope], Issue | None]


@cache
def load_rules() -> Rules:
    """The generated table, read once per process and shared."""
    text = resources.files("ehr.fhir").joinpath("data/required_bindings.json").read_text("utf-8")
    raw: dict[str, dict[str, Any]] = json.loads(text)
    interned: dict[tuple[str, ...], Codes] = {}
    table: Rules = {}
    for name, props in raw.items():
        rules: dict[str, Rule] = {}
        for prop, rule in props.items():
            if isinstance(rule, list):
                key = tuple(rule)
                rules[prop] = interned.setdefault(key, Codes(frozenset(key), key))
            else:
                rules[prop] = rule[1:]  # drop the "@"
        table[name] = rules
    return table


def check_resource(
    resource: Mapping[str, Any],
    path: str,
    on_reference: ReferenceVisitor | None = None,
) -> list[Issue]:
    """Issues for bad required codes and bad nested resources; references go to the visitor.

    ``path`` is the FHIRPath of the resource itself (its type, for a top-level resource).
    Shapes the models reject (a string where an object belongs...) are skipped here: step one
    of validation reports those.
    """
    issues: list[Issue] = []
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        return issues
    walker = _Walker(load_rules(), on_reference, issues)
    rules = walker.rules.get(rtype)
    if rules is not None:
        walker.resource(resource, rules, path, _scope_of(resource, inside_contained=False))
    return issues


def _scope_of(resource: Mapping[str, Any], *, inside_contained: bool) -> Scope:
    contained = resource.get("contained")
    ids: frozenset[str] = frozenset()
    if isinstance(contained, list):
        ids = frozenset(
            c["id"] for c in contained if isinstance(c, dict) and isinstance(c.get("id"), str)
        )
    return Scope(ids, inside_contained)


class _Walker:
    def __init__(self, rules: Rules, on_reference: ReferenceVisitor | None,
                 issues: list[Issue]) -> None:
        self.rules = rules
        self.on_reference = on_reference
        self.issues = issues

    def resource(self, node: Mapping[str, Any], rules: dict[str, Rule], path: str,
                 scope: Scope) -> None:
        if "resource_type" in node:
            self._structure(f"{path}.resource_type", "Unknown element 'resource_type'")
        self.element(node, "", rules, path, scope)

    def element(self, node: Mapping[str, Any], definition: str, rules: dict[str, Rule],
                path: str, scope: Scope) -> None:
        if definition == "Reference" and self.on_reference is not None:
            ref = node.get("reference")
            if isinstance(ref, str):
                issue = self.on_reference(ref, f"{path}.reference", scope)
                if issue is not None:
                    self.issues.append(issue)
        for key, value in node.items():
            rule = rules.get(key)
            if rule is None:
                if key == "fhir_comments" or key.endswith("__ext"):
                    self._structure(f"{path}.{key}", f"Unknown element {key!r}")
                continue
            if isinstance(rule, Codes):
                self._codes(value, rule, f"{path}.{key}")
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        self._descend(item, key, rule, f"{path}.{key}[{i}]", scope)
            elif isinstance(value, dict):
                self._descend(value, key, rule, f"{path}.{key}", scope)

    def _descend(self, node: Mapping[str, Any], key: str, definition: str, path: str,
                 scope: Scope) -> None:
        if definition != RESOURCE_LIST:
            self.element(node, definition, self.rules.get(definition, {}), path, scope)
            return
        rtype = node.get("resourceType")
        if not isinstance(rtype, str):
            self.issues.append(Issue("required", "A nested resource needs a resourceType",
                                     expression=(path,)))
            return
        rules = self.rules.get(rtype) if rtype in R4_RESOURCE_TYPES else None
        if rules is None:
            self.issues.append(Issue("invalid", f"Unknown resource type {rtype!r}",
                                     expression=(f"{path}.resourceType",)))
            return
        if not has_model(rtype):
            self.issues.append(Issue("not-supported",
                                     f"Resource type {rtype!r} is not supported by this server",
                                     expression=(f"{path}.resourceType",)))
            return
        if key == "contained":
            # A contained resource resolves '#id' against its container, and may say '#'.
            inner = Scope(scope.contained_ids, inside_contained=True)
            if node.get("contained"):
                self._structure(f"{path}.contained",
                                "A contained resource cannot contain resources")
        else:
            inner = _scope_of(node, inside_contained=False)
        self.resource(node, rules, path, inner)

    def _codes(self, value: object, codes: Codes, path: str) -> None:
        if isinstance(value, str):
            if value not in codes.allowed:
                self._bad_code(value, codes, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, str) and item not in codes.allowed:
                    self._bad_code(item, codes, f"{path}[{i}]")

    def _bad_code(self, value: str, codes: Codes, path: str) -> None:
        self.issues.append(Issue(
            "code-invalid",
            f"{value!r} is not a valid code for {path}: expected one of {codes.describe()}",
            expression=(path,),
        ))

    def _structure(self, path: str, message: str) -> None:
        self.issues.append(Issue("structure", message, expression=(path,)))
