//! The server's [`Authorizer`]: AWS's evaluation of the caller's identity policies together with
//! the resource's policy, over the global condition keys (`aws:*`) and the keys each operation
//! supplies.
//!
//! Identity policies come from an [`IdentityPolicySource`] (IAM), resolved once per request
//! before the operation runs ([`PolicyAuthorizer::for_caller`]); a lookup that fails makes every
//! decision of that request a denial. The account root skips all of it and keeps full access.
//! Resource policies arrive as text and are compiled once, then served from a bounded cache.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use coffer_core::authz::{
    AccessDenied, AccessRequest, Authorizer, DenyReason, ResourcePolicy, SharedAuthorizer, is_root,
    root_only,
};
use coffer_core::{Caller, RequestContext, SharedClock};
use coffer_policy::{CompiledPolicy, Decision, PolicyKind, RequestPrincipal, ResourceMode};

mod keys;

pub use keys::RequestKeys;

/// The caller's identity-based policies, compiled.
#[derive(Debug, Default)]
pub struct IdentityPolicies {
    /// Inline and managed policies of the user and its groups, or of the session's role.
    pub identity: Vec<Arc<CompiledPolicy>>,
    /// Session policies (AssumeRole's `Policy` and `PolicyArns`): when present, one of them
    /// must also allow.
    pub session: Vec<Arc<CompiledPolicy>>,
    /// The user's or the session's role's permissions boundary: when present it must also allow.
    pub boundary: Option<Arc<CompiledPolicy>>,
}

/// Where the caller's identity policies come from (IAM). Implementations cache compiled
/// policies; an `Err` denies the whole request.
pub trait IdentityPolicySource: Send + Sync + 'static {
    fn identity_policies<'a>(
        &'a self,
        caller: &'a Caller,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<IdentityPolicies>, String>> + Send + 'a>>;
}

/// A source for a deployment without IAM principals: every non-root caller has no policies.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoIdentityPolicies;

impl IdentityPolicySource for NoIdentityPolicies {
    fn identity_policies<'a>(
        &'a self,
        _caller: &'a Caller,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<IdentityPolicies>, String>> + Send + 'a>> {
        Box::pin(async { Ok(Arc::new(IdentityPolicies::default())) })
    }
}

/// Compiled resource policies by document text. Bounded: cleared when full (a miss only costs
/// a parse).
struct ResourcePolicyCache {
    /// Resource policies and trust policies have different grammars (a trust policy names no
    /// resource), so each kind has its own cache.
    kind: PolicyKind,
    /// `None`: the document does not parse (a stored policy that fails closed).
    map: RwLock<HashMap<Box<str>, Option<Arc<CompiledPolicy>>>>,
}

const RESOURCE_CACHE_MAX: usize = 4096;

impl ResourcePolicyCache {
    fn new(kind: PolicyKind) -> Self {
        Self {
            kind,
            map: RwLock::default(),
        }
    }

    fn get(&self, doc: &str) -> Option<Arc<CompiledPolicy>> {
        if let Some(p) = self.map.read().unwrap_or_else(|p| p.into_inner()).get(doc) {
            return p.clone();
        }
        let compiled = CompiledPolicy::parse(doc, self.kind).ok().map(Arc::new);
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= RESOURCE_CACHE_MAX {
            map.clear();
        }
        map.insert(doc.into(), compiled.clone());
        compiled
    }
}

/// Shared by all requests: the identity source, the clock and the resource-policy cache.
pub struct PolicyAuthorizer {
    source: Arc<dyn IdentityPolicySource>,
    clock: SharedClock,
    resources: ResourcePolicyCache,
    trusts: ResourcePolicyCache,
}

impl PolicyAuthorizer {
    pub fn new(source: Arc<dyn IdentityPolicySource>, clock: SharedClock) -> Arc<Self> {
        Arc::new(Self {
            source,
            clock,
            resources: ResourcePolicyCache::new(PolicyKind::Resource),
            trusts: ResourcePolicyCache::new(PolicyKind::Trust),
        })
    }

    /// The authorizer for one request by `caller`: the shared root-only one for the account
    /// root (no lookup, no allocation), else one holding the caller's resolved policies.
    pub async fn for_caller(self: &Arc<Self>, caller: &Caller) -> SharedAuthorizer {
        if is_root(caller) {
            return root_only();
        }
        let policies = self.source.identity_policies(caller).await;
        Arc::new(CallerAuthorizer {
            shared: self.clone(),
            policies,
        })
    }
}

/// Decides the requests of one non-root caller.
struct CallerAuthorizer {
    shared: Arc<PolicyAuthorizer>,
    policies: Result<Arc<IdentityPolicies>, String>,
}

impl Authorizer for CallerAuthorizer {
    fn authorize(&self, ctx: &RequestContext, req: &AccessRequest<'_>) -> Result<(), AccessDenied> {
        let caller = &ctx.caller;
        let deny =
            |reason| AccessDenied::new(&caller.principal_arn, req.action, req.resource, reason);
        if is_root(caller) {
            return Ok(());
        }
        let Ok(policies) = &self.policies else {
            // Fail closed: without the caller's policies nothing is allowed.
            return Err(deny(DenyReason::NoIdentityAllow));
        };
        let resource_policy = match req.resource_policy {
            ResourcePolicy::None => None,
            ResourcePolicy::Combined(doc) | ResourcePolicy::KeyPolicy(doc) => {
                match self.shared.resources.get(doc) {
                    Some(p) => Some(p),
                    None => return Err(deny(DenyReason::NoIdentityAllow)),
                }
            }
            ResourcePolicy::Trust(doc) => match self.shared.trusts.get(doc) {
                Some(p) => Some(p),
                None => return Err(deny(DenyReason::NoResourceAllow)),
            },
        };
        let mode = match (&resource_policy, req.resource_policy) {
            (Some(p), ResourcePolicy::KeyPolicy(_) | ResourcePolicy::Trust(_)) => {
                ResourceMode::KeyPolicy(p)
            }
            (Some(p), _) => ResourceMode::Combined(p),
            (None, _) => ResourceMode::None,
        };
        let keys = RequestKeys::new(ctx, req, self.shared.clock.now_millis());
        let request = coffer_policy::Request {
            action: req.action,
            resource: req.resource,
            principal: request_principal(caller),
            context: &keys,
        };
        evaluate(policies, mode, &request).map_err(deny)
    }
}

/// AWS's decision for one request of a non-root caller with these policies (and the resource's
/// policy in `mode`): the one evaluation the authorizer and IAM's policy simulator share.
pub fn evaluate(
    policies: &IdentityPolicies,
    mode: ResourceMode<'_>,
    request: &coffer_policy::Request<'_>,
) -> Result<(), DenyReason> {
    let decision = coffer_policy::decide(policies.identity.iter().map(|p| &**p), mode, request);
    bounded(decision, policies, mode, request)
}

/// Applies the caller's bounds to the identity and resource policies' `decision`: a
/// permissions boundary and a session policy each cap what the identity policies grant (an
/// explicit deny anywhere wins; then every present bound must allow). As in AWS, they do not cap
/// what a resource or key policy grants the caller by itself ("permissions boundaries do not
/// define the maximum permissions that a resource-based policy can grant") when it names the
/// user or the role session itself; one naming the session's role is capped.
fn bounded(
    decision: Decision,
    policies: &IdentityPolicies,
    mode: ResourceMode<'_>,
    request: &coffer_policy::Request<'_>,
) -> Result<(), DenyReason> {
    use coffer_policy::DenyReason as Why;
    let main = match decision {
        Decision::Allow => None,
        Decision::Deny(Why::ExplicitIdentity) => return Err(DenyReason::ExplicitDenyIdentity),
        Decision::Deny(Why::ExplicitResource) => return Err(DenyReason::ExplicitDenyResource),
        Decision::Deny(Why::NoIdentityAllow) => Some(DenyReason::NoIdentityAllow),
        Decision::Deny(Why::NoResourceAllow) => Some(DenyReason::NoResourceAllow),
    };
    let bounds = [
        (
            policies.boundary.as_slice(),
            DenyReason::ExplicitDenyBoundary,
            DenyReason::NoBoundaryAllow,
        ),
        (
            policies.session.as_slice(),
            DenyReason::ExplicitDenySession,
            DenyReason::NoSessionAllow,
        ),
    ];
    let mut implicit = main;
    // Asked at most once, and only when a bound does not allow.
    let mut by_resource = None;
    for (bound, explicit, no_allow) in bounds {
        if bound.is_empty() {
            continue;
        }
        match coffer_policy::decide(bound.iter().map(|p| &**p), ResourceMode::None, request) {
            Decision::Allow => {}
            Decision::Deny(Why::ExplicitIdentity) => return Err(explicit),
            Decision::Deny(_) => {
                if implicit.is_none()
                    && !*by_resource.get_or_insert_with(|| granted_by_resource(mode, request))
                {
                    implicit = Some(no_allow);
                }
            }
        }
    }
    implicit.map_or(Ok(()), Err)
}

/// Whether the resource (or key) policy alone allows the request, without identity policies,
/// naming the caller itself: a user, or a role session by its session ARN. A grant to the
/// session's role (the role ARN) stays capped by the bounds, as AWS caps it.
fn granted_by_resource(mode: ResourceMode<'_>, request: &coffer_policy::Request<'_>) -> bool {
    if matches!(mode, ResourceMode::None) {
        return false;
    }
    let direct = coffer_policy::Request {
        principal: RequestPrincipal {
            role_arn: None,
            ..request.principal
        },
        ..*request
    };
    coffer_policy::decide(std::iter::empty(), mode, &direct) == Decision::Allow
}

fn request_principal(caller: &Caller) -> RequestPrincipal<'_> {
    RequestPrincipal {
        account: &caller.account_id,
        arn: &caller.principal_arn,
        role_arn: keys::role_arn(caller),
        is_root: is_root(caller),
        service: None,
        federated: None,
    }
}

#[cfg(test)]
mod tests;
