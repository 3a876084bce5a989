//! Permissions boundaries: Put/Delete{User,Role}PermissionsBoundary, the boundary CreateUser and
//! CreateRole may set, its usage count on the managed policy, and the `iam:PermissionsBoundary`
//! condition key that lets an administrator delegate user and role management safely.
//!
//! A boundary is a customer managed policy of the account; what a user (or a session of a role)
//! may do is what its identity policies allow and its boundary allows too (see
//! `coffer_authz`). The policy cannot be deleted while it bounds anyone.

use coffer_core::RequestContext;
use coffer_core::authz::ConditionKey;
use coffer_store::WriteBatch;
use coffer_wire::query::QueryParams;

use crate::input::{self, Input};
use crate::model::{self, Kind};
use crate::policies::stage_policy;
use crate::{Iam, IamError, authorize_with, json};

/// The condition key naming the boundary a request sets, or the entity's current one.
const KEY: &str = "iam:PermissionsBoundary";

/// Actions whose requests carry [`KEY`], as in AWS's service authorization reference: those
/// that set a boundary (with the one being set) and those that change a bounded entity's
/// policies or boundary (with its current one).
const KEYED_ACTIONS: &[&str] = &[
    "iam:AttachRolePolicy",
    "iam:AttachUserPolicy",
    "iam:CreateRole",
    "iam:CreateUser",
    "iam:DeleteRolePermissionsBoundary",
    "iam:DeleteRolePolicy",
    "iam:DeleteUserPermissionsBoundary",
    "iam:DeleteUserPolicy",
    "iam:DetachRolePolicy",
    "iam:DetachUserPolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
    "iam:PutUserPermissionsBoundary",
    "iam:PutUserPolicy",
];

/// Authorizes `action` on an entity's `arn`, with `iam:PermissionsBoundary` = `boundary` where
/// the action carries that key.
pub(crate) fn authorize_bounded(
    ctx: &RequestContext,
    action: &str,
    arn: &str,
    boundary: Option<&str>,
) -> Result<(), IamError> {
    match boundary {
        Some(b) if KEYED_ACTIONS.contains(&action) => {
            authorize_with(ctx, action, arn, &[ConditionKey::str(KEY, b)])
        }
        _ => authorize_with(ctx, action, arn, &[]),
    }
}

fn not_attachable(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!(
        "Scope ARN: {arn} does not exist or is not attachable."
    ))
}

impl Iam {
    pub(crate) async fn boundaries(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let kind = Kind::of_action(action);
        let mut i = Input::new(q);
        let name = i.req(kind.name_param(), kind.existing_name_shape());
        let new = action
            .starts_with("Put")
            .then(|| i.req("PermissionsBoundary", input::ARN));
        i.finish()?;
        let iam_action = format!("iam:{action}");
        self.write(|| async {
            let (mut e, entry) = self.load_entity(account, kind, &name).await?;
            let arn = model::entity_arn(account, kind, &e.path, &e.name);
            // Setting: the key is the boundary being set; removing: the current one.
            let keyed = new.as_deref().or(e.permissions_boundary.as_deref());
            authorize_bounded(ctx, &iam_action, &arn, keyed)?;
            if e.permissions_boundary == new {
                return Ok(());
            }
            let mut batch = WriteBatch::new();
            self.move_boundary(
                account,
                &mut batch,
                e.permissions_boundary.as_deref(),
                new.as_deref(),
            )
            .await?;
            e.permissions_boundary = new.clone();
            let key = model::entity_key(account, kind, &e.name);
            batch.check(key.clone(), Some(&entry)).put(key, json(&e)?);
            self.commit(account, batch).await
        })
        .await?;
        Ok(String::new())
    }

    /// Adds to `batch` the usage counts of a boundary moving from `old` to `new` (either may be
    /// none), each guarded by a check on the policy record read. `new` must name an existing
    /// managed policy of the account.
    pub(crate) async fn move_boundary(
        &self,
        account: &str,
        batch: &mut WriteBatch,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<(), IamError> {
        if old == new {
            return Ok(());
        }
        if let Some(new) = new {
            let (mut p, entry) = match self.load_policy(account, new).await {
                Err(IamError::NoSuchEntity(_)) => return Err(not_attachable(new)),
                other => other?,
            };
            p.boundary_uses += 1;
            stage_policy(batch, account, &p, &entry)?;
        }
        if let Some(old) = old {
            match self.load_policy(account, old).await {
                Ok((mut p, entry)) => {
                    p.boundary_uses = p.boundary_uses.saturating_sub(1);
                    stage_policy(batch, account, &p, &entry)?;
                }
                // Deleting a policy in use is refused, so this is a record from before that
                // rule; nothing to count down.
                Err(IamError::NoSuchEntity(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
