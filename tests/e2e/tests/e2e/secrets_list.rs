//! ListSecrets: every filter key, negation, sorting, planned deletions, pagination, tokens.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{Filter, SortByType, SortOrderType};

use crate::harness::{TestServer, code};
use crate::secrets_util::{INVALID, assert_code_in, client, client_in, filter, tag};

/// Names of every secret matching `filters`, walking all pages.
async fn names(sm: &Client, filters: Vec<Filter>) -> HashSet<String> {
    ordered(sm, filters, None, None).await.into_iter().collect()
}

async fn ordered(
    sm: &Client,
    filters: Vec<Filter>,
    by: Option<SortByType>,
    order: Option<SortOrderType>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = sm
            .list_secrets()
            .set_filters(Some(filters.clone()))
            .set_sort_by(by.clone())
            .set_sort_order(order.clone())
            .set_next_token(next.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("list: {}", code(&e)));
        out.extend(
            page.secret_list()
                .iter()
                .filter_map(|e| e.name().map(str::to_string)),
        );
        match page.next_token() {
            Some(t) => next = Some(t.to_string()),
            None => return out,
        }
    }
}

fn set(names: &[&str]) -> HashSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Name, description, tags.
type Item = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// A small catalogue, created one minute apart in this order.
async fn catalogue(s: &TestServer) -> Client {
    let sm = client(s);
    let items: [Item; 5] = [
        (
            "prod/db",
            "Primary database password",
            &[("team", "payments"), ("env", "prod")],
        ),
        (
            "prod/api",
            "API key for partners",
            &[("team", "platform"), ("env", "prod")],
        ),
        (
            "dev/db",
            "database for developers",
            &[("team", "payments"), ("env", "dev")],
        ),
        ("Prod/upper", "Case check", &[("owner", "alice")]),
        ("misc", "nothing special", &[]),
    ];
    for (name, desc, tags) in items {
        let mut req = sm
            .create_secret()
            .name(name)
            .description(desc)
            .secret_string("v");
        for (k, v) in tags {
            req = req.tags(tag(k, v));
        }
        req.send().await.unwrap();
        s.clock.advance(Duration::from_secs(60));
    }
    sm
}

#[tokio::test]
async fn list_entries_carry_metadata_but_no_values() {
    let s = TestServer::dev().await;
    let sm = catalogue(&s).await;
    let out = sm.list_secrets().send().await.unwrap();
    assert_eq!(out.secret_list().len(), 5);
    assert_eq!(out.next_token(), None);
    let e = out
        .secret_list()
        .iter()
        .find(|e| e.name() == Some("prod/db"))
        .unwrap();
    assert!(e.arn().is_some_and(|a| {
        a.starts_with("arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-")
    }));
    assert_eq!(e.description(), Some("Primary database password"));
    assert_eq!(e.tags().len(), 2);
    assert!(e.created_date().is_some());
    assert!(e.last_changed_date().is_some());
    assert_eq!(e.deleted_date(), None);
    let stages = e.secret_versions_to_stages().expect("versions to stages");
    assert_eq!(stages.len(), 1);
    assert_eq!(
        stages.values().next().unwrap(),
        &vec!["AWSCURRENT".to_string()]
    );
}

#[tokio::test]
async fn filter_by_name_is_a_case_sensitive_prefix() {
    let s = TestServer::dev().await;
    let sm = catalogue(&s).await;
    assert_eq!(
        names(&sm, vec![filter("name", &["prod/"])]).await,
        set(&["prod/db", "prod/api"])
    );
    assert_eq!(
        names(&sm, vec![filter("name", &["Prod"])]).await,
        set(&["Prod/upper"])
    );
    assert_eq!(
        names(&sm, vec![filter("name", &["db"])]).await,
        set(&[]),
        "prefix, not substring"
    );
    // Several values: any of them.
    assert_eq!(
        names(&sm, vec![filter("name", &["prod/", "dev/"])]).await,
        set(&["prod/db", "prod/api", "dev/db"])
    );
    // Negation.
    assert_eq!(
        names(&sm, vec![filter("name", &["!prod/"])]).await,
        set(&["dev/db", "Prod/upper", "misc"])
    );
}

#[tokio::test]
async fn filter_by_description_is_case_insensitive() {
    // AWS documents a prefix match; the live service also matches at word starts
    // ("database" finds "Primary database password"). Assert what both readings agree on.
    let s = TestServer::dev().await;
    let sm = catalogue(&s).await;
    for value in ["database", "DATABASE", "Database f"] {
        let got = names(&sm, vec![filter("description", &[value])]).await;
        assert!(got.contains("dev/db"), "{value}: {got:?}");
        for absent in ["prod/api", "Prod/upper", "misc"] {
            assert!(!got.contains(absent), "{value}: {got:?}");
        }
    }
    assert_eq!(
        names(&sm, vec![filter("description", &["primary"])]).await,
        set(&["prod/db"])
    );
    assert_eq!(
        names(&sm, vec![filter("description", &["!api"])]).await,
        set(&["prod/db", "dev/db", "Prod/upper", "misc"])
    );
}

#[tokio::test]
async fn filter_by_tag_key_and_tag_value() {
    let s = TestServer::dev().await;
    let sm = catalogue(&s).await;
    assert_eq!(
        names(&sm, vec![filter("tag-key", &["team"])]).await,
        set(&["prod/db", "prod/api", "dev/db"])
    );
    assert_eq!(
        names(&sm, vec![filter("tag-key", &["ow"])]).await,
        set(&["Prod/upper"])
    );
    assert_eq!(
        names(&sm, vec![filter("tag-key", &["Team"])]).await,
        set(&[]),
        "case-sensitive"
    );
    assert_eq!(
        names(&sm, vec![filter("tag-value", &["pay"])]).await,
        set(&["prod/db", "dev/db"])
    );
    assert_eq!(
        names(&sm, vec![filter("tag-value", &["Payments"])]).await,
        set(&[]),
        "case-sensitive"
    );
    assert_eq!(
        names(&sm, vec![filter("tag-value", &["prod", "alice"])]).await,
        set(&["prod/db", "prod/api", "Prod/upper"])
    );
    // Two filters: both must hold.
    assert_eq!(
        names(
            &sm,
            vec![filter("tag-key", &["team"]), filter("tag-value", &["dev"])]
        )
        .await,
        set(&["dev/db"])
    );
    assert_eq!(
        names(
            &sm,
            vec![
                filter("name", &["prod/"]),
                filter("tag-value", &["platform"])
            ]
        )
        .await,
        set(&["prod/api"])
    );
    // Negated tag value: no tag value of these two starts with "pay", so they qualify whether
    // negation means "no tag matches" or "some tag does not match".
    let not_pay = names(&sm, vec![filter("tag-value", &["!pay"])]).await;
    assert!(
        not_pay.contains("Prod/upper") && not_pay.contains("prod/api"),
        "{not_pay:?}"
    );
}

#[tokio::test]
async fn filter_all_searches_every_attribute_case_insensitively() {
    let s = TestServer::dev().await;
    let sm = catalogue(&s).await;
    // "payments" is a tag value of prod/db and dev/db only.
    assert_eq!(
        names(&sm, vec![filter("all", &["PAYMENTS"])]).await,
        set(&["prod/db", "dev/db"])
    );
    // "alice" is a tag value, "partners" a word of a description.
    assert_eq!(
        names(&sm, vec![filter("all", &["alice"])]).await,
        set(&["Prod/upper"])
    );
    assert_eq!(
        names(&sm, vec![filter("all", &["partners"])]).await,
        set(&["prod/api"])
    );
    assert_eq!(
        names(&sm, vec![filter("all", &["misc"])]).await,
        set(&["misc"])
    );
    assert_eq!(
        names(&sm, vec![filter("all", &["zzz-nothing"])]).await,
        set(&[])
    );
}

#[tokio::test]
async fn filter_owning_service_and_primary_region() {
    let s = TestServer::dev().await;
    let sm = catalogue(&s).await;
    // No secret here is managed by another service.
    assert_eq!(
        names(&sm, vec![filter("owning-service", &["rds"])]).await,
        set(&[])
    );

    // A replica lists under its primary's region; a local secret does not.
    sm.create_secret()
        .name("global")
        .secret_string("g")
        .send()
        .await
        .unwrap();
    sm.replicate_secret_to_regions()
        .secret_id("global")
        .add_replica_regions(
            aws_sdk_secretsmanager::types::ReplicaRegionType::builder()
                .region("eu-west-1")
                .build(),
        )
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;
    let west = client_in(&s, "eu-west-1");
    west.create_secret()
        .name("local")
        .secret_string("l")
        .send()
        .await
        .unwrap();
    let from_east = names(&west, vec![filter("primary-region", &["us-east-1"])]).await;
    assert!(from_east.contains("global"), "{from_east:?}");
    assert!(!from_east.contains("local"), "{from_east:?}");
    let negated = names(&west, vec![filter("primary-region", &["!us-east-1"])]).await;
    assert!(!negated.contains("global"), "{negated:?}");
}

#[tokio::test]
async fn sort_by_created_date_and_name() {
    let s = TestServer::dev().await;
    let sm = catalogue(&s).await;
    let created = ["prod/db", "prod/api", "dev/db", "Prod/upper", "misc"];
    let asc = ordered(
        &sm,
        vec![],
        Some(SortByType::CreatedDate),
        Some(SortOrderType::Asc),
    )
    .await;
    assert_eq!(asc, created);
    let desc = ordered(
        &sm,
        vec![],
        Some(SortByType::CreatedDate),
        Some(SortOrderType::Desc),
    )
    .await;
    assert_eq!(desc, created.iter().rev().copied().collect::<Vec<_>>());
    // Without SortBy, CreatedDate is the order.
    let asc_default = ordered(&sm, vec![], None, Some(SortOrderType::Asc)).await;
    assert_eq!(asc_default, created);

    let mut by_name = created.to_vec();
    by_name.sort();
    assert_eq!(
        ordered(
            &sm,
            vec![],
            Some(SortByType::Name),
            Some(SortOrderType::Asc)
        )
        .await,
        by_name
    );
    by_name.reverse();
    assert_eq!(
        ordered(
            &sm,
            vec![],
            Some(SortByType::Name),
            Some(SortOrderType::Desc)
        )
        .await,
        by_name
    );

    // Sorting combines with filters.
    let f = ordered(
        &sm,
        vec![filter("name", &["prod/"])],
        Some(SortByType::Name),
        Some(SortOrderType::Asc),
    )
    .await;
    assert_eq!(f, ["prod/api", "prod/db"]);
}

#[tokio::test]
async fn sort_by_last_changed_and_last_accessed_date() {
    let s = TestServer::dev().await;
    let sm = catalogue(&s).await;
    s.clock.advance(Duration::from_secs(600));
    sm.update_secret()
        .secret_id("prod/db")
        .description("touched")
        .send()
        .await
        .unwrap();
    let changed = ordered(
        &sm,
        vec![],
        Some(SortByType::LastChangedDate),
        Some(SortOrderType::Desc),
    )
    .await;
    assert_eq!(
        changed.first().map(String::as_str),
        Some("prod/db"),
        "{changed:?}"
    );
    let changed = ordered(
        &sm,
        vec![],
        Some(SortByType::LastChangedDate),
        Some(SortOrderType::Asc),
    )
    .await;
    assert_eq!(
        changed.last().map(String::as_str),
        Some("prod/db"),
        "{changed:?}"
    );

    // Accessed dates have day resolution: read one secret two days later than another.
    sm.get_secret_value()
        .secret_id("dev/db")
        .send()
        .await
        .unwrap();
    s.clock.advance(Duration::from_secs(2 * 86_400));
    sm.get_secret_value()
        .secret_id("misc")
        .send()
        .await
        .unwrap();
    let accessed = ordered(
        &sm,
        vec![filter("name", &["dev/db", "misc"])],
        Some(SortByType::LastAccessedDate),
        Some(SortOrderType::Desc),
    )
    .await;
    assert_eq!(accessed, ["misc", "dev/db"]);
    let accessed = ordered(
        &sm,
        vec![filter("name", &["dev/db", "misc"])],
        Some(SortByType::LastAccessedDate),
        Some(SortOrderType::Asc),
    )
    .await;
    assert_eq!(accessed, ["dev/db", "misc"]);
}

#[tokio::test]
async fn include_planned_deletion() {
    let s = TestServer::dev().await;
    let sm = catalogue(&s).await;
    sm.delete_secret().secret_id("misc").send().await.unwrap();
    let listed = sm.list_secrets().send().await.unwrap();
    assert!(
        listed
            .secret_list()
            .iter()
            .all(|e| e.name() != Some("misc"))
    );
    assert_eq!(listed.secret_list().len(), 4);
    let with = sm
        .list_secrets()
        .include_planned_deletion(true)
        .send()
        .await
        .unwrap();
    assert_eq!(with.secret_list().len(), 5);
    let misc = with
        .secret_list()
        .iter()
        .find(|e| e.name() == Some("misc"))
        .expect("listed");
    assert!(misc.deleted_date().is_some());
    // Filters still apply.
    let only = sm
        .list_secrets()
        .include_planned_deletion(true)
        .filters(filter("name", &["mi"]))
        .send()
        .await
        .unwrap();
    assert_eq!(only.secret_list().len(), 1);
}

#[tokio::test]
async fn pagination_walks_every_secret_once() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    for i in 0..23 {
        sm.create_secret()
            .name(format!("page/{i:02}"))
            .secret_string("v")
            .send()
            .await
            .unwrap();
        sm.create_secret()
            .name(format!("other/{i:02}"))
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    for (filters, expected) in [(vec![], 46usize), (vec![filter("name", &["page/"])], 23)] {
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut next: Option<String> = None;
        loop {
            let page = sm
                .list_secrets()
                .set_filters(Some(filters.clone()))
                .max_results(5)
                .set_next_token(next.take())
                .send()
                .await
                .unwrap();
            pages += 1;
            assert!(page.secret_list().len() <= 5);
            seen.extend(
                page.secret_list()
                    .iter()
                    .filter_map(|e| e.name().map(str::to_string)),
            );
            match page.next_token() {
                Some(t) => next = Some(t.to_string()),
                None => break,
            }
            assert!(pages < 100, "pagination does not end");
        }
        assert_eq!(seen.len(), expected, "{seen:?}");
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            expected,
            "duplicates: {seen:?}"
        );
        assert!(pages >= expected.div_ceil(5));
    }
    // MaxResults 100 returns everything in one page.
    let page = sm.list_secrets().max_results(100).send().await.unwrap();
    assert_eq!(page.secret_list().len(), 46);
    assert_eq!(page.next_token(), None);
}

#[tokio::test]
async fn tampered_or_foreign_next_token_is_rejected() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    for i in 0..4 {
        sm.create_secret()
            .name(format!("t{i}"))
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    let page = sm.list_secrets().max_results(2).send().await.unwrap();
    let token = page.next_token().expect("more pages").to_string();
    // The genuine token works.
    sm.list_secrets()
        .max_results(2)
        .next_token(&token)
        .send()
        .await
        .unwrap();

    let mut tampered: Vec<char> = token.chars().collect();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let shortened = &token[..token.len() - 1];
    for bad in [
        tampered.as_str(),
        shortened,
        "not-a-token",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        let err = sm
            .list_secrets()
            .max_results(2)
            .next_token(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidNextTokenException", "token {bad:?}");
    }
}

#[tokio::test]
async fn invalid_list_parameters() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    for bad in [0, 101] {
        let err = sm.list_secrets().max_results(bad).send().await.unwrap_err();
        assert_code_in(&err, INVALID);
    }
    let err = sm
        .list_secrets()
        .filters(filter("bogus-key", &["x"]))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let err = sm
        .list_secrets()
        .sort_by(SortByType::from("size"))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
    let eleven: Vec<_> = (0..11)
        .map(|i| filter("name", &[&format!("n{i}")]))
        .collect();
    let err = sm
        .list_secrets()
        .set_filters(Some(eleven))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&err, INVALID);
}
