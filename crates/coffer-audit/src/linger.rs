//! How long the segment writer waits for more records before writing a group.
//!
//! A durable group costs about the same CPU whatever its size (two device round trips, each a
//! VM exit, an interrupt and a context switch on the machine measured; BENCHMARKS.md "Audit").
//! With CPU to spare, writing at once gives the shortest answers. When the CPUs are the
//! bottleneck, groups of a few records spend that cost over and over, and waking the request
//! threads every few records costs them too: there, waiting a little for more records raised
//! audited GetSecretValue at 256 connections from 26–33 k to 42 k req/s, while at 16 connections
//! the same wait lowered it. Which case holds is not visible from inside the writer (its own
//! run-queue wait was tried: lingering feeds it), so the controller measures the effect itself:
//! it tries each candidate wait for one epoch, then keeps the one that wrote the most records
//! per second for a while, and tries again. Below [`MIN_RATE`] it never waits: a quiet server
//! answers at once.
//!
//! Pure: the caller passes the time and the records written.

use std::time::{Duration, Instant};

/// The waits tried. The first (none) is the default and wins ties.
pub const CANDIDATES: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_micros(100),
    Duration::from_micros(300),
];
/// One measurement.
pub const EPOCH: Duration = Duration::from_millis(100);
/// Epochs the best candidate runs between two rounds of trials.
pub const EXPLOIT_EPOCHS: u32 = 12;
/// Records per second below which the writer never waits.
pub const MIN_RATE: f64 = 5_000.0;
/// A candidate must beat no-wait by this factor to be chosen (noise is not a reason to wait).
pub const MARGIN: f64 = 1.05;

#[derive(Debug)]
pub struct Linger {
    /// Index into [`CANDIDATES`] being tried, or `None` while exploiting.
    trying: Option<usize>,
    rates: [f64; CANDIDATES.len()],
    best: usize,
    exploit_left: u32,
    epoch_start: Option<Instant>,
    written: u64,
}

impl Default for Linger {
    fn default() -> Self {
        Self {
            trying: None,
            rates: [0.0; CANDIDATES.len()],
            best: 0,
            exploit_left: 0,
            epoch_start: None,
            written: 0,
        }
    }
}

impl Linger {
    /// Records `records` just written; returns how long to wait before the next group.
    pub fn next(&mut self, now: Instant, records: u64) -> Duration {
        self.written += records;
        let start = *self.epoch_start.get_or_insert(now);
        let elapsed = now.saturating_duration_since(start);
        if elapsed >= EPOCH {
            let rate = self.written as f64 / elapsed.as_secs_f64();
            self.end_epoch(rate);
            self.epoch_start = Some(now);
            self.written = 0;
        }
        CANDIDATES[self.current()]
    }

    fn current(&self) -> usize {
        self.trying.unwrap_or(self.best)
    }

    fn end_epoch(&mut self, rate: f64) {
        if rate < MIN_RATE {
            // Quiet: no waiting, and start over when load comes.
            *self = Self {
                epoch_start: self.epoch_start,
                ..Self::default()
            };
            return;
        }
        match self.trying {
            Some(i) => {
                self.rates[i] = rate;
                // Longer waits are tried only while lengthening the wait pays: when the server
                // is latency-bound each trial of a wait costs throughput (measured: 300 us at 16
                // connections wrote 40 % less), so one losing step ends the round.
                let lost = i > 0 && rate <= self.rates[i - 1];
                if i + 1 < CANDIDATES.len() && !lost {
                    self.trying = Some(i + 1);
                } else {
                    self.trying = None;
                    self.best = self.choose();
                    self.exploit_left = EXPLOIT_EPOCHS;
                }
            }
            None if self.exploit_left > 0 => self.exploit_left -= 1,
            None => {
                // A candidate this round does not reach must not win on an old rate.
                self.rates = [0.0; CANDIDATES.len()];
                self.trying = Some(0);
            }
        }
    }

    fn choose(&self) -> usize {
        let (mut best, mut best_rate) = (0, self.rates[0] * MARGIN);
        for (i, &r) in self.rates.iter().enumerate().skip(1) {
            if r > best_rate {
                (best, best_rate) = (i, r);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the controller for `secs` seconds of groups every 200 us, with a throughput that
    /// depends on the wait in force (records per second for each candidate).
    fn drive(
        l: &mut Linger,
        t: &mut Instant,
        secs: f64,
        rate_of: impl Fn(Duration) -> f64,
    ) -> Vec<Duration> {
        let step = Duration::from_micros(200);
        let mut waits = Vec::new();
        let mut wait = Duration::ZERO;
        let mut carry = 0.0;
        for _ in 0..(secs / step.as_secs_f64()) as usize {
            *t += step;
            carry += rate_of(wait) * step.as_secs_f64();
            let n = carry.floor();
            carry -= n;
            wait = l.next(*t, n as u64);
            waits.push(wait);
        }
        waits
    }

    fn share(waits: &[Duration], d: Duration) -> f64 {
        waits.iter().filter(|w| **w == d).count() as f64 / waits.len() as f64
    }

    #[test]
    fn waits_when_waiting_writes_more_and_not_otherwise() {
        let (mut l, mut t) = (Linger::default(), Instant::now());
        // CPU-bound: the longest wait writes the most.
        let saturated = |w: Duration| 25_000.0 + w.as_micros() as f64 * 50.0;
        let waits = drive(&mut l, &mut t, 5.0, saturated);
        assert!(share(&waits[waits.len() / 2..], CANDIDATES[2]) > 0.7);
        // Latency-bound: every wait lowers throughput; the controller goes back to none.
        let latency_bound = |w: Duration| 30_000.0 - w.as_micros() as f64 * 40.0;
        let waits = drive(&mut l, &mut t, 5.0, latency_bound);
        assert!(share(&waits[waits.len() / 2..], Duration::ZERO) > 0.7);
    }

    #[test]
    fn a_losing_wait_ends_the_round_and_an_old_rate_never_wins() {
        let (mut l, mut t) = (Linger::default(), Instant::now());
        // Saturated first: the longest wait is tried and chosen.
        let waits = drive(&mut l, &mut t, 5.0, |w| {
            25_000.0 + w.as_micros() as f64 * 50.0
        });
        assert!(share(&waits[waits.len() / 2..], CANDIDATES[2]) > 0.7);
        // Then latency-bound: 100 us loses to none, so 300 us is never tried again, and its
        // rate from the saturated phase does not bring it back.
        let waits = drive(&mut l, &mut t, 10.0, |w| {
            30_000.0 - w.as_micros() as f64 * 40.0
        });
        let settled = &waits[waits.len() / 4..];
        assert_eq!(share(settled, CANDIDATES[2]), 0.0);
        assert!(share(settled, Duration::ZERO) > 0.85);
        // Waiting that pays only up to a point: 100 us is chosen over both others.
        let mut l = Linger::default();
        let waits = drive(&mut l, &mut t, 5.0, |w| match w.as_micros() {
            0 => 27_000.0,
            100 => 33_000.0,
            _ => 31_000.0,
        });
        assert!(share(&waits[waits.len() / 2..], CANDIDATES[1]) > 0.7);
    }

    #[test]
    fn a_quiet_server_never_waits_and_ties_do_not_wait() {
        let (mut l, mut t) = (Linger::default(), Instant::now());
        let waits = drive(&mut l, &mut t, 3.0, |w| {
            1_000.0 + w.as_micros() as f64 * 10.0
        });
        assert!(
            waits.iter().all(|w| w.is_zero()),
            "below MIN_RATE nothing waits"
        );
        // Same throughput whatever the wait (an open loop with CPU to spare): stay at none,
        // apart from the trial epochs.
        let waits = drive(&mut l, &mut t, 5.0, |_| 20_000.0);
        assert!(share(&waits, Duration::ZERO) > 0.8);
    }
}
