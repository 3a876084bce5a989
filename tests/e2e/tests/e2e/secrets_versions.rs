//! Versions and staging labels: idempotent ClientRequestTokens, AWSCURRENT/AWSPREVIOUS moves,
//! selectors, ListSecretVersionIds, UpdateSecretVersionStage, retention, concurrency.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::harness::{TestServer, code};
use crate::secrets_util::{all_versions, assert_code_in, client, token, version_with};

/// Creates `name` with v1 and puts v2, v3 with fixed tokens; returns the three version ids.
async fn three_versions(sm: &aws_sdk_secretsmanager::Client, name: &str) -> [String; 3] {
    let (t1, t2, t3) = (token(1), token(2), token(3));
    sm.create_secret()
        .name(name)
        .secret_string("v1")
        .client_request_token(&t1)
        .send()
        .await
        .unwrap();
    sm.put_secret_value()
        .secret_id(name)
        .secret_string("v2")
        .client_request_token(&t2)
        .send()
        .await
        .unwrap();
    sm.put_secret_value()
        .secret_id(name)
        .secret_string("v3")
        .client_request_token(&t3)
        .send()
        .await
        .unwrap();
    [t1, t2, t3]
}

fn stages_of(map: Option<&HashMap<String, Vec<String>>>) -> HashMap<String, HashSet<String>> {
    map.map(|m| {
        m.iter()
            .map(|(k, v)| (k.clone(), v.iter().cloned().collect()))
            .collect()
    })
    .unwrap_or_default()
}

#[tokio::test]
async fn client_request_token_is_the_version_id_and_idempotent() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let t1 = token(11);
    let created = sm
        .create_secret()
        .name("idem")
        .secret_string("v1")
        .client_request_token(&t1)
        .send()
        .await
        .unwrap();
    assert_eq!(created.version_id(), Some(t1.as_str()));

    let t2 = token(12);
    let first = sm
        .put_secret_value()
        .secret_id("idem")
        .secret_string("v2")
        .client_request_token(&t2)
        .send()
        .await
        .unwrap();
    assert_eq!(first.version_id(), Some(t2.as_str()));
    assert_eq!(first.version_stages(), ["AWSCURRENT".to_string()]);
    let before = sm.describe_secret().secret_id("idem").send().await.unwrap();

    // Same token, same value: succeeds, same version, nothing new.
    let again = sm
        .put_secret_value()
        .secret_id("idem")
        .secret_string("v2")
        .client_request_token(&t2)
        .send()
        .await
        .unwrap();
    assert_eq!(again.version_id(), Some(t2.as_str()));
    assert_eq!(all_versions(&sm, "idem", true).await.len(), 2);
    let after = sm.describe_secret().secret_id("idem").send().await.unwrap();
    assert_eq!(
        stages_of(after.version_ids_to_stages()),
        stages_of(before.version_ids_to_stages())
    );
    assert_eq!(
        version_with(&sm, "idem", "AWSPREVIOUS").await.as_deref(),
        Some(t1.as_str())
    );

    // Same token, another value: versions are immutable.
    let err = sm
        .put_secret_value()
        .secret_id("idem")
        .secret_string("other")
        .client_request_token(&t2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceExistsException");
    // Same token as the first version (created by CreateSecret) with its value: a no-op too.
    let replay = sm
        .put_secret_value()
        .secret_id("idem")
        .secret_string("v1")
        .client_request_token(&t1)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.version_id(), Some(t1.as_str()));
    assert_eq!(
        version_with(&sm, "idem", "AWSCURRENT").await.as_deref(),
        Some(t2.as_str())
    );
    assert_eq!(
        sm.get_secret_value()
            .secret_id("idem")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v2")
    );
    assert_eq!(all_versions(&sm, "idem", true).await.len(), 2);
}

#[tokio::test]
async fn current_and_previous_move_together() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let [v1, v2, v3] = three_versions(&sm, "mv").await;
    let d = sm.describe_secret().secret_id("mv").send().await.unwrap();
    let stages = stages_of(d.version_ids_to_stages());
    // v1 lost every label, so DescribeSecret leaves it out.
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert_eq!(stages[&v3], HashSet::from(["AWSCURRENT".to_string()]));
    assert_eq!(stages[&v2], HashSet::from(["AWSPREVIOUS".to_string()]));
    assert!(!stages.contains_key(&v1));

    // Selectors: stage, id, both agreeing.
    let cur = sm.get_secret_value().secret_id("mv").send().await.unwrap();
    assert_eq!(
        (cur.secret_string(), cur.version_id()),
        (Some("v3"), Some(v3.as_str()))
    );
    let prev = sm
        .get_secret_value()
        .secret_id("mv")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (prev.secret_string(), prev.version_id()),
        (Some("v2"), Some(v2.as_str()))
    );
    assert_eq!(prev.version_stages(), ["AWSPREVIOUS".to_string()]);
    let old = sm
        .get_secret_value()
        .secret_id("mv")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(old.secret_string(), Some("v1"));
    assert!(old.version_stages().is_empty());
    let both = sm
        .get_secret_value()
        .secret_id("mv")
        .version_id(&v2)
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(both.secret_string(), Some("v2"));

    // Selectors that do not match anything.
    let err = sm
        .get_secret_value()
        .secret_id("mv")
        .version_id(&v1)
        .version_stage("AWSCURRENT")
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &err,
        &[
            "ResourceNotFoundException",
            "InvalidParameterException",
            "InvalidRequestException",
        ],
    );
    let err = sm
        .get_secret_value()
        .secret_id("mv")
        .version_stage("NOPE")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    let err = sm
        .get_secret_value()
        .secret_id("mv")
        .version_id(token(999))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
}

#[tokio::test]
async fn list_secret_version_ids_hides_deprecated_unless_asked() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let [v1, v2, v3] = three_versions(&sm, "lv").await;
    let out = sm
        .list_secret_version_ids()
        .secret_id("lv")
        .send()
        .await
        .unwrap();
    assert_eq!(out.name(), Some("lv"));
    assert!(out.arn().is_some_and(|a| a.contains(":secret:lv-")));
    let ids: HashSet<&str> = out
        .versions()
        .iter()
        .filter_map(|v| v.version_id())
        .collect();
    assert_eq!(ids, HashSet::from([v2.as_str(), v3.as_str()]));
    for v in out.versions() {
        assert!(v.created_date().is_some());
        assert!(!v.version_stages().is_empty());
    }
    let all = all_versions(&sm, "lv", true).await;
    assert_eq!(
        all.iter().map(String::as_str).collect::<HashSet<_>>(),
        HashSet::from([v1.as_str(), v2.as_str(), v3.as_str()])
    );

    // Pagination with MaxResults=1 walks every version exactly once.
    let mut seen = Vec::new();
    let mut next = None;
    loop {
        let page = sm
            .list_secret_version_ids()
            .secret_id("lv")
            .include_deprecated(true)
            .max_results(1)
            .set_next_token(next)
            .send()
            .await
            .unwrap();
        assert!(page.versions().len() <= 1);
        seen.extend(
            page.versions()
                .iter()
                .filter_map(|v| v.version_id().map(str::to_string)),
        );
        next = page.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    seen.sort();
    let mut expected = vec![v1, v2, v3];
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn put_with_custom_stages_leaves_awscurrent_alone() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let v1 = sm
        .create_secret()
        .name("cs")
        .secret_string("v1")
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    let out = sm
        .put_secret_value()
        .secret_id("cs")
        .secret_string("pending")
        .version_stages("AWSPENDING")
        .send()
        .await
        .unwrap();
    let pending = out.version_id().unwrap().to_string();
    assert_eq!(out.version_stages(), ["AWSPENDING".to_string()]);
    assert_eq!(
        version_with(&sm, "cs", "AWSCURRENT").await.as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(version_with(&sm, "cs", "AWSPREVIOUS").await, None);
    assert_eq!(
        sm.get_secret_value()
            .secret_id("cs")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v1")
    );
    let got = sm
        .get_secret_value()
        .secret_id("cs")
        .version_stage("AWSPENDING")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("pending"));

    // A label already on another version moves to the new one.
    let out = sm
        .put_secret_value()
        .secret_id("cs")
        .secret_string("pending2")
        .version_stages("AWSPENDING")
        .version_stages("MINE")
        .send()
        .await
        .unwrap();
    let pending2 = out.version_id().unwrap().to_string();
    assert_eq!(
        version_with(&sm, "cs", "AWSPENDING").await.as_deref(),
        Some(pending2.as_str())
    );
    assert_eq!(
        version_with(&sm, "cs", "MINE").await.as_deref(),
        Some(pending2.as_str())
    );
    // The first pending version lost its only label: deprecated.
    let listed: HashSet<String> = all_versions(&sm, "cs", false).await.into_iter().collect();
    assert!(!listed.contains(&pending));
    assert!(listed.contains(&pending2) && listed.contains(&v1));

    // Putting AWSCURRENT explicitly also moves AWSPREVIOUS.
    let out = sm
        .put_secret_value()
        .secret_id("cs")
        .secret_string("v2")
        .version_stages("AWSCURRENT")
        .send()
        .await
        .unwrap();
    let v2 = out.version_id().unwrap().to_string();
    assert_eq!(
        version_with(&sm, "cs", "AWSCURRENT").await.as_deref(),
        Some(v2.as_str())
    );
    assert_eq!(
        version_with(&sm, "cs", "AWSPREVIOUS").await.as_deref(),
        Some(v1.as_str())
    );
}

#[tokio::test]
async fn update_secret_version_stage_moves_labels() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let [v1, v2, v3] = three_versions(&sm, "st").await;

    // Roll back: AWSCURRENT v3 -> v1; AWSPREVIOUS follows to v3.
    let out = sm
        .update_secret_version_stage()
        .secret_id("st")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v1)
        .remove_from_version_id(&v3)
        .send()
        .await
        .unwrap();
    assert_eq!(out.name(), Some("st"));
    assert!(out.arn().is_some());
    assert_eq!(
        version_with(&sm, "st", "AWSCURRENT").await.as_deref(),
        Some(v1.as_str())
    );
    assert_eq!(
        version_with(&sm, "st", "AWSPREVIOUS").await.as_deref(),
        Some(v3.as_str())
    );
    assert_eq!(
        sm.get_secret_value()
            .secret_id("st")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v1")
    );
    // v2 lost AWSPREVIOUS and is now deprecated.
    let d = sm.describe_secret().secret_id("st").send().await.unwrap();
    let stages = stages_of(d.version_ids_to_stages());
    assert!(!stages.contains_key(&v2), "{stages:?}");
    assert_eq!(
        stages.values().filter(|s| s.contains("AWSCURRENT")).count(),
        1
    );
    assert_eq!(
        stages
            .values()
            .filter(|s| s.contains("AWSPREVIOUS"))
            .count(),
        1
    );

    // Moving an attached label needs RemoveFromVersionId naming the version that has it.
    let err = sm
        .update_secret_version_stage()
        .secret_id("st")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
    let err = sm
        .update_secret_version_stage()
        .secret_id("st")
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v2)
        .remove_from_version_id(&v3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
    assert_eq!(
        version_with(&sm, "st", "AWSCURRENT").await.as_deref(),
        Some(v1.as_str())
    );

    // Custom labels: attach to a deprecated version (it becomes listed), then remove.
    sm.update_secret_version_stage()
        .secret_id("st")
        .version_stage("BLUE")
        .move_to_version_id(&v2)
        .send()
        .await
        .unwrap();
    let blue = sm
        .get_secret_value()
        .secret_id("st")
        .version_stage("BLUE")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (blue.secret_string(), blue.version_id()),
        (Some("v2"), Some(v2.as_str()))
    );
    assert!(all_versions(&sm, "st", false).await.contains(&v2));
    // Adding a label keeps the version's other labels.
    sm.update_secret_version_stage()
        .secret_id("st")
        .version_stage("GREEN")
        .move_to_version_id(&v1)
        .send()
        .await
        .unwrap();
    let d = sm.describe_secret().secret_id("st").send().await.unwrap();
    assert_eq!(
        stages_of(d.version_ids_to_stages())[&v1],
        HashSet::from(["AWSCURRENT".to_string(), "GREEN".to_string()])
    );
    sm.update_secret_version_stage()
        .secret_id("st")
        .version_stage("BLUE")
        .remove_from_version_id(&v2)
        .send()
        .await
        .unwrap();
    let err = sm
        .get_secret_value()
        .secret_id("st")
        .version_stage("BLUE")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    assert!(!all_versions(&sm, "st", false).await.contains(&v2));

    // Removing a label from a version that does not hold it is refused.
    let err = sm
        .update_secret_version_stage()
        .secret_id("st")
        .version_stage("GREEN")
        .remove_from_version_id(&v3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
    // Moving to a version that does not exist.
    let err = sm
        .update_secret_version_stage()
        .secret_id("st")
        .version_stage("RED")
        .move_to_version_id(token(4242))
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &err,
        &["ResourceNotFoundException", "InvalidParameterException"],
    );
}

#[tokio::test]
async fn old_unlabeled_versions_are_cleaned_beyond_one_hundred() {
    // AWS: "Secrets Manager keeps 100 of the most recent versions, but it keeps all secret
    // versions created in the last 24 hours." One version an hour, so the 24-hour grace never
    // holds more than 25 and the count must settle at 100.
    let s = TestServer::dev().await;
    let sm = client(&s);
    let mut ids = vec![
        sm.create_secret()
            .name("many")
            .secret_string("0")
            .client_request_token(token(0))
            .send()
            .await
            .unwrap()
            .version_id()
            .unwrap()
            .to_string(),
    ];
    for i in 1..=120u64 {
        s.clock.advance(Duration::from_secs(3600));
        let out = sm
            .put_secret_value()
            .secret_id("many")
            .secret_string(i.to_string())
            .client_request_token(token(i))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {i}: {}", code(&e)));
        ids.push(out.version_id().unwrap().to_string());
    }
    s.server.run_background_jobs().await;
    let remaining: HashSet<String> = all_versions(&sm, "many", true).await.into_iter().collect();
    assert_eq!(remaining.len(), 100, "kept {} versions", remaining.len());
    for recent in &ids[ids.len() - 100..] {
        assert!(
            remaining.contains(recent),
            "a recent version {recent} was removed"
        );
    }
    let err = sm
        .get_secret_value()
        .secret_id("many")
        .version_id(&ids[0])
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ResourceNotFoundException");
    assert_eq!(
        sm.get_secret_value()
            .secret_id("many")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("120")
    );
    assert_eq!(
        sm.get_secret_value()
            .secret_id("many")
            .version_stage("AWSPREVIOUS")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("119")
    );
}

#[tokio::test]
async fn labelled_old_versions_survive_cleanup() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let first = sm
        .create_secret()
        .name("keep")
        .secret_string("0")
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    // A custom label pins the first version.
    sm.update_secret_version_stage()
        .secret_id("keep")
        .version_stage("PINNED")
        .move_to_version_id(&first)
        .send()
        .await
        .unwrap();
    for i in 1..=105u64 {
        s.clock.advance(Duration::from_secs(3600));
        sm.put_secret_value()
            .secret_id("keep")
            .secret_string(i.to_string())
            .send()
            .await
            .unwrap();
    }
    s.server.run_background_jobs().await;
    let pinned = sm
        .get_secret_value()
        .secret_id("keep")
        .version_stage("PINNED")
        .send()
        .await
        .unwrap();
    assert_eq!(pinned.secret_string(), Some("0"));
    assert!(all_versions(&sm, "keep", true).await.len() <= 101);
}

#[tokio::test]
async fn concurrent_puts_leave_one_current_and_one_previous() {
    // The durable store (group commit), and SecretIds in two spellings: every writer of one
    // secret must succeed, serialized on this node, none lost.
    let s = TestServer::durable().await;
    let sm = client(&s);
    let arn = sm
        .create_secret()
        .name("race")
        .secret_string("initial")
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let mut tasks = Vec::new();
    for i in 0..32u64 {
        let sm = sm.clone();
        let id = if i % 2 == 0 {
            "race".to_string()
        } else {
            arn.clone()
        };
        tasks.push(tokio::spawn(async move {
            let value = format!("value-{i}");
            let r = sm
                .put_secret_value()
                .secret_id(id)
                .secret_string(&value)
                .client_request_token(token(100 + i))
                .send()
                .await;
            (
                value,
                r.map(|o| o.version_id().map(str::to_string))
                    .map_err(|e| code(&e)),
            )
        }));
    }
    let mut ok = HashMap::new();
    for t in tasks {
        let (value, r) = t.await.expect("task did not panic");
        match r {
            Ok(v) => {
                ok.insert(v.expect("a version id"), value);
            }
            Err(c) => panic!("a concurrent put failed: {c}"),
        }
    }
    assert_eq!(ok.len(), 32);
    let d = sm.describe_secret().secret_id("race").send().await.unwrap();
    let stages = stages_of(d.version_ids_to_stages());
    let current: Vec<&String> = stages
        .iter()
        .filter(|(_, s)| s.contains("AWSCURRENT"))
        .map(|(v, _)| v)
        .collect();
    let previous: Vec<&String> = stages
        .iter()
        .filter(|(_, s)| s.contains("AWSPREVIOUS"))
        .map(|(v, _)| v)
        .collect();
    assert_eq!(current.len(), 1, "{stages:?}");
    assert_eq!(previous.len(), 1, "{stages:?}");
    assert_ne!(current[0], previous[0]);
    // The current value is one that a successful call wrote, under that call's version id.
    let got = sm
        .get_secret_value()
        .secret_id("race")
        .send()
        .await
        .unwrap();
    assert_eq!(got.version_id(), Some(current[0].as_str()));
    assert_eq!(ok.get(current[0]).map(String::as_str), got.secret_string());
    // Every success is a version; nothing else was created.
    assert_eq!(all_versions(&sm, "race", true).await.len(), ok.len() + 1);
}

#[tokio::test]
async fn awscurrent_cannot_be_removed_without_a_new_home() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let [_, _, v3] = three_versions(&sm, "keepcur").await;
    let err = sm
        .update_secret_version_stage()
        .secret_id("keepcur")
        .version_stage("AWSCURRENT")
        .remove_from_version_id(&v3)
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &err,
        &["InvalidParameterException", "InvalidRequestException"],
    );
    assert_eq!(
        version_with(&sm, "keepcur", "AWSCURRENT").await.as_deref(),
        Some(v3.as_str())
    );
}

#[tokio::test]
async fn list_secret_version_ids_rejects_a_tampered_next_token() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    three_versions(&sm, "tok").await;
    let page = sm
        .list_secret_version_ids()
        .secret_id("tok")
        .include_deprecated(true)
        .max_results(1)
        .send()
        .await
        .unwrap();
    let t = page.next_token().expect("more pages").to_string();
    let mut chars: Vec<char> = t.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    for bad in [tampered.as_str(), "garbage"] {
        let err = sm
            .list_secret_version_ids()
            .secret_id("tok")
            .include_deprecated(true)
            .max_results(1)
            .next_token(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidNextTokenException", "{bad}");
    }
}
