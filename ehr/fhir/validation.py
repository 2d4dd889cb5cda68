"""Validation of every resource on write: pure functions over the parsed JSON, no database.

Three passes, all of whose issues are reported together:
1. the R4B pydantic model (structure, cardinality, primitive formats, unknown elements);
2. one walk over the generated R4 required-binding table (``bindings``), which also checks the
   syntax of every ``Reference.reference`` (``references``) and nested resource types;
3. the logical id (1 to 64 characters; the models only check the characters).

Problems with the request rather than the content (not an object, no resourceType, type or id
not matching the URL) are 400s; everything else is a 422, as the FHIR REST spec asks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pydantic
import simplejson

from ehr.errors import BadRequest, Issue, NotFound, Unprocessable
from ehr.fhir.bindings import ReferenceVisitor, Scope, check_resource
from ehr.fhir.references import is_valid_id, reference_problem
from ehr.fhir.resource_types import R4_RESOURCE_TYPES, model_class

_REQUIRED_TYPES = frozenset({"missing", "model_field_validation.missing"})
_STRUCTURE_TYPES = frozenset({
    "extra_forbidden", "json_invalid", "list_type", "model_validation_format", "dict_type",
    "model_type", "fhir-validation-wrong-resource-type",
})


def validate_resource(
    data: object,
    *,
    expected_type: str | None = None,
    expected_id: str | None = None,
    allow_conditional_references: bool = False,
    require_id: bool = False,
) -> list[Issue]:
    """Every problem found in a resource body; an empty list means it is valid."""
    request, content = _check(
        data, expected_type=expected_type, expected_id=expected_id,
        allow_conditional_references=allow_conditional_references, require_id=require_id,
    )
    return request + content


def ensure_valid(
    data: object,
    *,
    expected_type: str | None = None,
    expected_id: str | None = None,
    allow_conditional_references: bool = False,
    require_id: bool = False,
) -> None:
    """Raise ``BadRequest`` (400) for a request-level problem, else ``Unprocessable`` (422)."""
    request, content = _check(
        data, expected_type=expected_type, expected_id=expected_id,
        allow_conditional_references=allow_conditional_references, require_id=require_id,
    )
    if request:
        raise BadRequest(issues=request + content)
    if content:
        raise Unprocessable(issues=content)


def validate_json_body(raw: bytes) -> dict[str, Any]:
    """Parse a request body; decimals stay ``Decimal`` so no precision is lost on the way."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"The body is not valid UTF-8 (byte {exc.start})",
                         code="structure") from exc
    if text.startswith("\ufeff"):
        text = text[1:]  # a UTF-8 byte order mark is legal in front of JSON text
    try:
        parsed = simplejson.loads(
            text, use_decimal=True, object_pairs_hook=_object_without_duplicates
        )
    except _DuplicateKey as exc:
        raise BadRequest(f"Malformed JSON: duplicate key {exc.key!r} in an object",
                         code="structure") from exc
    except simplejson.JSONDecodeError as exc:
        raise BadRequest(
            f"Malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            code="structure",
        ) from exc
    except RecursionError as exc:
        raise BadRequest("Malformed JSON: nested too deeply", code="structure") from exc
    except ValueError as exc:
        # e.g. an integer of more digits than Python will convert
        raise BadRequest(f"Malformed JSON: {exc}", code="structure") from exc
    if not isinstance(parsed, dict):
        raise BadRequest(
            f"The body must be a JSON object, not {_json_kind(parsed)}", code="structure"
        )
    return parsed


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which duplicate wins; refusing them keeps what we store unambiguous.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


# -- the passes ---------------------------------------------------------------------------------


def _check(
    data: object,
    *,
    expected_type: str | None,
    expected_id: str | None,
    allow_conditional_references: bool,
    require_id: bool,
) -> tuple[list[Issue], list[Issue]]:
    if not isinstance(data, dict):
        return [Issue("structure", f"A resource must be a JSON object, not {_json_kind(data)}")], []
    rtype = data.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        return [Issue("required", "The resource has no resourceType",
                      expression=("resourceType",))], []

    request = _request_issues(data, rtype, expected_type, expected_id, require_id)
    if rtype not in R4_RESOURCE_TYPES:
        return request, [Issue("invalid", f"Unknown resource type {rtype!r}",
                               expression=("resourceType",))]
    try:
        cls = model_class(rtype)
    except NotFound:
        return request, [Issue("not-supported",
                               f"Resource type {rtype!r} is not supported by this server",
                               expression=("resourceType",))]

    content = _model_issues(cls, data, rtype)
    try:
        walked = check_resource(data, rtype, _reference_visitor(allow_conditional_references))
    except RecursionError:
        walked = [Issue("too-costly", "The resource is nested too deeply", expression=(rtype,))]
    if content is None:
        # fhir.resources crashes instead of reporting on some nested resources (an unknown
        # contained resourceType); the walk names the element, else this keeps it a 422.
        content = [] if walked else [
            Issue("structure", "The resource could not be parsed", expression=(rtype,))]
    content += walked
    content += _control_characters(data, rtype)
    rid = data.get("id")
    if isinstance(rid, str) and not is_valid_id(rid):
        content.append(Issue("value", f"Invalid id {rid!r}: 1 to 64 of A-Z a-z 0-9 - .",
                             expression=(f"{rtype}.id",)))
    return request, _one_per_element(content)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _control_characters(node: object, path: str) -> list[Issue]:
    """FHIR strings may hold no control characters but tab, CR and LF (and NUL breaks
    PostgreSQL text), so they are refused at the element that carries them."""
    found: list[Issue] = []
    if isinstance(node, str):
        if _CONTROL.search(node):
            found.append(Issue("value", "Control characters are not allowed in FHIR strings",
                               expression=(path,)))
    elif isinstance(node, dict):
        for key, value in node.items():
            if key != "resourceType":
                found += _control_characters(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _control_characters(value, f"{path}[{i}]")
    return found


def _request_issues(data: Mapping[str, Any], rtype: str, expected_type: str | None,
                    expected_id: str | None, require_id: bool) -> list[Issue]:
    issues: list[Issue] = []
    if expected_type is not None and rtype != expected_type:
        issues.append(Issue(
            "invalid", f"The resource is a {rtype}, but the request is for {expected_type}",
            expression=(f"{rtype}.resourceType",),
        ))
    rid = data.get("id")
    if rid is None:
        if require_id:
            issues.append(Issue("required", "The resource must have an id matching the URL",
                                expression=(f"{rtype}.id",)))
    elif expected_id is not None and rid != expected_id:
        issues.append(Issue(
            "invalid", f"The resource id {rid!r} does not match the id in the URL "
            f"{expected_id!r}", expression=(f"{rtype}.id",),
        ))
    return issues


def _model_issues(cls: type[pydantic.BaseModel], data: dict[str, Any],
                  rtype: str) -> list[Issue] | None:
    """The model's complaints, or None when the model library itself failed."""
    try:
        cls.model_validate(data)
    except pydantic.ValidationError as exc:
        return [_issue_of(err, rtype) for err in exc.errors()]
    except RecursionError:
        return [Issue("too-costly", "The resource is nested too deeply", expression=(rtype,))]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    return []


def _issue_of(err: Any, rtype: str) -> Issue:
    kind: str = err["type"]
    loc = tuple(part for part in err["loc"] if part != "root")
    path = _fhirpath(rtype, loc)
    if kind in _REQUIRED_TYPES:
        return Issue("required", f"Missing required element {path}", expression=(path,))
    if kind == "extra_forbidden":
        return Issue("structure", f"Unknown element {loc[-1]!r}", expression=(path,))
    if kind == "json_invalid":
        return Issue("structure", "Expected a JSON object", expression=(path,))
    message = str(err["msg"]).removeprefix("Value error, ")
    code = "structure" if kind in _STRUCTURE_TYPES else "value"
    if kind == "value_error" and "but got multiple" in message:
        code = "structure"
    return Issue(code, message, expression=(path,))


def _fhirpath(rtype: str, loc: tuple[Any, ...]) -> str:
    parts = [rtype]
    for part in loc:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts)


def _reference_visitor(allow_conditional: bool) -> ReferenceVisitor:
    def visit(reference: str, path: str, scope: Scope) -> Issue | None:
        problem = reference_problem(
            reference, contained_ids=scope.contained_ids,
            inside_contained=scope.inside_contained, allow_conditional=allow_conditional,
        )
        if problem is None:
            return None
        code = "not-found" if reference.startswith("#") and len(reference) > 1 else "invalid"
        return Issue(code, problem, expression=(path,))
    return visit


def _one_per_element(issues: list[Issue]) -> list[Issue]:
    """Keep the first issue per element: a bad code that also breaks a pattern is one problem."""
    seen: set[tuple[str, ...]] = set()
    out: list[Issue] = []
    for issue in issues:
        if issue.expression and issue.expression in seen:
            continue
        seen.add(issue.expression)
        out.append(issue)
    return out


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__
