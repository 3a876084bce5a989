//! A valid input for every operation of every service the server serves, and the state those
//! inputs expect ([`seed_resources`], [`seed_iam`]).
//!
//! Two tests walk every operation table with them: coffer-server's authorization test (each
//! operation denied without a policy, allowed with exactly its action) and the e2e audit grep
//! test (each operation over HTTP with marker values that must reach neither a record nor the
//! disk). One list serves both, so an operation cannot be covered by one and forgotten by the
//! other; a table row without an input here fails both. It is a crate of its own, depended on
//! only as a dev-dependency, so none of it is compiled into the server.

use serde_json::{Value, json};

/// The services the server answers, each with its operation table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    SecretsManager,
    Ssm,
    Kms,
    CloudTrail,
    Lambda,
    Iam,
    Sts,
}

pub const SERVICES: [Service; 7] = [
    Service::SecretsManager,
    Service::Ssm,
    Service::Kms,
    Service::CloudTrail,
    Service::Lambda,
    Service::Iam,
    Service::Sts,
];

impl Service {
    /// The SigV4 signing name; records carry `{name}.amazonaws.com` as their `eventSource`.
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
            Service::Kms => "kms",
            Service::CloudTrail => "cloudtrail",
            Service::Lambda => coffer_lambda::SIGNING_NAME,
            Service::Iam => "iam",
            Service::Sts => "sts",
        }
    }

    /// The `X-Amz-Target` prefix of a JSON-protocol service.
    pub fn target_prefix(self) -> Option<&'static str> {
        Some(match self {
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "AmazonSSM",
            Service::Kms => "TrentService",
            Service::CloudTrail => coffer_audit::lookup::TARGET_PREFIX,
            Service::Lambda | Service::Iam | Service::Sts => return None,
        })
    }

    /// The operation names of the service's table.
    pub fn operations(self) -> Vec<&'static str> {
        let names =
            |t: &'static [coffer_service::OperationSpec]| t.iter().map(|s| s.name).collect();
        match self {
            Service::SecretsManager => names(coffer_secrets::SecretsService::operations()),
            Service::Ssm => names(coffer_parameters::ParametersService::operations()),
            Service::Kms => names(coffer_kms::KmsService::operations()),
            Service::CloudTrail => names(coffer_audit::CloudTrailService::operations()),
            Service::Lambda => names(coffer_lambda::LambdaService::operations()),
            Service::Iam => coffer_iam::IAM_OPERATIONS.to_vec(),
            Service::Sts => coffer_iam::STS_OPERATIONS.to_vec(),
        }
    }
}

/// Where the inputs point: the account and region of the server (or services) under test.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub account: String,
    pub region: String,
}

/// The execution role the function inputs name; [`seed_iam`] creates it trusting Lambda.
pub const FUNCTION_ROLE: &str = "fn-role";

impl Fixture {
    pub fn new(account: &str, region: &str) -> Self {
        Self {
            account: account.into(),
            region: region.into(),
        }
    }

    pub fn role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{FUNCTION_ROLE}", self.account)
    }

    fn param_arn(&self) -> String {
        format!("arn:aws:ssm:{}:{}:parameter/p1", self.region, self.account)
    }

    /// A policy allowing the account's root `action` on everything.
    fn root_policy(&self, action: &str, resource: bool) -> String {
        let resource = if resource { r#","Resource":"*""# } else { "" };
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{}:root"}},"Action":"{action}"{resource}}}]}}"#,
            self.account
        )
    }
}

/// What the inputs refer to that exists only once made: filled by [`seed_resources`] (KMS)
/// and [`seed_iam`] (the access key).
#[derive(Debug, Default, Clone)]
pub struct Seed {
    /// Used by reads and cryptographic operations.
    pub key: String,
    /// Disabled, enabled and scheduled for deletion.
    pub spare: String,
    pub blob: String,
    pub grants: Vec<String>,
    /// A key of origin EXTERNAL (its material is imported).
    pub external: String,
    /// The seeded user's access key.
    pub access_key_id: String,
}

/// One request, by protocol.
#[derive(Debug, Clone)]
pub enum Input {
    /// JSON 1.1 body.
    Json(Value),
    /// Query-protocol parameters, without `Action` and `Version`.
    Query(Vec<(String, String)>),
    /// REST-JSON: the function in the path, the body, the `X-Amz-Invocation-Type` header.
    Lambda {
        function: Option<String>,
        invocation_type: Option<&'static str>,
        body: Value,
    },
}

/// The input of `op` of `service`; `None` when the table has an operation this list lacks.
pub fn input(service: Service, op: &str, fx: &Fixture, seed: &Seed) -> Option<Input> {
    match service {
        Service::SecretsManager => secrets_input(op, fx).map(Input::Json),
        Service::Ssm => parameters_input(op, fx).map(Input::Json),
        Service::Kms => kms_input(op, fx, seed).map(Input::Json),
        Service::CloudTrail => cloudtrail_input(op).map(Input::Json),
        Service::Lambda => lambda_input(op, fx),
        Service::Iam => iam_input(op, fx, &seed.access_key_id).map(Input::Query),
        Service::Sts => sts_input(op, fx).map(Input::Query),
    }
}

fn secrets_input(op: &str, fx: &Fixture) -> Option<Value> {
    let policy = fx.root_policy("secretsmanager:GetSecretValue", true);
    Some(match op {
        "BatchGetSecretValue" => json!({"SecretIdList": ["s1"]}),
        "CreateSecret" => json!({"Name": "created", "SecretString": "x"}),
        "DeleteResourcePolicy"
        | "DescribeSecret"
        | "GetResourcePolicy"
        | "GetSecretValue"
        | "ListSecretVersionIds"
        | "RestoreSecret"
        | "StopReplicationToReplica"
        | "ListResourcePolicies" => json!({"SecretId": "s1"}),
        "DeleteSecret" => json!({"SecretId": "s1", "RecoveryWindowInDays": 7}),
        "CancelRotateSecret" => json!({"SecretId": "s1"}),
        // Scheduled, not immediate: the secret stays as the later operations expect it.
        "RotateSecret" => json!({"SecretId": "s1", "RotateImmediately": false,
            "RotationLambdaARN": format!("arn:aws:lambda:{}:{}:function:coffer-postgresql-single-user", fx.region, fx.account),
            "RotationRules": {"AutomaticallyAfterDays": 30}}),
        "GetRandomPassword" | "ListSecrets" => json!({}),
        "PutResourcePolicy" => json!({"SecretId": "s1", "ResourcePolicy": policy}),
        "PutSecretValue" => json!({"SecretId": "s1", "SecretString": "y"}),
        "RemoveRegionsFromReplication" => {
            json!({"SecretId": "s1", "RemoveReplicaRegions": ["us-west-2"]})
        }
        "ReplicateSecretToRegions" => {
            json!({"SecretId": "s1", "AddReplicaRegions": [{"Region": "us-west-2"}]})
        }
        "TagResource" => json!({"SecretId": "s1", "Tags": [{"Key": "k", "Value": "v"}]}),
        "UntagResource" => json!({"SecretId": "s1", "TagKeys": ["k"]}),
        "UpdateSecret" => json!({"SecretId": "s1", "Description": "d"}),
        "UpdateSecretVersionStage" => json!({"SecretId": "s1", "VersionStage": "custom"}),
        "ValidateResourcePolicy" => json!({"ResourcePolicy": policy}),
        _ => return None,
    })
}

const TIER: &str = "/ssm/parameter-store/default-parameter-tier";

fn parameters_input(op: &str, fx: &Fixture) -> Option<Value> {
    let arn = fx.param_arn();
    Some(match op {
        "AddTagsToResource" => json!({"ResourceType": "Parameter", "ResourceId": "/p1",
                                      "Tags": [{"Key": "k", "Value": "v"}]}),
        "RemoveTagsFromResource" => {
            json!({"ResourceType": "Parameter", "ResourceId": "/p1", "TagKeys": ["k"]})
        }
        "ListTagsForResource" => json!({"ResourceType": "Parameter", "ResourceId": "/p1"}),
        "DeleteParameter" | "GetParameter" | "GetParameterHistory" => json!({"Name": "/p1"}),
        "DeleteParameters" | "GetParameters" => json!({"Names": ["/p1"]}),
        "DeleteResourcePolicy" => {
            json!({"ResourceArn": arn, "PolicyId": "id", "PolicyHash": "hash"})
        }
        "GetResourcePolicies" => json!({"ResourceArn": arn}),
        "PutResourcePolicy" => json!({"ResourceArn": arn,
            "Policy": fx.root_policy("secretsmanager:GetSecretValue", true)}),
        "DescribeParameters" => json!({}),
        "GetParametersByPath" => json!({"Path": "/", "Recursive": true}),
        "GetServiceSetting" | "ResetServiceSetting" => json!({"SettingId": TIER}),
        "UpdateServiceSetting" => json!({"SettingId": TIER, "SettingValue": "Standard"}),
        "LabelParameterVersion" => json!({"Name": "/p1", "Labels": ["l1"]}),
        "UnlabelParameterVersion" => {
            json!({"Name": "/p1", "ParameterVersion": 1, "Labels": ["l1"]})
        }
        "PutParameter" => json!({"Name": "/p2", "Value": "v", "Type": "String"}),
        _ => return None,
    })
}

fn kms_input(op: &str, fx: &Fixture, k: &Seed) -> Option<Value> {
    let key = &k.key;
    let grant = |i: usize| k.grants.get(i).cloned().unwrap_or_default();
    Some(match op {
        "CreateKey" | "ListKeys" | "ListAliases" => json!({}),
        "GenerateRandom" => json!({"NumberOfBytes": 8}),
        "CreateAlias" => json!({"AliasName": "alias/created", "TargetKeyId": key}),
        "UpdateAlias" => json!({"AliasName": "alias/a1", "TargetKeyId": key}),
        "DeleteAlias" => json!({"AliasName": "alias/a2"}),
        "CreateGrant" => json!({"KeyId": key,
            "GranteePrincipal": format!("arn:aws:iam::{}:user/g", fx.account),
            "Operations": ["Decrypt"]}),
        "RetireGrant" => json!({"KeyId": key, "GrantId": grant(0)}),
        "RevokeGrant" => json!({"KeyId": key, "GrantId": grant(1)}),
        "Decrypt" => json!({"CiphertextBlob": k.blob}),
        "ReEncrypt" => json!({"CiphertextBlob": k.blob, "DestinationKeyId": key}),
        "Encrypt" => json!({"KeyId": key, "Plaintext": "aGk="}),
        "GenerateDataKey" | "GenerateDataKeyWithoutPlaintext" => {
            json!({"KeyId": key, "KeySpec": "AES_256"})
        }
        "CancelKeyDeletion" | "DisableKey" | "EnableKey" => json!({"KeyId": k.spare}),
        "ScheduleKeyDeletion" => json!({"KeyId": k.spare, "PendingWindowInDays": 7}),
        "DescribeKey"
        | "DisableKeyRotation"
        | "EnableKeyRotation"
        | "GetKeyRotationStatus"
        | "RotateKeyOnDemand"
        | "ListKeyRotations"
        | "ListResourceTags"
        | "ListKeyPolicies"
        | "GetKeyPolicy"
        | "ListGrants" => json!({"KeyId": key}),
        "GetParametersForImport" => json!({"KeyId": k.external,
            "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
        // Not a token the key service issued: refused after the key is found and allowed.
        "ImportKeyMaterial" => json!({"KeyId": k.external, "ImportToken": "AAAA",
            "EncryptedKeyMaterial": "AAAA", "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
        "DeleteImportedKeyMaterial" => json!({"KeyId": k.external}),
        "ListRetirableGrants" => {
            json!({"RetiringPrincipal": format!("arn:aws:iam::{}:root", fx.account)})
        }
        "PutKeyPolicy" => json!({"KeyId": key, "Policy": fx.root_policy("kms:*", true)}),
        "TagResource" => json!({"KeyId": key, "Tags": [{"TagKey": "k", "TagValue": "v"}]}),
        "UntagResource" => json!({"KeyId": key, "TagKeys": ["k"]}),
        "UpdateKeyDescription" => json!({"KeyId": key, "Description": "d"}),
        _ => return None,
    })
}

fn cloudtrail_input(op: &str) -> Option<Value> {
    Some(match op {
        "LookupEvents" => json!({"LookupAttributes": [
            {"AttributeKey": "EventSource", "AttributeValue": "ssm.amazonaws.com"}]}),
        _ => return None,
    })
}

/// A zip as far as CreateFunction looks (the code never runs: Invoke is a DryRun).
pub const ZIP: &str = "UEsDBAo=";

fn lambda_input(op: &str, fx: &Fixture) -> Option<Input> {
    let (function, body) = match op {
        "CreateFunction" => (
            None,
            json!({"FunctionName": "f2", "Runtime": "python3.12", "Handler": "app.handler",
                "Role": fx.role_arn(), "Code": {"ZipFile": ZIP}}),
        ),
        "AddPermission" => (
            Some("f1"),
            json!({"StatementId": "s", "Action": "lambda:InvokeFunction",
                "Principal": "secretsmanager.amazonaws.com"}),
        ),
        "UpdateFunctionCode" => (Some("f1"), json!({"ZipFile": ZIP})),
        "UpdateFunctionConfiguration" => (Some("f1"), json!({"Timeout": 5})),
        "DeleteFunction" | "GetFunction" | "GetFunctionConfiguration" | "GetPolicy" => {
            (Some("f1"), json!({}))
        }
        "Invoke" => (Some("f1"), json!({})),
        "ListFunctions" => (None, json!({})),
        _ => return None,
    };
    Some(Input::Lambda {
        function: function.map(str::to_owned),
        // DryRun: authorized and resolved, nothing runs (no Python needed).
        invocation_type: (op == "Invoke").then_some("DryRun"),
        body,
    })
}

/// The method and path of a Lambda operation on `function`.
pub fn lambda_route(op: &str, function: Option<&str>) -> Option<(&'static str, String)> {
    let base = "/2015-03-31/functions";
    let f = function.unwrap_or("");
    Some(match op {
        "CreateFunction" => ("POST", base.to_string()),
        "ListFunctions" => ("GET", base.to_string()),
        "GetFunction" => ("GET", format!("{base}/{f}")),
        "DeleteFunction" => ("DELETE", format!("{base}/{f}")),
        "GetFunctionConfiguration" => ("GET", format!("{base}/{f}/configuration")),
        "UpdateFunctionConfiguration" => ("PUT", format!("{base}/{f}/configuration")),
        "UpdateFunctionCode" => ("PUT", format!("{base}/{f}/code")),
        "Invoke" => ("POST", format!("{base}/{f}/invocations")),
        "AddPermission" => ("POST", format!("{base}/{f}/policy")),
        "GetPolicy" => ("GET", format!("{base}/{f}/policy")),
        _ => return None,
    })
}

const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*"}]}"#;
const TRUST_LAMBDA: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The OpenID Connect provider [`seed_iam`] creates (its issuer is `https://` + this).
pub const OIDC_HOST: &str = "oidc.example.com";

fn iam_input(op: &str, fx: &Fixture, akid: &str) -> Option<Vec<(String, String)>> {
    let policy_arn = format!("arn:aws:iam::{}:policy/p1", fx.account);
    let user_arn = format!("arn:aws:iam::{}:user/u1", fx.account);
    let oidc_arn = format!("arn:aws:iam::{}:oidc-provider/{OIDC_HOST}", fx.account);
    let oidc = ("OpenIDConnectProviderArn", oidc_arn.as_str());
    let trust = fx.root_policy("sts:AssumeRole", false);
    let user = ("UserName", "u1");
    let group = ("GroupName", "g1");
    let role = ("RoleName", "r1");
    let arn = ("PolicyArn", policy_arn.as_str());
    let inline = ("PolicyName", "inline");
    let doc = ("PolicyDocument", DOC);
    let key = ("AccessKeyId", akid);
    let tag = [("Tags.member.1.Key", "k"), ("Tags.member.1.Value", "v")];
    Some(pairs(&match op {
        "AddUserToGroup" | "RemoveUserFromGroup" => vec![group, user],
        "AttachGroupPolicy" | "DetachGroupPolicy" => vec![group, arn],
        "AttachRolePolicy" | "DetachRolePolicy" => vec![role, arn],
        "AttachUserPolicy" | "DetachUserPolicy" => vec![user, arn],
        "CreateAccessKey"
        | "DeleteUser"
        | "GetLoginProfile"
        | "GetUser"
        | "ListAccessKeys"
        | "ListAttachedUserPolicies"
        | "ListGroupsForUser"
        | "ListMFADevices"
        | "ListSSHPublicKeys"
        | "ListServiceSpecificCredentials"
        | "ListSigningCertificates"
        | "ListUserPolicies"
        | "ListUserTags" => vec![user],
        "CreateGroup" => vec![("GroupName", "g2")],
        "CreatePolicy" => vec![("PolicyName", "p2"), doc],
        "CreatePolicyVersion" => vec![arn, doc],
        "CreateRole" => vec![("RoleName", "r2"), ("AssumeRolePolicyDocument", &trust)],
        "CreateUser" => vec![("UserName", "u2")],
        "DeleteAccessKey" => vec![user, ("AccessKeyId", "AKIAAAAAAAAAAAAAAAAA")],
        "DeleteGroup" | "GetGroup" | "ListAttachedGroupPolicies" | "ListGroupPolicies" => {
            vec![group]
        }
        "DeleteGroupPolicy" | "GetGroupPolicy" => vec![group, inline],
        "DeletePolicy" | "GetPolicy" | "ListPolicyTags" | "ListPolicyVersions" => vec![arn],
        "DeletePolicyVersion" => vec![arn, ("VersionId", "v9")],
        "GetPolicyVersion" | "SetDefaultPolicyVersion" => vec![arn, ("VersionId", "v1")],
        "DeleteRole"
        | "GetRole"
        | "ListAttachedRolePolicies"
        | "ListInstanceProfilesForRole"
        | "ListRolePolicies"
        | "ListRoleTags" => vec![role],
        "DeleteRolePolicy" | "GetRolePolicy" => vec![role, inline],
        "DeleteRolePermissionsBoundary" => vec![role],
        "DeleteUserPermissionsBoundary" => vec![user],
        "ListEntitiesForPolicy" => vec![arn],
        "PutRolePermissionsBoundary" => vec![role, ("PermissionsBoundary", &policy_arn)],
        "PutUserPermissionsBoundary" => vec![user, ("PermissionsBoundary", &policy_arn)],
        "DeleteUserPolicy" | "GetUserPolicy" => vec![user, inline],
        "GetAccessKeyLastUsed" => vec![key],
        "CreateOpenIDConnectProvider" => vec![("Url", "https://oidc2.example.com")],
        "AddClientIDToOpenIDConnectProvider" | "RemoveClientIDFromOpenIDConnectProvider" => {
            vec![oidc, ("ClientID", "sts.amazonaws.com")]
        }
        "DeleteOpenIDConnectProvider"
        | "GetOpenIDConnectProvider"
        | "ListOpenIDConnectProviderTags" => vec![oidc],
        "ListOpenIDConnectProviders" => vec![],
        "TagOpenIDConnectProvider" => [vec![oidc], tag.to_vec()].concat(),
        "UntagOpenIDConnectProvider" => vec![oidc, ("TagKeys.member.1", "k")],
        "UpdateOpenIDConnectProviderThumbprint" => vec![
            oidc,
            (
                "ThumbprintList.member.1",
                "0123456789abcdef0123456789abcdef01234567",
            ),
        ],
        "GenerateCredentialReport"
        | "GetAccountAuthorizationDetails"
        | "GetAccountSummary"
        | "GetCredentialReport" => {
            vec![]
        }
        "ListGroups" | "ListPolicies" | "ListRoles" | "ListUsers" | "ListVirtualMFADevices" => {
            vec![]
        }
        "PutGroupPolicy" => vec![group, inline, doc],
        "PutRolePolicy" => vec![role, inline, doc],
        "PutUserPolicy" => vec![user, inline, doc],
        "SimulateCustomPolicy" => vec![
            ("PolicyInputList.member.1", DOC),
            ("ActionNames.member.1", "ssm:GetParameter"),
        ],
        "SimulatePrincipalPolicy" => vec![
            ("PolicySourceArn", user_arn.as_str()),
            ("ActionNames.member.1", "ssm:GetParameter"),
        ],
        "TagPolicy" => [vec![arn], tag.to_vec()].concat(),
        "TagRole" => [vec![role], tag.to_vec()].concat(),
        "TagUser" => [vec![user], tag.to_vec()].concat(),
        "UntagPolicy" => vec![arn, ("TagKeys.member.1", "k")],
        "UntagRole" => vec![role, ("TagKeys.member.1", "k")],
        "UntagUser" => vec![user, ("TagKeys.member.1", "k")],
        "UpdateAccessKey" => vec![user, key, ("Status", "Inactive")],
        "UpdateAssumeRolePolicy" => vec![role, ("PolicyDocument", &trust)],
        "UpdateGroup" => vec![group, ("NewPath", "/moved/")],
        "UpdateRole" => vec![role, ("MaxSessionDuration", "7200")],
        "UpdateRoleDescription" => vec![role, ("Description", "updated")],
        "UpdateUser" => vec![user, ("NewPath", "/moved/")],
        _ => return None,
    }))
}

fn sts_input(op: &str, fx: &Fixture) -> Option<Vec<(String, String)>> {
    let role = format!("arn:aws:iam::{}:role/r1", fx.account);
    Some(match op {
        // r1 trusts the account: the caller's identity policies decide.
        "AssumeRole" => pairs(&[("RoleArn", &role), ("RoleSessionName", "s1")]),
        // A token of the seeded provider's issuer, not signed by it: refused after its issuer
        // is looked up (the input exercises the call and its record, not a success).
        "AssumeRoleWithWebIdentity" => pairs(&[
            ("RoleArn", &role),
            ("RoleSessionName", "s1"),
            (
                "WebIdentityToken",
                "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL29pZGMuZXhhbXBsZS5jb20ifQ.c2ln",
            ),
        ]),
        "GetCallerIdentity" | "GetSessionToken" => Vec::new(),
        "GetFederationToken" => pairs(&[("Name", "fed1"), ("Policy", DOC)]),
        _ => return None,
    })
}

/// `pairs` as an `application/x-www-form-urlencoded` body (every byte but unreserved ones as
/// `%XX`).
pub fn form_encode(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let text: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    text.join("&")
}

/// Runs one call as the account's root: the answer as JSON (JSON and REST protocols) or as a
/// JSON string holding the XML (Query protocol); the error code on failure.
// Only tests implement and await it, in place: no `Send` bound is needed on the future.
#[allow(async_fn_in_trait)]
pub trait Transport {
    async fn call(&self, service: Service, op: &str, input: Input) -> Result<Value, String>;
}

async fn must<T: Transport>(t: &T, service: Service, op: &str, input: Input) -> Value {
    t.call(service, op, input)
        .await
        .unwrap_or_else(|e| panic!("seeding {op}: {e}"))
}

/// The secret, parameter, function, keys, aliases, ciphertext and grants the inputs of every
/// service but IAM and STS name. Functions need [`FUNCTION_ROLE`] to exist where roles are
/// checked through IAM ([`seed_iam`] first).
pub async fn seed_resources<T: Transport>(t: &T, fx: &Fixture) -> Seed {
    let none = Seed::default();
    let Some(Input::Lambda {
        invocation_type,
        mut body,
        ..
    }) = lambda_input("CreateFunction", fx)
    else {
        unreachable!("CreateFunction has a REST input")
    };
    body["FunctionName"] = json!("f1");
    let f1 = Input::Lambda {
        function: None,
        invocation_type,
        body,
    };
    must(t, Service::Lambda, "CreateFunction", f1).await;
    let secret = json!({"Name": "s1", "SecretString": "v"});
    must(
        t,
        Service::SecretsManager,
        "CreateSecret",
        Input::Json(secret),
    )
    .await;
    let param = json!({"Name": "/p1", "Value": "v", "Type": "String"});
    must(t, Service::Ssm, "PutParameter", Input::Json(param)).await;
    let kms = async |op: &str, body: Value| must(t, Service::Kms, op, Input::Json(body)).await;
    let key_of = |out: Value| out["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let key = key_of(kms("CreateKey", json!({})).await);
    let spare = key_of(kms("CreateKey", json!({})).await);
    let external = key_of(kms("CreateKey", json!({"Origin": "EXTERNAL"})).await);
    for alias in ["alias/a1", "alias/a2"] {
        kms(
            "CreateAlias",
            json!({"AliasName": alias, "TargetKeyId": key}),
        )
        .await;
    }
    let mut seed = Seed {
        key,
        spare,
        external,
        ..none
    };
    let encrypt = kms_input("Encrypt", fx, &seed).expect("input");
    seed.blob = kms("Encrypt", encrypt).await["CiphertextBlob"]
        .as_str()
        .expect("ciphertext")
        .to_owned();
    for _ in 0..2 {
        let grant = kms_input("CreateGrant", fx, &seed).expect("input");
        let out = kms("CreateGrant", grant).await;
        seed.grants
            .push(out["GrantId"].as_str().expect("grant id").to_owned());
    }
    seed
}

/// One of each IAM entity, linked as the IAM inputs expect, and the functions' execution
/// role; returns the user's access key id.
pub async fn seed_iam<T: Transport>(t: &T, fx: &Fixture) -> String {
    let run = async |op: &str, p: &[(&str, &str)]| {
        must(t, Service::Iam, op, Input::Query(pairs(p))).await
    };
    let trust = fx.root_policy("sts:AssumeRole", false);
    run("CreateUser", &[("UserName", "u1")]).await;
    let oidc_url = format!("https://{OIDC_HOST}");
    run("CreateOpenIDConnectProvider", &[("Url", &oidc_url)]).await;
    run("CreateGroup", &[("GroupName", "g1")]).await;
    run(
        "CreateRole",
        &[("RoleName", "r1"), ("AssumeRolePolicyDocument", &trust)],
    )
    .await;
    run(
        "CreateRole",
        &[
            ("RoleName", FUNCTION_ROLE),
            ("AssumeRolePolicyDocument", TRUST_LAMBDA),
        ],
    )
    .await;
    run(
        "CreatePolicy",
        &[("PolicyName", "p1"), ("PolicyDocument", DOC)],
    )
    .await;
    for (kind, name) in [("User", "u1"), ("Group", "g1"), ("Role", "r1")] {
        let (entity, policy) = (format!("{kind}Name"), format!("Put{kind}Policy"));
        run(
            &policy,
            &[
                (&entity, name),
                ("PolicyName", "inline"),
                ("PolicyDocument", DOC),
            ],
        )
        .await;
    }
    let xml = run("CreateAccessKey", &[("UserName", "u1")]).await;
    let xml = xml.as_str().expect("XML answer");
    let start = xml.find("<AccessKeyId>").expect("key id") + "<AccessKeyId>".len();
    xml[start..start + xml[start..].find('<').expect("end")].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_every_table_has_an_input() {
        let fx = Fixture::new("123456789012", "us-east-1");
        for service in SERVICES {
            for op in service.operations() {
                assert!(
                    input(service, op, &fx, &Seed::default()).is_some(),
                    "no input for {service:?} {op}"
                );
            }
        }
    }

    #[test]
    fn lambda_routes_lead_back_to_their_operation() {
        for op in Service::Lambda.operations() {
            let (method, path) = lambda_route(op, Some("f1")).expect("route");
            let (spec, _) = coffer_lambda::route(method, &path).expect("routed");
            assert_eq!(spec.name, op);
        }
    }
}
