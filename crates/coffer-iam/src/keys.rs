//! Access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey, DeleteAccessKey,
//! GetAccessKeyLastUsed, and the one sealing scheme for every long-term secret access key (the
//! root principal's, written at init or unseal, and IAM users').

use base64::Engine as _;
use coffer_core::RequestContext;
use coffer_store::{Store, WriteBatch};
use coffer_wire::query::{QueryParams, XmlWriter};

use crate::input::{self, Input};
use crate::model::{self, AccessKeyRecord, Kind};
use crate::users::named_or_calling;
use crate::{Iam, IamError, authorize, json};

/// IAM's quota of access keys per user.
pub(crate) const MAX_KEYS_PER_USER: usize = 2;

/// A new key pair: `AKIA` + 16 base32 characters, and 40 base64 characters of secret.
pub fn generate_access_key() -> (String, String) {
    const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let id_bytes: [u8; 16] = coffer_crypto::random_bytes();
    let id: String = id_bytes
        .iter()
        .map(|b| B32[(b & 31) as usize] as char)
        .collect();
    let secret_bytes: [u8; 30] = coffer_crypto::random_bytes();
    (
        format!("AKIA{id}"),
        base64::engine::general_purpose::STANDARD.encode(secret_bytes),
    )
}

/// Associated data binding a sealed secret to its key id: a sealed secret moved to another key's
/// record does not open.
fn aad(access_key_id: &str) -> Vec<u8> {
    format!("coffer:access-key:{access_key_id}").into_bytes()
}

pub(crate) fn seal_secret(
    root: &coffer_crypto::AeadKey,
    akid: &str,
    secret: &str,
) -> Result<String, IamError> {
    let sealed = root
        .seal(secret.as_bytes(), &aad(akid))
        .map_err(IamError::internal)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

pub(crate) fn open_secret(
    root: &coffer_crypto::AeadKey,
    akid: &str,
    record: &AccessKeyRecord,
) -> Result<zeroize::Zeroizing<String>, IamError> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&record.sealed_secret)
        .map_err(|_| IamError::internal(format!("access key {akid}: unreadable record")))?;
    let plain = root
        .open(&sealed, &aad(akid))
        .map_err(|_| IamError::internal(format!("access key {akid}: cannot be unsealed")))?;
    let s = std::str::from_utf8(&plain)
        .map_err(|_| IamError::internal(format!("access key {akid}: unreadable secret")))?;
    Ok(zeroize::Zeroizing::new(s.to_string()))
}

/// The store key and value of the root principal's access key record, its secret sealed under
/// the root key. `store_root_access_key` writes it; `operator init` puts it in the batch that
/// creates the seal record.
pub fn root_access_key_entry(
    root: &coffer_crypto::RootKey,
    account: &str,
    access_key_id: &str,
    secret_access_key: &str,
    now_ms: i64,
) -> Result<(String, Vec<u8>), IamError> {
    let sealer = coffer_crypto::AeadKey::new(root.as_bytes());
    let record = AccessKeyRecord {
        principal_arn: coffer_core::Caller::root(account, access_key_id).principal_arn,
        account_id: account.to_string(),
        sealed_secret: seal_secret(&sealer, access_key_id, secret_access_key)?,
        user_name: None,
        status: "Active".into(),
        created_ms: now_ms,
    };
    Ok((
        model::access_key_key(account, access_key_id),
        json(&record)?,
    ))
}

/// Stores the root principal's key pair (at unseal, the configured or dev credentials) unless
/// that key id is already stored. Returns whether it wrote.
pub async fn store_root_access_key(
    store: &dyn Store,
    root: &coffer_crypto::RootKey,
    account: &str,
    access_key_id: &str,
    secret_access_key: &str,
    now_ms: i64,
) -> Result<bool, IamError> {
    let key = model::access_key_key(account, access_key_id);
    if store.get(key.as_bytes()).await?.is_some() {
        return Ok(false);
    }
    let (key, value) =
        root_access_key_entry(root, account, access_key_id, secret_access_key, now_ms)?;
    let mut batch = WriteBatch::new();
    batch.check(key.clone(), None).put(key, value);
    match store.commit(batch).await {
        Ok(_) => Ok(true),
        // Another node (or request) stored it meanwhile.
        Err(coffer_store::StoreError::Conflict) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The key id an access key record's store key (`iam/{account}/accesskey/{id}`) names; `None`
/// for every other key.
fn access_key_id_of(key: &[u8]) -> Option<&str> {
    let key = std::str::from_utf8(key).ok()?;
    let mut parts = key.splitn(4, '/');
    let (Some("iam"), Some(_account), Some("accesskey"), Some(akid)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (!akid.is_empty() && !akid.contains('/')).then_some(akid)
}

/// Whether `key` is an access key record's, the only IAM records holding a value sealed under
/// the root key (the secret access key).
pub fn is_access_key_record(key: &[u8]) -> bool {
    access_key_id_of(key).is_some()
}

/// Root rotation: an access key record (`iam/{account}/accesskey/{id}`, root's or a user's) with
/// its secret opened under `old` and sealed under `new`; `None` for every other `iam/` record.
pub fn rewrap_access_key_record(
    key: &[u8],
    value: &[u8],
    old: &coffer_crypto::AeadKey,
    new: &coffer_crypto::AeadKey,
) -> Result<Option<Vec<u8>>, IamError> {
    let Some(akid) = access_key_id_of(key) else {
        return Ok(None);
    };
    let mut record: AccessKeyRecord = serde_json::from_slice(value)
        .map_err(|_| IamError::internal(format!("access key {akid}: unreadable record")))?;
    let secret = open_secret(old, akid, &record)?;
    record.sealed_secret = seal_secret(new, akid, &secret)?;
    json(&record).map(Some)
}

/// Whether the account has any root access key (bootstrap generates one when it has none).
pub async fn has_root_access_key(store: &dyn Store, account: &str) -> Result<bool, IamError> {
    let prefix = model::access_key_prefix(account);
    let end = coffer_store::prefix_end(prefix.as_bytes());
    let rows = store.scan(prefix.as_bytes(), &end, usize::MAX).await?;
    Ok(rows.iter().any(|(_, e)| {
        serde_json::from_slice::<AccessKeyRecord>(&e.value).is_ok_and(|r| r.user_name.is_none())
    }))
}

fn write_key_metadata(w: &mut XmlWriter, akid: &str, r: &AccessKeyRecord) {
    w.opt("UserName", r.user_name.as_deref())
        .text("AccessKeyId", akid)
        .text("Status", &r.status)
        .text("CreateDate", &model::iso8601(r.created_ms));
}

impl Iam {
    pub(crate) async fn access_keys(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let mut i = Input::new(q);
        let mut w = XmlWriter::new();
        match action {
            "CreateAccessKey" => {
                let user = i.opt("UserName", input::EXISTING_USER_NAME);
                i.finish()?;
                let user = named_or_calling(ctx, user)?;
                let (akid, secret) = generate_access_key();
                let record = self
                    .write(|| self.create_key(ctx, &user, &akid, &secret))
                    .await?;
                w.open("AccessKey")
                    .opt("UserName", record.user_name.as_deref())
                    .text("AccessKeyId", &akid)
                    .text("Status", &record.status)
                    .text("SecretAccessKey", &secret)
                    .text("CreateDate", &model::iso8601(record.created_ms))
                    .close("AccessKey");
            }
            "ListAccessKeys" => {
                let user = i.opt("UserName", input::EXISTING_USER_NAME);
                let (marker, max) = crate::entity::paging(&mut i);
                i.finish()?;
                let user = named_or_calling(ctx, user)?;
                let records = self
                    .keys_of(ctx, user.as_deref(), "iam:ListAccessKeys")
                    .await?;
                let items = records
                    .into_iter()
                    .map(|(k, r)| (k.clone(), (k, r)))
                    .collect();
                let (page, next) = crate::entity::page(items, marker.as_deref(), max);
                w.open("AccessKeyMetadata");
                for (akid, r) in &page {
                    w.open("member");
                    write_key_metadata(&mut w, akid, r);
                    w.close("member");
                }
                w.close("AccessKeyMetadata");
                crate::entity::write_truncation(&mut w, next.as_deref());
            }
            "UpdateAccessKey" | "DeleteAccessKey" => {
                let user = i.opt("UserName", input::EXISTING_USER_NAME);
                let akid = i.req("AccessKeyId", input::ACCESS_KEY_ID);
                let status = if action == "UpdateAccessKey" {
                    let s = i.enumerated("Status", &["Active", "Inactive", "Expired"]);
                    if s.is_none() {
                        i.req("Status", input::ACCESS_KEY_ID);
                    }
                    s
                } else {
                    None
                };
                i.finish()?;
                let user = named_or_calling(ctx, user)?;
                self.write(|| self.change_key(ctx, user.as_deref(), &akid, status.as_deref()))
                    .await?;
            }
            _ => {
                // GetAccessKeyLastUsed
                let akid = i.req("AccessKeyId", input::ACCESS_KEY_ID);
                i.finish()?;
                let (rec, _) = self
                    .get_json::<AccessKeyRecord>(&model::access_key_key(account, &akid))
                    .await?
                    .ok_or_else(|| no_such_key(&akid))?;
                authorize(ctx, "iam:GetAccessKeyLastUsed", &rec.principal_arn)?;
                let used = self.cache.last_used(&akid);
                w.opt("UserName", rec.user_name.as_deref())
                    .open("AccessKeyLastUsed");
                match used {
                    Some(u) => {
                        w.text("LastUsedDate", &model::iso8601(u.at_ms))
                            .text("ServiceName", &u.service)
                            .text("Region", &u.region);
                    }
                    None => {
                        w.text("ServiceName", "N/A").text("Region", "N/A");
                    }
                }
                w.close("AccessKeyLastUsed");
            }
        }
        Ok(w.into_string())
    }

    async fn create_key(
        &self,
        ctx: &RequestContext,
        user: &Option<String>,
        akid: &str,
        secret: &str,
    ) -> Result<AccessKeyRecord, IamError> {
        let account = ctx.account_id();
        let mut batch = WriteBatch::new();
        let (principal_arn, user_name) = match user {
            Some(name) => {
                let (mut e, entry) = self
                    .load_authorized(ctx, Kind::User, name, "iam:CreateAccessKey")
                    .await?;
                if e.access_keys.len() >= MAX_KEYS_PER_USER {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS_PER_USER}"
                    )));
                }
                e.access_keys.push(akid.to_string());
                let key = model::entity_key(account, Kind::User, name);
                batch.check(key.clone(), Some(&entry)).put(key, json(&e)?);
                (
                    model::entity_arn(account, Kind::User, &e.path, &e.name),
                    Some(e.name),
                )
            }
            None => {
                let arn = ctx.caller.principal_arn.clone();
                authorize(ctx, "iam:CreateAccessKey", &arn)?;
                (arn, None)
            }
        };
        let record = AccessKeyRecord {
            principal_arn,
            account_id: account.to_string(),
            sealed_secret: seal_secret(&self.root, akid, secret)?,
            user_name,
            status: "Active".into(),
            created_ms: self.now_ms(),
        };
        let key = model::access_key_key(account, akid);
        batch.check(key.clone(), None).put(key, json(&record)?);
        self.commit(account, batch).await?;
        Ok(record)
    }

    /// The access keys of `user` (or of root when `None`), by key id.
    async fn keys_of(
        &self,
        ctx: &RequestContext,
        user: Option<&str>,
        action: &str,
    ) -> Result<Vec<(String, AccessKeyRecord)>, IamError> {
        let account = ctx.account_id();
        let ids: Vec<String> = match user {
            Some(name) => {
                let (e, _) = self.load_authorized(ctx, Kind::User, name, action).await?;
                e.access_keys
            }
            None => {
                authorize(ctx, action, &ctx.caller.principal_arn)?;
                let prefix = model::access_key_prefix(account);
                self.scan_json::<AccessKeyRecord>(&prefix)
                    .await?
                    .into_iter()
                    .filter(|(_, r, _)| r.user_name.is_none())
                    .map(|(k, _, _)| k[prefix.len()..].to_string())
                    .collect()
            }
        };
        let mut out = Vec::with_capacity(ids.len());
        for akid in ids {
            if let Some((r, _)) = self
                .get_json::<AccessKeyRecord>(&model::access_key_key(account, &akid))
                .await?
            {
                out.push((akid, r));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// UpdateAccessKey (`status` set) or DeleteAccessKey (`None`).
    async fn change_key(
        &self,
        ctx: &RequestContext,
        user: Option<&str>,
        akid: &str,
        status: Option<&str>,
    ) -> Result<(), IamError> {
        let account = ctx.account_id();
        let action = if status.is_some() {
            "iam:UpdateAccessKey"
        } else {
            "iam:DeleteAccessKey"
        };
        // Decided on the named user (or root) before the key is looked up, so a caller
        // without the permission learns nothing about which keys exist.
        let target = match user {
            Some(name) => match self.find_entity(account, Kind::User, name).await? {
                Some((e, _)) => model::entity_arn(account, Kind::User, &e.path, &e.name),
                None => model::entity_arn(account, Kind::User, "/", name),
            },
            None => format!("arn:aws:iam::{account}:root"),
        };
        authorize(ctx, action, &target)?;
        let key = model::access_key_key(account, akid);
        let (mut rec, entry) = self
            .get_json::<AccessKeyRecord>(&key)
            .await?
            .ok_or_else(|| no_such_key(akid))?;
        let owner_matches = match (user, &rec.user_name) {
            (Some(u), Some(owner)) => u.eq_ignore_ascii_case(owner),
            (None, None) => true,
            _ => false,
        };
        if !owner_matches {
            return Err(no_such_key(akid));
        }
        let mut batch = WriteBatch::new();
        batch.check(key.clone(), Some(&entry));
        match status {
            Some(s) => {
                rec.status = s.to_string();
                batch.put(key, json(&rec)?);
            }
            None => {
                if rec.user_name.is_none() && akid == ctx.caller.access_key_id {
                    // Deleting the key this very request is signed with would lock root out.
                    return Err(IamError::InvalidInput(
                        "The root principal cannot delete the access key it is signing with."
                            .into(),
                    ));
                }
                batch.delete(key);
                if let Some(name) = &rec.user_name {
                    let (mut e, uentry) = self.load_entity(account, Kind::User, name).await?;
                    e.access_keys.retain(|k| k != akid);
                    let ukey = model::entity_key(account, Kind::User, name);
                    batch
                        .check(ukey.clone(), Some(&uentry))
                        .put(ukey, json(&e)?);
                }
            }
        }
        self.commit(account, batch).await
    }
}

fn no_such_key(akid: &str) -> IamError {
    IamError::NoSuchEntity(format!("The Access Key with id {akid} cannot be found."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_key_record_rewraps_under_a_new_root_and_others_are_left_alone() {
        let old_root = coffer_crypto::RootKey::from_bytes([1u8; 32]);
        let new_root = coffer_crypto::RootKey::from_bytes([2u8; 32]);
        let (old, new) = (
            coffer_crypto::AeadKey::new(old_root.as_bytes()),
            coffer_crypto::AeadKey::new(new_root.as_bytes()),
        );
        let (key, value) =
            root_access_key_entry(&old_root, "123456789012", "AKIAEXAMPLE", "s3cret", 5).unwrap();
        assert_eq!(key, "iam/123456789012/accesskey/AKIAEXAMPLE");
        let rewrapped = rewrap_access_key_record(key.as_bytes(), &value, &old, &new)
            .unwrap()
            .expect("an access key record is rewrapped");
        let record: AccessKeyRecord = serde_json::from_slice(&rewrapped).unwrap();
        assert_eq!(record.created_ms, 5);
        assert_eq!(record.user_name, None);
        assert_eq!(
            &**open_secret(&new, "AKIAEXAMPLE", &record).unwrap(),
            "s3cret"
        );
        assert!(open_secret(&old, "AKIAEXAMPLE", &record).is_err());
        // Bound to the key id: the record under another id does not open.
        assert!(
            rewrap_access_key_record(b"iam/123456789012/accesskey/AKIAOTHER", &value, &old, &new)
                .is_err()
        );
        // Under the wrong root it fails (the rotation aborts) rather than being skipped.
        assert!(rewrap_access_key_record(key.as_bytes(), &value, &new, &old).is_err());
        // Other IAM records hold nothing root-sealed.
        for other in [
            &b"iam/123456789012/user/alice"[..],
            b"iam/123456789012/generation",
            b"iam/123456789012/policy/p",
        ] {
            assert!(
                rewrap_access_key_record(other, b"{}", &old, &new)
                    .unwrap()
                    .is_none()
            );
            assert!(!is_access_key_record(other));
        }
        assert!(is_access_key_record(key.as_bytes()));
        assert!(!is_access_key_record(b"iam/123456789012/accesskey/"));
        assert!(!is_access_key_record(b"iam/123456789012/accesskey/A/B"));
    }
}
