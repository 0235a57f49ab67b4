-- Schema version 1: devices, measured ceilings (probe) and benchmark runs.
-- A migration is never edited once released; changes go in a new file.
-- Columns are NOT NULL with defaults so natural-key comparisons (import)
-- never meet a NULL.
PRAGMA application_id = 1936681984; -- 0x736f6c00, "sol\0": marks the file as sol's

CREATE TABLE device (
    id         INTEGER PRIMARY KEY,
    backend    TEXT    NOT NULL,            -- cpu | cuda
    name       TEXT    NOT NULL,
    uuid       TEXT    NOT NULL DEFAULT '',
    cc         TEXT    NOT NULL DEFAULT '', -- compute capability; CPU: ISA summary
    driver     TEXT    NOT NULL DEFAULT '',
    runtime    TEXT    NOT NULL DEFAULT '',
    cores      INTEGER NOT NULL DEFAULT 0,
    l1_bytes   INTEGER NOT NULL DEFAULT 0,
    l2_bytes   INTEGER NOT NULL DEFAULT 0,
    l3_bytes   INTEGER NOT NULL DEFAULT 0,
    first_seen INTEGER NOT NULL,            -- unix seconds
    last_seen  INTEGER NOT NULL,
    UNIQUE (backend, name, uuid, cc, driver, runtime, cores)
);

CREATE TABLE probe (
    id        INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES device (id),
    kind      TEXT    NOT NULL,             -- mem_read_bw, fp32_peak, ...
    value     REAL    NOT NULL,             -- median over reps
    unit      TEXT    NOT NULL,             -- B/s, FLOP/s
    method    TEXT    NOT NULL DEFAULT '',
    spread    REAL    NOT NULL DEFAULT 0,   -- (max - min) / median
    reps      INTEGER NOT NULL DEFAULT 0,
    time      INTEGER NOT NULL
);
CREATE INDEX probe_by_device_kind_time ON probe (device_id, kind, time);

CREATE TABLE run (
    id                  INTEGER PRIMARY KEY,
    device_id           INTEGER NOT NULL REFERENCES device (id),
    model               TEXT    NOT NULL,
    model_hash          TEXT    NOT NULL DEFAULT '',
    kv_scheme           TEXT    NOT NULL DEFAULT '',
    wtype               TEXT    NOT NULL DEFAULT '',
    kvtype              TEXT    NOT NULL DEFAULT '',
    backend             TEXT    NOT NULL DEFAULT '',
    test                TEXT    NOT NULL,   -- pp512, tg128
    threads             INTEGER NOT NULL DEFAULT 0,
    n_prompt            INTEGER NOT NULL DEFAULT 0,
    n_gen               INTEGER NOT NULL DEFAULT 0,
    reps                INTEGER NOT NULL DEFAULT 0,
    tokens_per_s        REAL    NOT NULL,
    tokens_per_s_stddev REAL    NOT NULL DEFAULT 0,
    achieved_gbs        REAL    NOT NULL DEFAULT 0,
    sol_tokens_per_s    REAL    NOT NULL DEFAULT 0,
    sol_percent         REAL    NOT NULL DEFAULT 0,
    sol_version         TEXT    NOT NULL DEFAULT '',
    git_commit          TEXT    NOT NULL DEFAULT '',
    time                INTEGER NOT NULL
);
CREATE INDEX run_by_device_time ON run (device_id, time);

PRAGMA user_version = 1;
