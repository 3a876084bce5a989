//! The authorization hook every service operation calls before it touches data.
//!
//! A service states what it is about to do as an [`AccessRequest`] (the IAM action, the resource
//! ARN, the request's own condition keys, the resource's tags and resource policy) and asks the
//! request's [`Authorizer`] through [`crate::RequestContext::authorize`]. The server installs the
//! policy-evaluating implementation; without one, [`RootOnly`] allows the account's root principal
//! and denies everyone else, so a forgotten wiring fails closed.

use std::sync::{Arc, LazyLock};

use crate::RequestContext;

/// One question: may the caller perform `action` on `resource`?
#[derive(Clone, Copy)]
pub struct AccessRequest<'a> {
    /// `service:Operation`, e.g. `secretsmanager:GetSecretValue`.
    pub action: &'a str,
    /// The resource's ARN, or `*` for actions that take no resource (list calls).
    pub resource: &'a str,
    /// Request-specific condition keys (service keys such as `secretsmanager:SecretId`,
    /// `ssm:Recursive`, `kms:EncryptionContext:...`, and `aws:TagKeys`).
    pub keys: &'a [ConditionKey<'a>],
    /// The resource's tags, behind `aws:ResourceTag/KEY` and `SERVICE:ResourceTag/KEY`.
    pub resource_tags: Option<&'a dyn TagLookup>,
    /// The tags the request sets, behind `aws:RequestTag/KEY`.
    pub request_tags: Option<&'a dyn TagLookup>,
    pub resource_policy: ResourcePolicy<'a>,
}

impl<'a> AccessRequest<'a> {
    /// A request with no condition keys, tags or resource policy.
    pub fn new(action: &'a str, resource: &'a str) -> Self {
        Self {
            action,
            resource,
            keys: &[],
            resource_tags: None,
            request_tags: None,
            resource_policy: ResourcePolicy::None,
        }
    }

    pub fn keys(mut self, keys: &'a [ConditionKey<'a>]) -> Self {
        self.keys = keys;
        self
    }

    pub fn resource_tags(mut self, tags: &'a dyn TagLookup) -> Self {
        self.resource_tags = Some(tags);
        self
    }

    pub fn request_tags(mut self, tags: &'a dyn TagLookup) -> Self {
        self.request_tags = Some(tags);
        self
    }

    pub fn resource_policy(mut self, policy: ResourcePolicy<'a>) -> Self {
        self.resource_policy = policy;
        self
    }
}

impl std::fmt::Debug for AccessRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessRequest")
            .field("action", &self.action)
            .field("resource", &self.resource)
            .field("keys", &self.keys)
            .field("resource_policy", &self.resource_policy)
            .finish_non_exhaustive()
    }
}

/// The resource-based policy taking part in a decision, as its JSON text (the authorizer parses
/// and caches it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourcePolicy<'a> {
    None,
    /// A Secrets Manager (or Parameter Store) resource policy: within one account, access is
    /// allowed if it or an identity policy allows and neither denies.
    Combined(&'a str),
    /// A KMS key policy: it must allow, directly or by delegating to IAM (a statement allowing
    /// the account root principal), and nothing may deny.
    KeyPolicy(&'a str),
    /// A role's trust policy (no `Resource` element), decided like a key policy: a statement
    /// naming the caller allows by itself; one naming the account delegates to the caller's
    /// identity policies.
    Trust(&'a str),
}

/// A request condition key and its value(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionKey<'a> {
    pub name: &'a str,
    pub value: KeyValue<'a>,
}

impl<'a> ConditionKey<'a> {
    pub fn str(name: &'a str, value: &'a str) -> Self {
        Self {
            name,
            value: KeyValue::Str(value),
        }
    }
    pub fn bool(name: &'a str, value: bool) -> Self {
        Self {
            name,
            value: KeyValue::Str(if value { "true" } else { "false" }),
        }
    }
    pub fn list(name: &'a str, values: Vec<&'a str>) -> Self {
        Self {
            name,
            value: KeyValue::List(values),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue<'a> {
    Str(&'a str),
    /// A multivalued key (`aws:TagKeys`), for `ForAnyValue:` / `ForAllValues:`.
    List(Vec<&'a str>),
}

/// Tag lookup by key (tag keys compare case-insensitively in condition keys, as in IAM).
pub trait TagLookup: Sync {
    fn tag(&self, key: &str) -> Option<&str>;
}

/// One stored tag, for the [`TagLookup`] of a list of them (each service keeps its own shape).
pub trait TagPair {
    fn tag_key(&self) -> &str;
    fn tag_value(&self) -> &str;
}

impl TagPair for (String, String) {
    fn tag_key(&self) -> &str {
        &self.0
    }
    fn tag_value(&self) -> &str {
        &self.1
    }
}

impl<T: TagPair + Sync> TagLookup for Vec<T> {
    fn tag(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|t| t.tag_key().eq_ignore_ascii_case(key))
            .map(|t| t.tag_value())
    }
}

impl TagLookup for std::collections::BTreeMap<String, String> {
    fn tag(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str).or_else(|| {
            self.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.as_str())
        })
    }
}

/// A denial, with AWS's `AccessDeniedException` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AccessDenied {
    pub message: String,
    /// Why: an explicit deny cannot be overcome by another grant of access (a KMS grant).
    pub reason: DenyReason,
}

/// Why a request is denied, which picks AWS's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No identity-based policy (nor resource policy) allows the action.
    NoIdentityAllow,
    /// A KMS key policy neither allows the action nor delegates to IAM.
    NoResourceAllow,
    ExplicitDenyIdentity,
    ExplicitDenyResource,
    /// The principal's permissions boundary does not allow the action.
    NoBoundaryAllow,
    ExplicitDenyBoundary,
    /// The session policy (AssumeRole's `Policy`) does not allow the action.
    NoSessionAllow,
    ExplicitDenySession,
}

impl AccessDenied {
    /// `User: ARN is not authorized to perform: ACTION on resource: ARN because ...`, as AWS says.
    pub fn new(principal_arn: &str, action: &str, resource: &str, reason: DenyReason) -> Self {
        let tail = match reason {
            DenyReason::NoIdentityAllow => {
                format!("because no identity-based policy allows the {action} action")
            }
            DenyReason::NoResourceAllow => {
                format!("because no resource-based policy allows the {action} action")
            }
            DenyReason::ExplicitDenyIdentity => {
                "with an explicit deny in an identity-based policy".to_string()
            }
            DenyReason::ExplicitDenyResource => {
                "with an explicit deny in a resource-based policy".to_string()
            }
            DenyReason::NoBoundaryAllow => {
                format!("because no permissions boundary allows the {action} action")
            }
            DenyReason::ExplicitDenyBoundary => {
                "with an explicit deny in a permissions boundary".to_string()
            }
            DenyReason::NoSessionAllow => {
                format!("because no session policy allows the {action} action")
            }
            DenyReason::ExplicitDenySession => {
                "with an explicit deny in a session policy".to_string()
            }
        };
        Self {
            message: format!(
                "User: {principal_arn} is not authorized to perform: {action} on resource: {resource} {tail}"
            ),
            reason,
        }
    }

    /// Whether a policy denied explicitly (rather than nothing allowing).
    pub fn is_explicit(&self) -> bool {
        matches!(
            self.reason,
            DenyReason::ExplicitDenyIdentity
                | DenyReason::ExplicitDenyResource
                | DenyReason::ExplicitDenyBoundary
                | DenyReason::ExplicitDenySession
        )
    }
}

/// Decides access requests. Implementations must deny when they cannot decide (a failing policy
/// lookup denies, never allows).
pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, ctx: &RequestContext, req: &AccessRequest<'_>) -> Result<(), AccessDenied>;
}

pub type SharedAuthorizer = Arc<dyn Authorizer>;

/// Whether `caller` is its account's root principal (`arn:PARTITION:iam::ACCOUNT:root`).
pub fn is_root(caller: &crate::Caller) -> bool {
    let arn = caller.principal_arn.as_str();
    arn.starts_with("arn:")
        && arn.strip_suffix(":root").is_some_and(|head| {
            head.strip_suffix(caller.account_id.as_str())
                .is_some_and(|h| h.ends_with(":iam::"))
        })
}

/// The account root is allowed everything in its account; every other principal is denied.
#[derive(Debug, Default, Clone, Copy)]
pub struct RootOnly;

impl Authorizer for RootOnly {
    fn authorize(&self, ctx: &RequestContext, req: &AccessRequest<'_>) -> Result<(), AccessDenied> {
        if is_root(&ctx.caller) {
            return Ok(());
        }
        Err(AccessDenied::new(
            &ctx.caller.principal_arn,
            req.action,
            req.resource,
            DenyReason::NoIdentityAllow,
        ))
    }
}

/// The shared [`RootOnly`] instance new contexts start with.
pub fn root_only() -> SharedAuthorizer {
    static ROOT_ONLY: LazyLock<SharedAuthorizer> = LazyLock::new(|| Arc::new(RootOnly));
    ROOT_ONLY.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Caller;

    fn ctx(caller: Caller) -> RequestContext {
        RequestContext::new(caller, "us-east-1", "r")
    }

    #[test]
    fn root_only_allows_root_and_denies_others() {
        let root = ctx(Caller::root("123456789012", "AKIA"));
        let req = AccessRequest::new("secretsmanager:GetSecretValue", "arn:x");
        assert!(root.authorize(&req).is_ok());

        let mut user = Caller::root("123456789012", "AKIA");
        user.principal_arn = "arn:aws:iam::123456789012:user/root".into();
        let denied = ctx(user).authorize(&req).unwrap_err();
        assert_eq!(
            denied.message,
            "User: arn:aws:iam::123456789012:user/root is not authorized to perform: \
             secretsmanager:GetSecretValue on resource: arn:x because no identity-based policy \
             allows the secretsmanager:GetSecretValue action"
        );

        // Another account's root is not this account's root.
        let mut other = Caller::root("123456789012", "AKIA");
        other.principal_arn = "arn:aws:iam::999999999999:root".into();
        assert!(ctx(other).authorize(&req).is_err());
    }

    #[test]
    fn tag_lookup_ignores_key_case() {
        let tags = vec![("Env".to_string(), "prod".to_string())];
        assert_eq!(tags.tag("env"), Some("prod"));
        assert_eq!(tags.tag("team"), None);
    }
}
