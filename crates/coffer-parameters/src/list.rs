//! GetParametersByPath and DescribeParameters: filters, range scans, pagination.
//!
//! Each listing picks the narrowest key range its query allows (a subtree, one level, a name
//! prefix) and walks it from where the previous page stopped. Filters that the range cannot
//! express are applied to each record; a call examines at most [`SCAN_BUDGET`] records beyond its
//! page and then answers what it found with a NextToken (as AWS, which may return fewer results
//! than MaxResults, even none, with a NextToken). So a call costs O(page), never O(store).

use coffer_core::authz::ConditionKey;
use coffer_service::opctx::OpCtx;
use std::sync::Arc;

use coffer_store::prefix_end;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ParametersService;
use crate::error::ParametersError as E;
use crate::model::*;
use crate::ops::{Obj, policies_json, ts};
use crate::validate::{self, required};

/// Records a filtered call may examine beyond the ones it returns.
pub(crate) const SCAN_BUDGET: usize = 200;

#[derive(Deserialize, Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct StringFilterIn {
    key: Option<String>,
    option: Option<String>,
    values: Option<Vec<String>>,
}

#[derive(Deserialize, Serialize, Clone)]
#[serde(rename_all = "PascalCase")]
struct OldFilterIn {
    key: Option<String>,
    values: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ByPathIn {
    path: Option<String>,
    recursive: Option<bool>,
    parameter_filters: Option<Vec<StringFilterIn>>,
    with_decryption: Option<bool>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeIn {
    filters: Option<Vec<OldFilterIn>>,
    parameter_filters: Option<Vec<StringFilterIn>>,
    max_results: Option<i64>,
    next_token: Option<String>,
    shared: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    BeginsWith,
    Contains,
}

#[derive(Debug, Clone)]
enum Filter {
    Name(Op, Vec<String>),
    Path { recursive: bool, paths: Vec<String> },
    Type(Op, Vec<String>),
    KeyId(Op, Vec<String>),
    Tier(Op, Vec<String>),
    DataType(Op, Vec<String>),
    Label(Vec<String>),
    Tag(String, Op, Vec<String>),
}

fn text_match(op: Op, have: &str, want: &str) -> bool {
    match op {
        Op::Equals => have == want,
        Op::BeginsWith => have.starts_with(want),
        Op::Contains => have.contains(want),
    }
}

impl Filter {
    fn matches(&self, p: &Param) -> bool {
        let c = canon(&p.name);
        let v = &p.current;
        match self {
            Filter::Name(Op::Contains, vals) => vals.iter().any(|w| p.name.contains(w.as_str())),
            Filter::Name(op, vals) => vals.iter().any(|w| text_match(*op, &c, &canon(w))),
            Filter::Path { recursive, paths } => paths.iter().any(|path| {
                if *recursive {
                    path == "/" || c.starts_with(&format!("{path}/"))
                } else {
                    split_parent(&c).0 == path
                }
            }),
            Filter::Type(op, vals) => vals.iter().any(|t| text_match(*op, v.ptype.as_str(), t)),
            Filter::KeyId(op, vals) => v
                .key_id
                .as_deref()
                .is_some_and(|k| vals.iter().any(|w| text_match(*op, k, w))),
            Filter::Tier(op, vals) => vals.iter().any(|t| text_match(*op, v.tier.as_str(), t)),
            Filter::DataType(op, vals) => vals.iter().any(|t| text_match(*op, &v.data_type, t)),
            Filter::Label(vals) => vals.iter().any(|l| p.version_of_label(l).is_some()),
            Filter::Tag(key, op, vals) => p.tags.iter().any(|t| {
                t.key == *key
                    && (vals.is_empty() || vals.iter().any(|w| text_match(*op, &t.value, w)))
            }),
        }
    }
}

fn bad_option() -> E {
    E::InvalidFilterOption(
        "The filter option is not valid. Valid options are Equals and BeginsWith. For Path filter, valid options are Recursive and OneLevel."
            .into(),
    )
}

/// Checks and parses `ParameterFilters`. `by_path`: the narrower set GetParametersByPath takes.
fn parse_filters(input: &[StringFilterIn], by_path: bool) -> Result<Vec<Filter>, E> {
    let mut out = Vec::with_capacity(input.len());
    for f in input {
        let key = required("parameterFilters.member.key", f.key.as_deref())?;
        validate::length("parameterFilters.member.key", key, 1, 132)?;
        if let Some(o) = f.option.as_deref() {
            validate::length("parameterFilters.member.option", o, 1, 10)?;
        }
        let values = f.values.clone().unwrap_or_default();
        if f.values.is_some() && (values.is_empty() || values.len() > 50) {
            return Err(E::validation(
                "parameterFilters.member.values",
                "Member must have length between 1 and 50",
            ));
        }
        for v in &values {
            validate::length("parameterFilters.member.values.member", v, 1, 1024)?;
        }
        let option = f.option.as_deref();
        let text_op = |allow_contains: bool| -> Result<Op, E> {
            match option {
                None | Some("Equals") => Ok(Op::Equals),
                Some("BeginsWith") => Ok(Op::BeginsWith),
                Some("Contains") if allow_contains => Ok(Op::Contains),
                _ => Err(bad_option()),
            }
        };
        let equals_only = || match option {
            None | Some("Equals") => Ok(()),
            _ => Err(bad_option()),
        };
        let need_values = |vals: &Vec<String>| {
            if vals.is_empty() {
                Err(E::InvalidFilterValue(format!(
                    "The filter {key} requires at least one value."
                )))
            } else {
                Ok(vals.clone())
            }
        };
        // AWS: GetParametersByPath takes neither tag, DataType, Name, Path nor Tier;
        // DescribeParameters takes everything but Label.
        let not_here = if by_path {
            matches!(key, "Name" | "Path" | "Tier" | "DataType") || key.starts_with("tag:")
        } else {
            key == "Label"
        };
        let filter = match key {
            _ if not_here => {
                let valid = if by_path {
                    "[Type, KeyId, Label]"
                } else {
                    "[Name, Path, Type, KeyId, Tier, DataType, tag:<key>]"
                };
                return Err(E::InvalidFilterKey(format!(
                    "The following filter key is not valid: {key}. Valid filter keys include: {valid}."
                )));
            }
            "Name" => Filter::Name(text_op(true)?, need_values(&values)?),
            "Path" => {
                let recursive = match option {
                    None | Some("OneLevel") => false,
                    Some("Recursive") => true,
                    _ => return Err(bad_option()),
                };
                let mut paths = Vec::new();
                for v in need_values(&values)? {
                    paths.push(validate::path(&v).map_err(|_| {
                        E::InvalidFilterValue(
                            "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\"."
                                .into(),
                        )
                    })?);
                }
                Filter::Path { recursive, paths }
            }
            "Type" | "Tier" => {
                let op = text_op(false)?;
                let allowed = if key == "Type" { TYPES } else { TIERS };
                let vals = need_values(&values)?;
                let valid = |v: &String| match op {
                    Op::BeginsWith => allowed.iter().any(|a| a.starts_with(v.as_str())),
                    _ => allowed.contains(&v.as_str()),
                };
                if let Some(bad) = vals.iter().find(|v| !valid(v)) {
                    return Err(E::InvalidFilterValue(format!(
                        "The following filter value is not valid: {bad}. Valid values include: [{}].",
                        allowed.join(", ")
                    )));
                }
                if key == "Type" {
                    Filter::Type(op, vals)
                } else {
                    Filter::Tier(op, vals)
                }
            }
            "KeyId" => Filter::KeyId(text_op(false)?, need_values(&values)?),
            "DataType" => Filter::DataType(text_op(false)?, need_values(&values)?),
            "Label" => {
                equals_only()?;
                Filter::Label(need_values(&values)?)
            }
            k => match k.strip_prefix("tag:") {
                Some(tag) if !tag.is_empty() => {
                    Filter::Tag(tag.to_owned(), text_op(false)?, values)
                }
                _ => {
                    return Err(E::InvalidFilterKey(format!(
                        "The following filter key is not valid: {key}. Valid filter keys include: [Name, Path, Type, KeyId, Tier, DataType, Label, tag:<key>]."
                    )));
                }
            },
        };
        out.push(filter);
    }
    Ok(out)
}

/// Where a listing reads: the main records under a prefix, or the one-level index of a path.
enum Range {
    Records(Vec<u8>),
    Children(Vec<u8>),
}

impl ParametersService {
    /// Walks `range` from `token` and returns up to `max` matching parameters and the token of
    /// the next page.
    async fn walk(
        &self,
        ctx: &OpCtx<'_>,
        scope: &str,
        token: Option<&str>,
        range: Range,
        max: usize,
        filters: &[Filter],
    ) -> Result<(Vec<Arc<Param>>, Option<String>), E> {
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        let (prefix, children) = match &range {
            Range::Records(p) => (p.clone(), false),
            Range::Children(p) => (p.clone(), true),
        };
        let end = prefix_end(&prefix);
        let mut from = match token {
            Some(t) => {
                let pos: String = self.tokens.open(scope, t)?;
                let mut k = pos.into_bytes();
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let budget = if filters.is_empty() {
            max
        } else {
            max + SCAN_BUDGET
        };
        let chunk = if filters.is_empty() {
            max + 1
        } else {
            64.min(budget) + 1
        };
        let c_prefix_len = base(account, region).len() + 2;
        let n_prefix = param_prefix(account, region);
        // The main-record key of the index entry at hand, rebuilt in place for each.
        let mut record_key = Vec::with_capacity(n_prefix.len() + 64);
        let mut out = Vec::with_capacity(max);
        let mut examined = 0usize;
        let mut last: Option<Vec<u8>> = None;
        let mut more = false;
        'outer: loop {
            let page = self.store.scan(&from, &end, chunk).await?;
            // Index in `page` of the last key examined (its key is copied once, for the token).
            let mut last_here = None;
            for (i, (key, entry)) in page.iter().enumerate() {
                if out.len() == max || examined >= budget {
                    more = true;
                    break;
                }
                examined += 1;
                last_here = Some(i);
                let param = if children {
                    if !param_key_of_child(&n_prefix, c_prefix_len, key, &mut record_key) {
                        continue;
                    }
                    match self.store.get(&record_key).await? {
                        Some(entry) => self.shared_param(&record_key, &entry)?,
                        // Deleted between the index read and this one.
                        None => continue,
                    }
                } else {
                    self.shared_param(key, entry)?
                };
                if filters.iter().all(|f| f.matches(&param)) {
                    out.push(param);
                }
            }
            if let Some(i) = last_here {
                last = Some(page[i].0.clone());
            }
            if more {
                break 'outer;
            }
            match page.last() {
                Some((k, _)) if page.len() == chunk => {
                    from = k.clone();
                    from.push(0);
                }
                _ => break,
            }
        }
        let next = match (more, last) {
            (true, Some(k)) => Some(
                self.tokens
                    .issue(scope, &String::from_utf8(k).map_err(|_| E::internal())?),
            ),
            _ => None,
        };
        Ok((out, next))
    }

    pub(crate) async fn get_parameters_by_path(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Vec<u8>, E> {
        let input: ByPathIn = validate::decode(body)?;
        let path = validate::path(required("path", input.path.as_deref())?)?;
        validate::range("maxResults", input.max_results, 1, 10)?;
        let raw_filters = input.parameter_filters.clone().unwrap_or_default();
        let filters = parse_filters(&raw_filters, true)?;
        let recursive = input.recursive.unwrap_or(false);
        let decrypt = input.with_decryption.unwrap_or(false);
        let max = input.max_results.unwrap_or(10) as usize;
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        // AWS decides on the path's own ARN (`parameter/prod` for `/prod`), with ssm:Recursive.
        let recursive_key = [ConditionKey::bool("ssm:Recursive", recursive)];
        self.check_param(ctx, &path, None, &recursive_key)?;
        let scope = coffer_service::token::scope(&[
            "GetParametersByPath",
            account,
            region,
            &path,
            if recursive { "r" } else { "1" },
            &serde_json::to_string(&raw_filters).unwrap_or_default(),
        ]);
        let range = if recursive {
            let mut p = param_prefix(account, region);
            p.extend_from_slice(path.as_bytes());
            if path != "/" {
                p.push(b'/');
            }
            Range::Records(p)
        } else {
            Range::Children(children_prefix(account, region, &path))
        };
        let (params, next) = self
            .walk(
                ctx,
                &scope,
                input.next_token.as_deref(),
                range,
                max,
                &filters,
            )
            .await?;
        // Written straight into the body (see `out`); keys in serde_json's map order.
        let mut buf = Vec::with_capacity(64 + 384 * params.len());
        buf.push(b'{');
        if let Some(t) = next {
            buf.extend_from_slice(b"\"NextToken\":");
            serde_json::to_writer(&mut buf, &t).map_err(|_| E::internal())?;
            buf.push(b',');
        }
        buf.extend_from_slice(b"\"Parameters\":[");
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            self.write_parameter(ctx, p, &p.current, None, decrypt, &mut buf)
                .await?;
        }
        buf.extend_from_slice(b"]}");
        Ok(buf)
    }

    pub(crate) async fn describe_parameters(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, E> {
        let input: DescribeIn = validate::decode(body)?;
        validate::range("maxResults", input.max_results, 1, 50)?;
        ctx.check_any()?;
        let max = input.max_results.unwrap_or(50) as usize;
        if input.filters.is_some() && input.parameter_filters.is_some() {
            return Err(E::Validation(
                "You can use either Filters or ParameterFilters in a single request.".into(),
            ));
        }
        let raw_filters: Vec<StringFilterIn> = match &input.filters {
            Some(old) => {
                let mut v = Vec::with_capacity(old.len());
                for f in old {
                    let key = required("filters.member.key", f.key.as_deref())?;
                    validate::one_of("filters.member.key", Some(key), &["Name", "Type", "KeyId"])?;
                    let values = required("filters.member.values", f.values.clone())?;
                    v.push(StringFilterIn {
                        key: Some(key.to_owned()),
                        option: (key == "Name").then(|| "BeginsWith".to_owned()),
                        values: Some(values),
                    });
                }
                v
            }
            None => input.parameter_filters.clone().unwrap_or_default(),
        };
        let filters = parse_filters(&raw_filters, false)?;
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        let scope = coffer_service::token::scope(&[
            "DescribeParameters",
            account,
            region,
            &serde_json::to_string(&raw_filters).unwrap_or_default(),
        ]);
        let mut o = Obj::new();
        if input.shared == Some(true) {
            // Parameters shared from other accounts: this server shares none.
            o.insert("Parameters".into(), json!([]));
            return Ok(o);
        }
        let range = narrowest_range(account, region, &filters);
        let (params, next) = self
            .walk(
                ctx,
                &scope,
                input.next_token.as_deref(),
                range,
                max,
                &filters,
            )
            .await?;
        let now = self.now();
        let list: Vec<Value> = params
            .iter()
            .map(|p| {
                let v = &p.current;
                let mut m = Obj::new();
                m.insert("Name".into(), json!(p.name));
                m.insert("ARN".into(), json!(self.arn(ctx, &canon(&p.name))));
                m.insert("Type".into(), json!(v.ptype.as_str()));
                if let Some(k) = &v.key_id {
                    m.insert("KeyId".into(), json!(k));
                }
                m.insert("LastModifiedDate".into(), ts(v.modified_ms));
                m.insert("LastModifiedUser".into(), json!(v.modified_user));
                if let Some(d) = &v.description {
                    m.insert("Description".into(), json!(d));
                }
                if let Some(a) = &v.allowed_pattern {
                    m.insert("AllowedPattern".into(), json!(a));
                }
                m.insert("Version".into(), json!(v.version));
                m.insert("Tier".into(), json!(v.tier.as_str()));
                m.insert("Policies".into(), policies_json(&v.policies, now));
                m.insert("DataType".into(), json!(v.data_type));
                Value::Object(m)
            })
            .collect();
        o.insert("Parameters".into(), Value::Array(list));
        if let Some(t) = next {
            o.insert("NextToken".into(), json!(t));
        }
        Ok(o)
    }
}

/// The smallest key range that holds every parameter the filters can match.
fn narrowest_range(account: &str, region: &str, filters: &[Filter]) -> Range {
    for f in filters {
        if let Filter::Path { recursive, paths } = f
            && let [path] = paths.as_slice()
        {
            return if *recursive {
                let mut p = param_prefix(account, region);
                p.extend_from_slice(path.as_bytes());
                if path != "/" {
                    p.push(b'/');
                }
                Range::Records(p)
            } else {
                Range::Children(children_prefix(account, region, path))
            };
        }
    }
    for f in filters {
        if let Filter::Name(Op::Equals | Op::BeginsWith, vals) = f
            && let [v] = vals.as_slice()
        {
            let mut p = param_prefix(account, region);
            p.extend_from_slice(canon(v).as_bytes());
            return Range::Records(p);
        }
    }
    Range::Records(param_prefix(account, region))
}
