//! The credential report (GenerateCredentialReport, GetCredentialReport): one CSV line per
//! user (and the account root) with its access keys — active or not, when created, when last
//! used, where and for what — in AWS's columns, which is what access-key hygiene checks read.
//!
//! As in AWS, a report younger than four hours is reused rather than regenerated, and one older
//! than that is no longer served (`ReportExpired`). The report is kept in the store, so any node
//! serves the one another generated. Coffer has no passwords, MFA devices or signing
//! certificates: those columns say so (`false` / `N/A`, root's password `not_supported`). Last
//! use is what the generating node has seen since it started (as GetAccessKeyLastUsed).

use std::collections::BTreeMap;

use base64::Engine as _;
use coffer_core::RequestContext;
use coffer_store::WriteBatch;
use coffer_wire::query::{QueryParams, XmlWriter};
use serde::{Deserialize, Serialize};

use crate::input::Input;
use crate::model::{self, AccessKeyRecord, Entity, Kind};
use crate::{Iam, IamError, authorize, json};

/// How long a report is reused, and served.
const REPORT_TTL_MS: i64 = 4 * 3600 * 1000;

const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,\
password_last_changed,password_next_rotation,mfa_active,access_key_1_active,\
access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,\
access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,\
access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,\
cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

#[derive(Serialize, Deserialize)]
struct Report {
    generated_ms: i64,
    csv: String,
}

fn report_key(account: &str) -> String {
    format!("iam/{account}/credential-report")
}

/// The report's timestamps: ISO 8601 with an explicit UTC offset, as AWS writes them.
fn report_time(ms: i64) -> String {
    model::iso8601(ms).replace('Z', "+00:00")
}

impl Iam {
    pub(crate) async fn credential_report(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        Input::new(q).finish()?;
        authorize(ctx, &format!("iam:{action}"), "*")?;
        let now = self.now_ms();
        let stored = self
            .get_json::<Report>(&report_key(account))
            .await?
            .map(|(r, _)| r);
        let fresh = stored
            .as_ref()
            .filter(|r| now - r.generated_ms < REPORT_TTL_MS);
        let mut w = XmlWriter::new();
        if action == "GenerateCredentialReport" {
            if fresh.is_none() {
                let report = Report {
                    generated_ms: now,
                    csv: self.report_csv(account).await?,
                };
                let mut batch = WriteBatch::new();
                batch.put(report_key(account), json(&report)?);
                // Not an IAM change: no generation bump, no cache drop.
                self.store.commit(batch).await?;
            }
            w.text("State", "COMPLETE").text(
                "Description",
                if fresh.is_some() {
                    "A report generated in the last four hours is current."
                } else {
                    "No report exists. Starting a new report generation task"
                },
            );
            return Ok(w.into_string());
        }
        let report = match (fresh, &stored) {
            (Some(r), _) => r,
            (None, Some(_)) => {
                return Err(IamError::ReportExpired(
                    "Report is expired. Please generate a new report.".into(),
                ));
            }
            (None, None) => {
                return Err(IamError::ReportNotPresent(
                    "Credential report not present. Please generate a new report.".into(),
                ));
            }
        };
        w.text(
            "Content",
            &base64::engine::general_purpose::STANDARD.encode(&report.csv),
        )
        .text("ReportFormat", "text/csv")
        .text("GeneratedTime", &model::iso8601(report.generated_ms));
        Ok(w.into_string())
    }

    /// The CSV: the root line, then every user in name order.
    async fn report_csv(&self, account: &str) -> Result<String, IamError> {
        // Every access key of the account, by owner (`None`: the root's).
        let mut keys: BTreeMap<Option<String>, Vec<(String, AccessKeyRecord)>> = BTreeMap::new();
        let prefix = model::access_key_prefix(account);
        for (k, rec, _) in self.scan_json::<AccessKeyRecord>(&prefix).await? {
            let akid = k[prefix.len()..].to_string();
            keys.entry(rec.user_name.clone())
                .or_default()
                .push((akid, rec));
        }
        let mut csv = String::from(HEADER);
        csv.push('\n');
        let mut root_keys = keys.remove(&None).unwrap_or_default();
        root_keys.sort_by_key(|(id, r)| (r.created_ms, id.clone()));
        let root_created = root_keys.iter().map(|(_, r)| r.created_ms).min();
        self.report_line(
            &mut csv,
            "<root_account>",
            &format!("arn:aws:iam::{account}:root"),
            root_created.map_or_else(|| "N/A".into(), report_time),
            "not_supported",
            root_keys,
        );
        let users = model::entity_prefix(account, Kind::User);
        for (_, user, _) in self.scan_json::<Entity>(&users).await? {
            let mut mine = keys.remove(&Some(user.name.clone())).unwrap_or_default();
            // Key 1 and key 2 in the order the user's keys were created.
            mine.sort_by_key(|(id, _)| user.access_keys.iter().position(|k| k == id));
            self.report_line(
                &mut csv,
                &user.name,
                &model::entity_arn(account, Kind::User, &user.path, &user.name),
                report_time(user.created_ms),
                "false",
                mine,
            );
        }
        Ok(csv)
    }

    fn report_line(
        &self,
        csv: &mut String,
        user: &str,
        arn: &str,
        created: String,
        password_enabled: &str,
        keys: Vec<(String, AccessKeyRecord)>,
    ) {
        let mut cells = vec![
            user.to_string(),
            arn.to_string(),
            created,
            password_enabled.to_string(),
        ];
        // password_last_used, password_last_changed, password_next_rotation, mfa_active
        cells.extend(["N/A", "N/A", "N/A", "false"].map(String::from));
        for n in 0..2 {
            match keys.get(n) {
                Some((akid, rec)) => {
                    let used = self.cache.last_used(akid);
                    cells.push((rec.status == "Active").to_string());
                    cells.push(report_time(rec.created_ms));
                    match used {
                        Some(u) => {
                            cells.push(report_time(u.at_ms));
                            cells.push(u.region);
                            cells.push(u.service);
                        }
                        None => cells.extend(["N/A", "N/A", "N/A"].map(String::from)),
                    }
                }
                None => cells.extend(["false", "N/A", "N/A", "N/A", "N/A"].map(String::from)),
            }
        }
        // Signing certificates: none exist here.
        cells.extend(["false", "N/A", "false", "N/A"].map(String::from));
        let cells: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        csv.push_str(&cells.join(","));
        csv.push('\n');
    }
}

/// One CSV cell (RFC 4180): quoted when it holds a comma or a quote (IAM names may have commas).
fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_times() {
        assert_eq!(csv_cell("alice"), "alice");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(report_time(1_700_000_000_123), "2023-11-14T22:13:20+00:00");
        assert_eq!(HEADER.split(',').count(), 22);
    }
}
