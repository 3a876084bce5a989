//! BatchGetSecretValue: the SecretIdList form with per-secret errors, the Filters form with
//! pagination, and the parameter rules.

use std::collections::{HashMap, HashSet};

use crate::harness::{TestServer, code};
use crate::secrets_util::{INVALID, assert_code_in, client, filter};

#[tokio::test]
async fn secret_id_list_returns_values_and_errors() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let a = sm
        .create_secret()
        .name("b/a")
        .secret_string("alpha")
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("b/b")
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(
            b"beta".to_vec(),
        ))
        .send()
        .await
        .unwrap();
    let arn_a = a.arn().unwrap().to_string();

    let out = sm
        .batch_get_secret_value()
        .secret_id_list(&arn_a)
        .secret_id_list("b/b")
        .secret_id_list("b/missing")
        .send()
        .await
        .unwrap();
    assert_eq!(out.secret_values().len(), 2);
    let by_name: HashMap<&str, _> = out
        .secret_values()
        .iter()
        .map(|v| (v.name().unwrap(), v))
        .collect();
    let va = by_name["b/a"];
    assert_eq!(va.secret_string(), Some("alpha"));
    assert_eq!(va.arn(), Some(arn_a.as_str()));
    assert_eq!(va.version_id(), a.version_id());
    assert_eq!(va.version_stages(), ["AWSCURRENT".to_string()]);
    assert!(va.created_date().is_some());
    assert_eq!(
        by_name["b/b"].secret_binary().map(|b| b.as_ref()),
        Some(b"beta".as_slice())
    );

    assert_eq!(out.errors().len(), 1);
    let err = &out.errors()[0];
    assert_eq!(err.secret_id(), Some("b/missing"));
    assert_eq!(err.error_code(), Some("ResourceNotFoundException"));
    assert!(err.message().is_some());
    assert_eq!(out.next_token(), None);

    // Reading through a batch counts as access.
    let d = sm.describe_secret().secret_id("b/a").send().await.unwrap();
    assert!(d.last_accessed_date().is_some());
}

#[tokio::test]
async fn every_id_missing_is_still_a_successful_call() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let out = sm
        .batch_get_secret_value()
        .secret_id_list("x")
        .secret_id_list("y")
        .send()
        .await
        .unwrap();
    assert!(out.secret_values().is_empty());
    let ids: HashSet<&str> = out.errors().iter().filter_map(|e| e.secret_id()).collect();
    assert_eq!(ids, HashSet::from(["x", "y"]));
}

#[tokio::test]
async fn filters_form_pages_through_matches() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    for i in 0..25 {
        sm.create_secret()
            .name(format!("batch/{i:02}"))
            .secret_string(format!("value-{i}"))
            .send()
            .await
            .unwrap();
    }
    sm.create_secret()
        .name("unrelated")
        .secret_string("no")
        .send()
        .await
        .unwrap();

    let mut got = HashMap::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = sm
            .batch_get_secret_value()
            .filters(filter("name", &["batch/"]))
            .max_results(10)
            .set_next_token(next.take())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.secret_values().len() <= 10);
        assert!(page.errors().is_empty());
        for v in page.secret_values() {
            let previous = got.insert(
                v.name().unwrap().to_string(),
                v.secret_string().unwrap().to_string(),
            );
            assert!(previous.is_none(), "{:?} returned twice", v.name());
        }
        match page.next_token() {
            Some(t) => next = Some(t.to_string()),
            None => break,
        }
        assert!(pages < 20, "pagination does not end");
    }
    assert!(pages >= 3);
    assert_eq!(got.len(), 25);
    for i in 0..25 {
        assert_eq!(got[&format!("batch/{i:02}")], format!("value-{i}"));
    }
}

#[tokio::test]
async fn filters_form_rejects_a_tampered_next_token() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    for i in 0..3 {
        sm.create_secret()
            .name(format!("f{i}"))
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    let page = sm
        .batch_get_secret_value()
        .filters(filter("name", &["f"]))
        .max_results(1)
        .send()
        .await
        .unwrap();
    let token = page.next_token().expect("more pages").to_string();
    let mut bytes: Vec<char> = token.chars().collect();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = bytes.into_iter().collect();
    let e = sm
        .batch_get_secret_value()
        .filters(filter("name", &["f"]))
        .max_results(1)
        .next_token(tampered)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidNextTokenException");
}

#[tokio::test]
async fn parameter_rules() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    sm.create_secret()
        .name("p")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    // Both forms at once, or neither.
    let e = sm
        .batch_get_secret_value()
        .secret_id_list("p")
        .filters(filter("name", &["p"]))
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &e,
        &["InvalidParameterException", "InvalidRequestException"],
    );
    let e = sm.batch_get_secret_value().send().await.unwrap_err();
    assert_code_in(
        &e,
        &["InvalidParameterException", "InvalidRequestException"],
    );
    // MaxResults goes with Filters only.
    let e = sm
        .batch_get_secret_value()
        .secret_id_list("p")
        .max_results(5)
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &e,
        &["InvalidParameterException", "InvalidRequestException"],
    );
    // At most 20 ids, and MaxResults at most 20.
    let mut req = sm.batch_get_secret_value();
    for i in 0..21 {
        req = req.secret_id_list(format!("id{i}"));
    }
    assert_code_in(&req.send().await.unwrap_err(), INVALID);
    let e = sm
        .batch_get_secret_value()
        .filters(filter("name", &["p"]))
        .max_results(21)
        .send()
        .await
        .unwrap_err();
    assert_code_in(&e, INVALID);
    // Exactly 20 is fine.
    let mut req = sm.batch_get_secret_value();
    for i in 0..19 {
        req = req.secret_id_list(format!("id{i}"));
    }
    let out = req.secret_id_list("p").send().await.unwrap();
    assert_eq!(out.secret_values().len(), 1);
    assert_eq!(out.errors().len(), 19);
}
