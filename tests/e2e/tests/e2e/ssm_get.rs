//! GetParameter and GetParameters: decryption, ARNs, `name:version` / `name:label` selectors,
//! the ten-name limit and InvalidParameters.

use aws_sdk_ssm::types::ParameterType;

use crate::harness::{TestServer, code};
use crate::ssm_util::{arn, assert_code, client, overwrite, put_secure, put_string};

/// Three versions (`one`, `two`, `three`) with label `prod` on version 2.
async fn three_versions(ssm: &aws_sdk_ssm::Client, name: &str) {
    put_string(ssm, name, "one").await;
    overwrite(ssm, name, "two").await;
    overwrite(ssm, name, "three").await;
    ssm.label_parameter_version()
        .name(name)
        .parameter_version(2)
        .labels("prod")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn get_by_arn_and_with_decryption_ignored_for_strings() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/g/plain", "hello").await;
    put_string(&ssm, "flat-name", "flat").await;
    for with in [false, true] {
        let got = ssm
            .get_parameter()
            .name(arn("/g/plain"))
            .with_decryption(with)
            .send()
            .await
            .unwrap();
        let p = got.parameter().unwrap();
        assert_eq!(p.name(), Some("/g/plain"));
        assert_eq!(p.value(), Some("hello"));
    }
    let got = ssm
        .get_parameter()
        .name(arn("flat-name"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.parameter().unwrap().value(), Some("flat"));
    assert_eq!(
        got.parameter().unwrap().arn(),
        Some(arn("flat-name").as_str())
    );

    let err = ssm
        .get_parameter()
        .name("/g/missing")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterNotFound");
    // Spaces between characters: ValidationException (API reference).
    let err = ssm
        .get_parameter()
        .name("/g/pl ain")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ValidationException");
    // Names are case sensitive.
    let err = ssm
        .get_parameter()
        .name("/G/plain")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterNotFound");
}

#[tokio::test]
async fn version_and_label_selectors() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    three_versions(&ssm, "/sel/x").await;

    let cases = [
        ("/sel/x", "three", 3, None),
        ("/sel/x:1", "one", 1, Some(":1")),
        ("/sel/x:2", "two", 2, Some(":2")),
        ("/sel/x:prod", "two", 2, Some(":prod")),
    ];
    for (name, want, version, selector) in cases {
        let got = ssm.get_parameter().name(name).send().await.unwrap();
        let p = got.parameter().unwrap();
        assert_eq!(p.value(), Some(want), "{name}");
        assert_eq!(p.version(), version, "{name}");
        assert_eq!(p.name(), Some("/sel/x"), "{name}");
        assert_eq!(p.selector(), selector, "{name}");
    }

    let err = ssm
        .get_parameter()
        .name("/sel/x:9")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterVersionNotFound");
    let err = ssm
        .get_parameter()
        .name("/sel/x:nolabel")
        .send()
        .await
        .unwrap_err();
    let c = code(&err);
    assert!(
        c == "ParameterVersionNotFound" || c == "ParameterNotFound",
        "{c}"
    );
    let err = ssm
        .get_parameter()
        .name("/sel/missing:1")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterNotFound");

    // Selectors in GetParameters too.
    let got = ssm
        .get_parameters()
        .names("/sel/x:1")
        .names("/sel/x:prod")
        .send()
        .await
        .unwrap();
    let mut vals: Vec<(&str, Option<&str>)> = got
        .parameters()
        .iter()
        .map(|p| (p.value().unwrap(), p.selector()))
        .collect();
    vals.sort();
    assert_eq!(vals, [("one", Some(":1")), ("two", Some(":prod"))]);
    assert!(got.invalid_parameters().is_empty());
}

#[tokio::test]
async fn get_parameters_reports_unknown_names() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_string(&ssm, "/m/b", "B").await;
    put_string(&ssm, "/m/a", "A").await;
    put_secure(&ssm, "/m/c", "C-secret").await;

    let got = ssm
        .get_parameters()
        .names("/m/c")
        .names("/m/nope")
        .names("/m/a")
        .names("/m/b")
        .names("/m/x:1")
        .send()
        .await
        .unwrap();
    let names: Vec<&str> = got.parameters().iter().map(|p| p.name().unwrap()).collect();
    // "The results for GetParameters requests are listed in alphabetical order."
    assert_eq!(names, ["/m/a", "/m/b", "/m/c"]);
    let mut invalid = got.invalid_parameters().to_vec();
    invalid.sort();
    assert_eq!(invalid, ["/m/nope", "/m/x:1"]);
    let c = &got.parameters()[2];
    assert_eq!(c.r#type(), Some(&ParameterType::SecureString));
    assert_ne!(c.value(), Some("C-secret"));

    let got = ssm
        .get_parameters()
        .names("/m/c")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(got.parameters()[0].value(), Some("C-secret"));

    // At most ten names.
    let mut req = ssm.get_parameters();
    for i in 0..11 {
        req = req.names(format!("/m/n{i}"));
    }
    assert_code(&req.send().await.unwrap_err(), "ValidationException");
    let mut req = ssm.get_parameters();
    for i in 0..10 {
        req = req.names(format!("/m/n{i}"));
    }
    assert_eq!(req.send().await.unwrap().invalid_parameters().len(), 10);
}

#[tokio::test]
async fn secure_string_history_and_versions_hide_plaintext_without_decryption() {
    let s = TestServer::dev().await;
    let ssm = client(&s);
    put_secure(&ssm, "/sec/x", "first-secret").await;
    ssm.put_parameter()
        .name("/sec/x")
        .value("second-secret")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let old = ssm.get_parameter().name("/sec/x:1").send().await.unwrap();
    assert_ne!(old.parameter().unwrap().value(), Some("first-secret"));
    let old = ssm
        .get_parameter()
        .name("/sec/x:1")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(old.parameter().unwrap().value(), Some("first-secret"));
    // The update kept the type.
    assert_eq!(
        old.parameter().unwrap().r#type(),
        Some(&ParameterType::SecureString)
    );

    let hist = ssm
        .get_parameter_history()
        .name("/sec/x")
        .send()
        .await
        .unwrap();
    for h in hist.parameters() {
        let v = h.value().unwrap();
        assert!(!v.contains("secret"), "history leaked {v}");
        assert_eq!(h.key_id(), Some("alias/aws/ssm"));
    }
    let hist = ssm
        .get_parameter_history()
        .name("/sec/x")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let vals: Vec<&str> = hist
        .parameters()
        .iter()
        .map(|h| h.value().unwrap())
        .collect();
    assert_eq!(vals, ["first-secret", "second-secret"]);
}

#[tokio::test]
async fn durable_store_serves_parameters_and_fires_expiration() {
    let s = TestServer::durable().await;
    let ssm = client(&s);
    put_secure(&ssm, "/dur/a", "alpha-secret").await;
    put_string(&ssm, "/dur/b", "beta").await;
    overwrite(&ssm, "/dur/b", "beta2").await;
    let got = ssm
        .get_parameters_by_path()
        .path("/dur")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let mut vals: Vec<(&str, &str, i64)> = got
        .parameters()
        .iter()
        .map(|p| (p.name().unwrap(), p.value().unwrap(), p.version()))
        .collect();
    vals.sort();
    assert_eq!(
        vals,
        [("/dur/a", "alpha-secret", 1), ("/dur/b", "beta2", 2)]
    );
    let plain = ssm.get_parameter().name("/dur/a").send().await.unwrap();
    assert_ne!(plain.parameter().unwrap().value(), Some("alpha-secret"));

    let ts = aws_smithy_types::DateTime::from_millis(
        coffer_core::Clock::now_millis(s.clock.as_ref()) + 60_000,
    )
    .fmt(aws_smithy_types::date_time::Format::DateTime)
    .unwrap();
    ssm.put_parameter()
        .name("/dur/exp")
        .value("v")
        .r#type(ParameterType::String)
        .tier(aws_sdk_ssm::types::ParameterTier::Advanced)
        .policies(format!(
            r#"[{{"Type":"Expiration","Version":"1.0","Attributes":{{"Timestamp":"{ts}"}}}}]"#
        ))
        .send()
        .await
        .unwrap();
    s.clock.advance(std::time::Duration::from_secs(120));
    s.server.run_background_jobs().await;
    let err = ssm
        .get_parameter()
        .name("/dur/exp")
        .send()
        .await
        .unwrap_err();
    assert_code(&err, "ParameterNotFound");
    assert_eq!(
        ssm.get_parameter()
            .name("/dur/b:1")
            .send()
            .await
            .unwrap()
            .parameter()
            .unwrap()
            .value(),
        Some("beta")
    );
}
