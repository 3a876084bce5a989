//! STS: GetCallerIdentity, AssumeRole, GetSessionToken, and the session token format.
//!
//! A session token is the session's claims (key id, secret, principal, tags, session policy,
//! expiry) sealed with AES-256-GCM under a key derived from the root key, bound to the access key
//! id. Every node can open it without shared state; nobody without the root key can read or forge
//! one. Rotating the root key therefore ends all sessions (they last at most 36 hours anyway).

use std::collections::BTreeMap;

use base64::Engine as _;
use coffer_core::authz::{AccessRequest, ConditionKey, ResourcePolicy};
use coffer_core::{Caller, IssuerType, PrincipalType, RequestContext, SessionContext};
use coffer_policy::PolicyKind;
use coffer_wire::query::{QueryParams, XmlWriter};
use serde::{Deserialize, Serialize};

use crate::input::{self, Input, Pattern};
use crate::model::{self, Kind};
use crate::{Iam, IamError, authorize};

/// GetFederationToken's `Name`.
const FEDERATED_NAME: input::Str = input::s(2, 32, Pattern::Name);
pub(crate) const SESSION_NAME: input::Str = input::s(2, 64, Pattern::Name);
pub(crate) const SESSION_POLICY: input::Str = input::s(1, 2048, Pattern::PolicyDocument);
const EXTERNAL_ID: input::Str = input::s(2, 1224, Pattern::None);
/// AWS's packed limit for a session policy (characters, whitespace not counted).
const SESSION_POLICY_QUOTA: usize = 2048;
/// Managed session policies one AssumeRole may pass.
const MAX_POLICY_ARNS: usize = 10;
/// Role chaining (a role session assuming a role) is limited to one hour.
const CHAINED_MAX_SECS: i64 = 3600;

/// What a session token carries (sealed; never shown).
#[derive(Serialize, Deserialize)]
pub(crate) struct SessionClaims {
    pub akid: String,
    pub secret: String,
    pub account: String,
    pub principal_type: String,
    pub principal_arn: String,
    pub principal_id: String,
    #[serde(default)]
    pub user_name: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub issuer_type: String,
    pub issuer_arn: String,
    pub issuer_principal_id: String,
    pub issuer_name: String,
    #[serde(default)]
    pub session_name: Option<String>,
    pub created_secs: i64,
    pub expires_secs: i64,
    #[serde(default)]
    pub session_policy: Option<String>,
    /// AssumeRole's `PolicyArns` (managed session policies of the role's account), resolved to
    /// their default versions on every request, like the role's own attached policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub session_policy_arns: Vec<String>,
}

impl SessionClaims {
    pub(crate) fn caller(&self) -> Caller {
        let principal_type = match self.principal_type.as_str() {
            "Root" => PrincipalType::Root,
            "IAMUser" => PrincipalType::IamUser,
            "FederatedUser" => PrincipalType::FederatedUser,
            _ => PrincipalType::AssumedRole,
        };
        let issuer_type = match self.issuer_type.as_str() {
            "Root" => IssuerType::Root,
            "IAMUser" => IssuerType::IamUser,
            _ => IssuerType::Role,
        };
        Caller {
            account_id: self.account.clone(),
            principal_arn: self.principal_arn.clone(),
            access_key_id: self.akid.clone(),
            principal_type,
            principal_id: self.principal_id.clone(),
            user_name: self.user_name.clone(),
            tags: self.tags.clone(),
            session: Some(SessionContext {
                issuer_type,
                issuer_arn: self.issuer_arn.clone(),
                issuer_principal_id: self.issuer_principal_id.clone(),
                issuer_name: self.issuer_name.clone(),
                session_name: self.session_name.clone(),
                created_secs: self.created_secs,
                expires_secs: self.expires_secs,
            }),
        }
    }
}

impl std::fmt::Debug for SessionClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionClaims")
            .field("akid", &self.akid)
            .field("principal_arn", &self.principal_arn)
            .finish_non_exhaustive()
    }
}

fn token_aad(akid: &str) -> Vec<u8> {
    format!("coffer:sts-session:{akid}").into_bytes()
}

pub(crate) fn seal_token(
    key: &coffer_crypto::AeadKey,
    claims: &SessionClaims,
) -> Result<String, IamError> {
    let plain = zeroize::Zeroizing::new(crate::json(claims)?);
    let sealed = key
        .seal(&plain, &token_aad(&claims.akid))
        .map_err(IamError::internal)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

/// The claims of a token issued for `akid`, or `None` when it does not open.
pub(crate) fn open_token(
    key: &coffer_crypto::AeadKey,
    akid: &str,
    token: &str,
) -> Option<SessionClaims> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let plain = key.open(&sealed, &token_aad(akid)).ok()?;
    let claims: SessionClaims = serde_json::from_slice(&plain).ok()?;
    (claims.akid == akid).then_some(claims)
}

/// What a new role session is asked for (AssumeRole, AssumeRoleWithWebIdentity).
pub(crate) struct RoleSession<'a> {
    pub name: String,
    pub tags: &'a [(String, String)],
    pub duration: i64,
    pub policy: Option<String>,
    pub policy_arns: &'a [String],
}

/// `PolicyArns.member.N.arn`: at most [`MAX_POLICY_ARNS`].
pub(crate) fn policy_arns(q: &QueryParams) -> Result<Vec<String>, IamError> {
    let arns: Vec<String> = q
        .structs("PolicyArns")
        .into_iter()
        .map(|m| m.get("arn").copied().unwrap_or_default().to_string())
        .collect();
    if arns.len() > MAX_POLICY_ARNS {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_POLICY_ARNS}"
        )));
    }
    Ok(arns)
}

/// GetSessionToken and GetFederationToken are called with long-term credentials only; their
/// sessions last `requested` seconds (12 hours by default), the account root's one hour at most.
fn long_term_session(
    caller: &Caller,
    operation: &str,
    requested: Option<i64>,
) -> Result<i64, IamError> {
    if caller.session.is_some() {
        return Err(IamError::AccessDenied(format!(
            "Cannot call {operation} with session credentials"
        )));
    }
    let duration = requested.unwrap_or(43_200);
    Ok(if caller.is_root() {
        duration.min(3600)
    } else {
        duration
    })
}

fn new_session_key() -> (String, String) {
    let (akid, secret) = crate::keys::generate_access_key();
    (format!("ASIA{}", &akid[4..]), secret)
}

pub(crate) fn get_caller_identity(ctx: &RequestContext) -> String {
    let mut w = XmlWriter::new();
    w.text("UserId", &ctx.caller.principal_id)
        .text("Account", ctx.account_id())
        .text("Arn", &ctx.caller.principal_arn);
    w.into_string()
}

/// `<AssumedRoleUser>` of a role session.
pub(crate) fn write_assumed_role_user(w: &mut XmlWriter, c: &SessionClaims) {
    w.open("AssumedRoleUser")
        .text("AssumedRoleId", &c.principal_id)
        .text("Arn", &c.principal_arn)
        .close("AssumedRoleUser");
}

pub(crate) fn write_credentials(w: &mut XmlWriter, c: &SessionClaims, token: &str) {
    w.open("Credentials")
        .text("AccessKeyId", &c.akid)
        .text("SecretAccessKey", &c.secret)
        .text("SessionToken", token)
        .text("Expiration", &model::iso8601(c.expires_secs * 1000))
        .close("Credentials");
}

fn not_authorized(caller: &Caller, action: &str, resource: &str) -> IamError {
    IamError::AccessDenied(format!(
        "User: {} is not authorized to perform: {action} on resource: {resource}",
        caller.principal_arn
    ))
}

/// The condition keys an AWS service supplies when it assumes a role for a resource.
struct ServiceKeys<'a> {
    source_account: &'a str,
    source_arn: &'a str,
}

impl coffer_policy::Context for ServiceKeys<'_> {
    fn get(&self, key: &str) -> Option<coffer_policy::Values<'_>> {
        let v = match key {
            "aws:sourceaccount" => self.source_account,
            "aws:sourcearn" => self.source_arn,
            _ => return None,
        };
        Some(coffer_policy::Values::One(v.into()))
    }
}

impl Iam {
    pub(crate) async fn assume_role(
        &self,
        ctx: &RequestContext,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let caller = &ctx.caller;
        let account = ctx.account_id();
        let mut i = Input::new(q);
        let role_arn = i.req("RoleArn", input::ARN);
        let session_name = i.req("RoleSessionName", SESSION_NAME);
        let duration = i.int("DurationSeconds", 900, 43200);
        let policy = i.opt("Policy", SESSION_POLICY);
        let tags = i.tags("Tags", 50);
        let external_id = i.opt("ExternalId", EXTERNAL_ID);
        i.finish()?;
        let policy_arns = policy_arns(q)?;
        // AWS: "You cannot use AWS account root user credentials to call AssumeRole."
        if coffer_core::authz::is_root(caller) {
            return Err(IamError::AccessDenied(
                "Roles may not be assumed by root accounts.".into(),
            ));
        }
        let chained = caller.principal_type == PrincipalType::AssumedRole;
        let duration = duration.unwrap_or(3600);
        if chained && duration > CHAINED_MAX_SECS {
            return Err(IamError::Validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles \
                 assumed by role chaining."
                    .into(),
            ));
        }
        // A missing role is a denial, as AWS does not confirm which roles exist.
        let role = self
            .role_by_arn(account, &role_arn)
            .await?
            .ok_or_else(|| not_authorized(caller, "sts:AssumeRole", &role_arn))?;
        // The trust policy is decided by the request's authorizer like a key policy, with the
        // request's own condition keys (sts:ExternalId, sts:RoleSessionName, tags).
        let trust_doc = role.trust_policy.as_deref().unwrap_or("");
        let mut keys = vec![ConditionKey::str("sts:RoleSessionName", &session_name)];
        if let Some(x) = &external_id {
            keys.push(ConditionKey::str("sts:ExternalId", x));
        }
        if !tags.is_empty() {
            keys.push(ConditionKey::list(
                "aws:TagKeys",
                tags.iter().map(|(k, _)| k.as_str()).collect(),
            ));
        }
        let trusts = |action: &str| {
            ctx.authorize(
                &AccessRequest::new(action, &role_arn)
                    .keys(&keys)
                    .request_tags(&tags)
                    .resource_policy(ResourcePolicy::Trust(trust_doc)),
            )
            .map_err(|_| not_authorized(caller, action, &role_arn))
        };
        trusts("sts:AssumeRole")?;
        if !tags.is_empty() {
            trusts("sts:TagSession")?;
        }
        let (claims, token, packed) = self
            .role_session(
                account,
                &role,
                RoleSession {
                    name: session_name,
                    tags: &tags,
                    duration,
                    policy,
                    policy_arns: &policy_arns,
                },
            )
            .await?;
        let mut w = XmlWriter::new();
        write_credentials(&mut w, &claims, &token);
        write_assumed_role_user(&mut w, &claims);
        if claims.session_policy.is_some()
            || !claims.session_policy_arns.is_empty()
            || !tags.is_empty()
        {
            w.text("PackedPolicySize", &packed.to_string());
        }
        Ok(w.into_string())
    }

    /// A new session of `role`: the duration within the role's maximum, the session policies
    /// checked ([`Iam::session_policies`]), the claims minted and sealed. Returns the claims,
    /// the session token and the packed policy size in percent.
    pub(crate) async fn role_session(
        &self,
        account: &str,
        role: &model::Entity,
        s: RoleSession<'_>,
    ) -> Result<(SessionClaims, String, usize), IamError> {
        let max = role
            .max_session_secs
            .unwrap_or(crate::roles::DEFAULT_MAX_SESSION);
        if s.duration > max {
            return Err(IamError::Validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                    .into(),
            ));
        }
        let (arns, packed) = self
            .session_policies(account, s.policy.as_deref(), s.policy_arns)
            .await?;
        let mut claims = self.role_claims(account, role, s.name, s.tags, s.duration, s.policy);
        claims.session_policy_arns = arns;
        let token = seal_token(&self.sts, &claims)?;
        Ok((claims, token, packed))
    }

    /// A new session's policies checked as AWS does: the managed ones (`arns`) must be
    /// customer managed policies of `account` (returned by canonical ARN), the inline one must
    /// parse, and both together fit one plaintext allowance (`PackedPolicyTooLarge`). Returns
    /// the ARNs and the packed size in percent.
    pub(crate) async fn session_policies(
        &self,
        account: &str,
        inline: Option<&str>,
        arns: &[String],
    ) -> Result<(Vec<String>, usize), IamError> {
        let mut canonical = Vec::with_capacity(arns.len());
        for arn in arns {
            let (p, _) = self.load_policy(account, arn).await.map_err(|e| match e {
                IamError::NoSuchEntity(_) => IamError::NoSuchEntity(format!(
                    "Policy {arn} does not exist or is not attachable."
                )),
                other => other,
            })?;
            canonical.push(model::policy_arn(account, &p.path, &p.name));
        }
        let size = inline.map_or(0, |p| p.chars().filter(|c| !c.is_whitespace()).count())
            + arns.iter().map(String::len).sum::<usize>();
        let packed = size * 100 / SESSION_POLICY_QUOTA;
        if size > SESSION_POLICY_QUOTA {
            return Err(IamError::PackedPolicyTooLarge(format!(
                "Packed policy consumes {packed}% of allotted space, please use smaller policy \
                 for session."
            )));
        }
        if let Some(p) = inline {
            coffer_policy::parse_as(p, PolicyKind::Identity)
                .map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))?;
        }
        Ok((canonical, packed))
    }

    pub(crate) async fn get_session_token(
        &self,
        ctx: &RequestContext,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let caller = &ctx.caller;
        let mut i = Input::new(q);
        let duration = i.int("DurationSeconds", 900, 129_600);
        let _serial = i.opt("SerialNumber", input::s(9, 256, Pattern::None));
        let _code = i.opt("TokenCode", input::s(6, 6, Pattern::None));
        i.finish()?;
        let duration = long_term_session(caller, "GetSessionToken", duration)?;
        let claims = self.session_claims(caller, ctx.account_id(), duration);
        let token = seal_token(&self.sts, &claims)?;
        let mut w = XmlWriter::new();
        write_credentials(&mut w, &claims, &token);
        Ok(w.into_string())
    }

    /// GetFederationToken: a federated user session `federated-user/NAME` of an IAM user (or the
    /// root) calling with long-term credentials. It may do what the user's policies and the
    /// session policies passed both allow; without session policies, nothing (resource policies
    /// naming the federated user aside), as in AWS.
    pub(crate) async fn get_federation_token(
        &self,
        ctx: &RequestContext,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let caller = &ctx.caller;
        let account = ctx.account_id();
        let mut i = Input::new(q);
        let name = i.req("Name", FEDERATED_NAME);
        let duration = i.int("DurationSeconds", 900, 129_600);
        let policy = i.opt("Policy", SESSION_POLICY);
        let tags = i.tags("Tags", 50);
        i.finish()?;
        let arns = policy_arns(q)?;
        let duration = long_term_session(caller, "GetFederationToken", duration)?;
        let arn = format!("arn:aws:sts::{account}:federated-user/{name}");
        authorize(ctx, "sts:GetFederationToken", &arn)?;
        let (canonical, packed) = self
            .session_policies(account, policy.as_deref(), &arns)
            .await?;
        let mut claims = self.session_claims(caller, account, duration);
        claims.principal_type = PrincipalType::FederatedUser.as_str().into();
        claims.principal_arn = arn;
        claims.principal_id = format!("{account}:{name}");
        claims.user_name = None;
        claims.tags = tags.iter().cloned().collect();
        claims.session_name = Some(name);
        claims.session_policy = policy;
        claims.session_policy_arns = canonical;
        let token = seal_token(&self.sts, &claims)?;
        let mut w = XmlWriter::new();
        write_credentials(&mut w, &claims, &token);
        w.open("FederatedUser")
            .text("FederatedUserId", &claims.principal_id)
            .text("Arn", &claims.principal_arn)
            .close("FederatedUser")
            .text("PackedPolicySize", &packed.to_string());
        Ok(w.into_string())
    }

    /// The claims of a new session for `caller` (root or an IAM user) lasting `duration` seconds.
    fn session_claims(&self, caller: &Caller, account: &str, duration: i64) -> SessionClaims {
        let (akid, secret) = new_session_key();
        let now = self.clock.now_secs();
        let (issuer_type, issuer_name) = match caller.principal_type {
            PrincipalType::Root => (IssuerType::Root, account.to_string()),
            _ => (
                IssuerType::IamUser,
                caller.user_name.clone().unwrap_or_default(),
            ),
        };
        SessionClaims {
            akid,
            secret,
            account: account.to_string(),
            principal_type: caller.principal_type.as_str().into(),
            principal_arn: caller.principal_arn.clone(),
            principal_id: caller.principal_id.clone(),
            user_name: caller.user_name.clone(),
            tags: caller.tags.clone(),
            issuer_type: issuer_type.as_str().into(),
            issuer_arn: caller.principal_arn.clone(),
            issuer_principal_id: caller.principal_id.clone(),
            issuer_name,
            session_name: None,
            created_secs: now,
            expires_secs: now + duration,
            session_policy: None,
            session_policy_arns: Vec::new(),
        }
    }

    /// The role `role_arn` names in `account` (its path and name must both match).
    pub(crate) async fn role_by_arn(
        &self,
        account: &str,
        role_arn: &str,
    ) -> Result<Option<model::Entity>, IamError> {
        let prefix = format!("arn:aws:iam::{account}:role");
        let Some(role_path_name) = role_arn
            .strip_prefix(&prefix)
            .filter(|r| r.starts_with('/'))
        else {
            return Ok(None);
        };
        let name = &role_path_name[role_path_name.rfind('/').map_or(0, |i| i + 1)..];
        Ok(match self.find_entity(account, Kind::Role, name).await? {
            Some((r, _))
                if model::entity_arn(account, Kind::Role, &r.path, &r.name) == role_arn =>
            {
                Some(r)
            }
            _ => None,
        })
    }

    /// The claims of a new session of `role` named `session_name`: the role's tags overridden
    /// by the session's, lasting `duration` seconds.
    pub(crate) fn role_claims(
        &self,
        account: &str,
        role: &model::Entity,
        session_name: String,
        tags: &[(String, String)],
        duration: i64,
        policy: Option<String>,
    ) -> SessionClaims {
        let mut principal_tags: BTreeMap<String, String> = role
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        for (k, v) in tags {
            // Session tags override role tags with the same key (case-insensitively).
            principal_tags.retain(|old, _| !old.eq_ignore_ascii_case(k));
            principal_tags.insert(k.clone(), v.clone());
        }
        let (akid, secret) = new_session_key();
        let now = self.clock.now_secs();
        let role_arn_plain = model::entity_arn(account, Kind::Role, &role.path, &role.name);
        SessionClaims {
            akid,
            secret,
            account: account.to_string(),
            principal_type: PrincipalType::AssumedRole.as_str().into(),
            principal_arn: format!(
                "arn:aws:sts::{account}:assumed-role/{}/{session_name}",
                role.name
            ),
            principal_id: format!("{}:{session_name}", role.id),
            user_name: None,
            tags: principal_tags,
            issuer_type: IssuerType::Role.as_str().into(),
            issuer_arn: role_arn_plain,
            issuer_principal_id: role.id.clone(),
            issuer_name: role.name.clone(),
            session_name: Some(session_name),
            created_secs: now,
            expires_secs: now + duration,
            session_policy: policy,
            session_policy_arns: Vec::new(),
        }
    }

    /// Whether `role_arn` names an existing role of `account`.
    /// The role `role_arn` when its trust policy lets the AWS service `service` (such as
    /// `lambda.amazonaws.com`) assume it on behalf of `source_arn` (`aws:SourceArn`, with
    /// `aws:SourceAccount`, for confused-deputy conditions); `None` when the role is missing or
    /// does not trust the service.
    async fn role_trusting(
        &self,
        account: &str,
        role_arn: &str,
        service: &str,
        source_arn: &str,
    ) -> Result<Option<model::Entity>, IamError> {
        let Some(role) = self.role_by_arn(account, role_arn).await? else {
            return Ok(None);
        };
        let doc = role.trust_policy.as_deref().unwrap_or("");
        // Stored trust policies were validated when written; one that no longer parses trusts no one.
        let Ok(policy) = coffer_policy::CompiledPolicy::parse(doc, PolicyKind::Trust) else {
            return Ok(None);
        };
        let keys = ServiceKeys {
            source_account: account,
            source_arn,
        };
        let outcome = policy.evaluate(&coffer_policy::Request {
            action: "sts:AssumeRole",
            resource: role_arn,
            principal: coffer_policy::RequestPrincipal::service(service),
            context: &keys,
        });
        Ok((outcome.allow && !outcome.deny).then_some(role))
    }

    /// Whether `service` may assume `role_arn` for `source_arn` (see [`Iam::service_role_session`]).
    pub async fn service_trusted(
        &self,
        account: &str,
        role_arn: &str,
        service: &str,
        source_arn: &str,
    ) -> Result<bool, IamError> {
        Ok(self
            .role_trusting(account, role_arn, service, source_arn)
            .await?
            .is_some())
    }

    /// A session of the role `role_arn` minted by the server itself for the AWS service
    /// `service` acting for `source_arn` (a deployed Lambda function runs as
    /// `assumed-role/ROLE/FUNCTION`), as AWS services assume their execution roles:
    /// `(access key id, secret, session token)`, or `None` when the role does not exist or its
    /// trust policy does not let `service` assume it. The role's own policies decide what the
    /// session may do.
    pub async fn service_role_session(
        &self,
        account: &str,
        role_arn: &str,
        service: &str,
        source_arn: &str,
        session_name: &str,
        duration_secs: i64,
    ) -> Result<Option<(String, String, String)>, IamError> {
        let Some(role) = self
            .role_trusting(account, role_arn, service, source_arn)
            .await?
        else {
            return Ok(None);
        };
        let claims = self.role_claims(
            account,
            &role,
            session_name.to_owned(),
            &[],
            duration_secs,
            None,
        );
        let token = seal_token(&self.sts, &claims)?;
        Ok(Some((claims.akid, claims.secret, token)))
    }

    /// Session credentials of `account`'s root, minted by the server itself (for the rotation
    /// functions it runs out of process): `(access key id, secret, session token)`. Like any
    /// session they end at expiry or when the root key rotates.
    pub fn root_session(
        &self,
        account: &str,
        duration_secs: i64,
    ) -> Result<(String, String, String), IamError> {
        let claims = self.session_claims(&Caller::root(account, "coffer"), account, duration_secs);
        let token = seal_token(&self.sts, &claims)?;
        Ok((claims.akid, claims.secret, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_open_only_for_their_key_id() {
        let key = coffer_crypto::AeadKey::new(&[7u8; 32]);
        let claims = SessionClaims {
            akid: "ASIAEXAMPLE".into(),
            secret: "s".into(),
            account: "123456789012".into(),
            principal_type: "AssumedRole".into(),
            principal_arn: "arn:aws:sts::123456789012:assumed-role/r/s".into(),
            principal_id: "AROAX:s".into(),
            user_name: None,
            tags: BTreeMap::new(),
            issuer_type: "Role".into(),
            issuer_arn: "arn:aws:iam::123456789012:role/r".into(),
            issuer_principal_id: "AROAX".into(),
            issuer_name: "r".into(),
            session_name: Some("s".into()),
            created_secs: 1,
            expires_secs: 2,
            session_policy: None,
            session_policy_arns: Vec::new(),
        };
        let token = seal_token(&key, &claims).unwrap();
        assert!(!token.contains("arn:aws"), "the token is opaque");
        let opened = open_token(&key, "ASIAEXAMPLE", &token).unwrap();
        assert_eq!(opened.principal_arn, claims.principal_arn);
        assert!(open_token(&key, "ASIAOTHER", &token).is_none());
        let other = coffer_crypto::AeadKey::new(&[8u8; 32]);
        assert!(open_token(&other, "ASIAEXAMPLE", &token).is_none());
        let caller = opened.caller();
        assert_eq!(
            caller.principal_arn_for_policy(),
            "arn:aws:iam::123456789012:role/r"
        );
    }
}
