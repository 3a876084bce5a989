//! Resolves `arn:aws:lambda:REGION:ACCOUNT:function:NAME` (or a bare NAME) to the function that
//! runs it: a built-in rotator by name, a configured external command or HTTP endpoint, or a
//! Lambda-style function deployed through the Lambda API (a [`Deployed`] directory).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::builtin::{self, Builtin, PasswordRules};
use crate::function::RotationFunction;

/// Functions deployed per account and region (the Lambda API's store).
#[async_trait]
pub trait Deployed: Send + Sync {
    async fn function(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Option<Arc<dyn RotationFunction>>;
}

/// RotateSecret's question: can this ARN be invoked? (`Err`: AWS's message.)
#[async_trait]
pub trait FunctionCheck: Send + Sync {
    async fn check(&self, account: &str, region: &str, arn: &str) -> Result<(), String>;
}

/// `(region, account, name)` of a Lambda function ARN; a bare name takes the secret's own.
pub fn parse_function_arn<'a>(
    arn: &'a str,
    account: &'a str,
    region: &'a str,
) -> Option<(&'a str, &'a str, &'a str)> {
    if !arn.starts_with("arn:") {
        return (!arn.is_empty() && !arn.contains(':')).then_some((region, account, arn));
    }
    // arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 7 || parts.len() > 8 || parts[2] != "lambda" || parts[5] != "function" {
        return None;
    }
    if parts[6].is_empty() {
        return None;
    }
    Some((parts[3], parts[4], parts[6]))
}

pub struct Registry {
    rules: PasswordRules,
    configured: BTreeMap<String, Arc<dyn RotationFunction>>,
    deployed: Option<Arc<dyn Deployed>>,
}

impl Registry {
    pub fn new(rules: PasswordRules) -> Self {
        Self {
            rules,
            configured: BTreeMap::new(),
            deployed: None,
        }
    }

    /// A function addressable by `name` in every account and region (external commands and
    /// endpoints from the server's configuration).
    pub fn with_function(mut self, name: &str, f: Arc<dyn RotationFunction>) -> Self {
        self.configured.insert(name.to_owned(), f);
        self
    }

    pub fn with_deployed(mut self, d: Arc<dyn Deployed>) -> Self {
        self.deployed = Some(d);
        self
    }

    /// The function for `arn`, as seen from a secret in `account`/`region`.
    pub async fn resolve(
        &self,
        account: &str,
        region: &str,
        arn: &str,
    ) -> Option<Arc<dyn RotationFunction>> {
        let (fregion, faccount, name) = parse_function_arn(arn, account, region)?;
        // A function the account deployed under this name is the one its ARN names (AWS names
        // are the user's to choose); then the server's configured functions; then built-ins.
        if let Some(d) = &self.deployed
            && let Some(f) = d.function(faccount, fregion, name).await
        {
            return Some(f);
        }
        if let Some(f) = self.configured.get(name) {
            return Some(f.clone());
        }
        Builtin::named(name, &self.rules).map(|b| Arc::new(b) as Arc<dyn RotationFunction>)
    }

    pub fn builtin_names() -> &'static [&'static str] {
        &builtin::NAMES
    }
}

/// AWS's answer when Secrets Manager cannot invoke a rotation function.
pub const CANNOT_INVOKE: &str = "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.";

#[async_trait]
impl FunctionCheck for Registry {
    async fn check(&self, account: &str, region: &str, arn: &str) -> Result<(), String> {
        match self.resolve(account, region, arn).await {
            Some(_) => Ok(()),
            None => Err(CANNOT_INVOKE.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns() {
        assert_eq!(
            parse_function_arn(
                "arn:aws:lambda:eu-west-1:123456789012:function:coffer-postgresql-single-user",
                "1",
                "r"
            ),
            Some(("eu-west-1", "123456789012", "coffer-postgresql-single-user"))
        );
        assert_eq!(
            parse_function_arn("arn:aws:lambda:r:1:function:f:$LATEST", "1", "r"),
            Some(("r", "1", "f"))
        );
        assert_eq!(parse_function_arn("f", "1", "r"), Some(("r", "1", "f")));
        assert!(parse_function_arn("arn:aws:s3:::bucket", "1", "r").is_none());
        assert!(parse_function_arn("arn:aws:lambda:r:1:layer:f", "1", "r").is_none());
        assert!(parse_function_arn("", "1", "r").is_none());
    }

    #[tokio::test]
    async fn builtins_resolve_and_unknown_names_do_not() {
        let r = Registry::new(PasswordRules::default());
        for n in Registry::builtin_names() {
            let arn = format!("arn:aws:lambda:us-east-1:000000000000:function:{n}");
            assert!(r.check("000000000000", "us-east-1", &arn).await.is_ok());
        }
        let e = r
            .check("1", "us-east-1", "arn:aws:lambda:us-east-1:1:function:nope")
            .await
            .unwrap_err();
        assert_eq!(e, CANNOT_INVOKE);
    }
}
