//! Who signed a request: access key id (+ session token) → secret and [`Caller`], fast.
//!
//! Long-term keys (root's and IAM users') are read from the store once and cached per node;
//! STS session credentials are self-contained sealed tokens, opened once and cached by key id
//! and token fingerprint. Identity policies are cached per principal the same way.
//!
//! Invalidation: every IAM write changes `iam/{account}/generation` in the same batch and drops
//! this node's cache. Every node re-reads the generation key at most once per
//! [`REFRESH_INTERVAL`] (on the first request after it elapsed) and drops its caches when it
//! changed, so a key deactivated or deleted, a tag or a policy changed on another node takes
//! effect here within that interval. Keys created elsewhere are found at once (a miss reads
//! the store). Session credentials need no invalidation: they are immutable and expire on time
//! (checked on every request against the service clock).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use coffer_core::{Caller, PrincipalType};
use coffer_wire::sigv4::SigningSecret;

use crate::model::{self, AccessKeyRecord, Kind, ManagedPolicy};
use crate::{Iam, IamError};

/// What the account root may do, as a policy (the identity of its federated users).
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// How stale another node's IAM write may be here, at most.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Unknown key ids remembered (so a flood of bogus ids does not hit the store each time);
/// the negative cache is dropped when it grows past this.
const MAX_NEGATIVE: usize = 10_000;
/// Sessions remembered before expired ones are swept.
const MAX_SESSIONS: usize = 50_000;

/// An authenticated key: its secret and the principal it signs as.
#[derive(Debug)]
pub struct Resolved {
    pub secret: Arc<SigningSecret>,
    pub caller: Caller,
    /// Session credentials: the token's fingerprint (a different token with the same key id is
    /// refused), the expiry and the session policy.
    session: Option<SessionInfo>,
}

#[derive(Debug)]
struct SessionInfo {
    token_fingerprint: [u8; 32],
    expires_secs: i64,
    policy: Option<Arc<str>>,
    policy_arns: Arc<[String]>,
}

/// Why a key did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Unknown, inactive or deleted key, a session token that does not open, or a token where
    /// none belongs (`UnrecognizedClientException` / `InvalidClientTokenId`).
    Unknown,
    /// Session credentials past their expiration (`ExpiredTokenException` / `ExpiredToken`).
    Expired,
    /// The store failed; the request fails rather than being let through.
    Internal,
}

/// The identity-based policies that apply to a caller, as documents.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IdentityPolicies {
    /// User: its inline and attached policies and those of its groups. Role session: the
    /// role's inline and attached policies. Each as (a name for messages, the document).
    pub identity: Vec<(String, Arc<str>)>,
    /// AssumeRole's `Policy` and `PolicyArns` (their default versions): the session can do only
    /// what one of them and the identity policies allow.
    pub session: Vec<(String, Arc<str>)>,
    /// The user's or role's permissions boundary (its ARN, the default version's document).
    pub boundary: Option<(String, Arc<str>)>,
}

#[derive(Debug, Clone)]
pub struct LastUsed {
    pub at_ms: i64,
    pub service: String,
    pub region: String,
}

#[derive(Default)]
pub(crate) struct Cache {
    /// Long-term keys; `None` = known not to exist (or inactive).
    keys: RwLock<HashMap<String, Option<Arc<Resolved>>>>,
    /// Session credentials by key id; not dropped on IAM writes (they do not depend on them).
    sessions: RwLock<HashMap<String, Arc<Resolved>>>,
    /// Compiled identity policies by principal ARN and key id.
    policies: RwLock<HashMap<String, Arc<coffer_authz::IdentityPolicies>>>,
    /// The generation last seen and when it was checked.
    generation: Mutex<(Option<Instant>, Option<bytes::Bytes>)>,
    refreshing: AtomicBool,
    last_used: Mutex<HashMap<String, LastUsed>>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cache")
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl Cache {
    /// Drops everything derived from IAM records (this node wrote, or another node did).
    pub(crate) fn clear(&self) {
        write(&self.keys).clear();
        write(&self.policies).clear();
    }

    pub(crate) fn last_used(&self, akid: &str) -> Option<LastUsed> {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(akid)
            .cloned()
    }
}

pub(crate) fn fingerprint(token: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Iam {
    /// Re-reads the account's generation key when the last check is older than
    /// the refresh interval, and drops the caches if another node wrote IAM since.
    pub async fn refresh_if_stale(&self, account: &str) {
        {
            let g = self
                .cache
                .generation
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if g.0.is_some_and(|t| t.elapsed() < self.refresh) {
                return;
            }
        }
        if self.cache.refreshing.swap(true, Ordering::AcqRel) {
            return; // another request is checking right now
        }
        let current = self
            .store
            .get(model::generation_key(account).as_bytes())
            .await;
        if let Ok(current) = current {
            let value = current.map(|e| e.value);
            let mut g = self
                .cache
                .generation
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if g.1 != value {
                self.cache.clear();
                g.1 = value;
            }
            g.0 = Some(Instant::now());
        }
        self.cache.refreshing.store(false, Ordering::Release);
    }

    /// The cached resolution of `akid` for a request carrying `token`, without I/O: `Some` when
    /// the cache knows the key (or session), `None` when it must be [`Iam::resolve`]d.
    pub fn cached(&self, akid: &str, token: Option<&str>) -> Option<Arc<Resolved>> {
        match token {
            None => read(&self.cache.keys).get(akid).cloned().flatten(),
            Some(t) => {
                let s = read(&self.cache.sessions).get(akid).cloned()?;
                let fp = s.session.as_ref()?.token_fingerprint;
                (fp == fingerprint(t)).then_some(s)
            }
        }
    }

    /// Resolves `akid` (and the session token the request carries) from the store or the token,
    /// caching the result.
    pub async fn resolve(
        &self,
        account: &str,
        akid: &str,
        token: Option<&str>,
    ) -> Result<Arc<Resolved>, AuthFailure> {
        if let Some(hit) = self.cached(akid, token) {
            return Ok(hit);
        }
        match token {
            Some(t) => self.resolve_session(akid, t),
            None => self.resolve_key(account, akid).await,
        }
    }

    fn resolve_session(&self, akid: &str, token: &str) -> Result<Arc<Resolved>, AuthFailure> {
        if !akid.starts_with("ASIA") {
            return Err(AuthFailure::Unknown);
        }
        let claims = crate::sts::open_token(&self.sts, akid, token).ok_or(AuthFailure::Unknown)?;
        let resolved = Arc::new(Resolved {
            secret: Arc::new(SigningSecret::new(&claims.secret)),
            session: Some(SessionInfo {
                token_fingerprint: fingerprint(token),
                expires_secs: claims.expires_secs,
                policy: claims.session_policy.as_deref().map(Arc::from),
                policy_arns: claims.session_policy_arns.clone().into(),
            }),
            caller: claims.caller(),
        });
        let mut sessions = write(&self.cache.sessions);
        if sessions.len() >= MAX_SESSIONS {
            let now = self.clock.now_secs();
            sessions.retain(|_, s| s.session.as_ref().is_some_and(|i| i.expires_secs > now));
            if sessions.len() >= MAX_SESSIONS {
                sessions.clear();
            }
        }
        sessions.insert(akid.to_string(), resolved.clone());
        Ok(resolved)
    }

    async fn resolve_key(&self, account: &str, akid: &str) -> Result<Arc<Resolved>, AuthFailure> {
        if let Some(known) = read(&self.cache.keys).get(akid) {
            return known.clone().ok_or(AuthFailure::Unknown);
        }
        let found = self.load_key(account, akid).await.map_err(|e| {
            tracing::error!(error = %e, "resolving an access key failed");
            AuthFailure::Internal
        })?;
        let mut keys = write(&self.cache.keys);
        if found.is_none() && keys.len() >= MAX_NEGATIVE {
            keys.retain(|_, v| v.is_some());
        }
        keys.insert(akid.to_string(), found.clone());
        found.ok_or(AuthFailure::Unknown)
    }

    async fn load_key(&self, account: &str, akid: &str) -> Result<Option<Arc<Resolved>>, IamError> {
        let Some((rec, _)) = self
            .get_json::<AccessKeyRecord>(&model::access_key_key(account, akid))
            .await?
        else {
            return Ok(None);
        };
        if rec.status != "Active" {
            return Ok(None);
        }
        let secret = crate::keys::open_secret(&self.root, akid, &rec)?;
        let caller = match &rec.user_name {
            None => Caller::root(&rec.account_id, akid),
            Some(name) => {
                let Some((user, _)) = self.find_entity(account, Kind::User, name).await? else {
                    return Ok(None);
                };
                Caller {
                    account_id: rec.account_id.clone(),
                    principal_arn: model::entity_arn(account, Kind::User, &user.path, &user.name),
                    access_key_id: akid.to_string(),
                    principal_type: PrincipalType::IamUser,
                    principal_id: user.id.clone(),
                    user_name: Some(user.name.clone()),
                    tags: user
                        .tags
                        .iter()
                        .map(|t| (t.key.clone(), t.value.clone()))
                        .collect::<BTreeMap<_, _>>(),
                    session: None,
                }
            }
        };
        Ok(Some(Arc::new(Resolved {
            secret: Arc::new(SigningSecret::new(&secret)),
            caller,
            session: None,
        })))
    }

    /// After the signature verified: session credentials must not be expired (service clock).
    /// Records the key's last use.
    pub fn admit(
        &self,
        resolved: &Resolved,
        service: &str,
        region: &str,
    ) -> Result<(), AuthFailure> {
        if let Some(s) = &resolved.session
            && self.clock.now_secs() >= s.expires_secs
        {
            return Err(AuthFailure::Expired);
        }
        if resolved.session.is_none() {
            let mut used = self
                .cache
                .last_used
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let at_ms = self.clock.now_millis();
            match used.get_mut(&resolved.caller.access_key_id) {
                // Minute granularity is plenty; skip the allocation on the hot path.
                Some(u)
                    if at_ms - u.at_ms < 60_000 && u.service == service && u.region == region => {}
                _ => {
                    used.insert(
                        resolved.caller.access_key_id.clone(),
                        LastUsed {
                            at_ms,
                            service: service.to_string(),
                            region: region.to_string(),
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// The identity-based policies of `caller` (empty for root, which needs none). `Err` when a
    /// lookup fails or the principal no longer exists: the caller must then be denied.
    pub async fn identity_policies(
        &self,
        caller: &Caller,
    ) -> Result<Arc<IdentityPolicies>, IamError> {
        if caller.is_root() {
            return Ok(Arc::default());
        }
        let account = &caller.account_id;
        let mut out = IdentityPolicies::default();
        match caller.principal_type {
            PrincipalType::IamUser => {
                let name = caller
                    .user_name
                    .as_deref()
                    .ok_or_else(|| IamError::internal("an IAM user caller without a name"))?;
                let (user, _) = self.load_entity(account, Kind::User, name).await?;
                self.user_policies(account, &user, &mut out).await?;
            }
            PrincipalType::AssumedRole => {
                let session = caller
                    .session
                    .as_ref()
                    .ok_or_else(|| IamError::internal("a role session without a session"))?;
                let role = self.session_issuer(account, Kind::Role, session).await?;
                self.collect(account, &role, &mut out).await?;
                out.boundary = self.boundary_of(account, &role).await?;
                self.session_policies_of(caller, &mut out).await?;
            }
            PrincipalType::FederatedUser => {
                let session = caller
                    .session
                    .as_ref()
                    .ok_or_else(|| IamError::internal("a federated user without a session"))?;
                if session.issuer_type == coffer_core::IssuerType::Root {
                    // The root may do anything: its federated users, what their session
                    // policies allow.
                    out.identity.push(("root".into(), Arc::from(ALLOW_ALL)));
                } else {
                    let user = self.session_issuer(account, Kind::User, session).await?;
                    self.user_policies(account, &user, &mut out).await?;
                }
                self.session_policies_of(caller, &mut out).await?;
                if out.session.is_empty() {
                    // AWS: a federated user session without session policies has no
                    // permissions (resource policies naming it aside).
                    out.identity.clear();
                }
            }
            // A web identity holds no policies: it can only present its token.
            PrincipalType::Root | PrincipalType::WebIdentityUser => {}
        }
        Ok(Arc::new(out))
    }

    /// [`Iam::identity_policies`], compiled for the authorizer and cached per principal until
    /// the next IAM write.
    pub async fn compiled_policies(
        &self,
        caller: &Caller,
    ) -> Result<Arc<coffer_authz::IdentityPolicies>, IamError> {
        let cache_key = format!("{}\n{}", caller.principal_arn, caller.access_key_id);
        if let Some(hit) = read(&self.cache.policies).get(&cache_key) {
            return Ok(hit.clone());
        }
        let docs = self.identity_policies(caller).await?;
        let compile = |doc: &str| {
            coffer_policy::CompiledPolicy::parse(doc, coffer_policy::PolicyKind::Identity)
                .map(Arc::new)
                .map_err(|e| IamError::internal(format!("a stored policy does not parse: {e}")))
        };
        let compiled = Arc::new(coffer_authz::IdentityPolicies {
            identity: docs
                .identity
                .iter()
                .map(|(_, d)| compile(d))
                .collect::<Result<_, _>>()?,
            session: docs
                .session
                .iter()
                .map(|(_, d)| compile(d))
                .collect::<Result<_, _>>()?,
            boundary: docs
                .boundary
                .as_ref()
                .map(|(_, d)| compile(d))
                .transpose()?,
        });
        write(&self.cache.policies).insert(cache_key, compiled.clone());
        Ok(compiled)
    }
}

impl coffer_authz::IdentityPolicySource for Iam {
    fn identity_policies<'a>(
        &'a self,
        caller: &'a Caller,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Arc<coffer_authz::IdentityPolicies>, String>>
                + Send
                + 'a,
        >,
    > {
        Box::pin(async move {
            self.compiled_policies(caller).await.map_err(|e| match e {
                IamError::Internal(detail) => detail,
                other => other.to_string(),
            })
        })
    }
}

impl Iam {
    /// Appends an entity's inline policies (by name) and attached policies (by ARN).
    pub(crate) async fn collect(
        &self,
        account: &str,
        e: &model::Entity,
        out: &mut IdentityPolicies,
    ) -> Result<(), IamError> {
        for (name, doc) in &e.inline {
            out.identity.push((name.clone(), Arc::from(doc.as_str())));
        }
        for arn in &e.attached {
            out.identity
                .push((arn.clone(), self.default_document(account, arn).await?));
        }
        Ok(())
    }

    /// The role or user that issued a session. One deleted and re-created under the same name
    /// is another principal: its old sessions lose it.
    async fn session_issuer(
        &self,
        account: &str,
        kind: Kind,
        session: &coffer_core::SessionContext,
    ) -> Result<model::Entity, IamError> {
        let (e, _) = self
            .load_entity(account, kind, &session.issuer_name)
            .await?;
        if e.id != session.issuer_principal_id {
            return Err(kind.no_such(&session.issuer_name));
        }
        Ok(e)
    }

    /// A user's own policies, its groups' and its permissions boundary.
    async fn user_policies(
        &self,
        account: &str,
        user: &model::Entity,
        out: &mut IdentityPolicies,
    ) -> Result<(), IamError> {
        self.collect(account, user, out).await?;
        out.boundary = self.boundary_of(account, user).await?;
        for g in &user.groups {
            let (group, _) = self.load_entity(account, Kind::Group, g).await?;
            self.collect(account, &group, out).await?;
        }
        Ok(())
    }

    /// The session policies a session's token carries: the inline one and the managed ones,
    /// read now. A managed session policy deleted since fails this lookup: the session is then
    /// denied everything (fail closed), not granted its issuer's full reach.
    async fn session_policies_of(
        &self,
        caller: &Caller,
        out: &mut IdentityPolicies,
    ) -> Result<(), IamError> {
        let (inline, arns) = read(&self.cache.sessions)
            .get(&caller.access_key_id)
            .and_then(|r| r.session.as_ref())
            .map(|info| (info.policy.clone(), info.policy_arns.clone()))
            .ok_or_else(|| IamError::internal("session credentials not resolved"))?;
        if let Some(doc) = inline {
            out.session.push(("session policy".into(), doc));
        }
        for arn in arns.iter() {
            out.session.push((
                arn.clone(),
                self.default_document(&caller.account_id, arn).await?,
            ));
        }
        Ok(())
    }

    /// The permissions boundary of a user or role, if it has one. Its policy cannot be deleted
    /// while in use, so a missing one is an error (and the caller is denied).
    async fn boundary_of(
        &self,
        account: &str,
        e: &model::Entity,
    ) -> Result<Option<(String, Arc<str>)>, IamError> {
        let Some(arn) = &e.permissions_boundary else {
            return Ok(None);
        };
        Ok(Some((
            arn.clone(),
            self.default_document(account, arn).await?,
        )))
    }

    /// The document of a managed policy's default version.
    async fn default_document(&self, account: &str, arn: &str) -> Result<Arc<str>, IamError> {
        let (p, _): (ManagedPolicy, _) = self.load_policy(account, arn).await?;
        p.default_document()
            .map(Arc::from)
            .ok_or_else(|| IamError::internal("a managed policy without its default version"))
    }
}
