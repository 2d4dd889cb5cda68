"""Search criteria -> SQL boolean clauses over the ``resource`` table (or an alias of it).

Every leaf is ``res.pk IN (SELECT res_pk FROM search_x WHERE rtype = .. AND param = .. AND
...)`` so each lookup leads with the ``(rtype, param, value)`` index columns, and the planner is
free to start from whichever criterion it estimates most selective. Chains and ``_has`` join
through ``search_reference`` and apply the caller's restriction to the resources they reach.

Date bounds, with the resource value [rl, rh) and the search range [sl, sh) (high exclusive):
eq rl >= sl and rh <= sh; ne its negation; gt rh > sh; lt rl < sl; ge gt-or-eq, written
rh > sl and (rh > sh or rl >= sl); le lt-or-eq, written rl < sh and (rl < sl or rh <= sh);
sa rl >= sh; eb rh <= sl; overlap rl < sh and rh > sl. The redundant leading bound of ge/le/eq
is what makes them index range scans. On a multi-valued element every operator (``ne``
included) asks whether *some* value of the resource satisfies it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ehr.store.criteria import (
    AllOf,
    AnyOf,
    Chain,
    Criterion,
    DateMatch,
    Has,
    IdMatch,
    LastUpdatedMatch,
    Missing,
    Not,
    Op,
    QuantityMatch,
    ReferenceMatch,
    Restriction,
    StringMatch,
    TokenMatch,
    TokenText,
    UriMatch,
)
from ehr.store.tables import (
    ResourceRow,
    SearchDate,
    SearchQuantity,
    SearchReference,
    SearchString,
    SearchToken,
    SearchUri,
)

R: Any = ResourceRow.__table__  # type: ignore[attr-defined]
S: Any = SearchString.__table__  # type: ignore[attr-defined]
T: Any = SearchToken.__table__  # type: ignore[attr-defined]
D: Any = SearchDate.__table__  # type: ignore[attr-defined]
REF: Any = SearchReference.__table__  # type: ignore[attr-defined]
Q: Any = SearchQuantity.__table__  # type: ignore[attr-defined]
U: Any = SearchUri.__table__  # type: ignore[attr-defined]
TABLE_OF_KIND: dict[str, Any] = {"string": S, "token": T, "date": D, "reference": REF,
                                 "quantity": Q, "uri": U}
# Above every code point, so ``prefix <= v < prefix + TOP`` is "v starts with prefix" in a
# binary collation (SQLite BINARY, PostgreSQL "C").
TOP = "\U0010ffff"


def like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def starts_with(column: Any, prefix: str) -> ColumnElement[bool]:
    return sa.and_(column >= prefix, column < prefix + TOP)


def range_clause(low: Any, high: Any, op: Op, sl: int, sh: int) -> ColumnElement[bool]:
    """The bound comparisons of a [low, high) value against a search range (module doc)."""
    if op == "eq":
        return sa.and_(low >= sl, low < sh, high <= sh)
    if op == "ne":
        return sa.or_(low < sl, high > sh)
    if op == "gt":
        return high > sh
    if op == "lt":
        return low < sl
    if op == "ge":
        return sa.and_(high > sl, sa.or_(high > sh, low >= sl))
    if op == "le":
        return sa.and_(low < sh, sa.or_(low < sl, high <= sh))
    if op == "sa":
        return low >= sh
    if op == "eb":
        return high <= sl
    return sa.and_(low < sh, high > sl)


def _quantity_value(match: QuantityMatch) -> ColumnElement[bool]:
    v, op = Q.c.value, match.op
    if op == "eq":
        cond = sa.and_(v >= match.low, v < match.high)
    elif op == "ne":
        cond = sa.or_(v < match.low, v >= match.high)
    elif op in ("gt", "sa"):
        cond = v > match.low
    elif op in ("lt", "eb"):
        cond = v < match.low
    elif op == "ge":
        cond = v >= match.low
    elif op == "le":
        cond = v <= match.low
    else:
        cond = sa.and_(v >= match.low, v <= match.high)
    if match.system is not None:
        cond = sa.and_(cond, Q.c.system == match.system)
        if match.code is not None:
            cond = sa.and_(cond, Q.c.code == match.code)
    elif match.code is not None:
        cond = sa.and_(cond, sa.or_(Q.c.code == match.code, Q.c.unit == match.code))
    return cond


def _uri_prefixes(uri: str) -> list[str]:
    out = [uri]
    while "/" in uri.rstrip("/").split("://", 1)[-1]:
        uri = uri.rstrip("/").rsplit("/", 1)[0]
        out.append(uri)
    return out


def _leaf(match: Criterion) -> tuple[Any, str, ColumnElement[bool]]:
    """(index table, param, condition on that table) of a leaf criterion."""
    if isinstance(match, StringMatch):
        if match.mode == "exact":
            cond = S.c.exact == match.value
            if match.normalised:
                cond = sa.and_(S.c.value == match.normalised, cond)
        elif match.mode == "contains":
            cond = S.c.value.like(f"%{like_escape(match.value)}%", escape="\\")
        else:
            cond = starts_with(S.c.value, match.value)
        return S, match.param, cond
    if isinstance(match, TokenMatch):
        conds = []
        if match.code is not None:
            conds.append(T.c.code == match.code)
        if match.system is not None:
            conds.append(T.c.system == match.system)
        elif match.no_system:
            conds.append(T.c.system.is_(None))
        return T, match.param, sa.and_(*conds)
    if isinstance(match, TokenText):
        return T, match.param, T.c.text.like(f"%{like_escape(match.text)}%", escape="\\")
    if isinstance(match, DateMatch):
        return D, match.param, range_clause(D.c.low, D.c.high, match.op, match.low, match.high)
    if isinstance(match, QuantityMatch):
        return Q, match.param, _quantity_value(match)
    if isinstance(match, ReferenceMatch):
        if match.url is not None:
            return REF, match.param, REF.c.url == match.url
        cond = REF.c.target_id == match.target_id
        if match.target_types:
            cond = sa.and_(cond, REF.c.target_type.in_(match.target_types))
        return REF, match.param, cond
    if isinstance(match, UriMatch):
        if match.mode == "below":
            return U, match.param, starts_with(U.c.uri, match.uri)
        if match.mode == "above":
            return U, match.param, U.c.uri.in_(_uri_prefixes(match.uri))
        return U, match.param, U.c.uri == match.uri
    raise TypeError(f"not a leaf criterion: {match!r}")


def _index_subquery(table: Any, rtype: str | None, param: str, cond: Any) -> Any:
    stmt = sa.select(table.c.res_pk).where(table.c.param == param, cond)
    if rtype is not None:
        stmt = stmt.where(table.c.rtype == rtype)
    return stmt


def clause(
    rtype: str | None, crit: Criterion, res: Any, restriction: Restriction | None = None
) -> ColumnElement[bool]:
    """SQL condition on ``res`` (resource table or alias) for one criterion."""
    if isinstance(crit, AllOf):
        return sa.and_(sa.true(), *(clause(rtype, c, res, restriction) for c in crit.criteria))
    if isinstance(crit, AnyOf):
        leaves = [c for c in crit.options if not isinstance(c, _COMPOSITE)]
        if len(leaves) == len(crit.options):
            parts = [_leaf(c) for c in leaves]
            if len({(id(t), p) for t, p, _ in parts}) == 1:
                table, param, _ = parts[0]
                cond = sa.or_(*(c for _, _, c in parts))
                return res.c.pk.in_(_index_subquery(table, rtype, param, cond))
        return sa.or_(*(clause(rtype, c, res, restriction) for c in crit.options))
    if isinstance(crit, Not):
        return sa.not_(clause(rtype, crit.criterion, res, restriction))
    if isinstance(crit, IdMatch):
        return res.c.rid.in_(crit.rids)
    if isinstance(crit, LastUpdatedMatch):
        lu = res.c.last_updated
        return range_clause(lu, lu + 1, crit.op, crit.low, crit.high)
    if isinstance(crit, Missing):
        table = TABLE_OF_KIND[crit.kind]
        sub = _index_subquery(table, rtype, crit.param, sa.true())
        return res.c.pk.not_in(sub) if crit.missing else res.c.pk.in_(sub)
    if isinstance(crit, Chain):
        return _chain(rtype, crit, res, restriction)
    if isinstance(crit, Has):
        return _has(crit, res, restriction)
    table, param, cond = _leaf(crit)
    return res.c.pk.in_(_index_subquery(table, rtype, param, cond))


def _chain(
    rtype: str | None, crit: Chain, res: Any, restriction: Restriction | None
) -> ColumnElement[bool]:
    target = R.alias()
    ref = REF.alias()
    per_type = [sa.and_(target.c.rtype == ttype, clause(ttype, inner, target, restriction))
                for ttype, inner in crit.targets]
    stmt = (
        sa.select(ref.c.res_pk)
        .select_from(ref.join(target, sa.and_(target.c.rtype == ref.c.target_type,
                                              target.c.rid == ref.c.target_id)))
        .where(ref.c.param == crit.param, target.c.deleted.is_(False), sa.or_(*per_type))
    )
    if rtype is not None:
        stmt = stmt.where(ref.c.rtype == rtype)
    if restriction is not None:
        stmt = stmt.where(restriction(target))
    return res.c.pk.in_(stmt)


def _has(crit: Has, res: Any, restriction: Restriction | None) -> ColumnElement[bool]:
    source = R.alias()
    ref = REF.alias()
    stmt = (
        sa.select(sa.literal(1))
        .select_from(ref.join(source, source.c.pk == ref.c.res_pk))
        .where(ref.c.rtype == crit.source_type, ref.c.param == crit.param,
               ref.c.target_type == res.c.rtype, ref.c.target_id == res.c.rid,
               source.c.deleted.is_(False),
               clause(crit.source_type, crit.criterion, source, restriction))
    )
    if restriction is not None:
        stmt = stmt.where(restriction(source))
    return sa.exists(stmt)


_COMPOSITE = (AllOf, AnyOf, Not, IdMatch, LastUpdatedMatch, Missing, Chain, Has)


def match_filter(
    rtype: str | None,
    criteria: list[Criterion] | tuple[Criterion, ...],
    res: Any,
    restriction: Restriction | None,
) -> list[ColumnElement[bool]]:
    """Every WHERE condition of a search on ``res``: type, not deleted, criteria, restriction."""
    conds: list[ColumnElement[bool]] = [res.c.deleted.is_(False)]
    if rtype is not None:
        conds.append(res.c.rtype == rtype)
    conds.extend(clause(rtype, c, res, restriction) for c in criteria)
    if restriction is not None:
        conds.append(restriction(res))
    return conds
