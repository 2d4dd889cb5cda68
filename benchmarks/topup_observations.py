"""Fill a partly loaded benchmark database up to N Observations by cloning rows in SQL.

Benchmark-only shortcut, for when the machine is too busy to push 200 k resources through
``ehr load`` in the time available. It starts from what ``ehr load`` of a
``gen_observations.py`` file already stored (all the Patients come first in that file, then 100
Observations per patient) and, for every patient that has no Observation yet, copies the
current rows, history rows and every search index row of a loaded patient's Observations, with
the new ids, the new ``subject`` reference (in the JSON and in ``search_reference``) and fresh
keys. The result has the same row shapes, index contents and per-patient density as a full
load; only the values (dates, measurements) repeat those of the template patients.

Usage::

    python benchmarks/topup_observations.py --url postgresql+psycopg://...DB --patients 2000
"""

from __future__ import annotations

import argparse
import time

from sqlalchemy import create_engine, text

INDEX_TABLES = ("search_string", "search_token", "search_date", "search_reference",
                "search_quantity", "search_uri")


def _columns(conn: object, table: str, skip: set[str]) -> list[str]:
    rows = conn.execute(text(  # type: ignore[attr-defined]
        "SELECT column_name FROM information_schema.columns WHERE table_name = :t "
        "ORDER BY ordinal_position"), {"t": table}).all()
    return [r[0] for r in rows if r[0] not in skip]


def _renamed(expr: str) -> str:
    """SQL rewriting a resource's JSON: its id and its Patient reference."""
    new_id = "'\"id\":\"' || m.new_rid || '\"'"
    old_id = "'\"id\":\"' || r.rid || '\"'"
    old_ref = "'\"Patient/bench-p' || m.old_pat || '\"'"
    new_ref = "'\"Patient/bench-p' || m.new_pat || '\"'"
    return f"replace(replace({expr}, {old_id}, {new_id}), {old_ref}, {new_ref})"


def top_up(url: str, patients: int) -> dict[str, int]:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("""
            CREATE TEMP TABLE tmpl ON COMMIT DROP AS
            SELECT pk AS old_pk, rid,
                   substring(rid from '^bench-o([0-9]+)-')::int AS pat,
                   substring(rid from '-([0-9]+)$')::int AS n
            FROM resource WHERE rtype = 'Observation' AND rid LIKE 'bench-o%'"""))
        loaded = [r[0] for r in conn.execute(text(
            "SELECT pat FROM tmpl GROUP BY pat HAVING count(*) = (SELECT max(c) FROM "
            "(SELECT count(*) c FROM tmpl GROUP BY pat) x) ORDER BY pat")).all()]
        present = {r[0] for r in conn.execute(text("SELECT DISTINCT pat FROM tmpl")).all()}
        missing = [j for j in range(patients) if j not in present]
        if not loaded or not missing:
            return {"cloned_patients": 0, "cloned_observations": 0}
        conn.execute(text("CREATE TEMP TABLE want (new_pat int, old_pat int) ON COMMIT DROP"))
        conn.execute(text("INSERT INTO want VALUES (:j, :t)"),
                     [{"j": j, "t": loaded[i % len(loaded)]} for i, j in enumerate(missing)])
        conn.execute(text("""
            CREATE TEMP TABLE m ON COMMIT DROP AS
            SELECT t.old_pk, nextval('resource_pk_seq') AS new_pk, w.old_pat, w.new_pat,
                   'bench-o' || w.new_pat || '-' || t.n AS new_rid
            FROM want w JOIN tmpl t ON t.pat = w.old_pat"""))
        cols = _columns(conn, "resource", {"pk", "rid", "content"})
        conn.execute(text(
            f"INSERT INTO resource (pk, rid, content, {', '.join(cols)}) "
            f"SELECT m.new_pk, m.new_rid, {_renamed('r.content')}, "
            f"{', '.join('r.' + c for c in cols)} FROM m JOIN resource r ON r.pk = m.old_pk"))
        cols = _columns(conn, "resource_version", {"seq", "res_pk", "rid", "content"})
        conn.execute(text(
            f"INSERT INTO resource_version (res_pk, rid, content, {', '.join(cols)}) "
            f"SELECT m.new_pk, m.new_rid, {_renamed('v.content')}, "
            f"{', '.join('v.' + c for c in cols)} "
            "FROM m JOIN resource_version v ON v.res_pk = m.old_pk "
            "JOIN resource r ON r.pk = m.old_pk"))
        for table in INDEX_TABLES:
            cols = _columns(conn, table, {"id", "res_pk"})
            select = ["s." + c for c in cols]
            if table == "search_reference":
                select = [("CASE WHEN s.target_type = 'Patient' AND s.target_id = 'bench-p' || "
                           "m.old_pat THEN 'bench-p' || m.new_pat ELSE s.target_id END")
                          if c == "target_id" else "s." + c for c in cols]
            conn.execute(text(
                f"INSERT INTO {table} (res_pk, {', '.join(cols)}) "
                f"SELECT m.new_pk, {', '.join(select)} FROM m JOIN {table} s "
                "ON s.res_pk = m.old_pk"))
        cloned = int(conn.execute(text("SELECT count(*) FROM m")).scalar_one())
    engine.dispose()
    return {"cloned_patients": len(missing), "cloned_observations": cloned}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--patients", type=int, required=True,
                        help="patients in the generated file (bench-p0 .. bench-p<N-1>)")
    args = parser.parse_args(argv)
    t0 = time.monotonic()
    result = top_up(args.url, args.patients)
    print(f"{result} in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
