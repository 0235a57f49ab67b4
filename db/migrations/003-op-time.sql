-- Schema version 3: per-op times of `sol bench`, summed per op class, for
-- calibrated predictions. One row per (run, op class); an op class is the
-- plan op kind, the type its bytes are read in (weights for matmuls and the
-- embedding, the KV cache for attention and KV writes, '' otherwise), the
-- rows per step (1 decode, P prefill) and floor(log2(bytes of one op)).
-- Kind 'overhead' holds a run's time outside every op (count: ops run).
CREATE TABLE op_time (
    id         INTEGER PRIMARY KEY,
    device_id  INTEGER NOT NULL REFERENCES device (id),
    run_id     INTEGER NOT NULL REFERENCES run (id),
    backend    TEXT    NOT NULL DEFAULT '',  -- as the run records it: cpu.q8, cpu.f32, ...
    threads    INTEGER NOT NULL DEFAULT 0,
    kind       TEXT    NOT NULL,             -- matmul, attention, norm, ..., overhead
    dtype      TEXT    NOT NULL DEFAULT '',
    rows       INTEGER NOT NULL DEFAULT 1,   -- tokens per step
    size_class INTEGER NOT NULL DEFAULT 0,   -- floor(log2(bytes per op))
    bytes      REAL    NOT NULL DEFAULT 0,   -- summed over count ops
    flops      REAL    NOT NULL DEFAULT 0,
    roofline_s REAL    NOT NULL DEFAULT 0,   -- the ops' own roofline times, summed
    measured_s REAL    NOT NULL DEFAULT 0,
    count      INTEGER NOT NULL DEFAULT 0,
    time       INTEGER NOT NULL,
    UNIQUE (run_id, kind, dtype, rows, size_class)
);
CREATE INDEX op_time_by_device ON op_time (device_id, backend, threads, time);

PRAGMA user_version = 3;
