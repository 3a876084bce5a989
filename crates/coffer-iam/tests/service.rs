//! The IAM service against the in-memory store: Query actions in, XML out, and credential
//! resolution — including two nodes sharing one store.

use std::sync::Arc;
use std::time::Duration;

use coffer_core::{Caller, ManualClock, PrincipalType, RequestContext, ServiceError};
use coffer_iam::Iam;
use coffer_iam::credentials::AuthFailure;
use coffer_store::memory::MemoryStore;
use coffer_wire::query::QueryParams;

const ACCOUNT: &str = "123456789012";

fn ctx() -> RequestContext {
    RequestContext::new(Caller::root(ACCOUNT, "AKIAROOT"), "us-east-1", "req-1")
}

fn node(store: &Arc<MemoryStore>, clock: &Arc<ManualClock>) -> Iam {
    let root = coffer_crypto::RootKey::from_bytes([9u8; 32]);
    Iam::new(store.clone(), &root, clock.clone()).with_refresh_interval(Duration::ZERO)
}

async fn call(iam: &Iam, form: &str) -> Result<String, coffer_iam::IamError> {
    let q = QueryParams::parse(form.as_bytes()).unwrap();
    let action = q.get("Action").unwrap().to_string();
    let out = iam.call_iam(&ctx(), &action, &q).await?;
    Ok(String::from_utf8(out).unwrap())
}

/// The text of the first `<tag>` in `xml`.
fn field<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = start + xml[start..].find("</").unwrap();
    &xml[start..end]
}

#[tokio::test]
async fn user_keys_resolve_and_deactivation_reaches_another_node() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new();
    let a = node(&store, &clock);
    let b = node(&store, &clock);
    let made = call(&a, "Action=CreateUser&UserName=alice&Path=%2Fteam%2F&Tags.member.1.Key=dept&Tags.member.1.Value=eng")
        .await
        .unwrap();
    assert!(
        made.contains("<Arn>arn:aws:iam::123456789012:user/team/alice</Arn>"),
        "{made}"
    );
    let key = call(&a, "Action=CreateAccessKey&UserName=alice")
        .await
        .unwrap();
    let akid = field(&key, "AccessKeyId").to_string();

    // Node B resolves the key node A created (a miss reads the store) as the user.
    b.refresh_if_stale(ACCOUNT).await;
    let r = b.resolve(ACCOUNT, &akid, None).await.unwrap();
    assert_eq!(r.caller.principal_type, PrincipalType::IamUser);
    assert_eq!(r.caller.user_name.as_deref(), Some("alice"));
    assert_eq!(
        r.caller.principal_arn,
        "arn:aws:iam::123456789012:user/team/alice"
    );
    assert_eq!(r.caller.tags.get("dept").map(String::as_str), Some("eng"));
    assert!(r.caller.principal_id.starts_with("AIDA"));
    assert!(b.cached(&akid, None).is_some(), "cached on node B");

    // Node A deactivates it; node B drops its cache on its next check and refuses the key.
    call(
        &a,
        &format!("Action=UpdateAccessKey&UserName=alice&AccessKeyId={akid}&Status=Inactive"),
    )
    .await
    .unwrap();
    b.refresh_if_stale(ACCOUNT).await;
    assert!(b.cached(&akid, None).is_none());
    assert_eq!(
        b.resolve(ACCOUNT, &akid, None).await.unwrap_err(),
        AuthFailure::Unknown
    );

    // A key with a session token, or an unknown key, is not resolved.
    call(
        &a,
        &format!("Action=UpdateAccessKey&UserName=alice&AccessKeyId={akid}&Status=Active"),
    )
    .await
    .unwrap();
    b.refresh_if_stale(ACCOUNT).await;
    assert!(b.resolve(ACCOUNT, &akid, None).await.is_ok());
    assert_eq!(
        b.resolve(ACCOUNT, &akid, Some("token")).await.unwrap_err(),
        AuthFailure::Unknown
    );
    assert_eq!(
        b.resolve(ACCOUNT, "AKIANOTAREALKEY00000", None)
            .await
            .unwrap_err(),
        AuthFailure::Unknown
    );
}

#[tokio::test]
async fn identity_policies_follow_groups_attachments_and_writes() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new();
    let iam = node(&store, &clock);
    let doc = |r: &str| {
        percent(&format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/{r}"}}]}}"#
        ))
    };
    call(&iam, "Action=CreateUser&UserName=u").await.unwrap();
    call(&iam, "Action=CreateGroup&GroupName=g").await.unwrap();
    call(&iam, "Action=AddUserToGroup&GroupName=g&UserName=u")
        .await
        .unwrap();
    call(
        &iam,
        &format!(
            "Action=PutUserPolicy&UserName=u&PolicyName=own&PolicyDocument={}",
            doc("a")
        ),
    )
    .await
    .unwrap();
    call(
        &iam,
        &format!(
            "Action=PutGroupPolicy&GroupName=g&PolicyName=grp&PolicyDocument={}",
            doc("b")
        ),
    )
    .await
    .unwrap();
    let created = call(
        &iam,
        &format!(
            "Action=CreatePolicy&PolicyName=m&PolicyDocument={}",
            doc("c")
        ),
    )
    .await
    .unwrap();
    let arn = field(&created, "Arn").to_string();
    call(
        &iam,
        &format!("Action=AttachGroupPolicy&GroupName=g&PolicyArn={arn}"),
    )
    .await
    .unwrap();
    let key = call(&iam, "Action=CreateAccessKey&UserName=u")
        .await
        .unwrap();
    let r = iam
        .resolve(ACCOUNT, field(&key, "AccessKeyId"), None)
        .await
        .unwrap();
    let p = iam.identity_policies(&r.caller).await.unwrap();
    let resources: Vec<String> = p
        .identity
        .iter()
        .map(|(_, d)| {
            serde_json::from_str::<serde_json::Value>(d).unwrap()["Statement"][0]["Resource"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        resources,
        ["a", "b", "c"],
        "own inline, the group's inline, the group's attached"
    );
    assert!(p.session.is_empty());

    // A new default version is what applies after the write.
    call(
        &iam,
        &format!(
            "Action=CreatePolicyVersion&PolicyArn={arn}&SetAsDefault=true&PolicyDocument={}",
            doc("d")
        ),
    )
    .await
    .unwrap();
    let p = iam.identity_policies(&r.caller).await.unwrap();
    assert_eq!(p.identity.len(), 3);
    assert!(
        p.identity[2].1.contains("parameter/d"),
        "{:?}",
        p.identity[2]
    );

    // Removed from the group: only its own policy remains. Deleted user: lookups fail (deny).
    call(&iam, "Action=RemoveUserFromGroup&GroupName=g&UserName=u")
        .await
        .unwrap();
    assert_eq!(
        iam.identity_policies(&r.caller)
            .await
            .unwrap()
            .identity
            .len(),
        1
    );
    call(&iam, "Action=DeleteUserPolicy&UserName=u&PolicyName=own")
        .await
        .unwrap();
    call(
        &iam,
        &format!(
            "Action=DeleteAccessKey&UserName=u&AccessKeyId={}",
            field(&key, "AccessKeyId")
        ),
    )
    .await
    .unwrap();
    call(&iam, "Action=DeleteUser&UserName=u").await.unwrap();
    let gone = iam.identity_policies(&r.caller).await.unwrap_err();
    assert_eq!(gone.code(), "NoSuchEntity");
}

#[tokio::test]
async fn errors_carry_aws_codes_and_statuses() {
    let store = Arc::new(MemoryStore::new());
    let iam = node(&store, &ManualClock::new());
    let e = call(&iam, "Action=GetUser&UserName=nobody")
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.status()), ("NoSuchEntity", 404));
    assert_eq!(e.to_string(), "The user with name nobody cannot be found.");
    call(&iam, "Action=CreateUser&UserName=x").await.unwrap();
    let e = call(&iam, "Action=CreateUser&UserName=X")
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.status()), ("EntityAlreadyExists", 409));
    let e = call(&iam, "Action=CreateUser").await.unwrap_err();
    assert_eq!(e.code(), "ValidationError");
    assert!(e.to_string().contains("'userName'"), "{e}");
    let e = call(
        &iam,
        "Action=PutUserPolicy&UserName=x&PolicyName=p&PolicyDocument=%7B%7D",
    )
    .await
    .unwrap_err();
    assert_eq!((e.code(), e.status()), ("MalformedPolicyDocument", 400));
    let e = call(&iam, "Action=Frobnicate").await.unwrap_err();
    assert_eq!(e.code(), "InvalidAction");
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
