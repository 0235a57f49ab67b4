-- Schema version 2: kernel tuning (every measured configuration, and the
-- winner per device/kernel/shape/dtype) and the op plan's hash on runs.
ALTER TABLE run ADD COLUMN plan_hash TEXT NOT NULL DEFAULT '';

-- One row per measured configuration: a rerun finds it and skips it.
CREATE TABLE trial (
    id            INTEGER PRIMARY KEY,
    device_id     INTEGER NOT NULL REFERENCES device (id),
    kernel        TEXT    NOT NULL,
    source_hash   TEXT    NOT NULL,
    compile_flags TEXT    NOT NULL DEFAULT '',
    shape         TEXT    NOT NULL,
    dtype         TEXT    NOT NULL,
    params_json   TEXT    NOT NULL DEFAULT '{}',
    counters_json TEXT    NOT NULL DEFAULT '{}',
    median_s      REAL    NOT NULL,
    spread        REAL    NOT NULL DEFAULT 0,
    reps          INTEGER NOT NULL DEFAULT 0,
    correct       INTEGER NOT NULL DEFAULT 0,
    time          INTEGER NOT NULL,
    UNIQUE (device_id, kernel, source_hash, compile_flags, shape, dtype, params_json)
);

-- The winning parameters; a new winner replaces the row.
CREATE TABLE best (
    id          INTEGER PRIMARY KEY,
    device_id   INTEGER NOT NULL REFERENCES device (id),
    kernel      TEXT    NOT NULL,
    source_hash TEXT    NOT NULL,
    shape       TEXT    NOT NULL,
    dtype       TEXT    NOT NULL,
    params_json TEXT    NOT NULL DEFAULT '{}',
    median_s    REAL    NOT NULL,
    default_s   REAL    NOT NULL DEFAULT 0, -- the untuned kernel, for the speedup
    time        INTEGER NOT NULL,
    UNIQUE (device_id, kernel, source_hash, shape, dtype)
);

PRAGMA user_version = 2;
