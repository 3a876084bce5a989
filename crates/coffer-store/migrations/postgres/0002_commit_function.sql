-- A commit in one round trip: the batch's advisory locks, its checks, its sequence number and
-- its writes in one function call, which runs as its own READ COMMITTED transaction (a statement
-- sent outside BEGIN). Each statement of a VOLATILE function reads the latest committed rows, so
-- the checks see every commit that held the locks before this one, as the five-statement
-- transaction it replaces did. Returns NULL (and writes nothing, draws no number) when a check
-- fails.
CREATE FUNCTION coffer_commit(locks int8[], check_keys bytea[], check_versions int8[],
                              delete_keys bytea[], put_keys bytea[], put_values bytea[])
RETURNS int8 LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    seq int8;
BEGIN
    -- In the order given (ascending ids), so concurrent commits never wait in a cycle.
    PERFORM pg_advisory_xact_lock(l.id) FROM unnest(locks) WITH ORDINALITY AS l(id, n) ORDER BY l.n;
    IF EXISTS (
        SELECT 1 FROM unnest(check_keys, check_versions) AS c(k, v)
        LEFT JOIN coffer_kv kv ON kv.key = c.k
        WHERE kv.version IS DISTINCT FROM c.v
    ) THEN
        RETURN NULL;
    END IF;
    seq := nextval('coffer_commit_seq');
    DELETE FROM coffer_kv WHERE key = ANY(delete_keys);
    INSERT INTO coffer_kv (key, value, version)
        SELECT p.k, p.v, seq FROM unnest(put_keys, put_values) AS p(k, v)
        ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version;
    RETURN seq;
END
$fn$;
