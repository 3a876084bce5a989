//! The request context's condition keys: AWS's global keys from the caller and the transport,
//! tag keys from the resource and the request, and the operation's own keys.

use std::borrow::Cow;

use coffer_core::authz::{AccessRequest, KeyValue};
use coffer_core::{Caller, RequestContext};
use coffer_policy::{Context, Values};

/// Condition keys for one access request; values are computed only when a policy asks.
pub struct RequestKeys<'a> {
    ctx: &'a RequestContext,
    req: &'a AccessRequest<'a>,
    now_millis: i64,
}

impl<'a> RequestKeys<'a> {
    pub fn new(ctx: &'a RequestContext, req: &'a AccessRequest<'a>, now_millis: i64) -> Self {
        Self {
            ctx,
            req,
            now_millis,
        }
    }
}

fn one(s: &str) -> Option<Values<'_>> {
    Some(Values::One(Cow::Borrowed(s)))
}

fn owned<'x>(s: String) -> Option<Values<'x>> {
    Some(Values::One(Cow::Owned(s)))
}

/// `prefix` + rest of `key`, matched case-insensitively (keys arrive lowercased).
fn strip<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    key.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &key[prefix.len()..])
}

/// For a role session, the role's ARN (what `aws:PrincipalArn` holds and what a policy naming
/// the role matches): `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE/SESSION` →
/// `arn:PARTITION:iam::ACCOUNT:role/ROLE` unless IAM recorded the role's own ARN (with path).
pub(crate) fn role_arn(caller: &Caller) -> Option<&str> {
    caller
        .session
        .as_ref()
        .filter(|_| caller.principal_type == coffer_core::PrincipalType::AssumedRole)
        .map(|s| s.issuer_arn.as_str())
}

impl Context for RequestKeys<'_> {
    fn get(&self, key: &str) -> Option<Values<'_>> {
        let caller = &self.ctx.caller;
        if let Some(global) = strip(key, "aws:") {
            match global {
                "sourceip" => {
                    return self
                        .ctx
                        .source_ip
                        .map(|ip| Values::One(ip.to_string().into()));
                }
                "securetransport" => {
                    return one(if self.ctx.secure_transport {
                        "true"
                    } else {
                        "false"
                    });
                }
                "currenttime" => return owned(iso8601(self.now_millis)),
                "epochtime" => return owned(self.now_millis.div_euclid(1000).to_string()),
                "principalarn" => {
                    return one(role_arn(caller).unwrap_or(&caller.principal_arn));
                }
                "principalaccount" => return one(&caller.account_id),
                "principaltype" => {
                    return one(match caller.principal_type {
                        coffer_core::PrincipalType::Root => "Account",
                        coffer_core::PrincipalType::IamUser => "User",
                        coffer_core::PrincipalType::AssumedRole => "AssumedRole",
                        coffer_core::PrincipalType::FederatedUser => "FederatedUser",
                        coffer_core::PrincipalType::WebIdentityUser => "WebIdentityUser",
                    });
                }
                "username" => return caller.user_name.as_deref().and_then(one),
                "userid" => return one(&caller.principal_id),
                "requestedregion" => return one(&self.ctx.region),
                _ => {}
            }
            if let Some(tag) = strip(global, "principaltag/") {
                return coffer_core::authz::TagLookup::tag(&caller.tags, tag).and_then(one);
            }
            if let Some(tag) = strip(global, "resourcetag/") {
                return self.req.resource_tags?.tag(tag).and_then(one);
            }
            if let Some(tag) = strip(global, "requesttag/") {
                return self.req.request_tags?.tag(tag).and_then(one);
            }
        } else if let Some((service, rest)) = key.split_once(':') {
            // `secretsmanager:ResourceTag/KEY` and the like mirror `aws:ResourceTag/KEY` for
            // the service's own resources.
            if let Some(tag) = strip(rest, "resourcetag/")
                && self
                    .req
                    .action
                    .split_once(':')
                    .is_some_and(|(s, _)| s.eq_ignore_ascii_case(service))
            {
                return self.req.resource_tags?.tag(tag).and_then(one);
            }
            if service == "kms" && rest == "calleraccount" {
                return one(&caller.account_id);
            }
        }
        let k = self
            .req
            .keys
            .iter()
            .find(|k| k.name.eq_ignore_ascii_case(key))?;
        Some(match &k.value {
            KeyValue::Str(s) => Values::One(Cow::Borrowed(s)),
            KeyValue::List(l) => Values::Many(l.iter().map(|s| Cow::Borrowed(*s)).collect()),
        })
    }
}

/// `2024-01-31T12:00:00Z`, the form `aws:CurrentTime` takes.
fn iso8601(millis: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
