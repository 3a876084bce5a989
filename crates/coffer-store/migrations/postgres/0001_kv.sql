-- The key space: every key's value and the commit sequence number that last wrote it.
-- bytea compares bytewise, so the primary key's B-tree serves scans in the trait's order.
CREATE TABLE coffer_kv (
    key     bytea  PRIMARY KEY,
    value   bytea  NOT NULL,
    version bigint NOT NULL
);

-- Commit sequence numbers: unique and increasing, not gap-free (a rolled back commit uses one).
CREATE SEQUENCE coffer_commit_seq AS bigint;
