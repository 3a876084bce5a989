//! GetRandomPassword: the default, every option, and the invalid combinations.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::get_random_password::builders::GetRandomPasswordFluentBuilder;

use crate::harness::TestServer;
use crate::secrets_util::{INVALID, assert_code_in, client};

const PUNCTUATION: &str = r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##;

fn is_punct(c: char) -> bool {
    PUNCTUATION.contains(c)
}

async fn pw(req: GetRandomPasswordFluentBuilder) -> String {
    req.send()
        .await
        .unwrap()
        .random_password()
        .expect("a password")
        .to_string()
}

fn req(sm: &Client) -> GetRandomPasswordFluentBuilder {
    sm.get_random_password()
}

#[tokio::test]
async fn default_is_32_characters_of_every_class() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    for _ in 0..20 {
        let p = pw(req(&sm)).await;
        assert_eq!(p.chars().count(), 32);
        assert!(
            p.chars().all(|c| c.is_ascii_alphanumeric() || is_punct(c)),
            "unexpected character"
        );
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert!(p.chars().any(is_punct));
        assert!(!p.contains(' '), "spaces only on request");
    }
    let a = pw(req(&sm)).await;
    let b = pw(req(&sm)).await;
    assert_ne!(a, b);
}

#[tokio::test]
async fn length_bounds() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    assert_eq!(pw(req(&sm).password_length(4096)).await.len(), 4096);
    // A single character cannot hold every class unless only one is asked for.
    let one = pw(req(&sm)
        .password_length(1)
        .exclude_numbers(true)
        .exclude_punctuation(true)
        .exclude_uppercase(true))
    .await;
    assert!(one.len() == 1 && one.chars().all(|c| c.is_ascii_lowercase()));
    assert_eq!(pw(req(&sm).password_length(4)).await.len(), 4);
    for bad in [0, 4097, -1] {
        let e = req(&sm).password_length(bad).send().await.unwrap_err();
        assert_code_in(&e, INVALID);
    }
}

#[tokio::test]
async fn each_exclusion_removes_its_class() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let p = pw(req(&sm).password_length(4096).exclude_numbers(true)).await;
    assert!(!p.chars().any(|c| c.is_ascii_digit()));
    assert!(p.chars().any(|c| c.is_ascii_uppercase()) && p.chars().any(is_punct));

    let p = pw(req(&sm).password_length(4096).exclude_punctuation(true)).await;
    assert!(!p.chars().any(is_punct));
    assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));

    let p = pw(req(&sm).password_length(4096).exclude_uppercase(true)).await;
    assert!(!p.chars().any(|c| c.is_ascii_uppercase()));
    assert!(p.chars().any(|c| c.is_ascii_lowercase()));

    let p = pw(req(&sm).password_length(4096).exclude_lowercase(true)).await;
    assert!(!p.chars().any(|c| c.is_ascii_lowercase()));
    assert!(p.chars().any(|c| c.is_ascii_uppercase()));

    let p = pw(req(&sm)
        .password_length(64)
        .exclude_numbers(true)
        .exclude_punctuation(true)
        .exclude_uppercase(true))
    .await;
    assert!(
        p.chars().all(|c| c.is_ascii_lowercase()),
        "only lowercase remains"
    );
}

#[tokio::test]
async fn exclude_characters() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let excluded = "aeiouAEIOU0123\"'\\/@ ";
    let p = pw(req(&sm).password_length(4096).exclude_characters(excluded)).await;
    assert_eq!(p.len(), 4096);
    assert!(!p.chars().any(|c| excluded.contains(c)));
    // Excluding every punctuation character by hand works like ExcludePunctuation.
    let p = pw(req(&sm)
        .password_length(512)
        .exclude_characters(PUNCTUATION))
    .await;
    assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
    // Excluding a whole class while requiring each class: refused, or no digit anyway.
    match req(&sm)
        .exclude_characters("0123456789")
        .require_each_included_type(true)
        .send()
        .await
    {
        Ok(out) => assert!(
            !out.random_password()
                .unwrap_or_default()
                .chars()
                .any(|c| c.is_ascii_digit())
        ),
        Err(e) => assert_code_in(&e, INVALID),
    }
}

#[tokio::test]
async fn include_space() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let p = pw(req(&sm).password_length(4096).include_space(true)).await;
    assert!(
        p.contains(' '),
        "4096 characters with space allowed and none was a space"
    );
    let p = pw(req(&sm).password_length(4096).include_space(false)).await;
    assert!(!p.contains(' '));
}

#[tokio::test]
async fn require_each_included_type() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    for _ in 0..50 {
        let p = pw(req(&sm).password_length(4).require_each_included_type(true)).await;
        assert!(p.chars().any(|c| c.is_ascii_uppercase()), "{}", p.len());
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert!(p.chars().any(is_punct));
    }
    // Three characters cannot hold four required types.
    let e = req(&sm)
        .password_length(3)
        .require_each_included_type(true)
        .send()
        .await
        .unwrap_err();
    assert_code_in(&e, INVALID);
    // Without the requirement a short password is fine.
    assert_eq!(
        pw(req(&sm)
            .password_length(3)
            .require_each_included_type(false))
        .await
        .len(),
        3
    );
}

#[tokio::test]
async fn nothing_left_to_choose_from_is_invalid() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let e = req(&sm)
        .exclude_numbers(true)
        .exclude_punctuation(true)
        .exclude_uppercase(true)
        .exclude_lowercase(true)
        .send()
        .await
        .unwrap_err();
    assert_code_in(&e, INVALID);
    let e = req(&sm)
        .exclude_numbers(true)
        .exclude_punctuation(true)
        .exclude_uppercase(true)
        .exclude_characters("abcdefghijklmnopqrstuvwxyz")
        .send()
        .await
        .unwrap_err();
    assert_code_in(&e, INVALID);
    let e = req(&sm)
        .exclude_characters("x".repeat(4097))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&e, INVALID);
}
