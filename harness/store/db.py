"""The durable results store of one campaign run: ``<run_dir>/results.sqlite``.

Why SQLite: it is one file inside the run folder (copy the folder, keep the results), it is in
the standard library, pandas reads it directly, and every append is a real transaction. The
database runs in WAL mode with ``synchronous=FULL``: each committed measurement is on disk
before :meth:`ResultStore.add_measurement` returns, a crash or SIGKILL between two writes loses
nothing that was committed and never leaves a half-written row, and a live display can read
while the runner writes. The data are a few thousand rows per campaign, so an analytical engine
such as DuckDB would add a dependency without a benefit.

Duplicates: ``(config_id, repetition)`` is UNIQUE. Adding a repetition that is already stored
raises :class:`DuplicateMeasurement` (or returns False with ``ignore_duplicate=True``); a resumed
campaign asks :meth:`ResultStore.completed_repetitions` and measures only what is missing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.config.limits import inside
from harness.errors import HarnessError
from harness.store import schema
from harness.store.hostinfo import git_state, host_info
from harness.store.storage import StorageError, from_os_error, from_sqlite_error
from harness.store.traces import trace_relpath, write_npz_atomic

if TYPE_CHECKING:
    import pandas as pd

DB_NAME = "results.sqlite"


class StoreError(HarnessError):
    """The results store is missing, from a newer harness, or asked to do something inconsistent."""


class DuplicateMeasurement(StoreError):
    """A (config_id, repetition) pair is already stored."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """Turn numpy scalars, bools, paths and containers into values sqlite3 can store."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _check_fields(kind: str, fields: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {kind} field(s) {unknown}; known: {', '.join(allowed)} (or pass extra={{...}})")


class ResultStore:
    """Results of one campaign run. ``path`` is the run folder or the ``.sqlite`` file itself.

    Use as a context manager; every write method commits its own transaction. A connection
    belongs to one thread: a live display in another thread or process opens its own store
    (WAL lets it read while the runner writes)."""

    def __init__(self, path: str | Path, create: bool = True, timeout_s: float = 30.0):
        p = Path(path)
        self.path = p if p.suffix in (".sqlite", ".db") else p / DB_NAME
        self.run_dir = self.path.parent
        if not self.path.exists():
            if not create:
                raise StoreError(f"no results store at {self.path} (is this a campaign run folder?)")
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise (from_os_error(exc, self.run_dir) or exc) from exc
        self.session_id: int | None = None
        self._db: sqlite3.Connection | None = None
        try:
            self._db = conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self.close()
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise StoreError(f"{self.path} is locked by another writer for over {timeout_s:g} s") from exc
            storage = from_sqlite_error(exc, self.path)
            if storage is not None:
                raise storage from exc
            raise StoreError(f"{self.path} is not a readable results store: {exc}") from exc
        except StorageError:
            self.close()
            raise

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def _conn(self) -> sqlite3.Connection:
        """The open connection; using the store after close() is a StoreError, not a None crash."""
        if self._db is None:
            raise StoreError(f"{self.path}: the results store is closed")
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a full or read-only disk rolls it back and raises StorageError
        (nothing half-written, everything committed before intact)."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.OperationalError as exc:
            storage = from_sqlite_error(exc, self.path)
            if storage is None:
                raise
            raise storage from exc

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            with suppress(sqlite3.Error):  # SQLite may already have rolled back (e.g. SQLITE_FULL)
                self._conn.execute("ROLLBACK")

    def _migrate(self) -> None:
        exists = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if not exists:  # a fresh file; an existing store is opened without writing anything
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
        current = self.schema_version()
        if current > schema.SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this harness understands "
                f"({schema.SCHEMA_VERSION}); upgrade the harness to read it"
            )
        for version, statements in schema.MIGRATIONS:
            if version <= current:
                continue
            with self._tx() as c:
                for stmt in statements:
                    c.execute(stmt)
                c.execute("INSERT INTO schema_version VALUES (?, ?)", (version, now_iso()))

    def schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    # -- runs ----------------------------------------------------------------------------------
    def start_run(
        self,
        campaign_name: str,
        campaign_toml_text: str,
        *,
        allow_changed_campaign: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> int:
        """Record a session (a first start or a resume) and return its id.

        Resuming with a campaign file whose contents differ from the stored one raises, because
        the run would then mix results of two different experiments."""
        digest = sha256_text(campaign_toml_text)
        old = self._conn.execute(
            "SELECT campaign_sha256 FROM runs ORDER BY session_id DESC LIMIT 1"
        ).fetchone()
        if old is not None and old[0] != digest and not allow_changed_campaign:
            raise StoreError(
                f"{self.path}: the campaign file changed since this run started "
                f"(sha256 {old[0][:12]} -> {digest[:12]}); start a new run folder instead of resuming"
            )
        commit, dirty = git_state()
        info = host_info()
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO runs (campaign_name, campaign_toml, campaign_sha256, started_at, harness_version,"
                " git_commit, git_dirty, hostname, platform, python_version, extra_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    campaign_name, campaign_toml_text, digest, now_iso(), info["harness_version"], commit,
                    _plain(dirty), info["hostname"], info["platform"], info["python_version"],
                    _plain(extra) if extra else None,
                ),
            )
        self.session_id = int(cur.lastrowid or 0)
        return self.session_id

    def end_run(self, status: str = "completed") -> None:
        """Mark the current session finished (status e.g. completed, interrupted, failed)."""
        if self.session_id is None:
            raise StoreError("end_run() without start_run()")
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET ended_at = ?, end_status = ? WHERE session_id = ?",
                (now_iso(), status, self.session_id),
            )

    # -- configurations --------------------------------------------------------------------------
    def upsert_config(self, config_id: str, *, extra: dict[str, Any] | None = None, **fields: Any) -> None:
        """Create a configuration or update the given fields of it (others stay as they are)."""
        _check_fields("configuration", fields, schema.CONFIG_FIELDS)
        if "status" in fields and fields["status"] not in schema.STATUSES:
            raise ValueError(f"status {fields['status']!r} not one of {schema.STATUSES}")
        values = {k: _plain(v) for k, v in fields.items()}
        stamp = now_iso()
        with self._tx() as c:
            if extra:
                row = c.execute("SELECT extra_json FROM configurations WHERE config_id = ?", (config_id,)).fetchone()
                merged = json.loads(row[0]) if row and row[0] else {}
                merged.update(extra)
                values["extra_json"] = _plain(merged)
            cols = ["config_id", *values, "created_at", "updated_at"]
            sets = ", ".join(f"{k} = excluded.{k}" for k in [*values, "updated_at"])
            c.execute(
                f"INSERT INTO configurations ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT(config_id) DO UPDATE SET {sets}",
                (config_id, *values.values(), stamp, stamp),
            )

    def set_status(self, config_id: str, status: str, reason: str | None = None) -> None:
        """Move a configuration to ``status`` (creating it if new), set or clear the failure
        reason, and log the transition as an event in the same transaction."""
        if status not in schema.STATUSES:
            raise ValueError(f"status {status!r} not one of {schema.STATUSES}")
        stamp = now_iso()
        with self._tx() as c:
            c.execute(
                "INSERT INTO configurations (config_id, status, failure_reason, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(config_id) DO UPDATE SET status = excluded.status,"
                " failure_reason = excluded.failure_reason, updated_at = excluded.updated_at",
                (config_id, status, reason, stamp, stamp),
            )
            level = "error" if status == "failed" else "info"
            c.execute(
                "INSERT INTO events (ts, session_id, config_id, stage, level, message) VALUES (?, ?, ?, ?, ?, ?)",
                (stamp, self.session_id, config_id, "status", level, status + (f": {reason}" if reason else "")),
            )

    def statuses(self) -> dict[str, str]:
        """config_id -> status of every configuration (what a resumed campaign still has to do)."""
        return {r[0]: r[1] for r in self._conn.execute("SELECT config_id, status FROM configurations")}

    def get_config(self, config_id: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT * FROM configurations WHERE config_id = ?", (config_id,)).fetchone()
        return dict(row) if row else None

    # -- measurements ----------------------------------------------------------------------------
    def add_measurement(
        self,
        config_id: str,
        repetition: int,
        *,
        ignore_duplicate: bool = False,
        extra: dict[str, Any] | None = None,
        **fields: Any,
    ) -> bool:
        """Append one repetition in its own committed transaction; True if it was stored.

        Raises DuplicateMeasurement if the repetition exists (False instead with
        ``ignore_duplicate=True``) and StoreError if the configuration was never created."""
        _check_fields("measurement", fields, schema.MEASUREMENT_FIELDS)
        if repetition < 0:
            raise ValueError(f"repetition must be >= 0, got {repetition}")
        values = {k: _plain(v) for k, v in fields.items()}
        if values.get("trace_path"):
            values["trace_path"] = self._relative(Path(values["trace_path"]))
        if extra:
            values["extra_json"] = _plain(extra)
        cols = ["config_id", "repetition", "session_id", "measured_at", *values]
        sql = f"INSERT INTO measurements ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        try:
            with self._tx() as c:
                c.execute(sql, (config_id, int(repetition), self.session_id, now_iso(), *values.values()))
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                if ignore_duplicate:
                    return False
                raise DuplicateMeasurement(
                    f"measurement {config_id!r} repetition {repetition} is already stored"
                ) from exc
            if "FOREIGN KEY" in str(exc):
                raise StoreError(f"unknown configuration {config_id!r}: call upsert_config() first") from exc
            raise
        return True

    def completed_repetitions(self, config_id: str) -> set[int]:
        """Repetition numbers already measured (warm-ups excluded) — what a resume may skip."""
        rows = self._conn.execute(
            "SELECT repetition FROM measurements WHERE config_id = ? AND warmup = 0", (config_id,)
        ).fetchall()
        return {int(r[0]) for r in rows}

    def write_trace(
        self, config_id: str, repetition: int, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None
    ) -> Path:
        """Atomically write the raw waveforms of one repetition; pass the returned path as
        ``trace_path`` to :meth:`add_measurement` (write the trace first, then the row)."""
        path = inside(self.run_dir, str(trace_relpath(config_id, repetition)))
        try:
            return write_npz_atomic(path, arrays, {"config_id": config_id, "repetition": repetition, **(meta or {})})
        except OSError as exc:
            raise (from_os_error(exc, path) or exc) from exc

    def _relative(self, p: Path) -> str:
        try:
            return str(p.resolve().relative_to(self.run_dir.resolve()))
        except ValueError:
            return str(p)

    # -- provenance and events -----------------------------------------------------------------
    def add_provenance(self, config_id: str, *, extra: dict[str, Any] | None = None, **fields: Any) -> int:
        """Record what was flashed and measured with (one row per flash); returns the row id."""
        _check_fields("provenance", fields, schema.PROVENANCE_FIELDS)
        values = {k: _plain(v) for k, v in fields.items()}
        if extra:
            values["extra_json"] = _plain(extra)
        cols = ["config_id", "session_id", "recorded_at", *values]
        try:
            with self._tx() as c:
                cur = c.execute(
                    f"INSERT INTO provenance ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                    (config_id, self.session_id, now_iso(), *values.values()),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"unknown configuration {config_id!r}: call upsert_config() first") from exc
        return int(cur.lastrowid or 0)

    def log_event(self, config_id: str | None, stage: str, message: str, level: str = "info") -> None:
        """Append a stage transition, retry or error for the live display and post-mortems."""
        if level not in schema.LEVELS:
            raise ValueError(f"level {level!r} not one of {schema.LEVELS}")
        with self._tx() as c:
            c.execute(
                "INSERT INTO events (ts, session_id, config_id, stage, level, message) VALUES (?, ?, ?, ?, ?, ?)",
                (now_iso(), self.session_id, config_id, stage, level, message),
            )

    # -- reading ---------------------------------------------------------------------------------
    def _df(self, sql: str, params: tuple[Any, ...] = ()) -> pd.DataFrame:
        import pandas as pd

        return pd.read_sql_query(sql, self._conn, params=params)

    def measurements_df(self, include_warmup: bool = False) -> pd.DataFrame:
        """One row per stored repetition, ordered by configuration and repetition."""
        where = "" if include_warmup else "WHERE warmup = 0"
        return self._df(f"SELECT * FROM measurements {where} ORDER BY config_id, repetition")

    def configs_df(self) -> pd.DataFrame:
        return self._df("SELECT * FROM configurations ORDER BY config_id")

    def provenance_df(self) -> pd.DataFrame:
        return self._df("SELECT * FROM provenance ORDER BY provenance_id")

    def events_df(self, config_id: str | None = None) -> pd.DataFrame:
        if config_id is None:
            return self._df("SELECT * FROM events ORDER BY event_id")
        return self._df("SELECT * FROM events WHERE config_id = ? ORDER BY event_id", (config_id,))

    def runs_df(self) -> pd.DataFrame:
        return self._df("SELECT * FROM runs ORDER BY session_id")

    def integrity_check(self) -> str:
        """SQLite's own consistency check; 'ok' for a healthy file."""
        return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])
