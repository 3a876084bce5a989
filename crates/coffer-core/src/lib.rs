//! Things every room above the pure ones shares: who is calling and where (account, region,
//! partition), the injectable clock, and the contract by which a service error names its AWS
//! error code and HTTP status (mapped to the wire envelope in exactly one place, the server).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

pub mod arn;
pub mod authz;

/// The caller of one request, as established by SigV4 authentication: everything authorization
/// (policy variables, global condition keys) and audit (CloudTrail `userIdentity`) need to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    /// ARN of the principal: `arn:aws:iam::ACCOUNT:root`, `arn:aws:iam::ACCOUNT:user/PATH/NAME`,
    /// or `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`.
    pub principal_arn: String,
    pub access_key_id: String,
    pub principal_type: PrincipalType,
    /// AWS's unique id (`aws:userid`): the account id for root, `AIDA...` for a user,
    /// `AROA...:SESSION` for a role session.
    pub principal_id: String,
    /// The IAM user's name (`aws:username`); `None` for root and role sessions.
    pub user_name: Option<String>,
    /// Principal tags (`aws:PrincipalTag/KEY`): the user's tags, or the role's tags overlaid by
    /// the session's tags.
    pub tags: BTreeMap<String, String>,
    /// Present when the caller signs with temporary credentials (STS).
    pub session: Option<SessionContext>,
}

/// CloudTrail's `userIdentity.type` for the principals Coffer serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalType {
    Root,
    IamUser,
    AssumedRole,
    /// A federated user session (GetFederationToken): `arn:aws:sts::ACCOUNT:federated-user/NAME`,
    /// issued by an IAM user (or root).
    FederatedUser,
    /// A caller known only by an identity provider's token (AssumeRoleWithWebIdentity, which is
    /// not signed): it can do nothing but that call.
    WebIdentityUser,
}

impl PrincipalType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Root => "Root",
            PrincipalType::IamUser => "IAMUser",
            PrincipalType::AssumedRole => "AssumedRole",
            PrincipalType::FederatedUser => "FederatedUser",
            PrincipalType::WebIdentityUser => "WebIdentityUser",
        }
    }
}

/// CloudTrail's `sessionContext.sessionIssuer.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssuerType {
    Root,
    IamUser,
    Role,
}

impl IssuerType {
    pub fn as_str(self) -> &'static str {
        match self {
            IssuerType::Root => "Root",
            IssuerType::IamUser => "IAMUser",
            IssuerType::Role => "Role",
        }
    }
}

/// Temporary credentials' context: who issued the session (the role for AssumeRole, the user or
/// root for GetSessionToken) and when it was made and ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionContext {
    pub issuer_type: IssuerType,
    /// The role's (or user's) ARN, e.g. `arn:aws:iam::ACCOUNT:role/PATH/NAME`; for an assumed
    /// role this is also what `aws:PrincipalArn` matches.
    pub issuer_arn: String,
    pub issuer_principal_id: String,
    /// The role's or user's name (CloudTrail's `sessionIssuer.userName`).
    pub issuer_name: String,
    /// `RoleSessionName` of AssumeRole; `None` for GetSessionToken.
    pub session_name: Option<String>,
    pub created_secs: i64,
    pub expires_secs: i64,
}

impl Caller {
    /// The account's root principal (`arn:aws:iam::ACCOUNT:root`) signing with `access_key_id`.
    pub fn root(account_id: &str, access_key_id: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            principal_arn: format!("arn:aws:iam::{account_id}:root"),
            access_key_id: access_key_id.to_string(),
            principal_type: PrincipalType::Root,
            principal_id: account_id.to_string(),
            user_name: None,
            tags: BTreeMap::new(),
            session: None,
        }
    }

    /// A web identity of `account` as its token claims it: `subject`, issued for `audience` by
    /// the identity provider `provider` (the issuer's `host/path`, kept in `principal_arn`: a
    /// web identity has no ARN of its own). What CloudTrail records for
    /// AssumeRoleWithWebIdentity.
    pub fn web_identity(account_id: &str, provider: &str, audience: &str, subject: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            principal_arn: provider.to_string(),
            access_key_id: String::new(),
            principal_type: PrincipalType::WebIdentityUser,
            principal_id: format!("{provider}:{audience}:{subject}"),
            user_name: Some(subject.to_string()),
            tags: BTreeMap::new(),
            session: None,
        }
    }

    /// True for the account's root principal, long-term or session credentials alike: it is
    /// allowed everything in its account.
    pub fn is_root(&self) -> bool {
        self.principal_type == PrincipalType::Root
    }

    /// What `aws:PrincipalArn` holds: the role's ARN for a role session, else the principal ARN.
    pub fn principal_arn_for_policy(&self) -> &str {
        match (&self.session, self.principal_type) {
            (Some(s), PrincipalType::AssumedRole) => &s.issuer_arn,
            _ => &self.principal_arn,
        }
    }
}

/// Everything a service operation needs to know about the request besides its input.
///
/// Build it with [`RequestContext::new`] (plus the `with_*` setters) so fields can be added
/// without touching every constructor.
#[derive(Clone)]
pub struct RequestContext {
    pub caller: Caller,
    /// Region from the SigV4 credential scope.
    pub region: String,
    pub request_id: String,
    /// The client's address (`aws:SourceIp`), when the transport knows it.
    pub source_ip: Option<std::net::IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// Decides every [`authz::AccessRequest`] the operation makes; [`authz::RootOnly`] by default.
    pub authorizer: authz::SharedAuthorizer,
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("caller", &self.caller)
            .field("region", &self.region)
            .field("request_id", &self.request_id)
            .field("source_ip", &self.source_ip)
            .field("secure_transport", &self.secure_transport)
            .finish_non_exhaustive()
    }
}

impl RequestContext {
    /// A context whose authorizer allows only the account root ([`authz::RootOnly`]).
    pub fn new(caller: Caller, region: impl Into<String>, request_id: impl Into<String>) -> Self {
        Self {
            caller,
            region: region.into(),
            request_id: request_id.into(),
            source_ip: None,
            secure_transport: false,
            authorizer: authz::root_only(),
        }
    }

    pub fn with_authorizer(mut self, authorizer: authz::SharedAuthorizer) -> Self {
        self.authorizer = authorizer;
        self
    }

    pub fn with_transport(mut self, source_ip: Option<std::net::IpAddr>, secure: bool) -> Self {
        self.source_ip = source_ip;
        self.secure_transport = secure;
        self
    }

    /// Asks the request's authorizer; `Err` carries AWS's `AccessDeniedException` message.
    pub fn authorize(&self, req: &authz::AccessRequest<'_>) -> Result<(), authz::AccessDenied> {
        self.authorizer.authorize(self, req)
    }

    pub fn account_id(&self) -> &str {
        &self.caller.account_id
    }
    /// `aws`, `aws-cn` or `aws-us-gov`, derived from the region as AWS does.
    pub fn partition(&self) -> &'static str {
        arn::partition_for_region(&self.region)
    }
}

/// An AWS-shaped service error: every service's error enum implements this, and the server turns
/// it into `{"__type": code, "message": message}` with `status`.
pub trait ServiceError: std::error::Error + Send + Sync + 'static {
    fn code(&self) -> &'static str;
    fn status(&self) -> u16;
}

/// Wall-clock time in Unix milliseconds, injectable so tests advance time instead of sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now_millis(&self) -> i64;
    fn now_secs(&self) -> i64 {
        self.now_millis().div_euclid(1000)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> i64 {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        d.as_millis() as i64
    }
}

/// A clock that starts at real time and moves only forward by `advance`.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            millis: AtomicI64::new(SystemClock.now_millis()),
        })
    }
    pub fn advance(&self, by: std::time::Duration) {
        self.millis
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> i64 {
        self.millis.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_role_session_principals() {
        let root = Caller::root("123456789012", "AKIDEXAMPLE");
        assert!(root.is_root());
        assert_eq!(root.principal_type.as_str(), "Root");
        assert_eq!(root.principal_id, "123456789012");
        assert_eq!(
            root.principal_arn_for_policy(),
            "arn:aws:iam::123456789012:root"
        );

        let session = Caller {
            principal_arn: "arn:aws:sts::123456789012:assumed-role/app/s1".into(),
            principal_type: PrincipalType::AssumedRole,
            principal_id: "AROAEXAMPLE:s1".into(),
            session: Some(SessionContext {
                issuer_type: IssuerType::Role,
                issuer_arn: "arn:aws:iam::123456789012:role/app".into(),
                issuer_principal_id: "AROAEXAMPLE".into(),
                issuer_name: "app".into(),
                session_name: Some("s1".into()),
                created_secs: 0,
                expires_secs: 900,
            }),
            ..Caller::root("123456789012", "ASIAEXAMPLE")
        };
        assert!(!session.is_root());
        assert_eq!(session.principal_type.as_str(), "AssumedRole");
        assert_eq!(
            session.principal_arn_for_policy(),
            "arn:aws:iam::123456789012:role/app",
            "aws:PrincipalArn of a role session is the role"
        );
    }
}
