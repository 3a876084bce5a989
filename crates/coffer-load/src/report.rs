//! Human table and JSON output.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::run::Report;
use crate::stats::{ms, ratio};

/// GetSecretValue must reach this fraction of the health ceiling in the same run.
pub const GET_OVER_HEALTH_TARGET: f64 = 0.5;
/// Durable PutSecretValue writes per second.
pub const PUT_RPS_TARGET: f64 = 1500.0;

/// The all-gate verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub health_rps: f64,
    pub get_rps: f64,
    pub put_rps: f64,
    /// GetSecretValue / health throughput; `None` if health served nothing.
    pub get_over_health: Option<f64>,
    pub get_target_met: bool,
    pub put_target_met: bool,
}

impl Gate {
    pub fn from_reports(reports: &[Report]) -> Self {
        let rps = |name: &str| {
            reports
                .iter()
                .find(|r| r.scenario == name)
                .map(Report::rps)
                .unwrap_or(0.0)
        };
        // A scenario with errors does not pass, whatever its throughput.
        let clean = |name: &str| {
            reports
                .iter()
                .any(|r| r.scenario == name && r.errors() == 0)
        };
        let (health_rps, get_rps, put_rps) = (
            rps("health"),
            rps("get-secret-value"),
            rps("put-secret-value"),
        );
        let get_over_health = ratio(get_rps, health_rps);
        Gate {
            health_rps,
            get_rps,
            put_rps,
            get_over_health,
            get_target_met: clean("health")
                && clean("get-secret-value")
                && get_over_health.is_some_and(|r| r >= GET_OVER_HEALTH_TARGET),
            put_target_met: clean("put-secret-value") && put_rps >= PUT_RPS_TARGET,
        }
    }
}

fn report_json(r: &Report) -> Value {
    json!({
        "scenario": r.scenario,
        "connections": r.connections,
        "elapsed_secs": r.elapsed_secs,
        "ok": r.ok,
        "errors": r.errors(),
        "non_2xx": r.non_2xx,
        "transport_errors": r.transport_errors,
        "rps": r.rps(),
        "latency_ms": {
            "p50": ms(r.latency.p50_us),
            "p90": ms(r.latency.p90_us),
            "p99": ms(r.latency.p99_us),
            "max": ms(r.latency.max_us),
        },
        "error_samples": r.error_samples,
    })
}

pub fn to_json(reports: &[Report], gate: Option<&Gate>) -> String {
    let mut out = json!({ "scenarios": reports.iter().map(report_json).collect::<Vec<_>>() });
    if let (Some(g), Some(obj)) = (gate, out.as_object_mut()) {
        obj.insert(
            "gate".into(),
            json!({
                "get_over_health": g.get_over_health,
                "get_over_health_target": GET_OVER_HEALTH_TARGET,
                "get_target_met": g.get_target_met,
                "put_rps": g.put_rps,
                "put_rps_target": PUT_RPS_TARGET,
                "put_target_met": g.put_target_met,
            }),
        );
    }
    out.to_string()
}

pub fn to_table(reports: &[Report], gate: Option<&Gate>) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(
        out,
        "{:<18} {:>5} {:>8} {:>10} {:>7} {:>11} {:>8} {:>8} {:>8} {:>8}",
        "scenario",
        "conns",
        "secs",
        "ok",
        "errors",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "{:<18} {:>5} {:>8.2} {:>10} {:>7} {:>11.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            r.scenario,
            r.connections,
            r.elapsed_secs,
            r.ok,
            r.errors(),
            r.rps(),
            ms(r.latency.p50_us),
            ms(r.latency.p90_us),
            ms(r.latency.p99_us),
            ms(r.latency.max_us),
        );
    }
    for r in reports.iter().filter(|r| !r.error_samples.is_empty()) {
        let _ = writeln!(
            out,
            "first errors of {} ({} non-2xx, {} transport):",
            r.scenario, r.non_2xx, r.transport_errors
        );
        for s in &r.error_samples {
            let _ = writeln!(out, "  {s}");
        }
    }
    if let Some(g) = gate {
        let verdict = |met: bool| if met { "MET" } else { "MISSED" };
        match g.get_over_health {
            Some(r) => {
                let _ = writeln!(
                    out,
                    "GetSecretValue/health = {:.1}% (target >= {:.0}%): {}",
                    r * 100.0,
                    GET_OVER_HEALTH_TARGET * 100.0,
                    verdict(g.get_target_met)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "GetSecretValue/health = n/a (health served nothing): MISSED"
                );
            }
        }
        let _ = writeln!(
            out,
            "PutSecretValue = {:.0} durable writes/s (target >= {:.0}): {}",
            g.put_rps,
            PUT_RPS_TARGET,
            verdict(g.put_target_met)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;

    fn report(scenario: &'static str, ok: u64, errors: u64) -> Report {
        Report {
            scenario,
            connections: 16,
            elapsed_secs: 10.0,
            ok,
            non_2xx: errors,
            transport_errors: 0,
            latency: Summary {
                p50_us: 1000,
                p90_us: 2000,
                p99_us: 3000,
                max_us: 9000,
            },
            error_samples: if errors > 0 {
                vec!["HTTP 400 Bad Request: {\"__type\":\"X\"}".into()]
            } else {
                vec![]
            },
        }
    }

    #[test]
    fn gate_met_and_missed() {
        let g = Gate::from_reports(&[
            report("health", 100_000, 0),
            report("get-secret-value", 60_000, 0),
            report("put-secret-value", 20_000, 0),
        ]);
        assert_eq!(g.get_over_health, Some(0.6));
        assert!(g.get_target_met);
        assert_eq!(g.put_rps, 2000.0);
        assert!(g.put_target_met);

        let g = Gate::from_reports(&[
            report("health", 100_000, 0),
            report("get-secret-value", 40_000, 0),
            report("put-secret-value", 14_000, 0),
        ]);
        assert!(!g.get_target_met);
        assert!(!g.put_target_met);

        // Fast but failing does not pass.
        let g = Gate::from_reports(&[
            report("health", 100_000, 0),
            report("get-secret-value", 90_000, 3),
            report("put-secret-value", 90_000, 1),
        ]);
        assert!(!g.get_target_met);
        assert!(!g.put_target_met);

        let g = Gate::from_reports(&[report("health", 0, 5)]);
        assert_eq!(g.get_over_health, None);
        assert!(!g.get_target_met);
    }

    #[test]
    fn json_shape() {
        let reports = [
            report("health", 100_000, 0),
            report("get-secret-value", 60_000, 2),
        ];
        let gate = Gate::from_reports(&reports);
        let v: Value = serde_json::from_str(&to_json(&reports, Some(&gate))).unwrap();
        assert_eq!(v["scenarios"][0]["rps"], 10_000.0);
        assert_eq!(v["scenarios"][1]["errors"], 2);
        assert_eq!(v["scenarios"][1]["latency_ms"]["p99"], 3.0);
        assert_eq!(v["gate"]["get_over_health"], 0.6);
        assert_eq!(v["gate"]["get_target_met"], false);
        let v: Value = serde_json::from_str(&to_json(&reports, None)).unwrap();
        assert!(v.get("gate").is_none());
    }

    #[test]
    fn table_lists_rows_errors_and_verdict() {
        let reports = [
            report("health", 100_000, 0),
            report("get-secret-value", 60_000, 1),
        ];
        let t = to_table(&reports, Some(&Gate::from_reports(&reports)));
        assert!(t.contains("health"));
        assert!(t.contains("10000.0"));
        assert!(t.contains("first errors of get-secret-value"));
        assert!(t.contains("GetSecretValue/health = 60.0%"));
        assert!(t.contains("MISSED"));
    }
}
