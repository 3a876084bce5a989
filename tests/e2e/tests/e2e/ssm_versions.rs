//! GetParameterHistory, LabelParameterVersion / UnlabelParameterVersion (label rules, moves,
//! ten per version), the 100-version cap, DeleteParameter(s).

use aws_sdk_ssm::Client;

use crate::harness::{TestServer, code};
use crate::ssm_util::{assert_code, client, overwrite, put_string, tag, value};

/// `(version, value, sorted labels)` for every history entry, all pages.
async fn history(ssm: &Client, name: &str) -> Vec<(i64, String, Vec<String>)> {
    let mut pages = ssm
        .get_parameter_history()
        .name(name)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for h in page.unwrap().parameters() {
            let mut labels = h.labels().to_vec();
            labels.sort();
            out.push((h.version(), h.value().unwrap().to_string(), labels));
        }
    }
    out
}

fn labels_of(h: &[(i64, String, Vec<String>)], version: i64) -> Vec<String> {
    h.iter()
        .find(|(v, _, _)| *v == version)
        .map(|(_, _, l)| l.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn history_lists_every_version_in_order() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/h/x", "one").await;
    overwrite(&ssm, "/h/x", "two").await;
    ssm.put_parameter()
        .name("/h/x")
        .value("three")
        .description("third")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let h = history(&ssm, "/h/x").await;
    let got: Vec<(i64, &str)> = h.iter().map(|(v, s, _)| (*v, s.as_str())).collect();
    assert_eq!(got, [(1, "one"), (2, "two"), (3, "three")]);

    let out = ssm
        .get_parameter_history()
        .name("/h/x")
        .max_results(2)
        .send()
        .await
        .unwrap();
    assert_eq!(out.parameters().len(), 2);
    assert!(out.next_token().is_some());
    let last = &out.parameters()[1];
    assert_eq!(last.name(), Some("/h/x"));
    assert!(last.last_modified_date().is_some());

    for max in [0, 51] {
        let err = ssm
            .get_parameter_history()
            .name("/h/x")
            .max_results(max)
            .send()
            .await
            .unwrap_err();
        assert_code(&err, "ValidationException");
    }
    let err = ssm
        .get_parameter_history()
        .name("/h/none")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterNotFound");
}

#[tokio::test]
async fn labels_attach_move_and_follow_the_rules() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/l/x", "one").await;
    overwrite(&ssm, "/l/x", "two").await;

    // Without ParameterVersion the latest version gets the label.
    let out = ssm
        .label_parameter_version()
        .name("/l/x")
        .labels("latest-l")
        .send()
        .await
        .unwrap();
    assert_eq!(out.parameter_version(), 2);
    assert!(out.invalid_labels().is_empty());

    let out = ssm
        .label_parameter_version()
        .name("/l/x")
        .parameter_version(1)
        .labels("prod")
        .labels("aws-reserved")
        .labels("SSMish")
        .labels("1st")
        .labels("has space")
        .labels("star*")
        .labels("Good_label.v-1")
        .send()
        .await
        .unwrap();
    assert_eq!(out.parameter_version(), 1);
    let mut invalid = out.invalid_labels().to_vec();
    invalid.sort();
    let mut want = vec![
        "aws-reserved".to_string(),
        "SSMish".into(),
        "1st".into(),
        "has space".into(),
        "star*".into(),
    ];
    want.sort();
    assert_eq!(invalid, want);
    let h = history(&ssm, "/l/x").await;
    assert_eq!(labels_of(&h, 1), ["Good_label.v-1", "prod"]);
    assert_eq!(labels_of(&h, 2), ["latest-l"]);

    // A label moves: version 2 takes `prod` from version 1.
    ssm.label_parameter_version()
        .name("/l/x")
        .parameter_version(2)
        .labels("prod")
        .send()
        .await
        .unwrap();
    let h = history(&ssm, "/l/x").await;
    assert_eq!(labels_of(&h, 1), ["Good_label.v-1"]);
    assert_eq!(labels_of(&h, 2), ["latest-l", "prod"]);
    assert_eq!(value(&ssm, "/l/x:prod").await, "two");

    let err = ssm
        .label_parameter_version()
        .name("/l/x")
        .parameter_version(7)
        .labels("l")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterVersionNotFound");
    let err = ssm
        .label_parameter_version()
        .name("/l/none")
        .labels("l")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterNotFound");
    // A label is at most 100 characters (the model's length constraint).
    let err = ssm
        .label_parameter_version()
        .name("/l/x")
        .labels("x".repeat(101))
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    ssm.label_parameter_version()
        .name("/l/x")
        .labels("x".repeat(100))
        .send()
        .await
        .unwrap();
    // At most ten labels per request (model: 1..10).
    let mut req = ssm.label_parameter_version().name("/l/x");
    for i in 0..11 {
        req = req.labels(format!("many{i}"));
    }
    assert_code(&req.send().await.unwrap_err(), "ValidationException");
}

#[tokio::test]
async fn a_version_holds_at_most_ten_labels() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/l/ten", "v").await;
    let mut req = ssm.label_parameter_version().name("/l/ten");
    for i in 0..10 {
        req = req.labels(format!("l{i}"));
    }
    req.send().await.unwrap();
    let err = ssm
        .label_parameter_version()
        .name("/l/ten")
        .labels("eleventh")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterVersionLabelLimitExceeded");
    assert_eq!(labels_of(&history(&ssm, "/l/ten").await, 1).len(), 10);
    // Relabelling with a label it already holds is not an eleventh.
    ssm.label_parameter_version()
        .name("/l/ten")
        .labels("l3")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn unlabel_removes_only_attached_labels() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/u/x", "one").await;
    overwrite(&ssm, "/u/x", "two").await;
    ssm.label_parameter_version()
        .name("/u/x")
        .parameter_version(1)
        .labels("a")
        .labels("b")
        .send()
        .await
        .unwrap();
    ssm.label_parameter_version()
        .name("/u/x")
        .parameter_version(2)
        .labels("c")
        .send()
        .await
        .unwrap();
    let out = ssm
        .unlabel_parameter_version()
        .name("/u/x")
        .parameter_version(1)
        .labels("a")
        .labels("c")
        .labels("zzz")
        .send()
        .await
        .unwrap();
    assert_eq!(out.removed_labels(), ["a"]);
    let mut invalid = out.invalid_labels().to_vec();
    invalid.sort();
    assert_eq!(invalid, ["c", "zzz"]);
    let h = history(&ssm, "/u/x").await;
    assert_eq!(labels_of(&h, 1), ["b"]);
    assert_eq!(labels_of(&h, 2), ["c"]);
    let err = ssm.get_parameter().name("/u/x:a").send().await.unwrap_err();
    let c = code(&err);
    assert!(
        c == "ParameterVersionNotFound" || c == "ParameterNotFound",
        "{c}"
    );

    let err = ssm
        .unlabel_parameter_version()
        .name("/u/x")
        .parameter_version(9)
        .labels("b")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterVersionNotFound");
    let err = ssm
        .unlabel_parameter_version()
        .name("/u/none")
        .parameter_version(1)
        .labels("b")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterNotFound");
}

#[tokio::test]
async fn history_keeps_the_last_hundred_versions() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/cap/x", "v1").await;
    for i in 2..=101 {
        assert_eq!(overwrite(&ssm, "/cap/x", &format!("v{i}")).await, i);
    }
    let h = history(&ssm, "/cap/x").await;
    assert_eq!(h.len(), 100);
    assert_eq!(h.first().map(|e| e.0), Some(2));
    assert_eq!(h.last().map(|e| (e.0, e.1.as_str())), Some((101, "v101")));
    let err = ssm
        .get_parameter()
        .name("/cap/x:1")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterVersionNotFound");
    assert_eq!(value(&ssm, "/cap/x:2").await, "v2");
}

#[tokio::test]
async fn a_labelled_oldest_version_blocks_the_hundred_and_first() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/cap/y", "v1").await;
    for i in 2..=100 {
        overwrite(&ssm, "/cap/y", &format!("v{i}")).await;
    }
    ssm.label_parameter_version()
        .name("/cap/y")
        .parameter_version(1)
        .labels("keep")
        .send()
        .await
        .unwrap();
    let err = ssm
        .put_parameter()
        .name("/cap/y")
        .value("v101")
        .overwrite(true)
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterMaxVersionLimitExceeded");
    assert_eq!(value(&ssm, "/cap/y").await, "v100");
    assert_eq!(value(&ssm, "/cap/y:keep").await, "v1");
    assert_eq!(history(&ssm, "/cap/y").await.len(), 100);

    // Moving the label off the oldest version lets the write through.
    ssm.label_parameter_version()
        .name("/cap/y")
        .parameter_version(50)
        .labels("keep")
        .send()
        .await
        .unwrap();
    assert_eq!(overwrite(&ssm, "/cap/y", "v101").await, 101);
    assert_eq!(value(&ssm, "/cap/y:keep").await, "v50");
}

#[tokio::test]
async fn delete_parameter_and_recreate_from_version_one() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    ssm.put_parameter()
        .name("/d/x")
        .value("one")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .tags(tag("env", "prod"))
        .send()
        .await
        .unwrap();
    overwrite(&ssm, "/d/x", "two").await;
    ssm.delete_parameter().name("/d/x").send().await.unwrap();
    assert_code(
        &ssm.get_parameter().name("/d/x").send().await.unwrap_err(),
        "ParameterNotFound",
    );
    assert_code(
        &ssm.delete_parameter()
            .name("/d/x")
            .send()
            .await
            .unwrap_err(),
        "ParameterNotFound",
    );
    assert_code(
        &ssm.get_parameter_history()
            .name("/d/x")
            .send()
            .await
            .unwrap_err(),
        "ParameterNotFound",
    );
    // A new parameter of the same name starts over, without the old tags.
    assert_eq!(put_string(&ssm, "/d/x", "fresh").await, 1);
    assert_eq!(history(&ssm, "/d/x").await.len(), 1);
    let tags = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id("/d/x")
        .send()
        .await
        .unwrap();
    assert!(tags.tag_list().is_empty());
}

#[tokio::test]
async fn delete_parameters_reports_deleted_and_invalid() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    for n in ["/dd/a", "/dd/b", "/dd/c"] {
        put_string(&ssm, n, "v").await;
    }
    let out = ssm
        .delete_parameters()
        .names("/dd/a")
        .names("/dd/missing")
        .names("/dd/c")
        .send()
        .await
        .unwrap();
    let mut deleted = out.deleted_parameters().to_vec();
    deleted.sort();
    assert_eq!(deleted, ["/dd/a", "/dd/c"]);
    assert_eq!(out.invalid_parameters(), ["/dd/missing"]);
    assert_eq!(value(&ssm, "/dd/b").await, "v");
    assert_code(
        &ssm.get_parameter().name("/dd/a").send().await.unwrap_err(),
        "ParameterNotFound",
    );

    let mut req = ssm.delete_parameters();
    for i in 0..11 {
        req = req.names(format!("/dd/n{i}"));
    }
    assert_code(&req.send().await.unwrap_err(), "ValidationException");
    assert_eq!(value(&ssm, "/dd/b").await, "v");
}
