//! Rotation schedules: AWS's `RotationRules` (AutomaticallyAfterDays, `rate()` / six-field
//! `cron()` ScheduleExpression, Duration) turned into rotation windows. Pure: times are Unix
//! milliseconds in, Unix milliseconds out, all in UTC as AWS's schedules are.
//!
//! Windows, as AWS documents them: a `rate()` window starts at midnight UTC (for hours, on the
//! grid midnight + k·N hours); a `cron()` window starts at each match. Without a Duration a window
//! lasts one hour for schedules in hours and until the end of the UTC day for schedules in days.
//! A window may not reach into the next UTC day or the next window.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use serde::{Deserialize, Serialize};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;
/// AWS: "You can rotate a secret as often as every four hours."
const MIN_INTERVAL_MS: i64 = 4 * HOUR_MS;
const MAX_DAYS: i64 = 1000;

/// The rules as RotateSecret takes them and DescribeSecret shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub automatically_after_days: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// Why rules were refused; every case is AWS's `InvalidParameterException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScheduleError(pub String);

fn invalid(msg: impl Into<String>) -> ScheduleError {
    ScheduleError(msg.into())
}

#[derive(Debug, Clone)]
enum Kind {
    Hours(i64),
    Days(i64),
    Cron { cron: Box<Cron>, hourly: bool },
}

/// A parsed, validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    /// `None`: the default window (one hour, or to the end of the day).
    duration_ms: Option<i64>,
}

impl Schedule {
    pub fn parse(rules: &Rules) -> Result<Self, ScheduleError> {
        let kind = match (
            rules.automatically_after_days,
            rules.schedule_expression.as_deref(),
        ) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules.",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "RotationRules must contain AutomaticallyAfterDays or ScheduleExpression.",
                ));
            }
            (Some(d), None) => {
                if !(1..=MAX_DAYS).contains(&d) {
                    return Err(invalid(format!(
                        "AutomaticallyAfterDays must be between 1 and {MAX_DAYS}."
                    )));
                }
                Kind::Days(d)
            }
            (None, Some(e)) => parse_expression(e)?,
        };
        let duration_ms = rules.duration.as_deref().map(parse_duration).transpose()?;
        let s = Schedule { kind, duration_ms };
        s.check_window()?;
        Ok(s)
    }

    /// `AutomaticallyAfterDays` as DescribeSecret reports it: the interval in days where the
    /// schedule has one.
    pub fn automatically_after_days(&self) -> Option<i64> {
        match self.kind {
            Kind::Days(d) => Some(d),
            _ => None,
        }
    }

    fn in_hours(&self) -> bool {
        match &self.kind {
            Kind::Hours(_) => true,
            Kind::Days(_) => false,
            Kind::Cron { hourly, .. } => *hourly,
        }
    }

    /// The window opening at `start`: its length in milliseconds.
    pub fn window_ms(&self, start: i64) -> i64 {
        match self.duration_ms {
            Some(d) => d,
            None if self.in_hours() => HOUR_MS,
            None => DAY_MS - start.rem_euclid(DAY_MS),
        }
    }

    /// Start of the first window after a rotation (or the configuration of rotation) at
    /// `base`: never `base`'s own window again.
    pub fn next_window(&self, base: i64) -> Option<i64> {
        match &self.kind {
            Kind::Days(d) => Some(midnight(base) + d * DAY_MS),
            Kind::Hours(h) => {
                // Grid slots restart at every midnight: midnight + k·h for k·h < 24 h.
                let step = h * HOUR_MS;
                let day = midnight(base);
                let slot = day + (base - day) / step * step;
                let next = slot + step;
                let next_day = day + DAY_MS;
                Some(if next >= next_day && step < DAY_MS {
                    next_day
                } else {
                    next
                })
            }
            Kind::Cron { cron, .. } => next_match(cron, base),
        }
    }

    fn check_window(&self) -> Result<(), ScheduleError> {
        if let Some(d) = self.duration_ms {
            let interval = match &self.kind {
                Kind::Hours(h) => Some(h * HOUR_MS),
                Kind::Days(d) => Some(d * DAY_MS),
                Kind::Cron { .. } => None,
            };
            if interval.is_some_and(|i| d > i) {
                return Err(invalid(
                    "The rotation window (Duration) can't be longer than the rotation interval.",
                ));
            }
        }
        if let Kind::Cron { cron, .. } = &self.kind {
            // Look at a year of windows: they must be at least four hours apart, and neither
            // cross midnight nor reach into the next one.
            let mut t = Utc::now().timestamp_millis();
            let mut prev: Option<i64> = None;
            for _ in 0..400 {
                let Some(start) = next_match(cron, t) else {
                    break;
                };
                if let Some(p) = prev {
                    if start - p < MIN_INTERVAL_MS {
                        return Err(invalid(
                            "The schedule expression can't rotate more often than every four hours.",
                        ));
                    }
                    if p + self.window_ms(p) > start {
                        return Err(invalid(
                            "The rotation window (Duration) can't extend into the next rotation window.",
                        ));
                    }
                }
                if start.rem_euclid(DAY_MS) + self.window_ms(start) > DAY_MS {
                    return Err(invalid(
                        "The rotation window (Duration) can't extend into the next UTC day.",
                    ));
                }
                prev = Some(start);
                t = start;
            }
            if prev.is_none() {
                return Err(invalid(
                    "The schedule expression has no rotation time in the future.",
                ));
            }
        } else if let Some(d) = self.duration_ms
            && d > DAY_MS
        {
            return Err(invalid(
                "The rotation window (Duration) can't extend into the next UTC day.",
            ));
        }
        Ok(())
    }
}

fn midnight(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

fn next_match(cron: &Cron, after: i64) -> Option<i64> {
    let t: DateTime<Utc> = Utc.timestamp_millis_opt(after).single()?;
    cron.find_next_occurrence(&t, false)
        .ok()
        .map(|d| d.timestamp_millis())
}

/// `Nh`, 1 to 24 hours (the model's pattern is `[0-9]+h`, two or three characters).
fn parse_duration(d: &str) -> Result<i64, ScheduleError> {
    let hours = d
        .strip_suffix('h')
        .and_then(|n| n.parse::<i64>().ok())
        .ok_or_else(|| invalid(format!("Invalid Duration {d}: use hours, for example 3h.")))?;
    if !(1..=24).contains(&hours) {
        return Err(invalid(
            "The rotation window (Duration) must be between 1h and 24h.",
        ));
    }
    Ok(hours * HOUR_MS)
}

fn parse_expression(e: &str) -> Result<Kind, ScheduleError> {
    let e = e.trim();
    if let Some(inner) = e.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
        return parse_rate(inner);
    }
    if let Some(inner) = e.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
        return parse_cron(inner);
    }
    Err(invalid(format!(
        "Invalid ScheduleExpression {e}: use rate(N hours), rate(N days) or a cron() expression."
    )))
}

fn parse_rate(inner: &str) -> Result<Kind, ScheduleError> {
    let bad = || invalid(format!("Invalid rate expression rate({inner})."));
    let mut parts = inner.split_whitespace();
    let n: i64 = parts.next().and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    let unit = parts.next().ok_or_else(bad)?;
    if parts.next().is_some() || n < 1 {
        return Err(bad());
    }
    // AWS's rate(): the singular only with 1 ("rate(1 day)"), the plural otherwise.
    match (unit, n == 1) {
        ("day", true) | ("days", false) => {
            if n > MAX_DAYS {
                return Err(invalid(format!(
                    "A rate() in days must be between 1 and {MAX_DAYS} days."
                )));
            }
            Ok(Kind::Days(n))
        }
        ("hours", false) => {
            if n * HOUR_MS < MIN_INTERVAL_MS {
                return Err(invalid(
                    "The schedule expression can't rotate more often than every four hours.",
                ));
            }
            if n >= 24 {
                return Err(invalid(
                    "A rate() in hours must be less than 24 hours; use days.",
                ));
            }
            Ok(Kind::Hours(n))
        }
        _ => Err(bad()),
    }
}

/// AWS's six fields (minutes hours day-of-month month day-of-week year, days of the week 1-7 from
/// Sunday as in Quartz) → croner's seven-field form with a zero seconds field.
fn parse_cron(inner: &str) -> Result<Kind, ScheduleError> {
    let bad = |why: &str| invalid(format!("Invalid cron expression cron({inner}): {why}"));
    let fields: Vec<&str> = inner.split_whitespace().collect();
    if fields.len() != 6 {
        return Err(bad(
            "it must have six fields (minutes hours day-of-month month day-of-week year).",
        ));
    }
    let (dom, dow) = (fields[2], fields[4]);
    // AWS: one of day-of-month and day-of-week must be `?`.
    if (dom == "?") == (dow == "?") {
        return Err(bad(
            "use ? in exactly one of the day-of-month and day-of-week fields.",
        ));
    }
    if fields[0].contains(['*', '/', ',', '-']) {
        return Err(bad("the minutes field must be a single value."));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        .build();
    let pattern = format!("0 {}", fields.join(" "));
    let cron = parser.parse(&pattern).map_err(|e| bad(&format!("{e}.")))?;
    // "In hours" when the hours field names more than one hour of the day.
    let hourly = fields[1].contains(['*', '/', ',', '-']);
    Ok(Kind::Cron {
        cron: Box::new(cron),
        hourly,
    })
}

impl FromStr for Schedule {
    type Err = ScheduleError;
    /// A bare ScheduleExpression with the default window.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(&Rules {
            schedule_expression: Some(s.to_owned()),
            ..Rules::default()
        })
    }
}

/// When in the window opening at `start` (lasting `len`) one secret's rotation begins: AWS
/// spreads rotations over the window; this picks a point from a hash of the secret and the window,
/// so every node and every restart agrees on it. Leaves the last minute of the window free.
pub fn spread(start: i64, len: i64, key: &str) -> i64 {
    let room = (len - 60_000).max(0);
    if room == 0 {
        return start;
    }
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain(start.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let offset = (h % room as u64) as i64;
    start + offset - offset % 60_000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn expr(e: &str) -> Schedule {
        e.parse().unwrap_or_else(|err| panic!("{e}: {err}"))
    }

    fn err(rules: Rules) -> String {
        Schedule::parse(&rules).unwrap_err().0
    }

    #[test]
    fn rate_in_days_opens_at_midnight_n_days_later_until_end_of_day() {
        let s = expr("rate(10 days)");
        let start = s.next_window(at("2026-03-01T15:30:00Z")).unwrap();
        assert_eq!(start, at("2026-03-11T00:00:00Z"));
        assert_eq!(s.window_ms(start), DAY_MS);
        assert_eq!(s.automatically_after_days(), Some(10));
        let one = expr("rate(1 day)");
        assert_eq!(
            one.next_window(at("2026-03-01T23:59:00Z")).unwrap(),
            at("2026-03-02T00:00:00Z")
        );
    }

    #[test]
    fn automatically_after_days_is_a_rate_in_days() {
        let s = Schedule::parse(&Rules {
            automatically_after_days: Some(30),
            ..Rules::default()
        })
        .unwrap();
        assert_eq!(
            s.next_window(at("2026-01-10T08:00:00Z")).unwrap(),
            at("2026-02-09T00:00:00Z")
        );
    }

    #[test]
    fn rate_in_hours_follows_a_grid_from_midnight_with_a_one_hour_window() {
        let s = expr("rate(6 hours)");
        assert_eq!(
            s.next_window(at("2026-03-01T07:10:00Z")).unwrap(),
            at("2026-03-01T12:00:00Z")
        );
        assert_eq!(
            s.next_window(at("2026-03-01T19:00:00Z")).unwrap(),
            at("2026-03-02T00:00:00Z")
        );
        assert_eq!(s.window_ms(at("2026-03-01T12:00:00Z")), HOUR_MS);
        // 5 does not divide 24: the last slot of the day is 20:00, then midnight.
        let five = expr("rate(5 hours)");
        assert_eq!(
            five.next_window(at("2026-03-01T21:00:00Z")).unwrap(),
            at("2026-03-02T00:00:00Z")
        );
    }

    #[test]
    fn cron_with_aws_fields_l_w_hash_and_quartz_weekdays() {
        // 16:00 on the third Friday (AWS: 6 = FRI) of each month.
        let s = expr("cron(0 16 ? * 6#3 *)");
        let start = s.next_window(at("2026-03-01T00:00:00Z")).unwrap();
        assert_eq!(start, at("2026-03-20T16:00:00Z"));
        // A schedule in days: the window runs to the end of the day.
        assert_eq!(s.window_ms(start), 8 * HOUR_MS);
        // Last day of the month.
        assert_eq!(
            expr("cron(30 2 L * ? *)")
                .next_window(at("2026-02-01T00:00:00Z"))
                .unwrap(),
            at("2026-02-28T02:30:00Z")
        );
        // Nearest weekday to the 15th (2026-03-15 is a Sunday → Monday the 16th).
        assert_eq!(
            expr("cron(0 9 15W * ? *)")
                .next_window(at("2026-03-01T00:00:00Z"))
                .unwrap(),
            at("2026-03-16T09:00:00Z")
        );
        // Names and ranges of weekdays; every four hours → hourly windows of one hour.
        let h = expr("cron(0 */4 ? * MON-FRI *)");
        let s1 = h.next_window(at("2026-03-06T21:00:00Z")).unwrap(); // a Friday
        assert_eq!(s1, at("2026-03-09T00:00:00Z"));
        assert_eq!(h.window_ms(s1), HOUR_MS);
        // Year field.
        assert!(
            expr("cron(0 0 1 1 ? 2030)")
                .next_window(at("2030-06-01T00:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn durations_set_the_window_within_the_interval_and_day() {
        let s = Schedule::parse(&Rules {
            schedule_expression: Some("cron(0 10 * * ? *)".into()),
            duration: Some("3h".into()),
            ..Rules::default()
        })
        .unwrap();
        assert_eq!(s.window_ms(at("2026-03-01T10:00:00Z")), 3 * HOUR_MS);
        let long = |expr: &str, d: &str| {
            err(Rules {
                schedule_expression: Some(expr.into()),
                duration: Some(d.into()),
                ..Rules::default()
            })
        };
        assert!(long("rate(4 hours)", "5h").contains("longer than the rotation interval"));
        assert!(long("cron(0 22 * * ? *)", "3h").contains("next UTC day"));
        assert!(long("cron(0 1,5 * * ? *)", "5h").contains("next rotation window"));
        assert!(long("rate(1 day)", "25h").contains("between 1h and 24h"));
        assert!(long("rate(1 day)", "0h").contains("between 1h and 24h"));
        assert!(long("rate(1 day)", "xh").contains("Invalid Duration"));
    }

    #[test]
    fn bad_expressions_are_refused_with_a_reason() {
        let e = |x: &str| {
            err(Rules {
                schedule_expression: Some(x.into()),
                ..Rules::default()
            })
        };
        assert!(e("rate(2 hours)").contains("four hours"));
        assert!(e("rate(1 days)").contains("Invalid rate"));
        assert!(e("rate(0 days)").contains("Invalid rate"));
        assert!(e("rate(1001 days)").contains("between 1 and 1000"));
        assert!(e("rate(3 weeks)").contains("Invalid rate"));
        assert!(e("every day").contains("Invalid ScheduleExpression"));
        assert!(e("cron(0 10 * * *)").contains("six fields"));
        assert!(e("cron(0 10 * * MON *)").contains("exactly one"));
        assert!(e("cron(0 10 ? * ? *)").contains("exactly one"));
        assert!(e("cron(*/5 10 * * ? *)").contains("single value"));
        assert!(e("cron(0 25 * * ? *)").contains("Invalid cron"));
        assert!(e("cron(0 * * * ? *)").contains("four hours"));
        assert!(e("cron(0 0 1 1 ? 2001)").contains("no rotation time"));
        assert!(
            err(Rules {
                automatically_after_days: Some(1),
                schedule_expression: Some("rate(1 day)".into()),
                ..Rules::default()
            })
            .contains("both")
        );
        assert!(
            err(Rules {
                automatically_after_days: Some(0),
                ..Rules::default()
            })
            .contains("between 1 and 1000")
        );
        assert!(err(Rules::default()).contains("must contain"));
    }

    #[test]
    fn spread_is_stable_inside_the_window_and_differs_between_secrets() {
        let start = at("2026-03-01T00:00:00Z");
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..50 {
            let key = format!("arn:aws:secretsmanager:us-east-1:1:secret:s{i}");
            let t = spread(start, 4 * HOUR_MS, &key);
            assert!(t >= start && t < start + 4 * HOUR_MS - 59_000, "{t}");
            assert_eq!(t, spread(start, 4 * HOUR_MS, &key));
            seen.insert(t);
        }
        assert!(seen.len() > 30, "starts spread over the window");
        assert_eq!(spread(start, 60_000, "x"), start);
    }
}
