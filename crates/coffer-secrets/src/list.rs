//! ListSecrets, ListSecretVersionIds and BatchGetSecretValue: filtering, sorting, pagination.

use coffer_service::opctx::OpCtx;
use std::collections::HashMap;

use coffer_core::ServiceError as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::SecretsService;
use crate::error::SecretsError;
use crate::model::*;
use crate::ops::{Obj, required, secret_range, ts};
use crate::validate;
use coffer_service::token::scope;

#[derive(Deserialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct FilterIn {
    key: Option<String>,
    values: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListSecretsIn {
    include_planned_deletion: Option<bool>,
    max_results: Option<i64>,
    next_token: Option<String>,
    filters: Option<Vec<FilterIn>>,
    sort_order: Option<String>,
    sort_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListVersionsIn {
    secret_id: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
    include_deprecated: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchGetIn {
    secret_id_list: Option<Vec<String>>,
    filters: Option<Vec<FilterIn>>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

const FILTER_KEYS: &[&str] = &[
    "description",
    "name",
    "tag-key",
    "tag-value",
    "primary-region",
    "owning-service",
    "all",
];

/// Checks filters against the model (`FiltersListType`, `Filter`, `FilterValueStringType`).
fn check_filters(filters: &[FilterIn]) -> Result<(), SecretsError> {
    if filters.len() > 10 {
        return Err(SecretsError::validation(
            "filters",
            "Member must have length less than or equal to 10",
        ));
    }
    for f in filters {
        let key = f
            .key
            .as_deref()
            .ok_or_else(|| SecretsError::InvalidParameter("Each filter must have a Key.".into()))?;
        validate::one_of("filters.member.key", Some(key), FILTER_KEYS)?;
        let values = f.values.as_deref().unwrap_or_default();
        if values.is_empty() || values.len() > 10 {
            return Err(SecretsError::validation(
                "filters.member.values",
                "Member must have length between 1 and 10",
            ));
        }
        for v in values {
            validate::length("filters.member.values.member", v, 0, 512)?;
            let body = v.strip_prefix('!').unwrap_or(v);
            if !body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " :_@/+=.-!".contains(c))
            {
                return Err(SecretsError::validation(
                    "filters.member.values.member",
                    "Member must satisfy regular expression pattern: ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$",
                ));
            }
        }
    }
    Ok(())
}

/// Case-insensitive prefix match of `word` against the whole of `attr` or any of its words.
fn word_match(attr: &str, word: &str) -> bool {
    let attr = attr.to_lowercase();
    attr.starts_with(word)
        || attr
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w.starts_with(word))
}

fn value_matches(meta: &SecretMeta, key: &str, v: &str) -> bool {
    match key {
        "description" => meta
            .description
            .as_deref()
            .is_some_and(|d| d.to_lowercase().starts_with(&v.to_lowercase())),
        "name" => meta.name.starts_with(v),
        "tag-key" => meta.tags.iter().any(|t| t.key.starts_with(v)),
        "tag-value" => meta.tags.iter().any(|t| t.value.starts_with(v)),
        "primary-region" => meta.primary_region().starts_with(v),
        "owning-service" => meta
            .owning_service
            .as_deref()
            .is_some_and(|s| s.starts_with(v)),
        "all" => v.split_whitespace().all(|word| {
            let word = word.to_lowercase();
            let mut attrs: Vec<&str> = vec![meta.name.as_str(), meta.primary_region()];
            attrs.extend(meta.description.as_deref());
            attrs.extend(meta.owning_service.as_deref());
            attrs.extend(
                meta.tags
                    .iter()
                    .flat_map(|t| [t.key.as_str(), t.value.as_str()]),
            );
            attrs.iter().any(|a| word_match(a, &word))
        }),
        _ => false,
    }
}

/// Values of one filter are OR'ed, `!value` excludes; filters are AND'ed.
pub(crate) fn matches(meta: &SecretMeta, filters: &[FilterIn]) -> bool {
    filters.iter().all(|f| {
        let key = f.key.as_deref().unwrap_or("");
        let values = f.values.as_deref().unwrap_or_default();
        let (neg, pos): (Vec<&String>, Vec<&String>) =
            values.iter().partition(|v| v.starts_with('!'));
        let pos_ok = pos.is_empty() || pos.iter().any(|v| value_matches(meta, key, v));
        let neg_ok = !neg.iter().any(|v| value_matches(meta, key, &v[1..]));
        pos_ok && neg_ok
    })
}

fn filters_scope(filters: &[FilterIn]) -> String {
    filters
        .iter()
        .map(|f| {
            format!(
                "{}={}",
                f.key.as_deref().unwrap_or(""),
                f.values.as_deref().unwrap_or_default().join("\u{1}")
            )
        })
        .collect::<Vec<_>>()
        .join("\u{2}")
}

impl SecretsService {
    /// The page of `items` (sorted by `key`) that follows the position in `token`, and the token
    /// for the page after it. `after(a, b)`: key `a` sorts after key `b`.
    fn page<'a, T, K: Serialize + DeserializeOwned>(
        &self,
        scope: &str,
        token: Option<&str>,
        items: &'a [T],
        max: usize,
        key: impl Fn(&T) -> K,
        after: impl Fn(&K, &K) -> bool,
    ) -> Result<(&'a [T], Option<String>), SecretsError> {
        let start = match token {
            Some(t) => {
                let pos: K = self.tokens.open(scope, t)?;
                items
                    .iter()
                    .position(|it| after(&key(it), &pos))
                    .unwrap_or(items.len())
            }
            None => 0,
        };
        let end = start.saturating_add(max).min(items.len());
        let page = &items[start..end];
        let next = match page.last() {
            Some(last) if end < items.len() => Some(self.tokens.issue(scope, &key(last))),
            _ => None,
        };
        Ok((page, next))
    }

    /// All secrets of the caller's account and region with their access records.
    async fn all_secrets(
        &self,
        ctx: &OpCtx<'_>,
    ) -> Result<Vec<(SecretMeta, AccessRecord)>, SecretsError> {
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        let (mut from, end) = secret_range(account, region);
        let mut out = Vec::new();
        loop {
            let page = self.store.scan(&from, &end, 512).await?;
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
            for (_, e) in page {
                match serde_json::from_slice::<SecretMeta>(&e.value) {
                    Ok(m) => out.push(m),
                    Err(_) => tracing::error!("corrupt secret metadata record skipped"),
                }
            }
        }
        // Access records share the region's key space: read them in one range too.
        let ap = format!("sm/{account}/{region}/access/").into_bytes();
        let aend = coffer_store::prefix_end(&ap);
        let mut access: HashMap<String, AccessRecord> = HashMap::new();
        let mut from = ap;
        loop {
            let page = self.store.scan(&from, &aend, 512).await?;
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
            for (_, e) in page {
                if let Ok(r) = serde_json::from_slice::<AccessRecord>(&e.value) {
                    access.insert(r.arn.clone(), r);
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|m| {
                let a = access.remove(&m.arn).unwrap_or_default();
                (m, a)
            })
            .collect())
    }

    pub(crate) async fn list_secrets(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: ListSecretsIn = validate::decode(body)?;
        ctx.check_any()?;
        validate::range("maxResults", input.max_results, 1, 100)?;
        validate::opt_length("nextToken", input.next_token.as_deref(), 1, 4096)?;
        validate::one_of("sortOrder", input.sort_order.as_deref(), &["asc", "desc"])?;
        validate::one_of(
            "sortBy",
            input.sort_by.as_deref(),
            &[
                "created-date",
                "last-accessed-date",
                "last-changed-date",
                "name",
            ],
        )?;
        let filters = input.filters.clone().unwrap_or_default();
        check_filters(&filters)?;
        let include_deleted = input.include_planned_deletion.unwrap_or(false);
        let sort_by = input.sort_by.as_deref().unwrap_or("created-date");
        let desc = input.sort_order.as_deref() == Some("desc");
        let scope = scope(&[
            "ListSecrets",
            ctx.account_id(),
            &ctx.region,
            &filters_scope(&filters),
            sort_by,
            if desc { "desc" } else { "asc" },
            if include_deleted { "1" } else { "0" },
        ]);
        let mut items: Vec<(SecretMeta, AccessRecord)> = self
            .all_secrets(ctx)
            .await?
            .into_iter()
            .filter(|(m, _)| include_deleted || !m.is_deleted())
            .filter(|(m, _)| matches(m, &filters))
            .collect();
        // Keyset pagination: the token holds the last item's sort key, so concurrent inserts or
        // deletions never repeat or skip the items around the page boundary.
        let key = |(m, a): &(SecretMeta, AccessRecord)| -> (i64, String) {
            let primary = match sort_by {
                "name" => 0,
                "last-changed-date" => m.changed_ms,
                "last-accessed-date" => a.secret_day.unwrap_or(i64::MIN),
                _ => m.created_ms,
            };
            (primary, m.name.clone())
        };
        // The name breaks ties (and is the whole key for SortBy=name); desc reverses both.
        let order = |x: &(i64, String), y: &(i64, String)| {
            let o = x.cmp(y);
            if desc { o.reverse() } else { o }
        };
        items.sort_by(|a, b| order(&key(a), &key(b)));
        let max = input.max_results.unwrap_or(100) as usize;
        let (page, next) = self.page(
            &scope,
            input.next_token.as_deref(),
            &items,
            max,
            key,
            |a, b| order(a, b) == std::cmp::Ordering::Greater,
        )?;
        let page: Vec<Value> = page
            .iter()
            .map(|(m, a)| Value::Object(self.summary(m, a, "SecretVersionsToStages")))
            .collect();
        let mut o = Obj::new();
        o.insert("SecretList".into(), Value::Array(page));
        if let Some(t) = next {
            o.insert("NextToken".into(), json!(t));
        }
        Ok(o)
    }

    pub(crate) async fn list_secret_version_ids(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: ListVersionsIn = validate::decode(body)?;
        let id = required("secretId", input.secret_id.as_deref())?;
        validate::range("maxResults", input.max_results, 1, 100)?;
        validate::opt_length("nextToken", input.next_token.as_deref(), 1, 4096)?;
        let l = self.resolve(ctx, id).await?;
        let include_deprecated = input.include_deprecated.unwrap_or(false);
        let scope = scope(&[
            "ListSecretVersionIds",
            ctx.account_id(),
            &ctx.region,
            &l.meta.arn,
            if include_deprecated { "1" } else { "0" },
        ]);
        let access = self.access_record(ctx.account_id(), &l.meta).await;
        let mut versions: Vec<(&String, &VersionMeta)> = l
            .meta
            .versions
            .iter()
            .filter(|(_, v)| include_deprecated || !v.stages.is_empty())
            .collect();
        // Newest first, as the console and CLI show them.
        versions.sort_by_key(|(_, v)| std::cmp::Reverse(v.seq));
        let max = input.max_results.unwrap_or(100) as usize;
        let (page, next) = self.page(
            &scope,
            input.next_token.as_deref(),
            &versions,
            max,
            |(_, v)| v.seq,
            |a, b| a < b,
        )?;
        let list: Vec<Value> = page
            .iter()
            .map(|(id, v)| {
                let mut e = Obj::new();
                e.insert("VersionId".into(), json!(id));
                if !v.stages.is_empty() {
                    e.insert("VersionStages".into(), json!(v.stages));
                }
                if let Some(d) = access.versions.get(*id) {
                    e.insert("LastAccessedDate".into(), json!(d));
                }
                e.insert("CreatedDate".into(), ts(v.created_ms));
                let kms = v.kms_key_id.as_deref().unwrap_or("DefaultEncryptionKey");
                e.insert("KmsKeyIds".into(), json!([kms]));
                Value::Object(e)
            })
            .collect();
        let mut o = Obj::new();
        o.insert("Versions".into(), Value::Array(list));
        if let Some(t) = next {
            o.insert("NextToken".into(), json!(t));
        }
        o.insert("ARN".into(), json!(l.meta.arn));
        o.insert("Name".into(), json!(l.meta.name));
        Ok(o)
    }

    pub(crate) async fn batch_get_secret_value(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, SecretsError> {
        let input: BatchGetIn = validate::decode(body)?;
        ctx.check_any()?;
        // Each secret of the batch also needs GetSecretValue, decided per secret (a denial
        // becomes that secret's entry in `Errors`).
        let per_secret = ctx.with_action("secretsmanager:GetSecretValue");
        validate::range("maxResults", input.max_results, 1, 20)?;
        validate::opt_length("nextToken", input.next_token.as_deref(), 1, 4096)?;
        let mut o = Obj::new();
        let ids: Vec<String> = match (&input.secret_id_list, &input.filters) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(SecretsError::InvalidParameter(
                    "Either SecretIdList or Filters must be provided, but not both.".into(),
                ));
            }
            (Some(list), None) => {
                if input.max_results.is_some() {
                    return Err(SecretsError::InvalidParameter(
                        "MaxResults can only be used with Filters.".into(),
                    ));
                }
                if list.is_empty() || list.len() > 20 {
                    return Err(SecretsError::validation(
                        "secretIdList",
                        "Member must have length between 1 and 20",
                    ));
                }
                for id in list {
                    validate::secret_id(id)?;
                }
                list.clone()
            }
            (None, Some(filters)) => {
                check_filters(filters)?;
                let scope = scope(&[
                    "BatchGetSecretValue",
                    ctx.account_id(),
                    &ctx.region,
                    &filters_scope(filters),
                ]);
                let mut items: Vec<SecretMeta> = self
                    .all_secrets(ctx)
                    .await?
                    .into_iter()
                    .map(|(m, _)| m)
                    .filter(|m| !m.is_deleted() && matches(m, filters))
                    .collect();
                items.sort_by(|a, b| {
                    a.created_ms
                        .cmp(&b.created_ms)
                        .then_with(|| a.name.cmp(&b.name))
                });
                let max = input.max_results.unwrap_or(20) as usize;
                let (page, next) = self.page(
                    &scope,
                    input.next_token.as_deref(),
                    &items,
                    max,
                    |m| (m.created_ms, m.name.clone()),
                    |a, b| a > b,
                )?;
                if let Some(t) = next {
                    o.insert("NextToken".into(), json!(t));
                }
                page.iter().map(|m| m.arn.clone()).collect()
            }
        };
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for id in ids {
            match self.get_value(&per_secret, &id, None, None).await {
                Ok(v) => values.push(Value::Object(v)),
                Err(e) => errors.push(json!({
                    "SecretId": id,
                    "ErrorCode": e.code(),
                    "Message": e.to_string(),
                })),
            }
        }
        o.insert("SecretValues".into(), Value::Array(values));
        o.insert("Errors".into(), Value::Array(errors));
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta(name: &str, desc: Option<&str>, tags: &[(&str, &str)]) -> SecretMeta {
        SecretMeta {
            arn: format!("arn:aws:secretsmanager:us-east-1:1:secret:{name}-abcdef"),
            name: name.into(),
            region: "us-east-1".into(),
            description: desc.map(Into::into),
            kms_key_id: None,
            tags: tags
                .iter()
                .map(|(k, v)| Tag {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
            created_ms: 0,
            changed_ms: 0,
            deleted_ms: None,
            deletion_ms: None,
            versions: BTreeMap::new(),
            next_seq: 0,
            policy: None,
            primary_region: None,
            replicas: vec![],
            owning_service: None,
            secret_type: None,
            rotation: None,
        }
    }

    fn f(key: &str, values: &[&str]) -> FilterIn {
        FilterIn {
            key: Some(key.into()),
            values: Some(values.iter().map(|v| (*v).into()).collect()),
        }
    }

    #[test]
    fn filter_table() {
        let m = meta(
            "prod/db/password",
            Some("Main DB"),
            &[("env", "production"), ("team", "core")],
        );
        let cases: &[(FilterIn, bool)] = &[
            (f("name", &["prod/"]), true),
            (f("name", &["Prod"]), false),
            (f("name", &["!prod"]), false),
            (f("name", &["!dev"]), true),
            (f("name", &["dev", "prod"]), true),
            (f("description", &["main"]), true),
            (f("description", &["db"]), false),
            (f("tag-key", &["te"]), true),
            (f("tag-key", &["!te"]), false),
            (f("tag-value", &["prod"]), true),
            (f("tag-value", &["Prod"]), false),
            (f("primary-region", &["us-east"]), true),
            (f("primary-region", &["eu"]), false),
            (f("owning-service", &["rds"]), false),
            (f("all", &["PASSWORD core"]), true),
            (f("all", &["password nothing"]), false),
        ];
        for (filter, want) in cases {
            assert_eq!(
                matches(&m, std::slice::from_ref(filter)),
                *want,
                "{:?} {:?}",
                filter.key,
                filter.values
            );
        }
        assert!(!matches(
            &m,
            &[f("name", &["prod"]), f("tag-key", &["nope"])]
        ));
    }

    #[test]
    fn filter_validation() {
        assert!(check_filters(&[f("name", &["ok"])]).is_ok());
        assert!(check_filters(&[f("bogus", &["ok"])]).is_err());
        assert!(check_filters(&[f("name", &[])]).is_err());
        assert!(check_filters(&[f("name", &["semi;colon"])]).is_err());
        assert!(
            check_filters(&[FilterIn {
                key: None,
                values: Some(vec!["x".into()])
            }])
            .is_err()
        );
    }
}
