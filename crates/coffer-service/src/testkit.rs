//! What the JSON services' own tests share: calling one operation as the account root with a
//! JSON body and reading the answer or the error.

use coffer_core::{Caller, RequestContext};

/// A request context of `account`'s root in `region`, with no authorizer beyond root's.
pub fn root_ctx(account: &str, region: &str) -> RequestContext {
    RequestContext::new(Caller::root(account, "AKIDEXAMPLE"), region, "req")
}

/// Expands, inside the `impl` of a test's environment holding the service in field `$svc`, to
/// the calls its tests make: `call_in(region, op, body)` and `call(op, body)` (the parsed
/// answer, or the error's code, message and status), `ok` (the answer; panics on an error),
/// `err` (code and message; panics on success) and `code`. Every error must carry the status
/// AWS gives it: 500 for the service's internal failures, 400 for everything else.
#[macro_export]
macro_rules! json_test_calls {
    ($svc:ident, account = $account:expr, region = $region:expr) => {
        #[allow(dead_code)]
        async fn call_in(
            &self,
            region: &str,
            op: &str,
            body: ::serde_json::Value,
        ) -> Result<::serde_json::Value, (String, String, u16)> {
            let ctx = $crate::testkit::root_ctx($account, region);
            let body = ::serde_json::to_vec(&body).unwrap();
            match self.$svc.call(&ctx, op, &body).await {
                Ok(out) => Ok(::serde_json::from_slice(&out).unwrap()),
                Err(e) => Err((
                    ::coffer_core::ServiceError::code(&e).to_owned(),
                    e.to_string(),
                    ::coffer_core::ServiceError::status(&e),
                )),
            }
        }
        #[allow(dead_code)]
        async fn call(
            &self,
            op: &str,
            body: ::serde_json::Value,
        ) -> Result<::serde_json::Value, (String, String, u16)> {
            self.call_in($region, op, body).await
        }
        #[allow(dead_code)]
        async fn ok(&self, op: &str, body: ::serde_json::Value) -> ::serde_json::Value {
            match self.call(op, body).await {
                Ok(v) => v,
                Err(e) => panic!("{op} failed: {e:?}"),
            }
        }
        #[allow(dead_code)]
        async fn err(&self, op: &str, body: ::serde_json::Value) -> (String, String) {
            match self.call(op, body).await {
                Ok(v) => panic!("{op} unexpectedly succeeded: {v}"),
                Err((code, message, status)) => {
                    let expected = if code.contains("Internal") { 500 } else { 400 };
                    assert_eq!(
                        status, expected,
                        "{op}: {code} answered with status {status}"
                    );
                    (code, message)
                }
            }
        }
        #[allow(dead_code)]
        async fn code(&self, op: &str, body: ::serde_json::Value) -> String {
            self.err(op, body).await.0
        }
    };
}
