//! Multi-Region secrets: ReplicateSecretToRegions, RemoveRegionsFromReplication,
//! StopReplicationToReplica, and how replicas behave.

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::types::{ReplicaRegionType, StatusType};

use crate::harness::{TestServer, code};
use crate::secrets_util::{ACCOUNT, assert_code_in, client, client_in, tag};

fn region(r: &str) -> ReplicaRegionType {
    ReplicaRegionType::builder().region(r).build()
}

/// Replication status per region, from DescribeSecret on the primary.
async fn statuses(sm: &Client, id: &str) -> Vec<(String, StatusType)> {
    let d = sm.describe_secret().secret_id(id).send().await.unwrap();
    let mut out: Vec<_> = d
        .replication_status()
        .iter()
        .map(|r| {
            (
                r.region().unwrap_or_default().to_string(),
                r.status().cloned().expect("status"),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn replicated(s: &TestServer, name: &str, regions: &[&str]) -> (Client, String) {
    let sm = client(s);
    let arn = sm
        .create_secret()
        .name(name)
        .secret_string("v1")
        .tags(tag("k", "v"))
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string();
    let mut req = sm.replicate_secret_to_regions().secret_id(name);
    for r in regions {
        req = req.add_replica_regions(region(r));
    }
    let out = req.send().await.unwrap();
    assert_eq!(out.arn(), Some(arn.as_str()));
    assert_eq!(out.replication_status().len(), regions.len());
    s.server.run_background_jobs().await;
    (sm, arn)
}

#[tokio::test]
async fn replica_is_readable_in_the_other_region() {
    let s = TestServer::dev().await;
    let (sm, arn) = replicated(&s, "multi", &["us-west-2", "eu-central-1"]).await;
    let st = statuses(&sm, "multi").await;
    assert_eq!(
        st,
        vec![
            ("eu-central-1".to_string(), StatusType::InSync),
            ("us-west-2".to_string(), StatusType::InSync)
        ]
    );
    let d = sm
        .describe_secret()
        .secret_id("multi")
        .send()
        .await
        .unwrap();
    assert_eq!(d.primary_region(), Some("us-east-1"));

    let west = client_in(&s, "us-west-2");
    let got = west
        .get_secret_value()
        .secret_id("multi")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("v1"));
    // Same name and suffix; only the region differs.
    let replica_arn = arn.replace(":us-east-1:", ":us-west-2:");
    assert!(replica_arn.starts_with(&format!(
        "arn:aws:secretsmanager:us-west-2:{ACCOUNT}:secret:multi-"
    )));
    assert_eq!(got.arn(), Some(replica_arn.as_str()));
    let by_arn = west
        .get_secret_value()
        .secret_id(&replica_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(by_arn.secret_string(), Some("v1"));
    let rd = west
        .describe_secret()
        .secret_id("multi")
        .send()
        .await
        .unwrap();
    assert_eq!(rd.primary_region(), Some("us-east-1"));
    assert!(
        rd.tags().iter().any(|t| t.key() == Some("k")),
        "tags are replicated"
    );
    assert_eq!(
        west.list_secrets()
            .send()
            .await
            .unwrap()
            .secret_list()
            .iter()
            .filter(|e| e.name() == Some("multi"))
            .count(),
        1
    );
    // A region without a replica knows nothing of it.
    let e = client_in(&s, "ap-southeast-2")
        .get_secret_value()
        .secret_id("multi")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
}

#[tokio::test]
async fn replica_follows_primary_writes() {
    let s = TestServer::dev().await;
    let (sm, _) = replicated(&s, "follow", &["us-west-2"]).await;
    let west = client_in(&s, "us-west-2");
    let v2 = sm
        .put_secret_value()
        .secret_id("follow")
        .secret_string("v2")
        .send()
        .await
        .unwrap();
    sm.update_secret()
        .secret_id("follow")
        .description("changed")
        .send()
        .await
        .unwrap();
    sm.tag_resource()
        .secret_id("follow")
        .tags(tag("added", "later"))
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;

    let got = west
        .get_secret_value()
        .secret_id("follow")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("v2"));
    assert_eq!(got.version_id(), v2.version_id());
    let prev = west
        .get_secret_value()
        .secret_id("follow")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(prev.secret_string(), Some("v1"));
    let d = west
        .describe_secret()
        .secret_id("follow")
        .send()
        .await
        .unwrap();
    assert_eq!(d.description(), Some("changed"));
    assert!(d.tags().iter().any(|t| t.key() == Some("added")));
}

#[tokio::test]
async fn writes_to_a_replica_are_refused() {
    let s = TestServer::dev().await;
    let (sm, _) = replicated(&s, "ro", &["us-west-2"]).await;
    let west = client_in(&s, "us-west-2");
    let e = west
        .put_secret_value()
        .secret_id("ro")
        .secret_string("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = west
        .update_secret()
        .secret_id("ro")
        .secret_string("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = west
        .update_secret()
        .secret_id("ro")
        .description("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = west
        .delete_secret()
        .secret_id("ro")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    let e = west
        .tag_resource()
        .secret_id("ro")
        .tags(tag("x", "y"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    // Creating a secret with the replica's name in its region clashes.
    let e = west
        .create_secret()
        .name("ro")
        .secret_string("x")
        .send()
        .await
        .unwrap_err();
    assert_code_in(&e, &["ResourceExistsException", "InvalidRequestException"]);
    assert_eq!(
        west.get_secret_value()
            .secret_id("ro")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v1")
    );
    assert_eq!(
        sm.get_secret_value()
            .secret_id("ro")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v1")
    );

    // The primary cannot be deleted while it has replicas.
    let e = sm.delete_secret().secret_id("ro").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidRequestException");
    // StopReplicationToReplica is called on the replica, not the primary.
    let e = sm
        .stop_replication_to_replica()
        .secret_id("ro")
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &e,
        &["InvalidRequestException", "InvalidParameterException"],
    );
}

#[tokio::test]
async fn remove_regions_deletes_the_replica() {
    let s = TestServer::dev().await;
    let (sm, arn) = replicated(&s, "rm", &["us-west-2", "eu-west-1"]).await;
    let out = sm
        .remove_regions_from_replication()
        .secret_id("rm")
        .remove_replica_regions("us-west-2")
        .send()
        .await
        .unwrap();
    assert_eq!(out.arn(), Some(arn.as_str()));
    assert!(
        out.replication_status()
            .iter()
            .all(|r| r.region() != Some("us-west-2"))
    );
    s.server.run_background_jobs().await;
    let e = client_in(&s, "us-west-2")
        .get_secret_value()
        .secret_id("rm")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    assert_eq!(
        statuses(&sm, "rm").await,
        vec![("eu-west-1".to_string(), StatusType::InSync)]
    );
    client_in(&s, "eu-west-1")
        .get_secret_value()
        .secret_id("rm")
        .send()
        .await
        .unwrap();

    sm.remove_regions_from_replication()
        .secret_id("rm")
        .remove_replica_regions("eu-west-1")
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;
    assert!(statuses(&sm, "rm").await.is_empty());
    // With no replicas left the primary can be deleted, and the name is free in the old regions.
    sm.delete_secret()
        .secret_id("rm")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    client_in(&s, "eu-west-1")
        .create_secret()
        .name("rm")
        .secret_string("local")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn stop_replication_promotes_the_replica() {
    let s = TestServer::dev().await;
    let (sm, _) = replicated(&s, "promote", &["us-west-2"]).await;
    let west = client_in(&s, "us-west-2");
    let out = west
        .stop_replication_to_replica()
        .secret_id("promote")
        .send()
        .await
        .unwrap();
    assert!(out.arn().is_some_and(|a| a.contains(":us-west-2:")));
    s.server.run_background_jobs().await;

    // The primary no longer lists it; the former replica is standalone and writable.
    assert!(statuses(&sm, "promote").await.is_empty());
    let d = west
        .describe_secret()
        .secret_id("promote")
        .send()
        .await
        .unwrap();
    assert_ne!(d.primary_region(), Some("us-east-1"));
    west.put_secret_value()
        .secret_id("promote")
        .secret_string("west")
        .send()
        .await
        .unwrap();
    // Writes no longer cross in either direction.
    sm.put_secret_value()
        .secret_id("promote")
        .secret_string("east")
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;
    assert_eq!(
        west.get_secret_value()
            .secret_id("promote")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("west")
    );
    assert_eq!(
        sm.get_secret_value()
            .secret_id("promote")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("east")
    );
    // And the primary can now be deleted.
    sm.delete_secret()
        .secret_id("promote")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn create_with_replica_regions() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let out = sm
        .create_secret()
        .name("born-global")
        .secret_string("g")
        .add_replica_regions(region("us-west-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.replication_status().len(), 1);
    assert_eq!(out.replication_status()[0].region(), Some("us-west-1"));
    s.server.run_background_jobs().await;
    let got = client_in(&s, "us-west-1")
        .get_secret_value()
        .secret_id("born-global")
        .send()
        .await
        .unwrap();
    assert_eq!(got.secret_string(), Some("g"));
}

#[tokio::test]
async fn existing_secret_in_the_target_region() {
    let s = TestServer::dev().await;
    let sm = client(&s);
    let west = client_in(&s, "us-west-2");
    sm.create_secret()
        .name("clash")
        .secret_string("primary")
        .send()
        .await
        .unwrap();
    west.create_secret()
        .name("clash")
        .secret_string("local")
        .send()
        .await
        .unwrap();

    // Without ForceOverwriteReplicaSecret the replica fails and the local secret is untouched.
    sm.replicate_secret_to_regions()
        .secret_id("clash")
        .add_replica_regions(region("us-west-2"))
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;
    let d = sm
        .describe_secret()
        .secret_id("clash")
        .send()
        .await
        .unwrap();
    let r = &d.replication_status()[0];
    assert_eq!(r.status(), Some(&StatusType::Failed));
    assert!(r.status_message().is_some());
    assert_eq!(
        west.get_secret_value()
            .secret_id("clash")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("local")
    );

    // With it, the local secret is replaced by the replica.
    sm.remove_regions_from_replication()
        .secret_id("clash")
        .remove_replica_regions("us-west-2")
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;
    assert_eq!(
        west.get_secret_value()
            .secret_id("clash")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("local")
    );
    sm.replicate_secret_to_regions()
        .secret_id("clash")
        .add_replica_regions(region("us-west-2"))
        .force_overwrite_replica_secret(true)
        .send()
        .await
        .unwrap();
    s.server.run_background_jobs().await;
    assert_eq!(
        statuses(&sm, "clash").await,
        vec![("us-west-2".to_string(), StatusType::InSync)]
    );
    assert_eq!(
        west.get_secret_value()
            .secret_id("clash")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("primary")
    );
}

#[tokio::test]
async fn invalid_replication_requests() {
    let s = TestServer::dev().await;
    let (sm, _) = replicated(&s, "inv", &["us-west-2"]).await;
    // The primary's own region.
    let e = sm
        .replicate_secret_to_regions()
        .secret_id("inv")
        .add_replica_regions(region("us-east-1"))
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &e,
        &["InvalidParameterException", "InvalidRequestException"],
    );
    // Not a region name.
    let e = sm
        .replicate_secret_to_regions()
        .secret_id("inv")
        .add_replica_regions(region("Not A Region"))
        .send()
        .await
        .unwrap_err();
    assert_code_in(&e, &["InvalidParameterException", "ValidationException"]);
    // Replicating from a replica.
    let west = client_in(&s, "us-west-2");
    let e = west
        .replicate_secret_to_regions()
        .secret_id("inv")
        .add_replica_regions(region("eu-west-1"))
        .send()
        .await
        .unwrap_err();
    assert_code_in(
        &e,
        &["InvalidRequestException", "InvalidParameterException"],
    );
    // Unknown secret.
    let e = sm
        .replicate_secret_to_regions()
        .secret_id("nope")
        .add_replica_regions(region("eu-west-1"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = sm
        .remove_regions_from_replication()
        .secret_id("nope")
        .remove_replica_regions("eu-west-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    let e = west
        .stop_replication_to_replica()
        .secret_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ResourceNotFoundException");
    // The replica set is what it was.
    assert_eq!(
        statuses(&sm, "inv").await,
        vec![("us-west-2".to_string(), StatusType::InSync)]
    );
}
