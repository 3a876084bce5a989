//! GetParametersByPath (one level vs recursive, filters, MaxResults, NextToken through
//! thousands of parameters) and DescribeParameters filters.

use std::collections::BTreeSet;

use aws_sdk_ssm::Client;
use aws_sdk_ssm::types::{ParameterTier, ParameterType, ParametersFilter, ParametersFilterKey};

use crate::harness::{TestServer, code};
use crate::ssm_util::{assert_code, client, filter, put_advanced, put_secure, put_string, tag};

/// Every name GetParametersByPath returns, walking NextToken by hand with `max` per page.
async fn by_path(
    ssm: &Client,
    path: &str,
    recursive: bool,
    filters: Vec<aws_sdk_ssm::types::ParameterStringFilter>,
    max: i32,
) -> Vec<String> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10_000 {
        let out = ssm
            .get_parameters_by_path()
            .path(path)
            .recursive(recursive)
            .set_parameter_filters(Some(filters.clone()))
            .max_results(max)
            .set_next_token(token.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("by path {path} {filters:?}: {}", code(&e)));
        assert!(out.parameters().len() <= max as usize);
        names.extend(
            out.parameters()
                .iter()
                .map(|p| p.name().unwrap().to_string()),
        );
        match out.next_token() {
            Some(t) => token = Some(t.to_string()),
            None => return names,
        }
    }
    panic!("pagination did not end");
}

/// A ParameterStringFilter as (key, option, values).
type FilterSpec<'a> = (&'a str, Option<&'a str>, &'a [&'a str]);

/// Every name DescribeParameters returns for `filters`, all pages.
async fn describe(ssm: &Client, filters: &[FilterSpec<'_>]) -> Vec<String> {
    let mut req = ssm.describe_parameters().max_results(50);
    for (k, o, v) in filters {
        req = req.parameter_filters(filter(k, *o, v));
    }
    let mut pages = req.into_paginator().send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.unwrap_or_else(|e| panic!("describe {filters:?}: {}", code(&e)));
        names.extend(
            page.parameters()
                .iter()
                .map(|p| p.name().unwrap().to_string()),
        );
    }
    names.sort();
    names
}

async fn tree(ssm: &Client) {
    for n in [
        "/app/a",
        "/app/b",
        "/app/sub/c",
        "/app/sub/deep/d",
        "/apple/x",
        "/top",
    ] {
        put_string(ssm, n, n).await;
    }
    put_secure(ssm, "/app/secret", "hidden-value").await;
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn one_level_and_recursive() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    tree(&ssm).await;
    let one = sorted(by_path(&ssm, "/app", false, vec![], 10).await);
    assert_eq!(one, ["/app/a", "/app/b", "/app/secret"]);
    let slash = sorted(by_path(&ssm, "/app/", false, vec![], 10).await);
    assert_eq!(slash, one);
    let all = sorted(by_path(&ssm, "/app", true, vec![], 10).await);
    assert_eq!(
        all,
        [
            "/app/a",
            "/app/b",
            "/app/secret",
            "/app/sub/c",
            "/app/sub/deep/d"
        ]
    );
    let sub = sorted(by_path(&ssm, "/app/sub", false, vec![], 10).await);
    assert_eq!(sub, ["/app/sub/c"]);
    let root = sorted(by_path(&ssm, "/", false, vec![], 10).await);
    assert_eq!(root, ["/top"]);
    assert!(by_path(&ssm, "/nothing", true, vec![], 10).await.is_empty());

    // The value is decrypted only on request.
    let out = ssm
        .get_parameters_by_path()
        .path("/app")
        .send()
        .await
        .unwrap();
    let secret = out
        .parameters()
        .iter()
        .find(|p| p.name() == Some("/app/secret"))
        .unwrap();
    assert_ne!(secret.value(), Some("hidden-value"));
    let out = ssm
        .get_parameters_by_path()
        .path("/app")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let secret = out
        .parameters()
        .iter()
        .find(|p| p.name() == Some("/app/secret"))
        .unwrap();
    assert_eq!(secret.value(), Some("hidden-value"));
}

#[tokio::test]
async fn by_path_filters_and_limits() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    tree(&ssm).await;
    ssm.label_parameter_version()
        .name("/app/sub/c")
        .labels("live")
        .send()
        .await
        .unwrap();

    let f = vec![filter("Type", Some("Equals"), &["SecureString"])];
    assert_eq!(by_path(&ssm, "/app", true, f, 10).await, ["/app/secret"]);
    let f = vec![filter("KeyId", Some("Equals"), &["alias/aws/ssm"])];
    assert_eq!(by_path(&ssm, "/app", true, f, 10).await, ["/app/secret"]);
    let f = vec![filter("Label", Some("Equals"), &["live"])];
    assert_eq!(by_path(&ssm, "/app", true, f, 10).await, ["/app/sub/c"]);

    // Keys GetParametersByPath does not take: "tag, DataType, Name, Path, and Tier".
    let mut wrong = Vec::new();
    for key in ["tag:env", "DataType", "Name", "Path", "Tier"] {
        let got = ssm
            .get_parameters_by_path()
            .path("/app")
            .parameter_filters(filter(key, Some("Equals"), &["x"]))
            .send()
            .await
            .err()
            .map(|e| code(&e));
        if got.as_deref() != Some("InvalidFilterKey") {
            wrong.push(format!("{key}: {got:?}"));
        }
    }
    // Label only with Equals.
    let err = ssm
        .get_parameters_by_path()
        .path("/app")
        .parameter_filters(filter("Label", Some("BeginsWith"), &["li"]))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "InvalidFilterOption");

    for max in [0, 11] {
        let err = ssm
            .get_parameters_by_path()
            .path("/app")
            .max_results(max)
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "ValidationException");
    }
    // "Hierarchies start with a forward slash."
    let err = ssm
        .get_parameters_by_path()
        .path("app")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    let err = ssm
        .get_parameters_by_path()
        .path("/app")
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    let c = code(&err);
    assert!(c == "InvalidNextToken" || c == "ValidationException", "{c}");
    assert!(
        wrong.is_empty(),
        "filter keys accepted or misreported: {wrong:?}"
    );
}

/// "For filters used with GetParametersByPath, valid options include Equals and BeginsWith."
#[tokio::test]
async fn by_path_type_filter_takes_begins_with() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    tree(&ssm).await;
    let f = vec![filter("Type", Some("BeginsWith"), &["Str"])];
    assert_eq!(
        sorted(by_path(&ssm, "/app", true, f, 10).await),
        ["/app/a", "/app/b", "/app/sub/c", "/app/sub/deep/d"]
    );
}

#[tokio::test]
async fn next_token_walks_two_thousand_parameters_in_pages_of_ten() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    // 2,000 under /bulk at three depths, created by 16 concurrent writers, plus neighbours.
    let mut set = tokio::task::JoinSet::new();
    for w in 0..16 {
        let ssm = ssm.clone();
        set.spawn(async move {
            for i in (w..2000).step_by(16) {
                let name = match i % 3 {
                    0 => format!("/bulk/p{i:04}"),
                    1 => format!("/bulk/g{}/p{i:04}", i % 7),
                    _ => format!("/bulk/g{}/h{}/p{i:04}", i % 7, i % 5),
                };
                put_string(&ssm, &name, "v").await;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    put_string(&ssm, "/bulky/outside", "v").await;
    put_string(&ssm, "/bul", "v").await;

    let names = by_path(&ssm, "/bulk", true, vec![], 10).await;
    assert_eq!(names.len(), 2000);
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), 2000, "no parameter twice");
    assert!(names.iter().all(|n| n.starts_with("/bulk/")));

    // One level: only /bulk/pNNNN (i % 3 == 0 → 667 names).
    let top = by_path(&ssm, "/bulk", false, vec![], 10).await;
    assert_eq!(top.len(), 667);
    assert!(top.iter().all(|n| n.matches('/').count() == 2));

    // The SDK's own paginator agrees.
    let mut pages = ssm
        .get_parameters_by_path()
        .path("/bulk/g3")
        .recursive(true)
        .into_paginator()
        .send();
    let mut n = 0;
    while let Some(page) = pages.next().await {
        n += page.unwrap().parameters().len();
    }
    let want = (0..2000).filter(|i| i % 3 != 0 && i % 7 == 3).count();
    assert_eq!(n, want);

    // DescribeParameters pages of 50 over the same subtree.
    let all = describe(&ssm, &[("Path", Some("Recursive"), &["/bulk"])]).await;
    assert_eq!(all.len(), 2000);
}

#[tokio::test]
async fn describe_parameters_filters() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    tree(&ssm).await;
    put_advanced(&ssm, "/adv/one", "v").await;
    ssm.put_parameter()
        .name("/ami/id")
        .value("ami-0123456789abcdef0")
        .r#type(ParameterType::String)
        .data_type("aws:ec2:image")
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap();
    ssm.put_parameter()
        .name("/list/l")
        .value("a,b")
        .r#type(ParameterType::StringList)
        .tags(tag("env", "dev"))
        .send()
        .await
        .unwrap();

    let cases: Vec<(Vec<FilterSpec>, Vec<&str>)> = vec![
        (vec![("Name", Some("Equals"), &["/app/a"])], vec!["/app/a"]),
        (vec![("Name", None, &["/app/a"])], vec!["/app/a"]),
        (
            vec![("Name", Some("BeginsWith"), &["/app/s"])],
            vec!["/app/secret", "/app/sub/c", "/app/sub/deep/d"],
        ),
        (
            vec![("Name", Some("Contains"), &["pp"])],
            vec![
                "/app/a",
                "/app/b",
                "/app/secret",
                "/app/sub/c",
                "/app/sub/deep/d",
                "/apple/x",
            ],
        ),
        (
            vec![("Type", Some("Equals"), &["SecureString"])],
            vec!["/app/secret"],
        ),
        (
            vec![("Type", Some("Equals"), &["StringList", "SecureString"])],
            vec!["/app/secret", "/list/l"],
        ),
        (
            vec![("KeyId", Some("Equals"), &["alias/aws/ssm"])],
            vec!["/app/secret"],
        ),
        (
            vec![("Path", Some("OneLevel"), &["/app"])],
            vec!["/app/a", "/app/b", "/app/secret"],
        ),
        (vec![("Path", None, &["/app/sub"])], vec!["/app/sub/c"]),
        (
            vec![("Path", Some("Recursive"), &["/app/sub"])],
            vec!["/app/sub/c", "/app/sub/deep/d"],
        ),
        (
            vec![("Tier", Some("Equals"), &["Advanced"])],
            vec!["/adv/one"],
        ),
        (
            vec![("DataType", Some("Equals"), &["aws:ec2:image"])],
            vec!["/ami/id"],
        ),
        (
            vec![("tag:env", Some("Equals"), &["prod"])],
            vec!["/ami/id"],
        ),
        (
            vec![("tag:env", Some("Equals"), &["prod", "dev"])],
            vec!["/ami/id", "/list/l"],
        ),
        (
            vec![
                ("Path", Some("Recursive"), &["/app"]),
                ("Type", Some("Equals"), &["String"]),
                ("Name", Some("BeginsWith"), &["/app/sub"]),
            ],
            vec!["/app/sub/c", "/app/sub/deep/d"],
        ),
    ];
    for (filters, want) in cases {
        assert_eq!(describe(&ssm, &filters).await, want, "{filters:?}");
    }

    // The deprecated Filters still work.
    let out = ssm
        .describe_parameters()
        .filters(
            ParametersFilter::builder()
                .key(ParametersFilterKey::Type)
                .values("SecureString")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = out.parameters().iter().map(|p| p.name().unwrap()).collect();
    assert_eq!(names, ["/app/secret"]);

    // Metadata fields.
    let out = ssm
        .describe_parameters()
        .parameter_filters(filter("Name", Some("Equals"), &["/adv/one"]))
        .send()
        .await
        .unwrap();
    let m = &out.parameters()[0];
    assert_eq!(m.tier(), Some(&ParameterTier::Advanced));
    assert_eq!(m.version(), 1);
    assert_eq!(m.data_type(), Some("text"));
    assert_eq!(m.arn(), Some(crate::ssm_util::arn("/adv/one").as_str()));
    assert!(m.last_modified_date().is_some());
}

#[tokio::test]
async fn describe_parameters_refusals() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    tree(&ssm).await;
    let bad: Vec<(&str, Option<&str>, &[&str], &str)> = vec![
        ("Label", Some("Equals"), &["x"], "InvalidFilterKey"),
        ("Type", Some("Contains"), &["Str"], "InvalidFilterOption"),
        ("Path", Some("Equals"), &["/app"], "InvalidFilterOption"),
        ("Name", Some("Sometimes"), &["/app"], "InvalidFilterOption"),
        ("Tier", Some("Equals"), &["Gold"], "InvalidFilterValue"),
        ("Type", Some("Equals"), &["Number"], "InvalidFilterValue"),
    ];
    let mut wrong = Vec::new();
    for (k, o, v, want) in bad {
        let err = ssm
            .describe_parameters()
            .parameter_filters(filter(k, o, v))
            .send()
            .await
            .err()
            .map(|e| code(&e));
        if err.as_deref() != Some(want) {
            wrong.push(format!("{k} {o:?} {v:?}: got {err:?}, want {want}"));
        }
    }
    for max in [0, 51] {
        let err = ssm
            .describe_parameters()
            .max_results(max)
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "ValidationException");
    }
    // Filters and ParameterFilters are exclusive.
    let err = ssm
        .describe_parameters()
        .filters(
            ParametersFilter::builder()
                .key(ParametersFilterKey::Name)
                .values("/app/a")
                .build()
                .unwrap(),
        )
        .parameter_filters(filter("Type", Some("Equals"), &["String"]))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    let err = ssm
        .describe_parameters()
        .next_token("garbage")
        .send()
        .await
        .unwrap_err();
    let c = code(&err);
    assert!(c == "InvalidNextToken" || c == "ValidationException", "{c}");
    assert!(wrong.is_empty(), "{wrong:#?}");
}
