//! The IAM JSON policy language: a typed model, a strict parser and validation findings.
//!
//! Pure: no I/O. [`CompiledPolicy`] is the evaluation form (built once per document) and
//! [`decide`] applies AWS's evaluation logic to identity and resource policies.

mod eval;
mod glob;
mod parse;
mod validate;
mod wildcard;

use std::fmt;

pub use eval::{
    CompiledPolicy, Context, Decision, DenyReason, PolicyOutcome, Request, RequestPrincipal,
    ResourceMode, Values, decide,
};
pub use parse::{MAX_SECRETS_MANAGER_POLICY_CHARS, parse, parse_as, parse_resource_policy};
pub use validate::{
    Finding, FindingType, ValidationErrorsEntry, is_public, validate_resource_policy,
    validation_errors, validation_passed,
};
pub use wildcard::wildcard_match;

/// Which kind of policy a document is, which decides the rules for `Principal` and `Resource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Only the grammar: `Principal`/`NotPrincipal` optional, `Resource`/`NotResource` required.
    Any,
    /// Attached to a user, group or role: no `Principal`/`NotPrincipal`.
    Identity,
    /// Attached to a resource (a secret, a key): `Principal` or `NotPrincipal` required.
    Resource,
    /// A role's trust policy: `Principal`/`NotPrincipal` required, no `Resource`/`NotResource`.
    Trust,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersion {
    /// `2012-10-17`: the current language, with policy variables.
    V2012_10_17,
    /// `2008-10-17`, also what AWS assumes when `Version` is absent: `${...}` is literal text.
    V2008_10_17,
}

impl PolicyVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V2012_10_17 => "2012-10-17",
            Self::V2008_10_17 => "2008-10-17",
        }
    }

    /// Whether `${aws:username}`-style variables are substituted.
    pub fn supports_policy_variables(self) -> bool {
        self == Self::V2012_10_17
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub version: PolicyVersion,
    /// False when the document omitted `Version` (so `version` is the 2008 default).
    pub version_explicit: bool,
    pub id: Option<String>,
    /// In document order; a single-object `Statement` becomes a one-element list.
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// `None` when the statement names no principal (identity policies).
    pub principal: Option<PrincipalBlock>,
    pub action: ActionBlock,
    /// `None` only for trust policies, which have no resource element.
    pub resource: Option<ResourceBlock>,
    /// All must match (AND across operators and keys); within one condition any value may match,
    /// as refined by the operator's set qualifier.
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalBlock {
    Principal(Principal),
    NotPrincipal(Principal),
}

/// A `Principal` value: `"*"` or a map of principal types to identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The bare string `"*"`: everyone, including anonymous callers.
    Any,
    Specific(PrincipalMap),
}

/// Identifiers per principal type, as written (account ids are not expanded to root ARNs here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalMap {
    /// `"AWS"`: `"*"`, 12-digit account ids or IAM/STS ARNs.
    pub aws: Vec<String>,
    pub service: Vec<String>,
    pub federated: Vec<String>,
    pub canonical_user: Vec<String>,
}

impl PrincipalMap {
    pub fn is_empty(&self) -> bool {
        self.aws.is_empty()
            && self.service.is_empty()
            && self.federated.is_empty()
            && self.canonical_user.is_empty()
    }
}

/// `Action` or `NotAction`: patterns `*` or `service:Name` with `*`/`?` wildcards, matched
/// case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionBlock {
    Action(Vec<String>),
    NotAction(Vec<String>),
}

impl ActionBlock {
    pub fn patterns(&self) -> &[String] {
        match self {
            Self::Action(p) | Self::NotAction(p) => p,
        }
    }
}

/// `Resource` or `NotResource`: `*` or ARN patterns with wildcards (and policy variables in 2012).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceBlock {
    Resource(Vec<String>),
    NotResource(Vec<String>),
}

impl ResourceBlock {
    pub fn patterns(&self) -> &[String] {
        match self {
            Self::Resource(p) | Self::NotResource(p) => p,
        }
    }
}

/// One `operator: { key: values }` entry of a `Condition` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: ConditionOperator,
    /// As written; condition keys compare case-insensitively.
    pub key: String,
    /// JSON strings, numbers and booleans, all kept as their text (`true` → `"true"`), as IAM does.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConditionOperator {
    pub set: Option<SetQualifier>,
    pub base: Operator,
    /// The `IfExists` suffix: a missing key makes the condition true.
    pub if_exists: bool,
}

impl fmt::Display for ConditionOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(set) = self.set {
            write!(f, "{}:", set.as_str())?;
        }
        f.write_str(self.base.as_str())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

impl SetQualifier {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ForAnyValue => "ForAnyValue",
            Self::ForAllValues => "ForAllValues",
        }
    }
}

/// The type a condition operator compares as; evaluation and validation dispatch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorType {
    String,
    Numeric,
    Date,
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

macro_rules! operators {
    ($($name:ident => $ty:ident),* $(,)?) => {
        /// A condition operator without its set qualifier and `IfExists` suffix.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operator { $($name),* }

        impl Operator {
            pub const ALL: &'static [Operator] = &[$(Operator::$name),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Operator::$name => stringify!($name)),* }
            }

            pub fn operator_type(self) -> OperatorType {
                match self { $(Operator::$name => OperatorType::$ty),* }
            }

            /// Exact, case-sensitive lookup by name, as IAM does.
            pub fn from_name(name: &str) -> Option<Operator> {
                match name { $(stringify!($name) => Some(Operator::$name),)* _ => None }
            }
        }
    };
}

operators! {
    StringEquals => String,
    StringNotEquals => String,
    StringEqualsIgnoreCase => String,
    StringNotEqualsIgnoreCase => String,
    StringLike => String,
    StringNotLike => String,
    NumericEquals => Numeric,
    NumericNotEquals => Numeric,
    NumericLessThan => Numeric,
    NumericLessThanEquals => Numeric,
    NumericGreaterThan => Numeric,
    NumericGreaterThanEquals => Numeric,
    DateEquals => Date,
    DateNotEquals => Date,
    DateLessThan => Date,
    DateLessThanEquals => Date,
    DateGreaterThan => Date,
    DateGreaterThanEquals => Date,
    Bool => Bool,
    BinaryEquals => Binary,
    IpAddress => Ip,
    NotIpAddress => Ip,
    ArnEquals => Arn,
    ArnLike => Arn,
    ArnNotEquals => Arn,
    ArnNotLike => Arn,
    Null => Null,
}

impl Operator {
    /// Operators that match when the value differs; they stay true when the key is absent.
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Self::StringNotEquals
                | Self::StringNotEqualsIgnoreCase
                | Self::StringNotLike
                | Self::NumericNotEquals
                | Self::DateNotEquals
                | Self::NotIpAddress
                | Self::ArnNotEquals
                | Self::ArnNotLike
        )
    }
}

/// One step of a location inside the policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// A location such as `Statement[1].Condition.StringEquals`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(pub Vec<PathSegment>);

impl JsonPath {
    pub fn key(&self, k: &str) -> JsonPath {
        let mut v = self.0.clone();
        v.push(PathSegment::Key(k.to_string()));
        JsonPath(v)
    }

    pub fn index(&self, i: usize) -> JsonPath {
        let mut v = self.0.clone();
        v.push(PathSegment::Index(i));
        JsonPath(v)
    }

    /// The path as separate strings (`["Statement", "1", "Effect"]`), for findings.
    pub fn to_strings(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|s| match s {
                PathSegment::Key(k) => k.clone(),
                PathSegment::Index(i) => i.to_string(),
            })
            .collect()
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("Policy");
        }
        for (n, seg) in self.0.iter().enumerate() {
            match seg {
                PathSegment::Key(k) if n == 0 => f.write_str(k)?,
                PathSegment::Key(k) => write!(f, ".{k}")?,
                PathSegment::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

/// Why a document is not a valid policy. `Display` names the offending element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("Policy: the document is {len} characters long; the maximum is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("Policy: the document is not valid JSON ({0})")]
    Json(String),
    #[error("{location}: {message}")]
    Invalid {
        location: JsonPath,
        /// A stable machine-readable code, used as the finding's issue code.
        code: &'static str,
        message: String,
    },
}

impl PolicyError {
    pub fn issue_code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "POLICY_SIZE_EXCEEDS_RESOURCE_POLICY_QUOTA",
            Self::Json(_) => "JSON_SYNTAX_ERROR",
            Self::Invalid { code, .. } => code,
        }
    }

    pub fn location(&self) -> JsonPath {
        match self {
            Self::Invalid { location, .. } => location.clone(),
            _ => JsonPath::default(),
        }
    }
}
