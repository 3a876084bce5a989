//! The Lambda API through the SDK: functions deployed from an in-test zip, invoked (result,
//! handler exception, timeout) in the server's Python subprocess, and a rotation function written
//! in the style of AWS's templates deployed and run by RotateSecret as its execution role.

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Environment, FunctionCode, LogType, Runtime};
use aws_sdk_secretsmanager::types::RotationRulesType;
use base64::Engine as _;

use crate::harness::TestServer;
use crate::iam_util::{ACCOUNT, iam};
use crate::rotation::{python, skip};

const TRUST_LAMBDA: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

pub(crate) fn lambda_client(s: &TestServer) -> aws_sdk_lambda::Client {
    let conf = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .endpoint_url(s.endpoint())
        .credentials_provider(aws_sdk_lambda::config::Credentials::new(
            coffer_server::DEV_ACCESS_KEY_ID,
            coffer_server::DEV_SECRET_ACCESS_KEY,
            None,
            None,
            "coffer-e2e",
        ))
        .build();
    aws_sdk_lambda::Client::from_conf(conf)
}

/// A zip of `files` (name, content), made with Python's zipfile (the tests need Python anyway).
pub(crate) fn zip(py: &Path, files: &[(&str, &str)]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
        names.push(*name);
    }
    let out = dir.path().join("f.zip");
    let ok = Command::new(py)
        .current_dir(dir.path())
        .args(["-m", "zipfile", "-c"])
        .arg(&out)
        .args(&names)
        .status()
        .unwrap()
        .success();
    assert!(ok, "zipping");
    std::fs::read(out).unwrap()
}

pub(crate) async fn role(s: &TestServer, name: &str, policy: Option<&str>) -> String {
    role_trusting(s, name, TRUST_LAMBDA, policy).await
}

async fn role_trusting(s: &TestServer, name: &str, trust: &str, policy: Option<&str>) -> String {
    let iam = iam(s);
    let arn = iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap()
        .role()
        .unwrap()
        .arn()
        .to_owned();
    if let Some(p) = policy {
        iam.put_role_policy()
            .role_name(name)
            .policy_name("inline")
            .policy_document(p)
            .send()
            .await
            .unwrap();
    }
    arn
}

const APP: &str = r#"
import json, os, time

def ok(event, context):
    print("log line from the handler")
    return {"event": event, "name": context.function_name, "request": context.aws_request_id,
            "remaining": context.get_remaining_time_in_millis() > 0,
            "greeting": os.environ.get("GREETING"), "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
            "sm": os.environ.get("SECRETS_MANAGER_ENDPOINT"), "region": os.environ.get("AWS_REGION"),
            "token": "AWS_SESSION_TOKEN" in os.environ, "home": os.environ.get("HOME")}

def boom(event, context):
    raise ValueError("the handler says no")

def slow(event, context):
    time.sleep(30)

def whoami(event, context):
    import boto3
    return boto3.client("sts").get_caller_identity()["Arn"]
"#;

fn sdk_code<E: aws_sdk_lambda::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_lambda::error::SdkError<E, R>,
) -> String {
    e.as_service_error()
        .and_then(|e| e.code())
        .unwrap_or("<no code>")
        .to_owned()
}

fn status<E>(
    e: &aws_sdk_lambda::error::SdkError<E, aws_sdk_lambda::config::http::HttpResponse>,
) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// AWS refuses an execution role whose trust policy does not let `lambda.amazonaws.com` assume
/// it, at CreateFunction and UpdateFunctionConfiguration, and an invocation cannot run once the
/// trust is withdrawn.
#[tokio::test]
async fn execution_roles_must_trust_the_lambda_service() {
    let py = python().unwrap_or_else(|| PathBuf::from("python3"));
    let s = TestServer::dev().await;
    let lambda = lambda_client(&s);
    let ec2_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let account_only = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    // Confused-deputy protection: the service supplies the account and the function's ARN.
    let scoped = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"lambda.amazonaws.com"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"aws:SourceAccount":"{ACCOUNT}"}},"ArnLike":{{"aws:SourceArn":"arn:aws:lambda:*:{ACCOUNT}:function:scoped-*"}}}}}}]}}"#
    );
    let ec2 = role_trusting(&s, "ec2-role", ec2_only, None).await;
    let account = role_trusting(&s, "account-role", &account_only, None).await;
    let scoped = role_trusting(&s, "scoped-role", &scoped, None).await;
    let code = zip(&py, &[("app.py", APP)]);
    let create = |name: &str, role: &str| {
        lambda
            .create_function()
            .function_name(name)
            .runtime(Runtime::Python312)
            .role(role)
            .handler("app.ok")
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(code.clone()))
                    .build(),
            )
            .send()
    };
    for (name, role) in [("f1", &ec2), ("f2", &account), ("other-fn", &scoped)] {
        let e = create(name, role).await.unwrap_err();
        assert_eq!(sdk_code(&e), "InvalidParameterValueException", "{name}");
        assert_eq!(
            e.as_service_error()
                .and_then(aws_sdk_lambda::error::ProvideErrorMetadata::message),
            Some("The role defined for the function cannot be assumed by Lambda.")
        );
    }
    create("scoped-fn", &scoped).await.unwrap();
    let e = lambda
        .update_function_configuration()
        .function_name("scoped-fn")
        .role(&ec2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&e), "InvalidParameterValueException");

    // Trust withdrawn after deployment: the invocation is refused, nothing runs.
    iam(&s)
        .update_assume_role_policy()
        .role_name("scoped-role")
        .policy_document(ec2_only)
        .send()
        .await
        .unwrap();
    let e = lambda
        .invoke()
        .function_name("scoped-fn")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&e), "InvalidParameterValueException");
}

#[tokio::test]
async fn functions_are_deployed_invoked_updated_and_deleted() {
    // Functions run on the venv's interpreter when there is one (boto3 for whoami).
    let py = python().unwrap_or_else(|| PathBuf::from("python3"));
    let has_boto3 = python().is_some();
    if !has_boto3 {
        skip("python3 with boto3 (running as the execution role)");
    }
    let py_for_server = py.display().to_string();
    let s = TestServer::with_config(|c| c.lambda_python = Some(py_for_server)).await;
    let lambda = lambda_client(&s);
    let role_arn = role(&s, "fn-role", None).await;
    let code = zip(&py, &[("app.py", APP)]);
    let create = || {
        lambda
            .create_function()
            .function_name("hello")
            .runtime(Runtime::Python312)
            .role(&role_arn)
            .handler("app.ok")
            .timeout(5)
            .environment(Environment::builder().variables("GREETING", "hi").build())
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(code.clone()))
                    .build(),
            )
    };
    let created = create().send().await.unwrap();
    assert_eq!(
        created.function_arn(),
        Some(format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:hello").as_str())
    );
    assert_eq!(created.timeout(), Some(5));
    assert_eq!(created.code_size(), code.len() as i64);
    let e = create().send().await.unwrap_err();
    assert_eq!(sdk_code(&e), "ResourceConflictException");
    assert_eq!(status(&e), Some(409));
    let e = create()
        .function_name("node")
        .runtime(Runtime::Nodejs20x)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&e), "InvalidParameterValueException");
    assert_eq!(status(&e), Some(400));
    let e = create()
        .function_name("norole")
        .role(format!("arn:aws:iam::{ACCOUNT}:role/missing"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&e), "InvalidParameterValueException");

    let got = lambda
        .get_function()
        .function_name("hello")
        .send()
        .await
        .unwrap();
    let config = got.configuration().unwrap();
    assert_eq!(config.handler(), Some("app.ok"));
    assert_eq!(
        config.environment().unwrap().variables().unwrap()["GREETING"],
        "hi"
    );
    let listed = lambda.list_functions().send().await.unwrap();
    assert_eq!(listed.functions().len(), 1);
    for name in ["more-a", "more-b"] {
        create().function_name(name).send().await.unwrap();
    }
    let page = lambda.list_functions().max_items(2).send().await.unwrap();
    let names: Vec<_> = page
        .functions()
        .iter()
        .filter_map(|f| f.function_name())
        .collect();
    assert_eq!(names, ["hello", "more-a"]);
    let rest = lambda
        .list_functions()
        .marker(page.next_marker().unwrap())
        .send()
        .await
        .unwrap();
    let names: Vec<_> = rest
        .functions()
        .iter()
        .filter_map(|f| f.function_name())
        .collect();
    assert_eq!(names, ["more-b"]);
    assert!(rest.next_marker().is_none());

    // A result, with the function's log on request.
    let out = lambda
        .invoke()
        .function_name("hello")
        .payload(Blob::new(r#"{"k": "v"}"#))
        .log_type(LogType::Tail)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status_code(), 200);
    assert!(out.function_error().is_none());
    let v: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(v["event"], serde_json::json!({"k": "v"}));
    assert_eq!(v["name"], "hello");
    assert_eq!(v["remaining"], true);
    assert_eq!(v["greeting"], "hi");
    assert_eq!(v["endpoint"], s.endpoint());
    assert_eq!(v["sm"], s.endpoint());
    assert_eq!(v["region"], "us-east-1");
    assert_eq!(v["token"], true);
    assert!(v["home"].is_null(), "the server's environment stays out");
    let log = base64::engine::general_purpose::STANDARD
        .decode(out.log_result().unwrap())
        .unwrap();
    assert!(String::from_utf8_lossy(&log).contains("log line from the handler"));

    // The function runs as its role.
    if has_boto3 {
        lambda
            .update_function_configuration()
            .function_name("hello")
            .handler("app.whoami")
            .send()
            .await
            .unwrap();
        let out = lambda.invoke().function_name("hello").send().await.unwrap();
        assert!(out.function_error().is_none(), "{:?}", out.payload());
        let arn: String = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
        assert_eq!(
            arn,
            format!("arn:aws:sts::{ACCOUNT}:assumed-role/fn-role/hello")
        );
    }

    // A handler exception: Unhandled, with Python's error object.
    lambda
        .update_function_configuration()
        .function_name("hello")
        .handler("app.boom")
        .send()
        .await
        .unwrap();
    let out = lambda.invoke().function_name("hello").send().await.unwrap();
    assert_eq!(out.function_error(), Some("Unhandled"));
    let v: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(v["errorType"], "ValueError");
    assert_eq!(v["errorMessage"], "the handler says no");
    assert!(v["stackTrace"].as_array().is_some_and(|t| !t.is_empty()));

    // A timeout kills the handler.
    lambda
        .update_function_configuration()
        .function_name("hello")
        .handler("app.slow")
        .timeout(1)
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let out = lambda.invoke().function_name("hello").send().await.unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(out.function_error(), Some("Unhandled"));
    let v: serde_json::Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
    assert_eq!(v["errorType"], "Sandbox.Timedout");
    let e = lambda
        .update_function_configuration()
        .function_name("hello")
        .timeout(901)
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&e), "InvalidParameterValueException");

    // New code replaces the old.
    let new_code = zip(
        &py,
        &[(
            "app.py",
            "def slow(event, context):\n    return 'new code'\n",
        )],
    );
    let updated = lambda
        .update_function_code()
        .function_name("hello")
        .zip_file(Blob::new(new_code))
        .send()
        .await
        .unwrap();
    assert_ne!(updated.code_sha256(), created.code_sha256());
    let out = lambda.invoke().function_name("hello").send().await.unwrap();
    assert_eq!(out.payload().unwrap().as_ref(), br#""new code""#);

    // Permissions are recorded.
    lambda
        .add_permission()
        .function_name("hello")
        .statement_id("secretsmanager")
        .action("lambda:InvokeFunction")
        .principal("secretsmanager.amazonaws.com")
        .send()
        .await
        .unwrap();
    let policy = lambda
        .get_policy()
        .function_name("hello")
        .send()
        .await
        .unwrap();
    assert!(
        policy
            .policy()
            .unwrap()
            .contains("secretsmanager.amazonaws.com")
    );

    lambda
        .delete_function()
        .function_name("hello")
        .send()
        .await
        .unwrap();
    let e = lambda
        .get_function()
        .function_name("hello")
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&e), "ResourceNotFoundException");
    assert_eq!(status(&e), Some(404));
    let e = lambda
        .invoke()
        .function_name(format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:hello"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(sdk_code(&e), "ResourceNotFoundException");

    // Every call was recorded, none with the function's environment or code.
    let trail = s.server.audit().read_trail().await.unwrap();
    let text = serde_json::to_string(
        &trail
            .entries
            .iter()
            .map(|e| &e.1.record)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(text.contains(r#""eventName":"CreateFunction""#));
    assert!(text.contains(r#""eventSource":"lambda.amazonaws.com""#));
    assert!(!text.contains("GREETING"));
}

#[tokio::test]
async fn a_deployed_template_style_function_rotates_a_secret_as_its_role() {
    let Some(py) = python() else {
        skip("python3 with boto3");
        return;
    };
    let py_for_server = py.display().to_string();
    let s = TestServer::with_config(|c| c.lambda_python = Some(py_for_server)).await;
    let lambda = lambda_client(&s);
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:DescribeSecret","secretsmanager:GetSecretValue","secretsmanager:PutSecretValue","secretsmanager:UpdateSecretVersionStage","secretsmanager:GetRandomPassword"],"Resource":"*"}]}"#;
    let role_arn = role(&s, "rotation-role", Some(policy)).await;
    let handler = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/fixtures/file_rotator.py"),
    )
    .unwrap();
    let function_arn = lambda
        .create_function()
        .function_name("file-rotator")
        .runtime(Runtime::Python312)
        .role(&role_arn)
        .handler("file_rotator.lambda_handler")
        .timeout(30)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(zip(&py, &[("file_rotator.py", &handler)])))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .function_arn()
        .unwrap()
        .to_owned();
    lambda
        .add_permission()
        .function_name("file-rotator")
        .statement_id("secretsmanager")
        .action("lambda:InvokeFunction")
        .principal("secretsmanager.amazonaws.com")
        .send()
        .await
        .unwrap();

    let sm = s.sm();
    let dir = tempfile::tempdir().unwrap();
    let keyfile = dir.path().join("service.key");
    std::fs::write(&keyfile, "initial-key").unwrap();
    let secret = serde_json::json!({"apikey": "initial-key", "keyfile": keyfile});
    sm.create_secret()
        .name("api-key")
        .secret_string(secret.to_string())
        .send()
        .await
        .unwrap();
    sm.rotate_secret()
        .secret_id("api-key")
        .rotation_lambda_arn(&function_arn)
        .rotation_rules(
            RotationRulesType::builder()
                .automatically_after_days(7)
                .build(),
        )
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;
    let current: serde_json::Value = serde_json::from_str(
        sm.get_secret_value()
            .secret_id("api-key")
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap(),
    )
    .unwrap();
    let key = current["apikey"].as_str().unwrap().to_owned();
    assert_ne!(key, "initial-key", "rotated");
    assert_eq!(std::fs::read_to_string(&keyfile).unwrap(), key);

    // A failing step: AWSCURRENT stays, and the record holds the Python error, not values.
    let failing = serde_json::json!({"apikey": key, "keyfile": keyfile, "fail_set": true});
    sm.put_secret_value()
        .secret_id("api-key")
        .secret_string(failing.to_string())
        .send()
        .await
        .unwrap();
    sm.rotate_secret()
        .secret_id("api-key")
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;
    let body = serde_json::json!({"SecretId": "api-key"}).to_string();
    let (_, raw, _) = s
        .raw_post(Some("secretsmanager.DescribeSecret"), body.as_bytes(), true)
        .await;
    let status = &raw["CofferRotationStatus"];
    assert_eq!(status["LastFailureStep"], "setSecret", "{raw}");
    let message = status["LastFailureMessage"].as_str().unwrap();
    assert!(
        message.contains("RuntimeError: the service refused the new key"),
        "{message}"
    );
    assert!(
        !message.contains(&key),
        "a secret value in the failure record"
    );
    assert_eq!(std::fs::read_to_string(&keyfile).unwrap(), key);

    // The function called back as its execution role.
    let trail = s.server.audit().read_trail().await.unwrap();
    let role_session = format!("arn:aws:sts::{ACCOUNT}:assumed-role/rotation-role/file-rotator");
    assert!(trail.entries.iter().any(|e| {
        e.1.record["eventName"] == "PutSecretValue"
            && e.1.record["userIdentity"]["arn"] == role_session.as_str()
    }));
}
