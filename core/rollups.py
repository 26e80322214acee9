"""Exact tallies kept by database triggers: a small table of (key…, shard) rows with
counts and sums over a large table, changed in the transaction of every insert, delete
and counted update of a row, so pages read a few rows instead of scanning millions.

Triggers rather than application code: the counted tables change through queryset
updates, bulk creates and cascading deletes that no Django signal sees. Each key is
spread over `shards` rows (row id modulo) so that writers changing rows at once seldom
wait for the same tally row. PostgreSQL and SQLite (the embedded default) both run them.
Keys must never be NULL (a NULL key would defeat the unique constraint): give a
nullable column a COALESCE in its expression."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Rollup:
    """`keys` and `sums`: {tally column: SQL over the counted row, `{row}` standing for
    NEW or OLD}; a vendor-specific key is {column: {"postgresql": …, "sqlite": …}}.
    `watched`: the counted table's columns whose change moves a row between tallies."""

    name: str
    tally_table: str
    counted_table: str
    keys: dict
    sums: dict
    watched: tuple
    shards: int = 16

    def _keys(self, row, vendor):
        exprs = {
            column: (expr[vendor] if isinstance(expr, dict) else expr).format(row=row)
            for column, expr in self.keys.items()
        }
        return {**exprs, "shard": f"{row}.id % {self.shards}"}

    def _change(self, row, sign, vendor):
        """SQL adding `sign` times `row`'s counts to its tally row (made first if new)."""
        keys = self._keys(row, vendor)
        insert = "INSERT OR IGNORE INTO" if vendor == "sqlite" else "INSERT INTO"
        conflict = "" if vendor == "sqlite" else " ON CONFLICT DO NOTHING"
        columns = [*keys, *self.sums]
        values = [*keys.values(), *["0"] * len(self.sums)]
        sums = ", ".join(
            f"{c} = {c} {sign} ({expr.format(row=row)})" for c, expr in self.sums.items()
        )
        where = " AND ".join(f"{c} = {expr}" for c, expr in keys.items())
        return (
            f"{insert} {self.tally_table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(values)}){conflict}; "
            f"UPDATE {self.tally_table} SET {sums} WHERE {where};"
        )

    def _changed(self, vendor):
        op = " IS NOT " if vendor == "sqlite" else " IS DISTINCT FROM "
        return " OR ".join(f"OLD.{c}{op}NEW.{c}" for c in self.watched)

    def install_sql(self, vendor):
        """Statements creating the triggers on this database (PostgreSQL or SQLite)."""
        if vendor == "sqlite":
            return self._row_triggers()
        return self._statement_triggers()

    def _row_triggers(self):
        """SQLite: one trigger run per changed row (it has no statement-level ones)."""
        name, table, vendor = self.name, self.counted_table, "sqlite"
        return [
            f"CREATE TRIGGER {name}_insert AFTER INSERT ON {table} "
            f"BEGIN {self._change('NEW', '+', vendor)} END",
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON {table} "
            f"BEGIN {self._change('OLD', '-', vendor)} END",
            f"CREATE TRIGGER {name}_update AFTER UPDATE ON {table} "
            f"WHEN {self._changed(vendor)} BEGIN {self._change('OLD', '-', vendor)} "
            f"{self._change('NEW', '+', vendor)} END",
        ]

    def _statement_triggers(self):
        """PostgreSQL: one trigger run per statement, over its transition tables, adding
        each key's net change once. A row trigger would update the same tally row once
        per changed row: a bulk insert of N studies in one transaction then leaves a chain
        of N row versions that every later update walks (minutes at 10⁵ rows)."""
        name, table = self.name, self.counted_table
        body = (
            "BEGIN "
            f"IF TG_OP = 'INSERT' THEN {self._net('+', 'new_rows')} "
            f"ELSIF TG_OP = 'DELETE' THEN {self._net('-', 'old_rows')} "
            f"ELSE {self._net('-', 'old_rows', '+', 'new_rows')} END IF; "
            "RETURN NULL; END"
        )
        tables = {
            "insert": "NEW TABLE AS new_rows",
            "delete": "OLD TABLE AS old_rows",
            "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        }
        return [
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ {body} $$",
            *(
                f"CREATE TRIGGER {name}_{op} AFTER {op.upper()} ON {table} "
                f"REFERENCING {refs} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
                for op, refs in tables.items()
            ),
        ]

    def _net(self, *signed):
        """An upsert adding, per key, the sums of the rows of the transition tables in
        `signed` ((sign, table) pairs), skipping keys whose net change is nothing (an
        update of columns no tally reads). Keys in order: writers lock tally rows in the
        same order and cannot deadlock."""
        keys = self._keys("r", "postgresql")
        parts = [
            "SELECT "
            + ", ".join([*(f"{e} AS {c}" for c, e in keys.items()),
                         *(f"{sign}({e.format(row='r')}) AS {c}" for c, e in self.sums.items())])
            + f" FROM {table} AS r"
            for sign, table in zip(signed[::2], signed[1::2], strict=True)
        ]  # fmt: skip
        columns = [*keys, *self.sums]
        sums = [f"SUM(c.{column})" for column in self.sums]
        changed = " OR ".join(f"{total} <> 0" for total in sums)
        update = ", ".join(f"{c} = {self.tally_table}.{c} + EXCLUDED.{c}" for c in self.sums)
        return (
            f"INSERT INTO {self.tally_table} ({', '.join(columns)}) "
            f"SELECT {', '.join([*(f'c.{k}' for k in keys), *sums])} "
            f"FROM ({' UNION ALL '.join(parts)}) AS c "
            f"GROUP BY {', '.join(f'c.{k}' for k in keys)} HAVING {changed} "
            f"ORDER BY {', '.join(f'c.{k}' for k in keys)} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {update};"
        )

    def backfill_sql(self, vendor):
        """One statement making the tallies of the rows already there."""
        keys = self._keys(self.counted_table, vendor)
        sums = [f"SUM({expr.format(row=self.counted_table)})" for expr in self.sums.values()]
        return (
            f"INSERT INTO {self.tally_table} ({', '.join([*keys, *self.sums])}) "
            f"SELECT {', '.join([*keys.values(), *sums])} FROM {self.counted_table} "
            f"GROUP BY {', '.join(keys.values())}"
        )

    def uninstall_sql(self, vendor):
        """Statements dropping every trigger this rollup has ever installed."""
        name, table = self.name, self.counted_table
        if vendor == "sqlite":
            return [f"DROP TRIGGER IF EXISTS {name}_{op}" for op in ("insert", "delete", "update")]
        ops = ("insert_delete", "insert", "delete", "update")  # insert_delete: row triggers
        return [
            *(f"DROP TRIGGER IF EXISTS {name}_{op} ON {table}" for op in ops),
            f"DROP FUNCTION IF EXISTS {name}()",
        ]

    def install(self, apps, schema_editor):
        """A migration's RunPython: the triggers, then the tallies of existing rows."""
        vendor = schema_editor.connection.vendor
        with schema_editor.connection.cursor() as cursor:
            for statement in [*self.install_sql(vendor), self.backfill_sql(vendor)]:
                cursor.execute(statement)

    def reinstall(self, apps, schema_editor):
        """A migration's RunPython moving to this version's triggers (tallies kept)."""
        with schema_editor.connection.cursor() as cursor:
            vendor = schema_editor.connection.vendor
            for statement in [*self.uninstall_sql(vendor), *self.install_sql(vendor)]:
                cursor.execute(statement)

    def uninstall(self, apps, schema_editor):
        with schema_editor.connection.cursor() as cursor:
            for statement in self.uninstall_sql(schema_editor.connection.vendor):
                cursor.execute(statement)
