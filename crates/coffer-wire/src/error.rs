//! AWS error envelopes and the hand-kept table of framework errors that no service model lists.
//!
//! Status codes are those AWS's JSON-protocol (Coral) front ends return: authentication failures
//! such as `UnrecognizedClientException` and `InvalidSignatureException` come back as HTTP 400 from
//! JSON 1.1 services (Secrets Manager, KMS, DynamoDB, ...), unlike API Gateway or Query services
//! which use 403.

use std::fmt;

/// One AWS error: code (the `__type`), human message and HTTP status.
#[derive(Clone, PartialEq, Eq)]
pub struct ErrorEnvelope {
    /// Unqualified error code, e.g. `ResourceNotFoundException`.
    pub code: String,
    /// Message shown to the caller; must never contain secret material.
    pub message: String,
    /// HTTP status code.
    pub status: u16,
}

impl fmt::Debug for ErrorEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl fmt::Display for ErrorEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// `UnrecognizedClientException` code.
pub const UNRECOGNIZED_CLIENT: &str = "UnrecognizedClientException";
/// `ExpiredTokenException` code (temporary credentials past their expiration).
pub const EXPIRED_TOKEN: &str = "ExpiredTokenException";
/// `InvalidSignatureException` code.
pub const INVALID_SIGNATURE: &str = "InvalidSignatureException";
/// `IncompleteSignatureException` code.
pub const INCOMPLETE_SIGNATURE: &str = "IncompleteSignatureException";
/// `MissingAuthenticationTokenException` code.
pub const MISSING_AUTHENTICATION_TOKEN: &str = "MissingAuthenticationTokenException";
/// `AccessDeniedException` code.
pub const ACCESS_DENIED: &str = "AccessDeniedException";
/// `ThrottlingException` code.
pub const THROTTLING: &str = "ThrottlingException";
/// `SerializationException` code.
pub const SERIALIZATION: &str = "SerializationException";
/// `UnknownOperationException` code.
pub const UNKNOWN_OPERATION: &str = "UnknownOperationException";
/// `ValidationException` code.
pub const VALIDATION: &str = "ValidationException";
/// `InternalFailure` code.
pub const INTERNAL_FAILURE: &str = "InternalFailure";
/// `ServiceUnavailable` code.
pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";

/// The framework errors (code, HTTP status) shared by all JSON services.
pub const FRAMEWORK_ERRORS: &[(&str, u16)] = &[
    (UNRECOGNIZED_CLIENT, 400),
    (EXPIRED_TOKEN, 400),
    (INVALID_SIGNATURE, 400),
    (INCOMPLETE_SIGNATURE, 400),
    (MISSING_AUTHENTICATION_TOKEN, 400),
    (ACCESS_DENIED, 400),
    (THROTTLING, 400),
    (SERIALIZATION, 400),
    (UNKNOWN_OPERATION, 400),
    (VALIDATION, 400),
    (INTERNAL_FAILURE, 500),
    (SERVICE_UNAVAILABLE, 503),
];

/// HTTP status of a framework error code, if `code` is one.
pub fn framework_status(code: &str) -> Option<u16> {
    FRAMEWORK_ERRORS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, s)| *s)
}

/// AWS's message for an unknown access key or session token.
pub const UNRECOGNIZED_CLIENT_MESSAGE: &str =
    "The security token included in the request is invalid.";
/// AWS's message for expired temporary credentials.
pub const EXPIRED_TOKEN_MESSAGE: &str = "The security token included in the request is expired";
/// AWS's message for a signature mismatch.
pub const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
/// AWS's message when a request carries no authentication at all.
pub const MISSING_AUTHENTICATION_TOKEN_MESSAGE: &str = "Missing Authentication Token";

impl ErrorEnvelope {
    /// Any error, e.g. one a service model lists.
    pub fn new(code: impl Into<String>, message: impl Into<String>, status: u16) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            status,
        }
    }

    /// The AWS JSON 1.x body: exactly `{"__type":"CODE","message":"TEXT"}`.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.code.len() + self.message.len() + 32);
        out.extend_from_slice(b"{\"__type\":");
        push_json_string(&mut out, &self.code);
        out.extend_from_slice(b",\"message\":");
        push_json_string(&mut out, &self.message);
        out.push(b'}');
        out
    }

    fn framework(code: &'static str, message: impl Into<String>) -> Self {
        // Every constructor below names a code in FRAMEWORK_ERRORS; 500 is the safe fallback.
        let status = framework_status(code).unwrap_or(500);
        Self::new(code, message, status)
    }

    /// `UnrecognizedClientException` with AWS's fixed message (unknown access key or token).
    pub fn unrecognized_client() -> Self {
        Self::framework(UNRECOGNIZED_CLIENT, UNRECOGNIZED_CLIENT_MESSAGE)
    }

    /// `ExpiredTokenException` with AWS's fixed message.
    pub fn expired_token() -> Self {
        Self::framework(EXPIRED_TOKEN, EXPIRED_TOKEN_MESSAGE)
    }

    /// `InvalidSignatureException`.
    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::framework(INVALID_SIGNATURE, message)
    }

    /// `IncompleteSignatureException` (malformed authentication data).
    pub fn incomplete_signature(message: impl Into<String>) -> Self {
        Self::framework(INCOMPLETE_SIGNATURE, message)
    }

    /// `MissingAuthenticationTokenException` with AWS's fixed message.
    pub fn missing_authentication_token() -> Self {
        Self::framework(
            MISSING_AUTHENTICATION_TOKEN,
            MISSING_AUTHENTICATION_TOKEN_MESSAGE,
        )
    }

    /// `AccessDeniedException`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::framework(ACCESS_DENIED, message)
    }

    /// `ThrottlingException` (AWS's usual message is "Rate exceeded").
    pub fn throttling(message: impl Into<String>) -> Self {
        Self::framework(THROTTLING, message)
    }

    /// `SerializationException` (the body could not be read as the operation's input).
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::framework(SERIALIZATION, message)
    }

    /// `UnknownOperationException` (unknown `X-Amz-Target` / action).
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::framework(UNKNOWN_OPERATION, message)
    }

    /// `ValidationException`; see [`crate::json::validation_message`] for AWS's message shape.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::framework(VALIDATION, message)
    }

    /// `InternalFailure` (HTTP 500).
    pub fn internal_failure(message: impl Into<String>) -> Self {
        Self::framework(INTERNAL_FAILURE, message)
    }

    /// `ServiceUnavailable` (HTTP 503).
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::framework(SERVICE_UNAVAILABLE, message)
    }
}

fn push_json_string(out: &mut Vec<u8>, s: &str) {
    // Serialising a &str into a Vec cannot fail; fall back to an empty string rather than panic.
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_exact() {
        let e = ErrorEnvelope::new(
            "ResourceNotFoundException",
            "Secrets Manager can't find it.",
            400,
        );
        assert_eq!(
            e.to_json(),
            br#"{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find it."}"#
        );
    }

    #[test]
    fn json_escapes_message() {
        let e = ErrorEnvelope::validation("quote \" backslash \\ newline \n ctrl \u{1}");
        let v: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("valid json");
        assert_eq!(v["__type"], "ValidationException");
        assert_eq!(v["message"], "quote \" backslash \\ newline \n ctrl \u{1}");
    }

    #[test]
    fn framework_statuses() {
        assert_eq!(ErrorEnvelope::unrecognized_client().status, 400);
        assert_eq!(
            ErrorEnvelope::unrecognized_client().message,
            "The security token included in the request is invalid."
        );
        assert_eq!(ErrorEnvelope::invalid_signature("x").status, 400);
        assert_eq!(ErrorEnvelope::incomplete_signature("x").status, 400);
        assert_eq!(ErrorEnvelope::missing_authentication_token().status, 400);
        assert_eq!(ErrorEnvelope::access_denied("x").status, 400);
        assert_eq!(ErrorEnvelope::throttling("x").status, 400);
        assert_eq!(
            ErrorEnvelope::serialization("x").code,
            "SerializationException"
        );
        assert_eq!(ErrorEnvelope::unknown_operation("x").status, 400);
        assert_eq!(ErrorEnvelope::validation("x").status, 400);
        assert_eq!(ErrorEnvelope::internal_failure("x").status, 500);
        assert_eq!(ErrorEnvelope::service_unavailable("x").status, 503);
        assert_eq!(framework_status("InternalFailure"), Some(500));
        assert_eq!(framework_status("ResourceNotFoundException"), None);
    }
}
