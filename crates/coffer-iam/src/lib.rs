//! IAM and STS over the AWS Query protocol, and the credential resolution SigV4 needs.
//!
//! IAM is global per account: users, groups, roles, customer managed policies (with versions),
//! inline policies, attachments, tags and access keys, with the names, limits and errors of
//! botocore's `iam` model (`models/iam.json`). Every write commits one batch guarded by checks on
//! what it read, and changes the account's generation key so every node drops its cached
//! credentials and policies (see [`credentials`]). Secret access keys are sealed under the root
//! key; STS session credentials are self-contained tokens sealed under a root-derived key.

use std::sync::Arc;

use coffer_core::{RequestContext, SharedClock};
use coffer_crypto::RootKey;
use coffer_store::{Entry, Store, WriteBatch};
use coffer_wire::query::QueryParams;

mod absent;
mod boundaries;
pub mod credentials;
mod credreport;
mod details;
mod entity;
mod error;
mod groups;
mod inline;
mod input;
mod keys;
pub mod model;
mod oidc;
mod policies;
mod roles;
mod simulate;
mod sts;
mod users;
pub mod web_identity;

pub use credentials::{IdentityPolicies, Resolved};
pub use error::IamError;
pub use keys::{
    generate_access_key, has_root_access_key, is_access_key_record, rewrap_access_key_record,
    root_access_key_entry, store_root_access_key,
};

/// The Query namespace of IAM answers.
pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// The Query namespace of STS answers.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// IAM's operations (the `Action` parameter). All of them write or read IAM, `iam:` + name.
pub static IAM_OPERATIONS: &[&str] = &[
    "AddClientIDToOpenIDConnectProvider",
    "AddUserToGroup",
    "AttachGroupPolicy",
    "AttachRolePolicy",
    "AttachUserPolicy",
    "CreateAccessKey",
    "CreateGroup",
    "CreateOpenIDConnectProvider",
    "CreatePolicy",
    "CreatePolicyVersion",
    "CreateRole",
    "CreateUser",
    "DeleteAccessKey",
    "DeleteGroup",
    "DeleteGroupPolicy",
    "DeleteOpenIDConnectProvider",
    "DeletePolicy",
    "DeletePolicyVersion",
    "DeleteRole",
    "DeleteRolePermissionsBoundary",
    "DeleteRolePolicy",
    "DeleteUser",
    "DeleteUserPermissionsBoundary",
    "DeleteUserPolicy",
    "DetachGroupPolicy",
    "DetachRolePolicy",
    "DetachUserPolicy",
    "GenerateCredentialReport",
    "GetAccessKeyLastUsed",
    "GetAccountAuthorizationDetails",
    "GetAccountSummary",
    "GetCredentialReport",
    "GetGroup",
    "GetGroupPolicy",
    "GetLoginProfile",
    "GetOpenIDConnectProvider",
    "GetPolicy",
    "GetPolicyVersion",
    "GetRole",
    "GetRolePolicy",
    "GetUser",
    "GetUserPolicy",
    "ListAccessKeys",
    "ListAttachedGroupPolicies",
    "ListAttachedRolePolicies",
    "ListAttachedUserPolicies",
    "ListEntitiesForPolicy",
    "ListGroupPolicies",
    "ListGroups",
    "ListGroupsForUser",
    "ListInstanceProfilesForRole",
    "ListMFADevices",
    "ListOpenIDConnectProviderTags",
    "ListOpenIDConnectProviders",
    "ListPolicies",
    "ListPolicyTags",
    "ListPolicyVersions",
    "ListRolePolicies",
    "ListRoleTags",
    "ListRoles",
    "ListSSHPublicKeys",
    "ListServiceSpecificCredentials",
    "ListSigningCertificates",
    "ListUserPolicies",
    "ListUserTags",
    "ListUsers",
    "ListVirtualMFADevices",
    "PutGroupPolicy",
    "PutRolePermissionsBoundary",
    "PutRolePolicy",
    "PutUserPermissionsBoundary",
    "PutUserPolicy",
    "RemoveClientIDFromOpenIDConnectProvider",
    "RemoveUserFromGroup",
    "SetDefaultPolicyVersion",
    "SimulateCustomPolicy",
    "SimulatePrincipalPolicy",
    "TagOpenIDConnectProvider",
    "TagPolicy",
    "TagRole",
    "TagUser",
    "UntagOpenIDConnectProvider",
    "UntagPolicy",
    "UntagRole",
    "UntagUser",
    "UpdateAccessKey",
    "UpdateAssumeRolePolicy",
    "UpdateGroup",
    "UpdateOpenIDConnectProviderThumbprint",
    "UpdateRole",
    "UpdateRoleDescription",
    "UpdateUser",
];

/// STS's operations.
pub static STS_OPERATIONS: &[&str] = &[
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "GetCallerIdentity",
    "GetFederationToken",
    "GetSessionToken",
];

/// Whether an IAM operation only reads (for audit's `readOnly`).
pub fn is_read_only(operation: &str) -> bool {
    ["Get", "List", "Simulate"]
        .iter()
        .any(|p| operation.starts_with(p))
}

pub struct Iam {
    store: Arc<dyn Store>,
    clock: SharedClock,
    /// Seals secret access keys (`coffer:access-key:{akid}` as associated data).
    root: coffer_crypto::AeadKey,
    /// Seals STS session tokens; derived from the root key, so every node can open them.
    sts: coffer_crypto::AeadKey,
    /// IAM writes are rare: one lock per node keeps them from racing each other here; checks on
    /// every batch keep them correct across nodes.
    write_lock: tokio::sync::Mutex<()>,
    cache: credentials::Cache,
    /// How often another node's IAM writes are looked for ([`credentials::REFRESH_INTERVAL`]).
    refresh: std::time::Duration,
    /// Where web identity tokens' issuer keys come from (the server's HTTPS fetcher).
    issuer_keys: Option<Arc<dyn web_identity::IssuerKeys>>,
}

impl Iam {
    pub fn new(store: Arc<dyn Store>, root: &RootKey, clock: SharedClock) -> Self {
        let sts_key = coffer_crypto::derive_key(root.as_bytes(), "coffer:sts-session-token:v1");
        Self {
            store,
            clock,
            root: coffer_crypto::AeadKey::new(root.as_bytes()),
            sts: coffer_crypto::AeadKey::new(&sts_key),
            write_lock: tokio::sync::Mutex::new(()),
            cache: credentials::Cache::default(),
            refresh: credentials::REFRESH_INTERVAL,
            issuer_keys: None,
        }
    }

    /// Looks for other nodes' IAM writes this often (tests use zero: on every request).
    pub fn with_refresh_interval(mut self, every: std::time::Duration) -> Self {
        self.refresh = every;
        self
    }

    /// Runs one IAM `Action`; the answer is the complete XML body.
    pub async fn call_iam(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<Vec<u8>, IamError> {
        if !IAM_OPERATIONS.contains(&action) {
            return Err(invalid_action(action, "2010-05-08"));
        }
        let result = match action {
            "CreateUser" | "GetUser" | "ListUsers" | "UpdateUser" | "DeleteUser" | "TagUser"
            | "UntagUser" | "ListUserTags" => self.users(ctx, action, q).await?,
            "CreateAccessKey"
            | "ListAccessKeys"
            | "UpdateAccessKey"
            | "DeleteAccessKey"
            | "GetAccessKeyLastUsed" => self.access_keys(ctx, action, q).await?,
            "CreateGroup"
            | "GetGroup"
            | "ListGroups"
            | "ListGroupsForUser"
            | "AddUserToGroup"
            | "RemoveUserFromGroup"
            | "UpdateGroup"
            | "DeleteGroup" => self.groups(ctx, action, q).await?,
            "CreateRole"
            | "GetRole"
            | "ListRoles"
            | "DeleteRole"
            | "UpdateAssumeRolePolicy"
            | "UpdateRole"
            | "UpdateRoleDescription"
            | "ListInstanceProfilesForRole"
            | "TagRole"
            | "UntagRole"
            | "ListRoleTags" => self.roles(ctx, action, q).await?,
            "GetAccountAuthorizationDetails" => self.authorization_details(ctx, q).await?,
            "GetAccountSummary" => self.account_summary(ctx, q).await?,
            op if op.contains("OpenIDConnectProvider") => self.oidc(ctx, action, q).await?,
            "GenerateCredentialReport" | "GetCredentialReport" => {
                self.credential_report(ctx, action, q).await?
            }
            "SimulatePrincipalPolicy" | "SimulateCustomPolicy" => {
                self.simulate(ctx, action, q).await?
            }
            op if absent::OPERATIONS.iter().any(|(o, _)| *o == op) => {
                self.absent(ctx, action, q).await?
            }
            "PutUserPermissionsBoundary"
            | "DeleteUserPermissionsBoundary"
            | "PutRolePermissionsBoundary"
            | "DeleteRolePermissionsBoundary" => self.boundaries(ctx, action, q).await?,
            "PutUserPolicy" | "GetUserPolicy" | "DeleteUserPolicy" | "ListUserPolicies"
            | "PutGroupPolicy" | "GetGroupPolicy" | "DeleteGroupPolicy" | "ListGroupPolicies"
            | "PutRolePolicy" | "GetRolePolicy" | "DeleteRolePolicy" | "ListRolePolicies" => {
                self.inline(ctx, action, q).await?
            }
            _ => self.policies(ctx, action, q).await?,
        };
        Ok(coffer_wire::query::response(
            action,
            IAM_NAMESPACE,
            &result,
            &ctx.request_id,
        ))
    }

    /// Runs one STS `Action`.
    pub async fn call_sts(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<Vec<u8>, IamError> {
        let result = match action {
            "GetCallerIdentity" => sts::get_caller_identity(ctx),
            "AssumeRole" => self.assume_role(ctx, q).await?,
            "AssumeRoleWithWebIdentity" => self.assume_role_with_web_identity(ctx, q).await?,
            "GetSessionToken" => self.get_session_token(ctx, q).await?,
            "GetFederationToken" => self.get_federation_token(ctx, q).await?,
            _ => return Err(invalid_action(action, "2011-06-15")),
        };
        Ok(coffer_wire::query::response(
            action,
            STS_NAMESPACE,
            &result,
            &ctx.request_id,
        ))
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_millis()
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<(T, Entry)>, IamError> {
        match self.store.get(key.as_bytes()).await? {
            None => Ok(None),
            Some(e) => {
                let v = serde_json::from_slice(&e.value).map_err(IamError::internal)?;
                Ok(Some((v, e)))
            }
        }
    }

    /// Every record under `prefix`, decoded, in key order.
    async fn scan_json<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T, Entry)>, IamError> {
        let end = coffer_store::prefix_end(prefix.as_bytes());
        let rows = self.store.scan(prefix.as_bytes(), &end, usize::MAX).await?;
        rows.into_iter()
            .map(|(k, e)| {
                let v = serde_json::from_slice(&e.value).map_err(IamError::internal)?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v, e))
            })
            .collect()
    }

    /// Commits an IAM write and announces it: the generation key changes (other nodes drop their
    /// caches on their next check) and this node's cache is dropped now.
    async fn commit(&self, account: &str, mut batch: WriteBatch) -> Result<(), IamError> {
        let generation: [u8; 16] = coffer_crypto::random_bytes();
        batch.put(model::generation_key(account), generation.to_vec());
        self.store.commit(batch).await?;
        self.cache.clear();
        Ok(())
    }

    /// Runs a write attempt under the node's IAM write lock, re-running it on conflicts.
    async fn write<T, F, Fut>(&self, attempt: F) -> Result<T, IamError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, IamError>>,
    {
        coffer_service::retry_on_conflict!(
            lock: self.write_lock.lock(),
            conflict: IamError::Conflict,
            exhausted: IamError::ConcurrentModification(
                "The request was rejected because multiple requests to change this object were \
                 submitted simultaneously. Wait a few minutes and submit your request again."
                    .into()
            ),
            attempt().await
        )
    }
}

fn invalid_action(action: &str, version: &str) -> IamError {
    IamError::InvalidAction(format!(
        "Could not find operation {action} for version {version}"
    ))
}

pub(crate) fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, IamError> {
    serde_json::to_vec(v).map_err(IamError::internal)
}

/// The one place an IAM/STS operation asks whether the caller may act: `ACTION` on `resource`,
/// decided by the request's authorizer (identity policies; the account root may do anything).
pub(crate) fn authorize(
    ctx: &RequestContext,
    action: &str,
    resource: &str,
) -> Result<(), IamError> {
    authorize_with(ctx, action, resource, &[])
}

/// [`authorize`] with the request's condition keys.
pub(crate) fn authorize_with(
    ctx: &RequestContext,
    action: &str,
    resource: &str,
    keys: &[coffer_core::authz::ConditionKey<'_>],
) -> Result<(), IamError> {
    ctx.authorize(&coffer_core::authz::AccessRequest::new(action, resource).keys(keys))
        .map_err(|denied| IamError::AccessDenied(denied.message))
}
