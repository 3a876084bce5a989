//! Which write-lock stripe (see `coffer_service::locks`) a SecretId takes: the secret's name.

/// The secret name a SecretId most likely refers to: ARNs lose their prefix and, when present,
/// the `-XXXXXX` suffix, so a name and its ARNs usually share a stripe.
pub(crate) fn name_of(secret_id: &str) -> &str {
    let Some((_, name)) = secret_id.split_once(":secret:") else {
        return secret_id;
    };
    match name.len().checked_sub(7) {
        Some(cut) if name.as_bytes()[cut] == b'-' && name.is_char_boundary(cut) => &name[..cut],
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_arns_share_a_name() {
        let full = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db-AbCdEf";
        let partial = "arn:aws:secretsmanager:us-east-1:000000000000:secret:prod/db";
        assert_eq!(name_of(full), "prod/db");
        assert_eq!(name_of("prod/db"), "prod/db");
        // A partial ARN keeps its (short) name; only a `-` seven from the end is a suffix.
        assert_eq!(name_of(partial), "prod/db");
        assert_eq!(name_of("arn:aws:secretsmanager:r:a:secret:x"), "x");
    }

    #[tokio::test]
    async fn a_name_and_its_arn_serialize() {
        let locks = coffer_service::locks::WriteLocks::new();
        let g = locks.lock("a", "r", name_of("prod/db")).await;
        let full = "arn:aws:secretsmanager:r:a:secret:prod/db-AbCdEf";
        assert!(
            tokio::time::timeout(
                std::time::Duration::from_millis(20),
                locks.lock("a", "r", name_of(full))
            )
            .await
            .is_err(),
            "the ARN form did not wait for the name form"
        );
        drop(g);
    }
}
