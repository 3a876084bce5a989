//! A subset of AWS Lambda's REST-JSON API (2015-03-31), enough to deploy rotation functions the
//! way AWS users do (`aws lambda create-function --zip-file fileb://f.zip ...`): Python functions
//! whose zip is stored encrypted (under the AWS-managed key `alias/aws/lambda`) and which run in
//! a local subprocess ([`runtime`]) as their execution role, calling back into this server.
//!
//! Deployed functions are also rotation functions: [`LambdaService`] implements the rotation
//! registry's [`coffer_rotation::registry::Deployed`].

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use coffer_core::authz::ResourcePolicy;
use coffer_core::{RequestContext, SharedClock};
use coffer_kms::Keyring;
use coffer_rotation::CallbackEnv;
use coffer_service::OperationSpec;
use coffer_service::opctx::OpCtx;
use coffer_store::{Entry, Store, WriteBatch};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub mod rotation;
pub mod runtime;

pub use runtime::Runtime;

/// The signing name and path prefix of the API.
pub const SIGNING_NAME: &str = "lambda";
const API_PREFIX: &str = "/2015-03-31/functions";
/// Largest request body of the API: a function's base64 zip is inside it. AWS takes 50 MB zips
/// (69905067 bytes of request); Coffer reads bodies before authenticating, so it takes less.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// The AWS-managed key function code and environment variables are encrypted under.
pub const LAMBDA_KEY_ALIAS: &str = coffer_kms::LAMBDA_ALIAS;

macro_rules! op {
    ($name:literal, $action:literal, $ro:literal) => {
        OperationSpec {
            name: $name,
            action: concat!("lambda:", $action),
            read_only: $ro,
        }
    };
}

static OPERATIONS: &[OperationSpec] = &[
    op!("AddPermission", "AddPermission", false),
    op!("CreateFunction", "CreateFunction", false),
    op!("DeleteFunction", "DeleteFunction", false),
    op!("GetFunction", "GetFunction", true),
    op!("GetFunctionConfiguration", "GetFunctionConfiguration", true),
    op!("GetPolicy", "GetPolicy", true),
    op!("Invoke", "InvokeFunction", false),
    op!("ListFunctions", "ListFunctions", true),
    op!("UpdateFunctionCode", "UpdateFunctionCode", false),
    op!(
        "UpdateFunctionConfiguration",
        "UpdateFunctionConfiguration",
        false
    ),
];

/// AWS's error for one call: REST-JSON puts the code in `x-amzn-ErrorType`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct LambdaError {
    pub code: &'static str,
    pub message: String,
    pub status: u16,
}

impl coffer_core::ServiceError for LambdaError {
    fn code(&self) -> &'static str {
        self.code
    }
    fn status(&self) -> u16 {
        self.status
    }
}

impl LambdaError {
    fn new(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status,
        }
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValueException", 400, message)
    }
    fn not_found(arn: &str) -> Self {
        Self::new(
            "ResourceNotFoundException",
            404,
            format!("Function not found: {arn}"),
        )
    }
    fn conflict(message: impl Into<String>) -> Self {
        Self::new("ResourceConflictException", 409, message)
    }
    fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "lambda: internal failure");
        Self::new("ServiceException", 500, "An internal error occurred.")
    }
    fn denied(message: String) -> Self {
        Self::new("AccessDeniedException", 403, message)
    }
}

/// The service principal execution roles must trust.
pub const SERVICE_PRINCIPAL: &str = "lambda.amazonaws.com";

/// IAM roles, as the Lambda API needs them: an execution role must exist and trust
/// [`SERVICE_PRINCIPAL`] (for the function, as `aws:SourceArn`), and each invocation runs with a
/// session of it.
#[async_trait::async_trait]
pub trait Roles: Send + Sync {
    async fn trusts_lambda(
        &self,
        account: &str,
        role_arn: &str,
        function_arn: &str,
    ) -> Result<bool, String>;
    /// Credentials of `role_arn` as session `session_name` for `secs` seconds (`None`: no such
    /// role, or it no longer trusts Lambda); `endpoint` left empty.
    async fn session(
        &self,
        account: &str,
        role_arn: &str,
        function_arn: &str,
        session_name: &str,
        secs: i64,
    ) -> Result<Option<CallbackEnv>, String>;
}

/// One API call, as routed from method and path.
pub struct Request<'a> {
    pub operation: &'static OperationSpec,
    /// The `{FunctionName}` path segment, percent-decoded.
    pub function: Option<String>,
    pub query: &'a str,
    /// `X-Amz-Invocation-Type`, `X-Amz-Log-Type` (Invoke).
    pub invocation_type: Option<&'a str>,
    pub log_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// The answer: status, JSON (or the raw payload of Invoke) and extra headers.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

impl Response {
    fn json(status: u16, v: &Value) -> Self {
        Self {
            status,
            body: serde_json::to_vec(v).unwrap_or_default(),
            headers: Vec::new(),
        }
    }
}

/// The operation a method and path name, and the function name in the path.
pub fn route(method: &str, path: &str) -> Option<(&'static OperationSpec, Option<String>)> {
    let rest = path.strip_prefix(API_PREFIX)?;
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let mut parts = rest.splitn(2, '/');
    let name = parts.next().filter(|s| !s.is_empty());
    let sub = parts.next();
    let op = match (method, name.is_some(), sub) {
        ("POST", false, None) => "CreateFunction",
        ("GET", false, None) => "ListFunctions",
        ("GET", true, None) => "GetFunction",
        ("DELETE", true, None) => "DeleteFunction",
        ("GET", true, Some("configuration")) => "GetFunctionConfiguration",
        ("PUT", true, Some("configuration")) => "UpdateFunctionConfiguration",
        ("PUT", true, Some("code")) => "UpdateFunctionCode",
        ("POST", true, Some("invocations")) => "Invoke",
        ("POST", true, Some("policy")) => "AddPermission",
        ("GET", true, Some("policy")) => "GetPolicy",
        _ => return None,
    };
    let spec = OPERATIONS.iter().find(|o| o.name == op)?;
    let name = name.map(|n| {
        percent_encoding::percent_decode_str(n)
            .decode_utf8_lossy()
            .into_owned()
    });
    Some((spec, name))
}

/// A stored function (its code is a record of its own; its environment is sealed).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FunctionRecord {
    name: String,
    arn: String,
    runtime: String,
    role: String,
    handler: String,
    #[serde(default)]
    description: String,
    timeout: u32,
    memory: u32,
    /// Base64 SHA-256 of the zip, as AWS reports it.
    code_sha256: String,
    code_size: u64,
    last_modified_ms: i64,
    revision_id: String,
    /// `Environment.Variables` as JSON, encrypted under [`LAMBDA_KEY_ALIAS`] (base64).
    #[serde(default)]
    env_sealed: Option<String>,
    /// AddPermission's statements.
    #[serde(default)]
    statements: Vec<Value>,
}

impl FunctionRecord {
    fn sha_hex(&self) -> String {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&self.code_sha256)
            .unwrap_or_default();
        hex::encode(raw)
    }
}

fn fn_key(account: &str, region: &str, name: &str) -> String {
    format!("lambda/fn/{account}/{region}/{name}")
}
fn code_key(account: &str, region: &str, name: &str) -> String {
    format!("lambda/code/{account}/{region}/{name}")
}

/// `Function name` as AWS validates it: 1-64 of `[a-zA-Z0-9-_]`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct Environment {
    #[serde(default)]
    variables: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CodeInput {
    #[serde(default)]
    zip_file: Option<String>,
    #[serde(default, rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(default)]
    image_uri: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ConfigInput {
    #[serde(default)]
    function_name: Option<String>,
    #[serde(default)]
    runtime: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    handler: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    timeout: Option<i64>,
    #[serde(default)]
    memory_size: Option<i64>,
    #[serde(default)]
    environment: Option<Environment>,
    #[serde(default)]
    code: Option<CodeInput>,
    #[serde(default)]
    package_type: Option<String>,
    // UpdateFunctionCode
    #[serde(default)]
    zip_file: Option<String>,
}

fn parse<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, LambdaError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| LambdaError::invalid(format!("Could not parse request body into json: {e}")))
}

fn iso8601(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
        .to_string()
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k == name).then(|| percent_encoding::percent_decode_str(v).decode_utf8_lossy())
    })
}

pub struct LambdaService {
    store: Arc<dyn Store>,
    keys: Arc<Keyring>,
    clock: SharedClock,
    roles: Arc<dyn Roles>,
    runtime: Runtime,
    /// The server's own address, known once it listens.
    endpoint: Arc<OnceLock<String>>,
}

/// Everything one invocation needs, read from the store.
struct Loaded {
    record: FunctionRecord,
    entry: Entry,
}

impl LambdaService {
    pub fn new(
        store: Arc<dyn Store>,
        keys: Arc<Keyring>,
        clock: SharedClock,
        roles: Arc<dyn Roles>,
        runtime: Runtime,
        endpoint: Arc<OnceLock<String>>,
    ) -> Self {
        Self {
            store,
            keys,
            clock,
            roles,
            runtime,
            endpoint,
        }
    }

    pub fn operations() -> &'static [OperationSpec] {
        OPERATIONS
    }

    /// Runs one call. Every operation decides its access before it reads anything.
    pub async fn call(
        self: &Arc<Self>,
        ctx: &RequestContext,
        req: Request<'_>,
    ) -> Result<Response, LambdaError> {
        let decided = AtomicBool::new(false);
        let op = OpCtx::new(ctx, req.operation, &decided);
        let out = match req.operation.name {
            "ListFunctions" => {
                op.check_any().map_err(|e| LambdaError::denied(e.message))?;
                self.list(ctx, req.query).await?
            }
            "CreateFunction" => self.create(&op, req.body).await?,
            name => {
                let (fname, arn) = self.function_ref(ctx, req.function.as_deref())?;
                op.check(&arn, None, ResourcePolicy::None, &[])
                    .map_err(|e| LambdaError::denied(e.message))?;
                match name {
                    "GetFunction" => {
                        let l = self.load(ctx, &fname, &arn).await?;
                        let config = self.configuration(ctx, &l.record).await?;
                        // No Code.Location: the zip is not served back (AWS's is a presigned S3
                        // URL).
                        Response::json(
                            200,
                            &json!({"Configuration": config, "Code": {"RepositoryType": "S3"}}),
                        )
                    }
                    "GetFunctionConfiguration" => {
                        let l = self.load(ctx, &fname, &arn).await?;
                        Response::json(200, &self.configuration(ctx, &l.record).await?)
                    }
                    "DeleteFunction" => {
                        let l = self.load(ctx, &fname, &arn).await?;
                        let mut b = WriteBatch::new();
                        let key = fn_key(ctx.account_id(), &ctx.region, &fname);
                        b.check(key.clone(), Some(&l.entry))
                            .delete(key)
                            .delete(code_key(ctx.account_id(), &ctx.region, &fname));
                        self.commit(b).await?;
                        Response {
                            status: 204,
                            body: Vec::new(),
                            headers: Vec::new(),
                        }
                    }
                    "UpdateFunctionCode" | "UpdateFunctionConfiguration" => {
                        self.update(&op, &fname, &arn, name == "UpdateFunctionCode", req.body)
                            .await?
                    }
                    "AddPermission" => self.add_permission(ctx, &fname, &arn, req.body).await?,
                    "GetPolicy" => {
                        let l = self.load(ctx, &fname, &arn).await?;
                        if l.record.statements.is_empty() {
                            return Err(LambdaError::new(
                                "ResourceNotFoundException",
                                404,
                                "The resource you requested does not exist.",
                            ));
                        }
                        let policy = json!({"Version": "2012-10-17", "Id": "default",
                            "Statement": l.record.statements});
                        Response::json(
                            200,
                            &json!({"Policy": policy.to_string(), "RevisionId": l.record.revision_id}),
                        )
                    }
                    "Invoke" => {
                        let l = self.load(ctx, &fname, &arn).await?;
                        self.invoke_api(ctx, l.record, &req).await?
                    }
                    _ => unreachable!("every row of OPERATIONS is dispatched"),
                }
            }
        };
        if !coffer_service::opctx::decided(&decided) {
            return Err(LambdaError::internal(
                "an operation answered without a decision",
            ));
        }
        Ok(out)
    }

    /// The name and ARN of the function a path segment names: a name, or its ARN (with an
    /// optional `$LATEST` qualifier) in the caller's account and region.
    fn function_ref(
        &self,
        ctx: &RequestContext,
        given: Option<&str>,
    ) -> Result<(String, String), LambdaError> {
        let given = given.unwrap_or_default();
        let (region, account, name) =
            coffer_rotation::registry::parse_function_arn(given, ctx.account_id(), &ctx.region)
                .or_else(|| {
                    // `NAME:QUALIFIER`
                    let (n, _) = given.split_once(':')?;
                    Some((&ctx.region, ctx.account_id(), n))
                })
                .ok_or_else(|| LambdaError::invalid("Invalid function name or ARN."))?;
        if !valid_name(name) {
            return Err(LambdaError::invalid(format!(
                "1 validation error detected: Value '{given}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern"
            )));
        }
        if account != ctx.account_id() || region != ctx.region {
            return Err(LambdaError::not_found(given));
        }
        Ok((name.to_owned(), self.arn(ctx, name)))
    }

    fn arn(&self, ctx: &RequestContext, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{name}",
            ctx.partition(),
            ctx.region,
            ctx.account_id()
        )
    }

    async fn load(
        &self,
        ctx: &RequestContext,
        name: &str,
        arn: &str,
    ) -> Result<Loaded, LambdaError> {
        self.load_in(ctx.account_id(), &ctx.region, name)
            .await?
            .ok_or_else(|| LambdaError::not_found(arn))
    }

    async fn load_in(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<Loaded>, LambdaError> {
        let Some(entry) = self
            .store
            .get(fn_key(account, region, name).as_bytes())
            .await
            .map_err(LambdaError::internal)?
        else {
            return Ok(None);
        };
        let record = serde_json::from_slice(&entry.value).map_err(LambdaError::internal)?;
        Ok(Some(Loaded { record, entry }))
    }

    async fn commit(&self, b: WriteBatch) -> Result<(), LambdaError> {
        match self.store.commit(b).await {
            Ok(_) => Ok(()),
            Err(coffer_store::StoreError::Conflict) => Err(LambdaError::conflict(
                "The operation cannot be performed at this time. An update is in progress for resource.",
            )),
            Err(e) => Err(LambdaError::internal(e)),
        }
    }

    async fn seal(
        &self,
        account: &str,
        region: &str,
        arn: &str,
        purpose: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>, LambdaError> {
        self.keys
            .encrypt(
                account,
                region,
                LAMBDA_KEY_ALIAS,
                plain,
                &[("FunctionArn", arn), ("Purpose", purpose)],
            )
            .await
            .map_err(LambdaError::internal)
    }

    async fn open(
        &self,
        account: &str,
        region: &str,
        arn: &str,
        purpose: &str,
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, LambdaError> {
        self.keys
            .decrypt(
                account,
                region,
                sealed,
                &[("FunctionArn", arn), ("Purpose", purpose)],
            )
            .await
            .map_err(LambdaError::internal)
    }

    async fn environment(
        &self,
        account: &str,
        region: &str,
        r: &FunctionRecord,
    ) -> Result<Option<BTreeMap<String, String>>, LambdaError> {
        let Some(sealed) = &r.env_sealed else {
            return Ok(None);
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(LambdaError::internal)?;
        let plain = self
            .open(account, region, &r.arn, "environment", &raw)
            .await?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(LambdaError::internal)
    }

    async fn seal_environment(
        &self,
        account: &str,
        region: &str,
        arn: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<Option<String>, LambdaError> {
        if vars.is_empty() {
            return Ok(None);
        }
        for k in vars.keys() {
            let ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(LambdaError::invalid(format!(
                    "Environment variable name {k} is invalid: it must start with a letter and contain only letters, digits and underscores."
                )));
            }
        }
        let plain =
            zeroize::Zeroizing::new(serde_json::to_vec(vars).map_err(LambdaError::internal)?);
        let sealed = self
            .seal(account, region, arn, "environment", &plain)
            .await?;
        Ok(Some(
            base64::engine::general_purpose::STANDARD.encode(sealed),
        ))
    }

    /// FunctionConfiguration as AWS returns it.
    async fn configuration(
        &self,
        ctx: &RequestContext,
        r: &FunctionRecord,
    ) -> Result<Value, LambdaError> {
        let mut v = json!({
            "FunctionName": r.name,
            "FunctionArn": r.arn,
            "Runtime": r.runtime,
            "Role": r.role,
            "Handler": r.handler,
            "CodeSize": r.code_size,
            "Description": r.description,
            "Timeout": r.timeout,
            "MemorySize": r.memory,
            "LastModified": iso8601(r.last_modified_ms),
            "CodeSha256": r.code_sha256,
            "Version": "$LATEST",
            "TracingConfig": {"Mode": "PassThrough"},
            "RevisionId": r.revision_id,
            "State": "Active",
            "LastUpdateStatus": "Successful",
            "PackageType": "Zip",
            "Architectures": ["x86_64"],
            "EphemeralStorage": {"Size": 512},
        });
        if let Some(vars) = self.environment(ctx.account_id(), &ctx.region, r).await? {
            v["Environment"] = json!({"Variables": vars});
        }
        Ok(v)
    }

    fn check_runtime(runtime: &str) -> Result<(), LambdaError> {
        let ok = runtime
            .strip_prefix("python3.")
            .is_some_and(|minor| !minor.is_empty() && minor.bytes().all(|b| b.is_ascii_digit()));
        if ok {
            Ok(())
        } else {
            Err(LambdaError::invalid(format!(
                "Value {runtime} at 'runtime' failed to satisfy constraint: Coffer runs python3.x functions only."
            )))
        }
    }

    fn check_handler(handler: &str) -> Result<(), LambdaError> {
        let ok = (1..=128).contains(&handler.len())
            && handler
                .rsplit_once('.')
                .is_some_and(|(m, f)| !m.is_empty() && !f.is_empty())
            && !handler.contains("..")
            && handler.bytes().all(|b| !b.is_ascii_whitespace());
        if ok {
            Ok(())
        } else {
            Err(LambdaError::invalid(format!(
                "Value {handler} at 'handler' failed to satisfy constraint: the handler is MODULE.FUNCTION"
            )))
        }
    }

    fn check_timeout(t: i64) -> Result<u32, LambdaError> {
        if (1..=900).contains(&t) {
            Ok(t as u32)
        } else {
            Err(LambdaError::invalid(format!(
                "1 validation error detected: Value {t} at 'timeout' failed to satisfy constraint: Member must have value between 1 and 900"
            )))
        }
    }

    fn check_memory(m: i64) -> Result<u32, LambdaError> {
        if (128..=10240).contains(&m) {
            Ok(m as u32)
        } else {
            Err(LambdaError::invalid(format!(
                "1 validation error detected: Value {m} at 'memorySize' failed to satisfy constraint: Member must have value between 128 and 10240"
            )))
        }
    }

    async fn check_role(
        &self,
        op: &OpCtx<'_>,
        role: &str,
        function_arn: &str,
    ) -> Result<(), LambdaError> {
        // Handing a role to a function is iam:PassRole on it, as in AWS.
        op.with_action("iam:PassRole")
            .check(role, None, ResourcePolicy::None, &[])
            .map_err(|e| LambdaError::denied(e.message))?;
        let trusted = self
            .roles
            .trusts_lambda(op.account_id(), role, function_arn)
            .await
            .map_err(LambdaError::internal)?;
        if trusted {
            Ok(())
        } else {
            Err(LambdaError::invalid(
                "The role defined for the function cannot be assumed by Lambda.",
            ))
        }
    }

    /// The zip's bytes from base64, checked to be a zip archive.
    fn zip_bytes(b64: &str) -> Result<Vec<u8>, LambdaError> {
        let zip = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| LambdaError::invalid("Could not unzip uploaded file. Please check your file, then try to upload again."))?;
        if !zip.starts_with(b"PK\x03\x04") && !zip.starts_with(b"PK\x05\x06") {
            return Err(LambdaError::invalid(
                "Could not unzip uploaded file. Please check your file, then try to upload again.",
            ));
        }
        Ok(zip)
    }

    async fn create(&self, op: &OpCtx<'_>, body: &[u8]) -> Result<Response, LambdaError> {
        let ctx = op.ctx;
        let input: ConfigInput = parse(body)?;
        let name = input.function_name.clone().unwrap_or_default();
        if !valid_name(&name) {
            return Err(LambdaError::invalid(format!(
                "1 validation error detected: Value '{name}' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+"
            )));
        }
        let arn = self.arn(ctx, &name);
        op.check(&arn, None, ResourcePolicy::None, &[])
            .map_err(|e| LambdaError::denied(e.message))?;
        if input.package_type.as_deref().is_some_and(|p| p != "Zip") {
            return Err(LambdaError::invalid("Coffer runs Zip functions only."));
        }
        let runtime = input
            .runtime
            .ok_or_else(|| LambdaError::invalid("Runtime and Handler are mandatory parameters for functions created with deployment packages."))?;
        Self::check_runtime(&runtime)?;
        let handler = input
            .handler
            .ok_or_else(|| LambdaError::invalid("Runtime and Handler are mandatory parameters for functions created with deployment packages."))?;
        Self::check_handler(&handler)?;
        let role = input
            .role
            .ok_or_else(|| LambdaError::invalid("Role is a mandatory parameter."))?;
        let timeout = Self::check_timeout(input.timeout.unwrap_or(3))?;
        let memory = Self::check_memory(input.memory_size.unwrap_or(128))?;
        let code = input.code.unwrap_or_default();
        if code.s3_bucket.is_some() || code.image_uri.is_some() {
            return Err(LambdaError::invalid(
                "Coffer takes function code as Code.ZipFile only.",
            ));
        }
        let zip = Self::zip_bytes(
            code.zip_file
                .as_deref()
                .ok_or_else(|| LambdaError::invalid("Code.ZipFile is required."))?,
        )?;
        self.check_role(op, &role, &arn).await?;
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        let vars = input
            .environment
            .and_then(|e| e.variables)
            .unwrap_or_default();
        let record = FunctionRecord {
            name: name.clone(),
            arn: arn.clone(),
            runtime,
            role,
            handler,
            description: input.description.unwrap_or_default(),
            timeout,
            memory,
            code_sha256: String::new(),
            code_size: 0,
            last_modified_ms: self.clock.now_millis(),
            revision_id: uuid::Uuid::new_v4().to_string(),
            env_sealed: self.seal_environment(account, region, &arn, &vars).await?,
            statements: Vec::new(),
        };
        let key = fn_key(account, region, &name);
        let mut b = WriteBatch::new();
        b.check(key.clone(), None);
        let record = self.put_code(&mut b, ctx, record, &zip).await?;
        b.put(
            key,
            serde_json::to_vec(&record).map_err(LambdaError::internal)?,
        );
        match self.store.commit(b).await {
            Ok(_) => {}
            Err(coffer_store::StoreError::Conflict) => {
                return Err(LambdaError::conflict(format!(
                    "Function already exist: {name}"
                )));
            }
            Err(e) => return Err(LambdaError::internal(e)),
        }
        Ok(Response::json(
            201,
            &self.configuration(ctx, &record).await?,
        ))
    }

    /// Adds the sealed code to `b` and its hash and size to the record.
    async fn put_code(
        &self,
        b: &mut WriteBatch,
        ctx: &RequestContext,
        mut record: FunctionRecord,
        zip: &[u8],
    ) -> Result<FunctionRecord, LambdaError> {
        let sha = coffer_crypto::sha256(&[zip]);
        record.code_sha256 = base64::engine::general_purpose::STANDARD.encode(sha);
        record.code_size = zip.len() as u64;
        let sealed = self
            .seal(ctx.account_id(), &ctx.region, &record.arn, "code", zip)
            .await?;
        b.put(
            code_key(ctx.account_id(), &ctx.region, &record.name),
            sealed,
        );
        Ok(record)
    }

    async fn update(
        &self,
        op: &OpCtx<'_>,
        name: &str,
        arn: &str,
        code: bool,
        body: &[u8],
    ) -> Result<Response, LambdaError> {
        let ctx = op.ctx;
        let input: ConfigInput = parse(body)?;
        let l = self.load(ctx, name, arn).await?;
        let mut r = l.record;
        let key = fn_key(ctx.account_id(), &ctx.region, name);
        let mut b = WriteBatch::new();
        b.check(key.clone(), Some(&l.entry));
        if code {
            let zip = Self::zip_bytes(input.zip_file.as_deref().ok_or_else(|| {
                LambdaError::invalid("Coffer takes function code as ZipFile only.")
            })?)?;
            r = self.put_code(&mut b, ctx, r, &zip).await?;
        } else {
            if let Some(rt) = input.runtime {
                Self::check_runtime(&rt)?;
                r.runtime = rt;
            }
            if let Some(h) = input.handler {
                Self::check_handler(&h)?;
                r.handler = h;
            }
            if let Some(t) = input.timeout {
                r.timeout = Self::check_timeout(t)?;
            }
            if let Some(m) = input.memory_size {
                r.memory = Self::check_memory(m)?;
            }
            if let Some(d) = input.description {
                r.description = d;
            }
            if let Some(role) = input.role {
                self.check_role(op, &role, &r.arn).await?;
                r.role = role;
            }
            if let Some(env) = input.environment {
                let vars = env.variables.unwrap_or_default();
                r.env_sealed = self
                    .seal_environment(ctx.account_id(), &ctx.region, arn, &vars)
                    .await?;
            }
        }
        r.last_modified_ms = self.clock.now_millis();
        r.revision_id = uuid::Uuid::new_v4().to_string();
        b.put(key, serde_json::to_vec(&r).map_err(LambdaError::internal)?);
        self.commit(b).await?;
        Ok(Response::json(200, &self.configuration(ctx, &r).await?))
    }

    async fn add_permission(
        &self,
        ctx: &RequestContext,
        name: &str,
        arn: &str,
        body: &[u8],
    ) -> Result<Response, LambdaError> {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "PascalCase")]
        struct Input {
            statement_id: Option<String>,
            action: Option<String>,
            principal: Option<String>,
            source_arn: Option<String>,
            source_account: Option<String>,
        }
        let input: Input = parse(body)?;
        let (Some(sid), Some(action), Some(principal)) =
            (input.statement_id, input.action, input.principal)
        else {
            return Err(LambdaError::invalid(
                "StatementId, Action and Principal are required.",
            ));
        };
        let l = self.load(ctx, name, arn).await?;
        let mut r = l.record;
        if r.statements.iter().any(|s| s["Sid"] == sid.as_str()) {
            return Err(LambdaError::conflict(format!(
                "The statement id ({sid}) provided already exists. Please provide a new statement id, or remove the existing statement."
            )));
        }
        let principal = if principal.ends_with(".amazonaws.com") {
            json!({"Service": principal})
        } else {
            json!({"AWS": principal})
        };
        let mut statement = json!({"Sid": sid, "Effect": "Allow", "Principal": principal,
            "Action": action, "Resource": arn});
        let mut condition = serde_json::Map::new();
        if let Some(s) = input.source_arn {
            condition.insert("ArnLike".into(), json!({"AWS:SourceArn": s}));
        }
        if let Some(a) = input.source_account {
            condition.insert("StringEquals".into(), json!({"AWS:SourceAccount": a}));
        }
        if !condition.is_empty() {
            statement["Condition"] = Value::Object(condition);
        }
        r.statements.push(statement.clone());
        r.revision_id = uuid::Uuid::new_v4().to_string();
        let key = fn_key(ctx.account_id(), &ctx.region, name);
        let mut b = WriteBatch::new();
        b.check(key.clone(), Some(&l.entry))
            .put(key, serde_json::to_vec(&r).map_err(LambdaError::internal)?);
        self.commit(b).await?;
        Ok(Response::json(
            201,
            &json!({"Statement": statement.to_string()}),
        ))
    }

    async fn list(&self, ctx: &RequestContext, query: &str) -> Result<Response, LambdaError> {
        let max = match query_param(query, "MaxItems") {
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|m| (1..=10_000).contains(m))
                .ok_or_else(|| LambdaError::invalid("MaxItems must be between 1 and 10000."))?,
            None => 50,
        }
        .min(50);
        let prefix = fn_key(ctx.account_id(), &ctx.region, "");
        // The marker is the last name of the previous page.
        let start = match query_param(query, "Marker") {
            Some(m) => {
                let mut k = fn_key(ctx.account_id(), &ctx.region, &m).into_bytes();
                k.push(0);
                k
            }
            None => prefix.clone().into_bytes(),
        };
        let end = coffer_store::prefix_end(prefix.as_bytes());
        let rows = self
            .store
            .scan(&start, &end, max + 1)
            .await
            .map_err(LambdaError::internal)?;
        let mut functions = Vec::new();
        let mut last = None;
        for (_, entry) in rows.iter().take(max) {
            let r: FunctionRecord =
                serde_json::from_slice(&entry.value).map_err(LambdaError::internal)?;
            functions.push(self.configuration(ctx, &r).await?);
            last = Some(r.name);
        }
        let mut out = json!({"Functions": functions});
        if rows.len() > max
            && let Some(l) = last
        {
            out["NextMarker"] = json!(l);
        }
        Ok(Response::json(200, &out))
    }

    async fn invoke_api(
        self: &Arc<Self>,
        ctx: &RequestContext,
        record: FunctionRecord,
        req: &Request<'_>,
    ) -> Result<Response, LambdaError> {
        let kind = req.invocation_type.unwrap_or("RequestResponse");
        let event = if req.body.is_empty() {
            b"{}".to_vec()
        } else {
            serde_json::from_slice::<Value>(req.body).map_err(|_| {
                LambdaError::new(
                    "InvalidRequestContentException",
                    400,
                    "Could not parse request body into json: Could not parse payload into json",
                )
            })?;
            req.body.to_vec()
        };
        let (account, region) = (ctx.account_id().to_owned(), ctx.region.clone());
        match kind {
            "DryRun" => Ok(Response {
                status: 204,
                body: Vec::new(),
                headers: Vec::new(),
            }),
            "Event" => {
                let (this, request_id) = (self.clone(), ctx.request_id.clone());
                tokio::spawn(async move {
                    match this
                        .run(&account, &region, &record, &event, &request_id)
                        .await
                    {
                        Ok(o) if o.failed => tracing::info!(
                            function = %record.arn, "asynchronous invocation failed"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(function = %record.arn, code = e.code,
                            "asynchronous invocation not run"),
                    }
                });
                Ok(Response {
                    status: 202,
                    body: Vec::new(),
                    headers: Vec::new(),
                })
            }
            "RequestResponse" => {
                let o = self
                    .run(&account, &region, &record, &event, &ctx.request_id)
                    .await?;
                let mut headers = vec![("x-amz-executed-version", "$LATEST".to_owned())];
                if o.failed {
                    headers.push(("x-amz-function-error", "Unhandled".to_owned()));
                }
                if req.log_type == Some("Tail") {
                    headers.push((
                        "x-amz-log-result",
                        base64::engine::general_purpose::STANDARD.encode(&o.log_tail),
                    ));
                }
                Ok(Response {
                    status: 200,
                    body: serde_json::to_vec(&o.payload).map_err(LambdaError::internal)?,
                    headers,
                })
            }
            other => Err(LambdaError::invalid(format!(
                "1 validation error detected: Value '{other}' at 'invocationType' failed to satisfy constraint: Member must satisfy enum value set: [Event, RequestResponse, DryRun]"
            ))),
        }
    }

    /// Runs `record` with `event` in `account`/`region` as its execution role.
    pub(crate) async fn run(
        &self,
        account: &str,
        region: &str,
        record: &FunctionRecord,
        event: &[u8],
        request_id: &str,
    ) -> Result<runtime::Outcome, LambdaError> {
        let code_dir = self
            .runtime
            .code_dir(&record.sha_hex(), async || {
                let sealed = self
                    .store
                    .get(code_key(account, region, &record.name).as_bytes())
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the function's code is missing")?;
                self.open(account, region, &record.arn, "code", &sealed.value)
                    .await
                    .map(|z| z.to_vec())
                    .map_err(|e| e.message)
            })
            .await
            .map_err(LambdaError::internal)?;
        let timeout = Duration::from_secs(record.timeout.into());
        // The session outlives the invocation a little, never less than STS's 15 minutes.
        let secs = (i64::from(record.timeout) + 60).max(900);
        let mut session = self
            .roles
            .session(account, &record.role, &record.arn, &record.name, secs)
            .await
            .map_err(LambdaError::internal)?
            .ok_or_else(|| {
                LambdaError::invalid(
                    "The role defined for the function cannot be assumed by Lambda.",
                )
            })?;
        session.endpoint = self.endpoint.get().cloned().unwrap_or_default();
        let mut env: Vec<(String, String)> = self
            .environment(account, region, record)
            .await?
            .unwrap_or_default()
            .into_iter()
            .collect();
        let runtime_vars = [
            ("AWS_LAMBDA_FUNCTION_NAME", record.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", record.memory.to_string()),
            ("AWS_LAMBDA_FUNCTION_TIMEOUT", record.timeout.to_string()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", record.name),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", format!("coffer/{request_id}")),
            (
                "AWS_EXECUTION_ENV",
                format!("AWS_Lambda_{}", record.runtime),
            ),
            ("LAMBDA_TASK_ROOT", code_dir.display().to_string()),
            ("COFFER_LAMBDA_FUNCTION_ARN", record.arn.clone()),
            ("COFFER_LAMBDA_REQUEST_ID", request_id.to_owned()),
        ];
        // The runtime's variables and the callback credentials win over the function's own,
        // as AWS reserves them.
        env.extend(runtime_vars.into_iter().map(|(k, v)| (k.to_owned(), v)));
        env.extend(
            session
                .vars(region)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        Ok(self
            .runtime
            .invoke(runtime::Invocation {
                code_dir: &code_dir,
                handler: &record.handler,
                timeout,
                env,
                event,
            })
            .await)
    }

    /// The stored function `name` of `account`/`region`, if any.
    async fn find(&self, account: &str, region: &str, name: &str) -> Option<FunctionRecord> {
        match self.load_in(account, region, name).await {
            Ok(l) => l.map(|l| l.record),
            Err(e) => {
                tracing::warn!(code = e.code, "reading a deployed function failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |m: &str, p: &str| route(m, p).map(|(s, n)| (s.name, n));
        assert_eq!(
            r("POST", "/2015-03-31/functions"),
            Some(("CreateFunction", None))
        );
        assert_eq!(
            r("GET", "/2015-03-31/functions/"),
            Some(("ListFunctions", None))
        );
        assert_eq!(
            r("POST", "/2015-03-31/functions/f/invocations"),
            Some(("Invoke", Some("f".into())))
        );
        assert_eq!(
            r(
                "GET",
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af/configuration"
            ),
            Some((
                "GetFunctionConfiguration",
                Some("arn:aws:lambda:us-east-1:1:function:f".into())
            ))
        );
        assert_eq!(r("PATCH", "/2015-03-31/functions/f"), None);
        assert_eq!(r("GET", "/2015-03-31/functions/f/aliases"), None);
        assert_eq!(r("GET", "/2016-01-01/functions"), None);
    }

    #[test]
    fn validation() {
        assert!(LambdaService::check_runtime("python3.12").is_ok());
        assert!(LambdaService::check_runtime("python3.").is_err());
        assert!(LambdaService::check_runtime("nodejs20.x").is_err());
        assert!(LambdaService::check_handler("lambda_function.lambda_handler").is_ok());
        assert!(LambdaService::check_handler("pkg/mod.fn").is_ok());
        assert!(LambdaService::check_handler("handler").is_err());
        assert!(LambdaService::check_handler("a..b").is_err());
        assert!(LambdaService::check_timeout(0).is_err());
        assert!(LambdaService::check_timeout(900).is_ok());
        assert!(valid_name("my-rotator_1"));
        assert!(!valid_name("a:b"));
        assert!(!valid_name(""));
    }
}
