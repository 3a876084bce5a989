//! What only the PostgreSQL engine has: schema migrations shared by several nodes, connection
//! settings and failures. The store contract itself is in `contract.rs`.

use coffer_store::postgres::{PgStore, scratch::ScratchDb};
use coffer_store::{Store, StoreError, WriteBatch};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_migrate_once() {
    let Some(db) = ScratchDb::create("migrate_race").await else {
        return;
    };
    let starts: Vec<_> = (0..6)
        .map(|_| {
            let url = db.url().to_string();
            tokio::spawn(async move { PgStore::connect_with(&url, 2).await })
        })
        .collect();
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().expect("every node starts"));
    }
    let n: i64 = sqlx_count(&db, "SELECT count(*) FROM coffer_schema_migrations").await;
    assert_eq!(n, 2, "every migration once");
    // A write through one node is read by another at once (no cache in between).
    let mut b = WriteBatch::new();
    b.put(b"k".to_vec(), b"v".to_vec());
    let v = stores[0].commit(b).await.unwrap();
    let e = stores[5].get(b"k").await.unwrap().unwrap();
    assert_eq!((e.version, &e.value[..]), (v, &b"v"[..]));
}

#[tokio::test]
async fn a_schema_from_a_newer_build_is_refused() {
    let Some(db) = ScratchDb::create("migrate_newer").await else {
        return;
    };
    drop(PgStore::connect(db.url()).await.unwrap());
    sqlx_exec(
        &db,
        "INSERT INTO coffer_schema_migrations (version, description, sql_hash) VALUES (999, 'x', 0)",
    )
    .await;
    let err = PgStore::connect(db.url()).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("newer")),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let err = PgStore::connect("postgres://coffer:hunter2-secret@127.0.0.1:1/coffer")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{msg}");
    assert!(msg.contains("127.0.0.1:1/coffer"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    let bad = PgStore::connect("postgres://u:hunter2@[::1/x")
        .await
        .unwrap_err();
    assert!(!bad.to_string().contains("hunter2"), "{bad}");
}

#[tokio::test]
async fn sslmode_in_the_url_chooses_tls() {
    let Some(db) = ScratchDb::create("sslmode").await else {
        return;
    };
    let with = |mode: &str| format!("{}?sslmode={mode}", db.url());
    let ssl_on: bool = {
        let s = PgStore::connect(&with("disable")).await.unwrap();
        let mut b = WriteBatch::new();
        b.put(b"a".to_vec(), b"1".to_vec());
        s.commit(b).await.unwrap();
        sqlx_count(
            &db,
            "SELECT count(*) FROM pg_settings WHERE name = 'ssl' AND setting = 'on'",
        )
        .await
            == 1
    };
    let required = PgStore::connect(&with("require")).await;
    if ssl_on {
        let s = required.expect("TLS connection");
        assert!(s.get(b"a").await.unwrap().is_some());
        let tls: i64 = sqlx_count(
            &db,
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE s.ssl AND a.application_name = 'coffer'",
        )
        .await;
        assert!(tls >= 1, "the pool's connections use TLS");
    } else {
        assert!(matches!(required, Err(StoreError::Unavailable(_))));
    }
}

async fn admin(db: &ScratchDb) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&format!("{}?sslmode=disable", db.url()))
        .await
        .unwrap()
}

async fn sqlx_count(db: &ScratchDb, sql: &'static str) -> i64 {
    let mut c = admin(db).await;
    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
}

async fn sqlx_exec(db: &ScratchDb, sql: &'static str) {
    let mut c = admin(db).await;
    sqlx::query(sql).execute(&mut c).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_connections_fail_as_unavailable_and_the_pool_recovers() {
    let Some(db) = ScratchDb::create("reconnect").await else {
        return;
    };
    let store = PgStore::connect_with(db.url(), 3).await.unwrap();
    let mut b = WriteBatch::new();
    b.put(b"k".to_vec(), b"before".to_vec());
    store.commit(b).await.unwrap();
    // What a database restart does to the clients: every server connection ends.
    let killed: i64 = sqlx_count(
        &db,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND application_name = 'coffer'",
    )
    .await;
    assert!(killed >= 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut b = WriteBatch::new();
        b.put(b"k".to_vec(), b"after".to_vec());
        match store.commit(b).await {
            Ok(_) => break,
            Err(StoreError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("not recovered or not unavailable: {e}"),
        }
    }
    assert_eq!(&store.get(b"k").await.unwrap().unwrap().value[..], b"after");
}
