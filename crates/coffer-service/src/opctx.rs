//! The context one operation runs in: the request's context plus the operation's own row of the
//! table, so the shared resolve paths authorize the operation's action on whatever resource they
//! find, before anything else reads it.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

use coffer_core::RequestContext;
use coffer_core::authz::{
    AccessDenied, AccessRequest, ConditionKey, ResourcePolicy, TagLookup, is_root,
};

use crate::OperationSpec;

pub struct OpCtx<'a> {
    pub ctx: &'a RequestContext,
    /// The IAM action checked on the resources the operation resolves (the operation's own,
    /// except where AWS documents another, e.g. `GetSecretValue` per secret of a batch read).
    pub action: &'static str,
    /// Request-specific condition keys for the checks made through this context.
    pub keys: &'a [ConditionKey<'a>],
    /// Tags the request sets (`aws:RequestTag/*`).
    pub request_tags: Option<&'a dyn TagLookup>,
    /// Set by every decision; the service refuses an answer computed without one.
    decided: &'a AtomicBool,
}

impl Deref for OpCtx<'_> {
    type Target = RequestContext;
    fn deref(&self) -> &RequestContext {
        self.ctx
    }
}

impl<'a> OpCtx<'a> {
    pub fn new(ctx: &'a RequestContext, spec: &OperationSpec, decided: &'a AtomicBool) -> Self {
        Self {
            ctx,
            action: spec.action,
            keys: &[],
            request_tags: None,
            decided,
        }
    }

    /// The same context checking `action` instead.
    pub fn with_action(&self, action: &'static str) -> OpCtx<'a> {
        OpCtx {
            action,
            keys: self.keys,
            request_tags: self.request_tags,
            ..*self
        }
    }

    /// The same context adding `keys` to its checks.
    pub fn with_keys<'b>(&self, keys: &'b [ConditionKey<'b>]) -> OpCtx<'b>
    where
        'a: 'b,
    {
        OpCtx {
            ctx: self.ctx,
            action: self.action,
            keys,
            request_tags: self.request_tags,
            decided: self.decided,
        }
    }

    /// The same context with the tags the request sets.
    pub fn with_request_tags<'b>(&self, tags: &'b dyn TagLookup) -> OpCtx<'b>
    where
        'a: 'b,
    {
        OpCtx {
            ctx: self.ctx,
            action: self.action,
            keys: self.keys,
            request_tags: Some(tags),
            decided: self.decided,
        }
    }

    /// True (and a decision recorded) when the caller is the account root, which may do
    /// everything: lets callers skip building ARNs and keys for a decision known in advance.
    pub fn root_fast_path(&self) -> bool {
        let root = is_root(&self.ctx.caller);
        if root {
            self.decided.store(true, Ordering::Relaxed);
        }
        root
    }

    /// Asks the request's authorizer (and records that a decision was made).
    pub fn authorize(&self, req: &AccessRequest<'_>) -> Result<(), AccessDenied> {
        self.decided.store(true, Ordering::Relaxed);
        self.ctx.authorize(req)
    }

    /// Checks this context's action on `resource`: its keys plus `extra`, its request tags, and
    /// the resource's tags and policy when given. The account root is decided without building
    /// the request (its answer is always yes).
    pub fn check(
        &self,
        resource: &str,
        resource_tags: Option<&dyn TagLookup>,
        policy: ResourcePolicy<'_>,
        extra: &[ConditionKey<'_>],
    ) -> Result<(), AccessDenied> {
        if self.root_fast_path() {
            return Ok(());
        }
        let merged: Vec<ConditionKey<'_>>;
        let keys = if extra.is_empty() {
            self.keys
        } else if self.keys.is_empty() {
            extra
        } else {
            merged = self.keys.iter().chain(extra).cloned().collect();
            &merged
        };
        let mut req = AccessRequest::new(self.action, resource)
            .keys(keys)
            .resource_policy(policy);
        req.resource_tags = resource_tags;
        req.request_tags = self.request_tags;
        self.authorize(&req)
    }

    /// Checks this context's action on `*` (operations without a resource, such as listings).
    pub fn check_any(&self) -> Result<(), AccessDenied> {
        self.check("*", None, ResourcePolicy::None, &[])
    }
}

/// Whether an operation that finished made an authorization decision.
pub fn decided(flag: &AtomicBool) -> bool {
    flag.load(Ordering::Relaxed)
}
