//! What only a PostgreSQL store shows: the store outlives a server and is shared by servers
//! (run in both passes, each test with a database of its own; skipped with a notice when no
//! PostgreSQL answers, failed under CI).

use coffer_audit::verify::verify;
use coffer_server::ServerConfig;
use coffer_store::Store;
use coffer_store::postgres::{PgStore, scratch::ScratchDb};

use crate::harness::TestServer;

async fn start(config: ServerConfig) -> TestServer {
    TestServer {
        server: coffer_server::start(config).await.expect("server starts"),
        clock: coffer_core::ManualClock::new(),
        _dir: None,
        _db: None,
    }
}

fn config_on(db: &ScratchDb, dev: bool, dir: Option<&std::path::Path>) -> ServerConfig {
    let mut c = ServerConfig::dev();
    c.listen = coffer_server::ephemeral();
    c.dev = dev;
    c.database_url = Some(db.url().to_string());
    c.data_dir = dir.map(|d| d.to_path_buf());
    if !dev {
        c.root_credentials = Some(coffer_server::RootCredentials {
            access_key_id: coffer_server::DEV_ACCESS_KEY_ID.into(),
            secret_access_key: coffer_server::DEV_SECRET_ACCESS_KEY.into(),
        });
    }
    c
}

#[tokio::test]
async fn the_database_survives_a_restart_holds_no_plaintext_and_one_audit_chain() {
    let Some(db) = ScratchDb::create("e2e_restart").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let marker = "PG-PLAINTEXT-MARKER-5e1f0a";
    let s = start(config_on(&db, false, Some(dir.path()))).await;
    s.sm()
        .create_secret()
        .name("db/password")
        .secret_string(marker)
        .send()
        .await
        .unwrap();
    s.ssm()
        .put_parameter()
        .name("/pg/secure")
        .value(marker)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    s.server.shutdown().await;

    // The same database and auto-unseal key file: unsealed, with everything in place.
    let s = start(config_on(&db, false, Some(dir.path()))).await;
    let got = s
        .sm()
        .get_secret_value()
        .secret_id("db/password")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some(marker));
    let p = s
        .ssm()
        .get_parameter()
        .name("/pg/secure")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(p.parameter().unwrap().value(), Some(marker));
    let key = s.audit_key();
    let trail = s.server.audit().read_trail().await.unwrap();
    let report = verify(&trail, &key);
    assert!(report.ok(), "{report:?}");
    assert!(trail.entries.len() >= 4, "both servers' calls in one chain");
    s.server.shutdown().await;

    let store = PgStore::connect(db.url()).await.unwrap();
    let rows = store.scan(b"", &[0xff; 8], usize::MAX).await.unwrap();
    assert!(rows.len() > 10);
    for (k, e) in rows {
        assert!(
            !e.value
                .windows(marker.len())
                .any(|w| w == marker.as_bytes()),
            "plaintext in row {}",
            String::from_utf8_lossy(&k)
        );
    }
    // Nothing of the store went to the data directory: it holds the auto-unseal key only.
    assert!(!dir.path().join(coffer_store::embedded::DB_FILE).exists());
}

#[tokio::test]
async fn two_dev_servers_on_one_database_read_each_others_writes() {
    let Some(db) = ScratchDb::create("e2e_two_nodes").await else {
        return;
    };
    let a = start(config_on(&db, true, None)).await;
    let b = start(config_on(&db, true, None)).await;
    a.sm()
        .create_secret()
        .name("shared")
        .secret_string("from-a")
        .send()
        .await
        .unwrap();
    let read = b.sm().get_secret_value().secret_id("shared").send().await;
    assert_eq!(read.unwrap().secret_string(), Some("from-a"));
    b.sm()
        .put_secret_value()
        .secret_id("shared")
        .secret_string("from-b")
        .send()
        .await
        .unwrap();
    let read = a.sm().get_secret_value().secret_id("shared").send().await;
    assert_eq!(read.unwrap().secret_string(), Some("from-b"));
    let prev = a
        .sm()
        .get_secret_value()
        .secret_id("shared")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(prev.secret_string(), Some("from-a"));
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start() {
    let mut c = ServerConfig::dev();
    c.listen = coffer_server::ephemeral();
    c.database_url = Some("postgres://coffer:pw-not-shown@127.0.0.1:1/coffer".into());
    let err = coffer_server::start(c).await.err().expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot connect to PostgreSQL at 127.0.0.1:1/coffer"),
        "{msg}"
    );
    assert!(!msg.contains("pw-not-shown"), "{msg}");
}

#[tokio::test]
async fn migrate_moves_a_deployment_to_postgres_and_back() {
    use coffer_server::migrate::{Location, migrate};
    let Some(db) = ScratchDb::create("e2e_migrate").await else {
        return;
    };
    let (dir, back) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let back_dir = back.path().join("data");
    let embedded = Location::Embedded(dir.path().to_path_buf());
    let pg = Location::Postgres(db.url().to_string());

    let s = TestServer::durable_at(dir.path(), |_| {}).await;
    s.sm()
        .create_secret()
        .name("moved")
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    s.sm()
        .put_secret_value()
        .secret_id("moved")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    let refused = migrate(&embedded, &pg).await.unwrap_err().to_string();
    assert!(
        refused.contains("in use"),
        "a running source is refused: {refused}"
    );
    s.server.shutdown().await;

    let to_pg = migrate(&embedded, &pg).await.unwrap();
    assert!(to_pg.copied.keys > 10);
    assert!(
        to_pg.audit_records >= 2 && to_pg.audit_digests >= 1,
        "{to_pg:?}"
    );
    let again = migrate(&embedded, &pg).await.unwrap_err().to_string();
    assert!(again.contains("not empty"), "{again}");

    // A server on the database, its data directory holding a copy of the auto-unseal key file
    // (README: the default key file is read from each server's own data directory).
    let key_file = dir.path().join(coffer_server::AUTO_UNSEAL_KEY_FILE);
    std::fs::copy(
        &key_file,
        back.path().join(coffer_server::AUTO_UNSEAL_KEY_FILE),
    )
    .unwrap();
    let s = start(config_on(&db, false, Some(back.path()))).await;
    let got = s
        .sm()
        .get_secret_value()
        .secret_id("moved")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("v2"));
    let prev = s
        .sm()
        .get_secret_value()
        .secret_id("moved")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(prev.secret_string(), Some("v1"));
    let key = s.audit_key();
    let trail = s.server.audit().read_trail().await.unwrap();
    assert!(verify(&trail, &key).ok(), "the moved chain continues");
    assert!(trail.entries.len() > to_pg.audit_records);
    s.server.shutdown().await;

    let to_embedded = migrate(&pg, &Location::Embedded(back_dir.clone()))
        .await
        .unwrap();
    assert!(to_embedded.audit_records > to_pg.audit_records);
    std::fs::copy(
        &key_file,
        back_dir.join(coffer_server::AUTO_UNSEAL_KEY_FILE),
    )
    .unwrap();
    let s = TestServer::durable_at(&back_dir, |_| {}).await;
    let got = s
        .sm()
        .get_secret_value()
        .secret_id("moved")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("v2"));
    s.server.shutdown().await;
    let (trail, _) = coffer_audit::log::read_data_dir(&back_dir).unwrap();
    let report = verify(&trail, &key);
    assert!(report.ok(), "{report:?}");
    assert!(report.records > to_embedded.audit_records);
}
