//! Evaluation: AWS's policy evaluation logic within one account.
//!
//! A [`CompiledPolicy`] is built once from a parsed [`Policy`] (patterns folded and split, condition
//! values parsed), so a decision costs a scan of the statements with no allocation unless a
//! policy variable or a computed condition key is involved.
//!
//! Logic ([`decide`]): an explicit `Deny` in any policy wins; otherwise the request is allowed when
//! an identity policy allows it or the resource policy allows it for this principal; otherwise it
//! is implicitly denied. A KMS key policy is stricter: it must allow the request itself, or allow
//! the account root (delegating to IAM) and then an identity policy must allow it.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::glob::{Glob, Vars};
use crate::{
    ActionBlock, Effect, Operator, OperatorType, Policy, PolicyError, PolicyKind, Principal,
    PrincipalBlock, ResourceBlock, SetQualifier,
};

/// The values of one condition key in the request context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values<'a> {
    One(Cow<'a, str>),
    /// A multivalued key such as `aws:TagKeys`.
    Many(Vec<Cow<'a, str>>),
}

/// The request context's condition keys.
pub trait Context {
    /// The value(s) of `key`, given lowercased; `None` when the request has no such key.
    fn get(&self, key: &str) -> Option<Values<'_>>;
}

/// Who is asking, as resource policies' `Principal` elements match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestPrincipal<'a> {
    pub account: &'a str,
    /// The principal's ARN (`...:root`, `...:user/NAME`, `...:assumed-role/ROLE/SESSION`).
    pub arn: &'a str,
    /// For a role session, the role's ARN (a policy naming the role matches its sessions).
    pub role_arn: Option<&'a str>,
    pub is_root: bool,
    /// A service acting as itself (`lambda.amazonaws.com` assuming an execution role), not an
    /// IAM caller: only `Service` principal entries (and `*`) name it.
    pub service: Option<&'a str>,
    /// A web identity vouched for by this identity provider (its IAM ARN,
    /// `arn:aws:iam::ACCOUNT:oidc-provider/HOST`): only `Federated` entries (and `*`) name it.
    pub federated: Option<&'a str>,
}

impl<'a> RequestPrincipal<'a> {
    /// The service principal `name` (e.g. `lambda.amazonaws.com`).
    pub fn service(name: &'a str) -> Self {
        RequestPrincipal {
            account: "",
            arn: "",
            role_arn: None,
            is_root: false,
            service: Some(name),
            federated: None,
        }
    }

    /// A web identity whose token the identity provider `provider_arn` issued.
    pub fn federated(provider_arn: &'a str) -> Self {
        RequestPrincipal {
            account: "",
            arn: "",
            role_arn: None,
            is_root: false,
            service: None,
            federated: Some(provider_arn),
        }
    }
}

/// One authorization question.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub principal: RequestPrincipal<'a>,
    pub context: &'a dyn Context,
}

/// The resource-based policy taking part, and how it combines with identity policies.
#[derive(Debug, Clone, Copy)]
pub enum ResourceMode<'a> {
    None,
    /// Secrets Manager style: allowed when either an identity or the resource policy allows.
    Combined(&'a CompiledPolicy),
    /// KMS style: the key policy must allow, directly or by delegating to the account.
    KeyPolicy(&'a CompiledPolicy),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(DenyReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// An identity-based policy denies explicitly.
    ExplicitIdentity,
    /// The resource (or key) policy denies explicitly.
    ExplicitResource,
    /// Nothing allows (no identity policy, no resource policy).
    NoIdentityAllow,
    /// A key policy neither allows nor delegates to the account.
    NoResourceAllow,
}

/// A policy ready for evaluation.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    statements: Box<[Stmt]>,
}

#[derive(Debug, Clone)]
struct Stmt {
    allow: bool,
    principal: Option<(bool, PrincipalSet)>,
    not_action: bool,
    actions: Box<[Glob]>,
    /// The services (lowercase action prefixes) an `Action` element can match, when each of its
    /// patterns names one literally; `None` when it may match any (`*`, `NotAction`, ...). Lets
    /// evaluation skip most statements of a large policy with a string compare.
    services: Option<Box<[Box<str>]>>,
    /// `None`: no resource element (trust policies) — matches any resource.
    resources: Option<(bool, Box<[Glob]>)>,
    conditions: Box<[Cond]>,
}

#[derive(Debug, Clone)]
enum PrincipalSet {
    Everyone,
    /// `AWS` ids, `Service` names and `Federated` identity providers; canonical users name no
    /// caller Coffer has.
    Specific {
        aws: Box<[Box<str>]>,
        services: Box<[Box<str>]>,
        federated: Box<[Box<str>]>,
    },
}

#[derive(Debug, Clone)]
struct Cond {
    set: Option<SetQualifier>,
    base: Operator,
    if_exists: bool,
    key: Box<str>,
    values: Box<[CondValue]>,
}

#[derive(Debug, Clone)]
enum CondValue {
    Text(Glob),
    Number(Option<f64>),
    Date(Option<i64>),
    Bool(Box<str>),
    Raw(Box<str>),
    Cidr(Option<(IpAddr, u8)>),
    /// Six colon-separated components, each a glob.
    Arn(Option<Box<[Glob]>>),
    Null(bool),
}

impl CompiledPolicy {
    /// Parses `doc` as `kind` and compiles it.
    pub fn parse(doc: &str, kind: PolicyKind) -> Result<CompiledPolicy, PolicyError> {
        Ok(CompiledPolicy::compile(&crate::parse_as(doc, kind)?))
    }

    pub fn compile(policy: &Policy) -> CompiledPolicy {
        let vars = policy.version.supports_policy_variables();
        let statements = policy
            .statements
            .iter()
            .map(|s| {
                let principal = s.principal.as_ref().map(|p| match p {
                    PrincipalBlock::Principal(p) => (false, principal_set(p)),
                    PrincipalBlock::NotPrincipal(p) => (true, principal_set(p)),
                });
                let (not_action, actions) = match &s.action {
                    ActionBlock::Action(a) => (false, a),
                    ActionBlock::NotAction(a) => (true, a),
                };
                let resources = s.resource.as_ref().map(|r| {
                    let (neg, list) = match r {
                        ResourceBlock::Resource(l) => (false, l),
                        ResourceBlock::NotResource(l) => (true, l),
                    };
                    (
                        neg,
                        list.iter()
                            .map(|p| Glob::new(p, true, vars, false))
                            .collect(),
                    )
                });
                let actions: Box<[Glob]> = actions
                    .iter()
                    .map(|a| Glob::new(a, true, false, true))
                    .collect();
                let services = if not_action {
                    None
                } else {
                    actions
                        .iter()
                        .map(|g| {
                            g.literal_prefix()
                                .and_then(|p| p.split_once(':'))
                                .map(|(svc, _)| Box::<str>::from(svc))
                        })
                        .collect::<Option<Box<[Box<str>]>>>()
                };
                Stmt {
                    allow: s.effect == Effect::Allow,
                    principal,
                    not_action,
                    actions,
                    services,
                    resources,
                    conditions: s
                        .conditions
                        .iter()
                        .map(|c| Cond {
                            set: c.operator.set,
                            base: c.operator.base,
                            if_exists: c.operator.if_exists,
                            key: c.key.to_ascii_lowercase().into(),
                            values: c
                                .values
                                .iter()
                                .map(|v| cond_value(c.operator.base, v, vars))
                                .collect(),
                        })
                        .collect(),
                }
            })
            .collect();
        CompiledPolicy { statements }
    }

    /// How many statements the policy has.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }
}

fn principal_set(p: &Principal) -> PrincipalSet {
    match p {
        Principal::Any => PrincipalSet::Everyone,
        Principal::Specific(m) if m.aws.iter().any(|a| a == "*") => PrincipalSet::Everyone,
        Principal::Specific(m) => PrincipalSet::Specific {
            aws: m.aws.iter().map(|a| a.as_str().into()).collect(),
            services: m.service.iter().map(|a| a.as_str().into()).collect(),
            federated: m.federated.iter().map(|a| a.as_str().into()).collect(),
        },
    }
}

fn cond_value(op: Operator, v: &str, vars: bool) -> CondValue {
    match op.operator_type() {
        OperatorType::String => match op {
            Operator::StringLike | Operator::StringNotLike => {
                CondValue::Text(Glob::new(v, true, vars, false))
            }
            Operator::StringEqualsIgnoreCase | Operator::StringNotEqualsIgnoreCase => {
                CondValue::Text(Glob::new(v, false, vars, true))
            }
            _ => CondValue::Text(Glob::new(v, false, vars, false)),
        },
        OperatorType::Numeric => CondValue::Number(v.trim().parse::<f64>().ok()),
        OperatorType::Date => CondValue::Date(parse_date(v)),
        OperatorType::Bool => CondValue::Bool(v.to_ascii_lowercase().into()),
        OperatorType::Binary => CondValue::Raw(v.into()),
        OperatorType::Ip => CondValue::Cidr(parse_cidr(v)),
        OperatorType::Arn => CondValue::Arn(arn_parts(v).map(|parts| {
            parts
                .iter()
                .map(|p| Glob::new(p, true, vars, false))
                .collect()
        })),
        OperatorType::Null => CondValue::Null(v.eq_ignore_ascii_case("true")),
    }
}

fn arn_parts(v: &str) -> Option<[&str; 6]> {
    let mut it = v.splitn(6, ':');
    let parts = [
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ];
    Some(parts)
}

fn parse_cidr(v: &str) -> Option<(IpAddr, u8)> {
    let v = v.trim();
    let (ip, bits) = match v.split_once('/') {
        Some((ip, bits)) => (ip.parse::<IpAddr>().ok()?, bits.parse::<u8>().ok()?),
        None => {
            let ip = v.parse::<IpAddr>().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn in_cidr(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V4(_)) => a
            .to_ipv4_mapped()
            .is_some_and(|a4| in_cidr(IpAddr::V4(a4), (net, bits))),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

/// ISO 8601 (`2024-01-31`, `2024-01-31T12:00:00Z`, fractional seconds, `+hh:mm` offsets) or epoch
/// seconds, as Unix milliseconds.
pub(crate) fn parse_date(v: &str) -> Option<i64> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && !v.contains('-') {
        return v.parse::<i64>().ok()?.checked_mul(1000);
    }
    let b = v.as_bytes();
    let num = |s: &[u8]| -> Option<i64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut millis = days_from_civil(y, mo, d) * 86_400_000;
    let mut rest = &b[10..];
    if let Some(r) = rest.strip_prefix(b"T").or_else(|| rest.strip_prefix(b"t")) {
        if r.len() < 5 || r[2] != b':' {
            return None;
        }
        let (h, mi) = (num(&r[0..2])?, num(&r[3..5])?);
        if h > 23 || mi > 59 {
            return None;
        }
        millis += (h * 3600 + mi * 60) * 1000;
        rest = &r[5..];
        if let Some(r) = rest.strip_prefix(b":") {
            if r.len() < 2 {
                return None;
            }
            let s = num(&r[0..2])?;
            if s > 60 {
                return None;
            }
            millis += s * 1000;
            rest = &r[2..];
            if let Some(r) = rest.strip_prefix(b".") {
                let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                let frac = &r[..n.min(3)];
                let mut ms = num(frac)?;
                for _ in frac.len()..3 {
                    ms *= 10;
                }
                millis += ms;
                rest = &r[n..];
            }
        }
        match rest {
            b"" | b"Z" | b"z" => {}
            [sign @ (b'+' | b'-'), oh1, oh2, b':', om1, om2] => {
                let off = (num(&[*oh1, *oh2])? * 60 + num(&[*om1, *om2])?) * 60_000;
                millis += if *sign == b'+' { -off } else { off };
            }
            _ => return None,
        }
    } else if !rest.is_empty() {
        return None;
    }
    Some(millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Adapter: policy variables are single-valued condition keys.
struct CtxVars<'a>(&'a dyn Context);

impl Vars for CtxVars<'_> {
    fn var(&self, key: &str) -> Option<Cow<'_, str>> {
        match self.0.get(key)? {
            Values::One(v) => Some(v),
            Values::Many(_) => None,
        }
    }
}

/// How a statement's principal element relates to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PrincipalMatch {
    /// Names this caller (its ARN, its role, `*`), or the statement has no principal element.
    Caller,
    /// Names only the caller's account: a delegation to the account's IAM policies.
    Account,
    No,
}

fn match_principal(stmt: &Stmt, who: &RequestPrincipal<'_>) -> PrincipalMatch {
    let Some((negated, set)) = &stmt.principal else {
        return PrincipalMatch::Caller;
    };
    let m = match set {
        PrincipalSet::Everyone => PrincipalMatch::Caller,
        PrincipalSet::Specific { services, .. } if who.service.is_some() => {
            if services.iter().any(|s| Some(&**s) == who.service) {
                PrincipalMatch::Caller
            } else {
                PrincipalMatch::No
            }
        }
        PrincipalSet::Specific { federated, .. } if who.federated.is_some() => {
            if federated.iter().any(|f| Some(&**f) == who.federated) {
                PrincipalMatch::Caller
            } else {
                PrincipalMatch::No
            }
        }
        PrincipalSet::Specific { aws, .. } => match_aws_ids(aws, who),
    };
    if *negated {
        // NotPrincipal applies to everyone it does not name.
        if m == PrincipalMatch::No {
            PrincipalMatch::Caller
        } else {
            PrincipalMatch::No
        }
    } else {
        m
    }
}

/// The best match of the caller among `AWS` principal ids: its own ARN or its role's (a
/// session of a named role), else its account (root ARN or bare account id).
fn match_aws_ids(ids: &[Box<str>], who: &RequestPrincipal<'_>) -> PrincipalMatch {
    let mut best = PrincipalMatch::No;
    for id in ids {
        let id: &str = id;
        let account_of_root = id
            .strip_prefix("arn:")
            .and_then(|r| r.strip_suffix(":root"))
            .and_then(|r| r.rsplit_once(':'))
            .filter(|(head, _)| head.ends_with(":iam:"))
            .map(|(_, acct)| acct);
        let account = if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
            Some(id)
        } else {
            account_of_root
        };
        match account {
            Some(acct) if acct == who.account => {
                if who.is_root {
                    return PrincipalMatch::Caller;
                }
                best = PrincipalMatch::Account;
            }
            Some(_) => {}
            None if id == who.arn || who.role_arn == Some(id) => return PrincipalMatch::Caller,
            None => {}
        }
    }
    best
}

/// Whether the statement applies to the request, ignoring its principal element.
/// `action` is the request's action, lowercased (action patterns are compiled lowercased and
/// without variables).
fn statement_applies(s: &Stmt, req: &Request<'_>, action: &str, vars: &CtxVars<'_>) -> bool {
    let action_hit = s.actions.iter().any(|g| g.matches_folded(action));
    if action_hit == s.not_action {
        return false;
    }
    if let Some((negated, globs)) = &s.resources {
        // A variable without a value makes that entry match nothing (and so not exclude either).
        let hit = globs
            .iter()
            .any(|g| g.is_any() || g.matches(req.resource, vars) == Some(true));
        if hit == *negated {
            return false;
        }
    }
    s.conditions
        .iter()
        .all(|c| condition_holds(c, req.context, vars))
}

fn condition_holds(c: &Cond, ctx: &dyn Context, vars: &CtxVars<'_>) -> bool {
    let got = ctx.get(&c.key);
    if c.base == Operator::Null {
        let present = match &got {
            None => false,
            Some(Values::Many(v)) => !v.is_empty(),
            Some(Values::One(_)) => true,
        };
        return c
            .values
            .iter()
            .any(|v| matches!(v, CondValue::Null(want_absent) if *want_absent != present));
    }
    let negated = c.base.is_negated();
    let one_value = |v: &str| -> bool {
        let any = c.values.iter().any(|pv| value_matches(c.base, pv, v, vars));
        any != negated
    };
    match got {
        None => match c.set {
            _ if c.if_exists => true,
            Some(SetQualifier::ForAllValues) => true,
            Some(SetQualifier::ForAnyValue) => false,
            None => negated,
        },
        // A single value: the set qualifiers reduce to the value itself.
        Some(Values::One(v)) => one_value(&v),
        Some(Values::Many(vs)) => match c.set {
            Some(SetQualifier::ForAllValues) => vs.iter().all(|v| one_value(v)),
            Some(SetQualifier::ForAnyValue) => vs.iter().any(|v| one_value(v)),
            // A multivalued key without a qualifier: positive operators need one value to match,
            // negated ones need no value to match.
            None if negated => vs.iter().all(|v| one_value(v)),
            None => vs.iter().any(|v| one_value(v)),
        },
    }
}

/// The positive form of the operator: does request value `v` match policy value `pv`?
fn value_matches(op: Operator, pv: &CondValue, v: &str, vars: &CtxVars<'_>) -> bool {
    use Operator::*;
    match pv {
        CondValue::Text(g) => g.matches(v, vars) == Some(true),
        CondValue::Number(Some(p)) => match v.trim().parse::<f64>() {
            Ok(x) => match op {
                NumericEquals | NumericNotEquals => x == *p,
                NumericLessThan => x < *p,
                NumericLessThanEquals => x <= *p,
                NumericGreaterThan => x > *p,
                NumericGreaterThanEquals => x >= *p,
                _ => false,
            },
            Err(_) => false,
        },
        CondValue::Date(Some(p)) => match parse_date(v) {
            Some(x) => match op {
                DateEquals | DateNotEquals => x == *p,
                DateLessThan => x < *p,
                DateLessThanEquals => x <= *p,
                DateGreaterThan => x > *p,
                DateGreaterThanEquals => x >= *p,
                _ => false,
            },
            None => false,
        },
        CondValue::Bool(b) => v.eq_ignore_ascii_case(b),
        CondValue::Raw(r) => v == &**r,
        CondValue::Cidr(Some(net)) => v.trim().parse::<IpAddr>().is_ok_and(|ip| in_cidr(ip, *net)),
        CondValue::Arn(Some(parts)) => match arn_parts(v) {
            Some(vp) => parts
                .iter()
                .zip(vp.iter())
                .all(|(g, p)| g.matches(p, vars) == Some(true)),
            None => false,
        },
        // Unparseable policy values never match.
        CondValue::Number(None)
        | CondValue::Date(None)
        | CondValue::Cidr(None)
        | CondValue::Arn(None)
        | CondValue::Null(_) => false,
    }
}

/// What one policy says about a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyOutcome {
    pub deny: bool,
    /// An `Allow` statement applies and names this caller (or has no principal element).
    pub allow: bool,
    /// An `Allow` statement applies but names only the caller's account.
    pub allow_account: bool,
}

impl CompiledPolicy {
    /// Evaluates every statement against `req`. Stops at the first applicable `Deny`.
    pub fn evaluate(&self, req: &Request<'_>) -> PolicyOutcome {
        let vars = CtxVars(req.context);
        let mut out = PolicyOutcome::default();
        let service = req.action.split_once(':').map_or(req.action, |(s, _)| s);
        let mut action: Option<String> = None;
        for s in self.statements.iter() {
            if let Some(services) = &s.services
                && !services.iter().any(|x| x.eq_ignore_ascii_case(service))
            {
                continue;
            }
            let pm = match_principal(s, &req.principal);
            if pm == PrincipalMatch::No {
                continue;
            }
            if s.allow && (out.allow || (out.allow_account && pm == PrincipalMatch::Account)) {
                // Already known; only a Deny could change the outcome.
                continue;
            }
            let action = action.get_or_insert_with(|| req.action.to_ascii_lowercase());
            if !statement_applies(s, req, action, &vars) {
                continue;
            }
            if s.allow {
                match pm {
                    PrincipalMatch::Caller => out.allow = true,
                    PrincipalMatch::Account => out.allow_account = true,
                    PrincipalMatch::No => {}
                }
            } else {
                out.deny = true;
                return out;
            }
        }
        out
    }
}

/// AWS's decision for `req` given the caller's identity policies and the resource policy.
pub fn decide<'p, I>(identity: I, resource: ResourceMode<'_>, req: &Request<'_>) -> Decision
where
    I: IntoIterator<Item = &'p CompiledPolicy>,
{
    let mut identity_allows = false;
    for p in identity {
        let o = p.evaluate(req);
        if o.deny {
            return Decision::Deny(DenyReason::ExplicitIdentity);
        }
        // Identity policies have no principal element; account-level matches cannot occur.
        identity_allows |= o.allow || o.allow_account;
    }
    match resource {
        ResourceMode::None => {
            if identity_allows {
                Decision::Allow
            } else {
                Decision::Deny(DenyReason::NoIdentityAllow)
            }
        }
        ResourceMode::Combined(p) => {
            let o = p.evaluate(req);
            if o.deny {
                Decision::Deny(DenyReason::ExplicitResource)
            } else if identity_allows || o.allow {
                Decision::Allow
            } else {
                Decision::Deny(DenyReason::NoIdentityAllow)
            }
        }
        ResourceMode::KeyPolicy(p) => {
            let o = p.evaluate(req);
            if o.deny {
                Decision::Deny(DenyReason::ExplicitResource)
            } else if o.allow || (o.allow_account && identity_allows) {
                Decision::Allow
            } else if o.allow_account {
                Decision::Deny(DenyReason::NoIdentityAllow)
            } else {
                Decision::Deny(DenyReason::NoResourceAllow)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
        assert_eq!(
            parse_date("2020-02-29T12:30:15.5Z"),
            Some(1_582_979_415_500)
        );
        assert_eq!(
            parse_date("2020-02-29T13:30:15.5+01:00"),
            Some(1_582_979_415_500)
        );
        assert_eq!(parse_date("1582979415"), Some(1_582_979_415_000));
        assert_eq!(parse_date("2020-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date("2020-01-01T10"), None);
    }

    #[test]
    fn cidrs() {
        let net = parse_cidr("203.0.113.0/24").unwrap();
        assert!(in_cidr("203.0.113.7".parse().unwrap(), net));
        assert!(!in_cidr("203.0.114.7".parse().unwrap(), net));
        assert!(in_cidr("::ffff:203.0.113.9".parse().unwrap(), net));
        let v6 = parse_cidr("2001:db8::/32").unwrap();
        assert!(in_cidr("2001:db8:1::1".parse().unwrap(), v6));
        assert!(!in_cidr("2001:db9::1".parse().unwrap(), v6));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(in_cidr(
            "1.2.3.4".parse().unwrap(),
            parse_cidr("0.0.0.0/0").unwrap()
        ));
    }

    struct Keys(&'static [(&'static str, &'static str)]);
    impl Context for Keys {
        fn get(&self, key: &str) -> Option<Values<'_>> {
            self.0
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| Values::One(Cow::Borrowed(v)))
        }
    }

    fn trusts(doc: &str, who: RequestPrincipal<'_>, keys: &Keys) -> bool {
        let policy = CompiledPolicy::parse(doc, PolicyKind::Trust).unwrap();
        let req = Request {
            action: "sts:AssumeRole",
            resource: "arn:aws:iam::111122223333:role/exec",
            principal: who,
            context: keys,
        };
        let o = policy.evaluate(&req);
        o.allow && !o.deny
    }

    #[test]
    fn federated_principals_match_only_their_provider() {
        let github = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";
        let none = Keys(&[]);
        let doc = format!(
            r#"{{"Statement":{{"Effect":"Allow","Principal":{{"Federated":"{github}"}},"Action":"sts:AssumeRole"}}}}"#
        );
        assert!(trusts(&doc, RequestPrincipal::federated(github), &none));
        let other = "arn:aws:iam::111122223333:oidc-provider/evil.example.com";
        assert!(!trusts(&doc, RequestPrincipal::federated(other), &none));
        // A web identity is not an IAM caller, and an IAM caller is not a web identity.
        let for_account = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}}"#;
        assert!(!trusts(
            for_account,
            RequestPrincipal::federated(github),
            &none
        ));
        let alice = RequestPrincipal {
            account: "111122223333",
            arn: "arn:aws:iam::111122223333:user/alice",
            role_arn: None,
            is_root: false,
            service: None,
            federated: None,
        };
        assert!(!trusts(&doc, alice, &none));
    }

    #[test]
    fn service_principals_match_only_service_entries() {
        let lambda = RequestPrincipal::service("lambda.amazonaws.com");
        let user = RequestPrincipal {
            account: "111122223333",
            arn: "arn:aws:iam::111122223333:user/alice",
            role_arn: None,
            is_root: false,
            service: None,
            federated: None,
        };
        let none = Keys(&[]);
        let for_lambda = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["ec2.amazonaws.com","lambda.amazonaws.com"]},"Action":"sts:AssumeRole"}}"#;
        assert!(trusts(for_lambda, lambda, &none));
        assert!(!trusts(
            for_lambda,
            RequestPrincipal::service("ec2.amazonaws.com.evil"),
            &none
        ));
        // A user of the account is not the service, even when the statement is about it.
        assert!(!trusts(for_lambda, user, &none));
        let for_account = r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}}"#;
        assert!(!trusts(for_account, lambda, &none));
        let for_anyone =
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#;
        assert!(trusts(for_anyone, lambda, &none));
        let not_lambda = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},{"Effect":"Deny","NotPrincipal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(!trusts(not_lambda, lambda, &none));
        assert!(trusts(
            not_lambda,
            RequestPrincipal::service("ec2.amazonaws.com"),
            &none
        ));
        // Confused-deputy conditions see the keys the service supplies.
        let scoped = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}}"#;
        assert!(trusts(
            scoped,
            lambda,
            &Keys(&[("aws:SourceAccount", "111122223333")])
        ));
        assert!(!trusts(
            scoped,
            lambda,
            &Keys(&[("aws:SourceAccount", "444455556666")])
        ));
    }
}
