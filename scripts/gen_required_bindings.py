"""Generate ehr/fhir/data/required_bindings.json from the official R4 JSON schema.

fhir.resources accepts any string in a coded element, so the server checks required bindings
itself. The schema carries every required binding as an ``enum``; this keeps, for each
definition, only the properties that hold such a code or lead (``$ref`` / ``items.$ref``) to a
definition that eventually does, so the walker never descends into parts that cannot fail.

Format: ``{definition: {property: [codes...] | "@Definition"}}``; ``"@ResourceList"`` marks a
nested resource (contained, Bundle.entry.resource, Parameters.parameter.resource) that the
walker dispatches on its own ``resourceType``.

Usage: python scripts/gen_required_bindings.py [SCHEMA] [OUT]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SCHEMA = ROOT.parent / "shared" / "fhir-data" / "schema" / "fhir.schema.json"
DEFAULT_OUT = ROOT / "ehr" / "fhir" / "data" / "required_bindings.json"
RESOURCE_LIST = "ResourceList"
PREFIX = "#/definitions/"


def _target(prop: dict[str, Any]) -> str | None:
    ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
    if ref is None:
        return None
    assert ref.startswith(PREFIX), ref
    return str(ref[len(PREFIX):])


def _codes(prop: dict[str, Any]) -> list[str] | None:
    enum = prop.get("enum") or prop.get("items", {}).get("enum")
    return list(enum) if enum else None


def build(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    definitions: dict[str, dict[str, Any]] = schema["definitions"]
    props = {name: d.get("properties", {}) for name, d in definitions.items()}
    # Every resource has an enum somewhere (Meta -> ... -> Quantity.comparator), so a nested
    # resource is always worth walking.
    relevant = {RESOURCE_LIST} | {
        name for name, p in props.items() if any(_codes(v) for v in p.values())
    }
    changed = True
    while changed:
        changed = False
        for name, p in props.items():
            if name not in relevant and any(_target(v) in relevant for v in p.values()):
                relevant.add(name)
                changed = True

    out: dict[str, dict[str, Any]] = {}
    for name in sorted(relevant - {RESOURCE_LIST}):
        rules: dict[str, Any] = {}
        for pname, prop in props[name].items():
            if pname == "resourceType":
                continue
            codes = _codes(prop)
            target = _target(prop)
            if codes:
                rules[pname] = codes
            elif target in relevant:
                rules[pname] = "@" + target
        if rules:
            out[name] = rules
    for rtype in schema["discriminator"]["mapping"]:
        assert rtype in out, f"resource {rtype} has no binding path"
    assert "Reference" in out, "the walker finds references through the Reference definition"
    return out


def render(rules: dict[str, dict[str, Any]]) -> str:
    # One definition per line: compact, yet a regenerated file diffs readably.
    lines = [
        f"{json.dumps(name)}: {json.dumps(body, separators=(',', ':'))}"
        for name, body in rules.items()
    ]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: list[str]) -> int:
    schema_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_SCHEMA
    out_path = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUT
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    rules = build(schema)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render(rules), encoding="utf-8")
    print(f"wrote {len(rules)} definitions to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
