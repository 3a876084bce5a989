//! The audit key space (all under `audit/` in the shared store).
//!
//! Records are keyed by the bitwise complement of their sequence number, so an ascending scan
//! (the only kind the Store trait offers) reads the newest first, which is what LookupEvents
//! serves; verification reads the range and walks it backwards.

pub const PREFIX: &[u8] = b"audit/";
pub const RECORDS: &str = "audit/r/";
pub const HEAD: &[u8] = b"audit/head";
pub const ANCHOR: &[u8] = b"audit/anchor";
pub const SIGNING_KEY: &[u8] = b"audit/signing-key";
pub const DIGESTS: &str = "audit/d/";
/// Write-ahead intents of mutating API calls, committed in the same batch as the call's own
/// writes; removed by the batch that chains the call's record.
pub const INTENTS: &str = "audit/intent/";
/// Complete records of service actions, committed with the action; chained by the next sweep.
pub const SERVICE_EVENTS: &str = "audit/svc/";

pub fn record(seq: u64) -> Vec<u8> {
    format!("{RECORDS}{:016x}", !seq).into_bytes()
}

/// The sequence number a record key names.
pub fn record_seq(key: &[u8]) -> Option<u64> {
    let hex = key.strip_prefix(RECORDS.as_bytes())?;
    let s = std::str::from_utf8(hex).ok()?;
    u64::from_str_radix(s, 16).ok().map(|n| !n)
}

/// Digests are keyed like records (complemented), so the newest is found first.
pub fn digest(number: u64) -> Vec<u8> {
    format!("{DIGESTS}{:016x}", !number).into_bytes()
}

/// `prefix` + time (so sweeps find old ones by range) + a unique id.
pub fn pending(prefix: &str, time_ms: i64, id: &str) -> Vec<u8> {
    format!("{prefix}{:016x}/{id}", time_ms.max(0)).into_bytes()
}

/// Upper bound (exclusive) of pending keys written before `time_ms`.
pub fn pending_before(prefix: &str, time_ms: i64) -> Vec<u8> {
    format!("{prefix}{:016x}", time_ms.max(0)).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_record_sorts_first() {
        assert!(record(2) < record(1));
        assert!(digest(2) < digest(1));
        assert!(record(u64::MAX - 1) < record(7));
        assert_eq!(record_seq(&record(42)), Some(42));
        assert_eq!(record_seq(b"audit/head"), None);
        assert!(pending(INTENTS, 5, "x") < pending_before(INTENTS, 6));
        assert!(pending(INTENTS, 6, "x") > pending_before(INTENTS, 6));
    }
}
