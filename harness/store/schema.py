"""Table definitions of the results store and the ordered list of migrations.

Every change to the schema is a new entry in MIGRATIONS (never an edit of an old one), so a store
written by an older harness is upgraded in place when it is opened and an old run folder stays
readable. Column lists are kept here too: the store validates field names against them so a typo
in the runner fails loudly instead of silently dropping a value."""

from __future__ import annotations

STATUSES = ("pending", "compressed", "built", "measured", "failed", "does-not-fit")
LEVELS = ("debug", "info", "warning", "error")

_V1 = [
    """
    CREATE TABLE runs (
        session_id      INTEGER PRIMARY KEY AUTOINCREMENT,
        campaign_name   TEXT NOT NULL,
        campaign_toml   TEXT NOT NULL,
        campaign_sha256 TEXT NOT NULL,
        started_at      TEXT NOT NULL,
        ended_at        TEXT,
        end_status      TEXT,
        harness_version TEXT,
        git_commit      TEXT,
        git_dirty       INTEGER,
        hostname        TEXT,
        platform        TEXT,
        python_version  TEXT,
        extra_json      TEXT
    )
    """,
    f"""
    CREATE TABLE configurations (
        config_id       TEXT PRIMARY KEY,
        model_id        TEXT,
        compression_id  TEXT,
        method          TEXT,
        heuristic       TEXT,
        rate            REAL,
        accuracy_target REAL,
        numeric_type    TEXT,
        board           TEXT,
        status          TEXT NOT NULL DEFAULT 'pending'
                        CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
        failure_reason  TEXT,
        accuracy_float  REAL,
        accuracy_quant  REAL,
        rel_accuracy    REAL,
        params          INTEGER,
        params_nonzero  INTEGER,
        macs            INTEGER,
        flash_bytes     INTEGER,
        ram_bytes       INTEGER,
        weights_bytes   INTEGER,
        arena_bytes     INTEGER,
        flash_size      INTEGER,
        ram_size        INTEGER,
        fits            INTEGER CHECK (fits IN (0, 1)),
        device_accuracy REAL,
        host_agreement  REAL,
        artifact_path   TEXT,
        firmware_path   TEXT,
        extra_json      TEXT,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE provenance (
        provenance_id   INTEGER PRIMARY KEY AUTOINCREMENT,
        config_id       TEXT NOT NULL REFERENCES configurations(config_id),
        session_id      INTEGER REFERENCES runs(session_id),
        recorded_at     TEXT NOT NULL,
        firmware_sha256 TEXT,
        firmware_path   TEXT,
        build_id        TEXT,
        model_hash      TEXT,
        toolchain       TEXT,
        board           TEXT,
        probe_id        TEXT,
        instrument_idn  TEXT,
        serial_port     TEXT,
        timing_sources  TEXT,
        extra_json      TEXT
    )
    """,
    """
    CREATE TABLE measurements (
        measurement_id  INTEGER PRIMARY KEY AUTOINCREMENT,
        config_id       TEXT NOT NULL REFERENCES configurations(config_id),
        repetition      INTEGER NOT NULL,
        session_id      INTEGER REFERENCES runs(session_id),
        latency_s       REAL,
        energy_j        REAL,
        power_w         REAL,
        baseline_power_w REAL,
        energy_net_j    REAL,
        power_net_w     REAL,
        cycles          INTEGER,
        cycle_latency_s REAL,
        timing_source   TEXT,
        cross_check_deviation REAL,
        cross_check_ok  INTEGER CHECK (cross_check_ok IN (0, 1)),
        latency_by_source_s TEXT,       -- JSON {source: seconds}
        sample_interval_s REAL,
        window_start_s  REAL,
        voltage_measured INTEGER CHECK (voltage_measured IN (0, 1)),
        supply_v        REAL,
        warmup          INTEGER NOT NULL DEFAULT 0 CHECK (warmup IN (0, 1)),
        warmup_count    INTEGER,
        trace_path      TEXT,
        measured_at     TEXT NOT NULL,
        extra_json      TEXT,
        UNIQUE (config_id, repetition)
    )
    """,
    "CREATE INDEX measurements_config ON measurements(config_id)",
    f"""
    CREATE TABLE events (
        event_id        INTEGER PRIMARY KEY AUTOINCREMENT,
        ts              TEXT NOT NULL,
        session_id      INTEGER REFERENCES runs(session_id),
        config_id       TEXT,
        stage           TEXT NOT NULL,
        level           TEXT NOT NULL CHECK (level IN ({", ".join(repr(s) for s in LEVELS)})),
        message         TEXT NOT NULL
    )
    """,
    "CREATE INDEX events_config ON events(config_id)",
]

# (version, statements); applied in order, each version in its own transaction.
MIGRATIONS: list[tuple[int, list[str]]] = [(1, _V1)]
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Columns a caller may set; the rest (ids, timestamps, session) are filled in by the store.
CONFIG_FIELDS = (
    "model_id", "compression_id", "method", "heuristic", "rate", "accuracy_target", "numeric_type", "board",
    "status", "failure_reason", "accuracy_float", "accuracy_quant", "rel_accuracy", "params", "params_nonzero",
    "macs", "flash_bytes", "ram_bytes", "weights_bytes", "arena_bytes", "flash_size", "ram_size", "fits",
    "device_accuracy", "host_agreement", "artifact_path", "firmware_path",
)
PROVENANCE_FIELDS = (
    "firmware_sha256", "firmware_path", "build_id", "model_hash", "toolchain", "board", "probe_id",
    "instrument_idn", "serial_port", "timing_sources",
)
# Matches harness.instruments.energy.InferenceMeasurement (minus its ``index``, which is the
# repetition) so a runner can store ``asdict(m)`` directly.
MEASUREMENT_FIELDS = (
    "latency_s", "energy_j", "power_w", "baseline_power_w", "energy_net_j", "power_net_w", "cycles",
    "cycle_latency_s", "timing_source", "cross_check_deviation", "cross_check_ok", "latency_by_source_s",
    "sample_interval_s", "window_start_s", "voltage_measured", "supply_v", "warmup", "warmup_count", "trace_path",
)
