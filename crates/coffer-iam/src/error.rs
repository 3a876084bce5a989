//! IAM's and STS's modelled errors (botocore's `iam` and `sts` models: code and HTTP status).

use coffer_core::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    DeleteConflict(String),
    /// The Query protocol's framework validation error (`ValidationError`).
    #[error("{0}")]
    Validation(String),
    /// An authorization failure inside an operation (AssumeRole's trust policy).
    #[error("{0}")]
    AccessDenied(String),
    /// STS: the session policy (plus tags) packs too large.
    #[error("{0}")]
    PackedPolicyTooLarge(String),
    /// STS: a web identity token that is malformed, unverifiable, from an unregistered issuer
    /// or for another audience (`InvalidIdentityToken`, 400).
    #[error("{0}")]
    InvalidIdentityToken(String),
    /// STS: a web identity token past its expiration (`ExpiredTokenException`, 400).
    #[error("{0}")]
    ExpiredToken(String),
    /// STS: the issuer's keys could not be fetched (`IDPCommunicationError`, 400).
    #[error("{0}")]
    IdpCommunication(String),
    /// GetCredentialReport before any GenerateCredentialReport (`ReportNotPresent`, 410).
    #[error("{0}")]
    ReportNotPresent(String),
    /// GetCredentialReport of a report older than four hours (`ReportExpired`, 410).
    #[error("{0}")]
    ReportExpired(String),
    /// Another writer changed what this operation read; retried, then reported as
    /// `ConcurrentModification`.
    #[error("Rate exceeded: the entity was modified concurrently; retry the request.")]
    Conflict,
    #[error("{0}")]
    ConcurrentModification(String),
    /// An `Action` this service does not have.
    #[error("{0}")]
    InvalidAction(String),
    /// Never carries secret material; the detail goes to the log, not the caller.
    #[error("The request processing has failed because of an unknown error, exception or failure.")]
    Internal(String),
}

impl IamError {
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        IamError::Internal(e.to_string())
    }
}

impl From<coffer_store::StoreError> for IamError {
    fn from(e: coffer_store::StoreError) -> Self {
        match e {
            coffer_store::StoreError::Conflict => IamError::Conflict,
            other => IamError::internal(other),
        }
    }
}

impl ServiceError for IamError {
    fn code(&self) -> &'static str {
        match self {
            IamError::NoSuchEntity(_) => "NoSuchEntity",
            IamError::EntityAlreadyExists(_) => "EntityAlreadyExists",
            IamError::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            IamError::LimitExceeded(_) => "LimitExceeded",
            IamError::InvalidInput(_) => "InvalidInput",
            IamError::DeleteConflict(_) => "DeleteConflict",
            IamError::Validation(_) => "ValidationError",
            IamError::AccessDenied(_) => "AccessDenied",
            IamError::PackedPolicyTooLarge(_) => "PackedPolicyTooLarge",
            IamError::Conflict | IamError::ConcurrentModification(_) => "ConcurrentModification",
            IamError::InvalidAction(_) => "InvalidAction",
            IamError::ReportNotPresent(_) => "ReportNotPresent",
            IamError::InvalidIdentityToken(_) => "InvalidIdentityToken",
            IamError::ExpiredToken(_) => "ExpiredTokenException",
            IamError::IdpCommunication(_) => "IDPCommunicationError",
            IamError::ReportExpired(_) => "ReportExpired",
            IamError::Internal(_) => "ServiceFailure",
        }
    }

    fn status(&self) -> u16 {
        match self {
            IamError::NoSuchEntity(_) => 404,
            IamError::EntityAlreadyExists(_)
            | IamError::LimitExceeded(_)
            | IamError::DeleteConflict(_)
            | IamError::Conflict
            | IamError::ConcurrentModification(_) => 409,
            IamError::AccessDenied(_) => 403,
            IamError::ReportNotPresent(_) | IamError::ReportExpired(_) => 410,
            IamError::Internal(_) => 500,
            IamError::MalformedPolicyDocument(_)
            | IamError::InvalidInput(_)
            | IamError::Validation(_)
            | IamError::InvalidAction(_)
            | IamError::PackedPolicyTooLarge(_)
            | IamError::InvalidIdentityToken(_)
            | IamError::ExpiredToken(_)
            | IamError::IdpCommunication(_) => 400,
        }
    }
}
