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

/// The message AWS's JSON services answer for an operation they do not have.
pub const UNKNOWN_OPERATION: &str = "The requested operation is not supported.";

/// The two answers [`Dispatch`] gives on its own, in a service's error type.
pub trait RunError {
    /// The name is not in the service's operation table (`UnknownOperationException`).
    fn unknown_operation() -> Self;
    /// The service's internal error, for an answer computed without an authorization decision.
    fn undecided() -> Self;
}

/// One call of a JSON service, from its operation's row of the table to its answer. Every
/// operation decides access before it reads data; an answer computed without a decision is a
/// bug, and [`Dispatch::finish`] refuses it rather than serve it.
///
/// (A helper taking the operation as an async closure would be shorter, but such closures lose
/// their lifetimes' generality where a caller's future must be `Send`.)
pub struct Dispatch {
    spec: &'static OperationSpec,
    decided: AtomicBool,
}

impl Dispatch {
    /// The row of `table` named `operation`.
    pub fn start<E: RunError>(table: &'static [OperationSpec], operation: &str) -> Result<Self, E> {
        match table.iter().find(|o| o.name == operation) {
            Some(spec) => Ok(Self {
                spec,
                decided: AtomicBool::new(false),
            }),
            None => Err(E::unknown_operation()),
        }
    }

    /// The operation's name, as the table spells it.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The context the operation runs in.
    pub fn ctx<'a>(&'a self, ctx: &'a RequestContext) -> OpCtx<'a> {
        OpCtx::new(ctx, self.spec, &self.decided)
    }

    /// The operation's answer, if it made an authorization decision.
    pub fn finish<T, E: RunError>(&self, out: T) -> Result<T, E> {
        if decided(&self.decided) {
            return Ok(out);
        }
        tracing::error!(
            operation = self.spec.name,
            "operation finished without an authorization decision"
        );
        Err(E::undecided())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::Caller;

    #[derive(Debug, PartialEq)]
    enum E {
        Unknown,
        Undecided,
        Denied,
    }

    impl RunError for E {
        fn unknown_operation() -> Self {
            E::Unknown
        }
        fn undecided() -> Self {
            E::Undecided
        }
    }

    static TABLE: &[OperationSpec] = &[OperationSpec {
        name: "ListThings",
        action: "svc:ListThings",
        read_only: true,
    }];

    #[test]
    fn dispatch_refuses_unknown_names_and_undecided_answers() {
        let root = RequestContext::new(Caller::root("123456789012", "AKIA"), "us-east-1", "r");
        assert_eq!(
            Dispatch::start::<E>(TABLE, "listthings").err(),
            Some(E::Unknown)
        );
        // An operation that answers without deciding access is refused.
        let call = Dispatch::start::<E>(TABLE, "ListThings").unwrap();
        assert_eq!(call.name(), "ListThings");
        assert_eq!(call.finish::<_, E>("answer"), Err(E::Undecided));
        // One that decided (allowed, here) is served.
        let call = Dispatch::start::<E>(TABLE, "ListThings").unwrap();
        let op = call.ctx(&root);
        assert_eq!(op.action, "svc:ListThings");
        op.check_any().map_err(|_| E::Denied).unwrap();
        assert_eq!(call.finish::<_, E>("answer"), Ok("answer"));
    }
}
