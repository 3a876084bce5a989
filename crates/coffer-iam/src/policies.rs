//! Customer managed policies and their versions (CreatePolicy, GetPolicy, ListPolicies,
//! DeletePolicy, CreatePolicyVersion, GetPolicyVersion, ListPolicyVersions,
//! DeletePolicyVersion, SetDefaultPolicyVersion), attaching them to users, groups and roles,
//! and the policy-document checks every IAM write uses.

use coffer_core::RequestContext;
use coffer_policy::PolicyKind;
use coffer_store::{Entry, WriteBatch};
use coffer_wire::query::{QueryParams, XmlWriter};

use crate::entity::{self, TagChange, page, paging, tag_page, to_tags, write_truncation};
use crate::input::{self, Input};
use crate::model::{self, Kind, ManagedPolicy, PolicyVersion};
use crate::{Iam, IamError, authorize, json};

/// IAM's quota on a managed policy's size (characters, whitespace not counted).
pub(crate) const MANAGED_POLICY_QUOTA: usize = 6144;
/// Versions a managed policy may keep.
pub(crate) const MAX_VERSIONS: usize = 5;
/// Managed policies attached to one user, group or role.
pub(crate) const MAX_ATTACHED: usize = 10;

/// Checks a policy document the way IAM does before storing it: its size against `quota` (a
/// `LimitExceeded` naming `quota_name`), then the grammar for its `kind` (a
/// `MalformedPolicyDocument` naming the offending element).
pub(crate) fn check_document(
    doc: &str,
    kind: PolicyKind,
    quota: usize,
    quota_name: &str,
) -> Result<(), IamError> {
    let size = doc.chars().filter(|c| !c.is_whitespace()).count();
    if size > quota {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for {quota_name}: {quota}"
        )));
    }
    coffer_policy::parse_as(doc, kind)
        .map(|_| ())
        .map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))
}

/// The name of a customer managed policy of `account` from its ARN, with its path.
pub(crate) fn parse_policy_arn<'a>(account: &str, arn: &'a str) -> Option<(&'a str, &'a str)> {
    let rest = arn.strip_prefix("arn:")?;
    let (_partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("iam::")?;
    let (acct, resource) = rest.split_once(':')?;
    if acct != account {
        return None;
    }
    let path_name = resource.strip_prefix("policy")?;
    let slash = path_name.rfind('/')?;
    Some((&path_name[..=slash], &path_name[slash + 1..]))
}

/// Adds writing `p` to `batch`, guarded by a check that its record is still the one `read`.
pub(crate) fn stage_policy(
    batch: &mut WriteBatch,
    account: &str,
    p: &ManagedPolicy,
    read: &Entry,
) -> Result<(), IamError> {
    let key = model::policy_key(account, &p.name);
    batch.check(key.clone(), Some(read)).put(key, json(p)?);
    Ok(())
}

/// `PolicyUsageFilter`'s values.
const USAGES: &[&str] = &["PermissionsPolicy", "PermissionsBoundary"];

/// Whether a policy is in use the way `PolicyUsageFilter` asks: attached
/// (`PermissionsPolicy`) or bounding a user or role (`PermissionsBoundary`).
fn in_use(p: &ManagedPolicy, usage: &str) -> bool {
    match usage {
        "PermissionsPolicy" => p.attachments > 0,
        _ => p.boundary_uses > 0,
    }
}

fn not_attachable(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
}

impl Iam {
    /// The policy an ARN names, or NoSuchEntity.
    pub(crate) async fn load_policy(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<(ManagedPolicy, Entry), IamError> {
        let (path, name) = parse_policy_arn(account, arn).ok_or_else(|| not_attachable(arn))?;
        match self
            .get_json::<ManagedPolicy>(&model::policy_key(account, name))
            .await?
        {
            Some((p, e)) if p.path == path && p.name == name => Ok((p, e)),
            _ => Err(IamError::NoSuchEntity(format!(
                "Policy {arn} was not found."
            ))),
        }
    }

    pub(crate) async fn policies(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let mut i = Input::new(q);
        let mut w = XmlWriter::new();
        match action {
            "CreatePolicy" => {
                let name = i.req("PolicyName", input::POLICY_NAME);
                let path = i
                    .opt("Path", input::POLICY_PATH)
                    .unwrap_or_else(|| "/".into());
                let doc = i.req("PolicyDocument", input::POLICY_DOCUMENT);
                let description = i.opt("Description", input::POLICY_DESCRIPTION);
                let tags = to_tags(i.tags("Tags", entity::MAX_TAGS));
                i.finish()?;
                check_document(
                    &doc,
                    PolicyKind::Identity,
                    MANAGED_POLICY_QUOTA,
                    "PolicySize",
                )?;
                let arn = model::policy_arn(account, &path, &name);
                authorize(ctx, "iam:CreatePolicy", &arn)?;
                let p = self
                    .write(|| async {
                        let key = model::policy_key(account, &name);
                        if self.store.get(key.as_bytes()).await?.is_some() {
                            return Err(IamError::EntityAlreadyExists(format!(
                                "A policy called {name} already exists. Duplicate names are not allowed."
                            )));
                        }
                        let now = self.now_ms();
                        let p = ManagedPolicy {
                            name: name.clone(),
                            path: path.clone(),
                            id: model::new_id("ANPA"),
                            created_ms: now,
                            updated_ms: now,
                            description: description.clone(),
                            default_version: "v1".into(),
                            versions: vec![PolicyVersion {
                                id: "v1".into(),
                                document: doc.clone(),
                                created_ms: now,
                            }],
                            next_version: 2,
                            attachments: 0,
                            boundary_uses: 0,
                            tags: tags.clone(),
                        };
                        let mut batch = WriteBatch::new();
                        batch.check(key.clone(), None).put(key, json(&p)?);
                        self.commit(account, batch).await?;
                        Ok(p)
                    })
                    .await?;
                w.open("Policy");
                model::write_policy(&mut w, account, &p);
                w.close("Policy");
            }
            "GetPolicy" => {
                let arn = i.req("PolicyArn", input::ARN);
                i.finish()?;
                let (p, _) = self.load_policy(account, &arn).await?;
                authorize(ctx, "iam:GetPolicy", &arn)?;
                w.open("Policy");
                model::write_policy(&mut w, account, &p);
                w.close("Policy");
            }
            "ListPolicies" => {
                let scope = i.enumerated("Scope", &["All", "AWS", "Local"]);
                let only_attached = i.bool("OnlyAttached").unwrap_or(false);
                let usage = i.enumerated("PolicyUsageFilter", USAGES);
                let prefix = i.opt("PathPrefix", input::POLICY_PATH);
                let (marker, max) = paging(&mut i);
                i.finish()?;
                authorize(
                    ctx,
                    "iam:ListPolicies",
                    &format!("arn:aws:iam::{account}:policy/*"),
                )?;
                // Coffer has no AWS managed policies: `Scope=AWS` lists nothing.
                let items = if scope.as_deref() == Some("AWS") {
                    Vec::new()
                } else {
                    let prefix_key = model::policy_prefix(account);
                    self.scan_json::<ManagedPolicy>(&prefix_key)
                        .await?
                        .into_iter()
                        .filter(|(_, p, _)| {
                            p.path.starts_with(prefix.as_deref().unwrap_or("/"))
                                && (!only_attached || p.attachments > 0)
                                && usage.as_deref().is_none_or(|u| in_use(p, u))
                        })
                        .map(|(k, p, _)| (k[prefix_key.len()..].to_string(), p))
                        .collect()
                };
                let (list, next) = page(items, marker.as_deref(), max);
                w.open("Policies");
                for p in &list {
                    w.open("member");
                    model::write_policy(&mut w, account, p);
                    w.close("member");
                }
                w.close("Policies");
                write_truncation(&mut w, next.as_deref());
            }
            "DeletePolicy" => {
                let arn = i.req("PolicyArn", input::ARN);
                i.finish()?;
                self.write(|| async {
                    let (p, entry) = self.load_policy(account, &arn).await?;
                    authorize(ctx, "iam:DeletePolicy", &arn)?;
                    if p.attachments > 0 || p.boundary_uses > 0 {
                        return Err(IamError::DeleteConflict(
                            "Cannot delete a policy attached to entities.".into(),
                        ));
                    }
                    if p.versions.len() > 1 {
                        return Err(IamError::DeleteConflict(
                            "This policy has more than one version. Before you delete a policy, \
                             you must delete the policy's versions. The default version is \
                             deleted with the policy."
                                .into(),
                        ));
                    }
                    let key = model::policy_key(account, &p.name);
                    let mut batch = WriteBatch::new();
                    batch.check(key.clone(), Some(&entry)).delete(key);
                    self.commit(account, batch).await
                })
                .await?;
            }
            "CreatePolicyVersion" => {
                let arn = i.req("PolicyArn", input::ARN);
                let doc = i.req("PolicyDocument", input::POLICY_DOCUMENT);
                let set_default = i.bool("SetAsDefault").unwrap_or(false);
                i.finish()?;
                check_document(
                    &doc,
                    PolicyKind::Identity,
                    MANAGED_POLICY_QUOTA,
                    "PolicySize",
                )?;
                let (v, default) = self
                    .write(|| async {
                        let (mut p, entry) = self.load_policy(account, &arn).await?;
                        authorize(ctx, "iam:CreatePolicyVersion", &arn)?;
                        if p.versions.len() >= MAX_VERSIONS {
                            return Err(IamError::LimitExceeded(format!(
                                "A managed policy can have up to {MAX_VERSIONS} versions. Before \
                                 you create a new version, you must delete an existing version."
                            )));
                        }
                        let now = self.now_ms();
                        let v = PolicyVersion {
                            id: format!("v{}", p.next_version),
                            document: doc.clone(),
                            created_ms: now,
                        };
                        p.next_version += 1;
                        p.versions.push(v.clone());
                        if set_default {
                            p.default_version = v.id.clone();
                        }
                        p.updated_ms = now;
                        self.put_policy(account, &p, &entry).await?;
                        Ok((v, p.default_version))
                    })
                    .await?;
                w.open("PolicyVersion");
                model::write_version(&mut w, &v, &default);
                w.close("PolicyVersion");
            }
            "GetPolicyVersion" | "DeletePolicyVersion" | "SetDefaultPolicyVersion" => {
                let arn = i.req("PolicyArn", input::ARN);
                let version = i.req("VersionId", input::VERSION_ID);
                i.finish()?;
                if action == "GetPolicyVersion" {
                    let (p, _) = self.load_policy(account, &arn).await?;
                    authorize(ctx, "iam:GetPolicyVersion", &arn)?;
                    let v = p
                        .versions
                        .iter()
                        .find(|v| v.id == version)
                        .ok_or_else(|| no_such_version(&arn, &version))?;
                    w.open("PolicyVersion");
                    model::write_version(&mut w, v, &p.default_version);
                    w.close("PolicyVersion");
                } else {
                    self.write(|| async {
                        let (mut p, entry) = self.load_policy(account, &arn).await?;
                        authorize(ctx, &format!("iam:{action}"), &arn)?;
                        if !p.versions.iter().any(|v| v.id == version) {
                            return Err(no_such_version(&arn, &version));
                        }
                        if action == "DeletePolicyVersion" {
                            if p.default_version == version {
                                return Err(IamError::DeleteConflict(
                                    "Cannot delete the default version of a policy.".into(),
                                ));
                            }
                            p.versions.retain(|v| v.id != version);
                        } else {
                            p.default_version = version.clone();
                        }
                        p.updated_ms = self.now_ms();
                        self.put_policy(account, &p, &entry).await
                    })
                    .await?;
                }
            }
            "ListPolicyVersions" => {
                let arn = i.req("PolicyArn", input::ARN);
                let (marker, max) = paging(&mut i);
                i.finish()?;
                let (p, _) = self.load_policy(account, &arn).await?;
                authorize(ctx, "iam:ListPolicyVersions", &arn)?;
                // Newest first, as IAM lists them; the marker is the version's position.
                let items = p
                    .versions
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(n, v)| (format!("{n:04}"), v))
                    .collect();
                let (list, next) = page(items, marker.as_deref(), max);
                w.open("Versions");
                for v in list {
                    w.open("member");
                    // ListPolicyVersions omits the documents.
                    w.text("VersionId", &v.id)
                        .text(
                            "IsDefaultVersion",
                            if v.id == p.default_version {
                                "true"
                            } else {
                                "false"
                            },
                        )
                        .text("CreateDate", &model::iso8601(v.created_ms));
                    w.close("member");
                }
                w.close("Versions");
                write_truncation(&mut w, next.as_deref());
            }
            "TagPolicy" | "UntagPolicy" | "ListPolicyTags" => {
                let arn = i.req("PolicyArn", input::ARN);
                let mode = action.trim_end_matches("Tags").trim_end_matches("Policy");
                let change = TagChange::read(&mut i, q, mode);
                i.finish()?;
                let (p, _) = self.load_policy(account, &arn).await?;
                authorize(ctx, &format!("iam:{action}"), &arn)?;
                if let TagChange::List(marker, max) = &change {
                    return Ok(tag_page(&p.tags, marker.as_deref(), *max));
                }
                self.write(|| async {
                    let (mut p, entry) = self.load_policy(account, &arn).await?;
                    change.apply(&mut p.tags, "Policy")?;
                    self.put_policy(account, &p, &entry).await
                })
                .await?;
            }
            "ListEntitiesForPolicy" => {
                let arn = i.req("PolicyArn", input::ARN);
                let filter = i.enumerated(
                    "EntityFilter",
                    &[
                        "User",
                        "Role",
                        "Group",
                        "LocalManagedPolicy",
                        "AWSManagedPolicy",
                    ],
                );
                let usage = i.enumerated("PolicyUsageFilter", USAGES);
                let prefix = i.opt("PathPrefix", input::PATH_PREFIX);
                let (marker, max) = paging(&mut i);
                i.finish()?;
                let (p, _) = self.load_policy(account, &arn).await?;
                authorize(ctx, "iam:ListEntitiesForPolicy", &arn)?;
                // Attached and boundary ARNs as stored (any spelling of this policy's ARN).
                let target = Some((p.path.as_str(), p.name.as_str()));
                let is_target = |a: &str| parse_policy_arn(account, a) == target;
                let kinds: Vec<Kind> = [Kind::Group, Kind::Role, Kind::User]
                    .into_iter()
                    .filter(|k| filter.as_deref().is_none_or(|f| f == k.title()))
                    .collect();
                let path_prefix = prefix.as_deref().unwrap_or("/");
                let items = self
                    .entities_of(account, &kinds)
                    .await?
                    .into_iter()
                    .filter(|(_, _, e)| {
                        let attached = e.attached.iter().any(|a| is_target(a));
                        let bounded = e.permissions_boundary.as_deref().is_some_and(is_target);
                        let used = match usage.as_deref() {
                            Some("PermissionsPolicy") => attached,
                            Some(_) => bounded,
                            None => attached || bounded,
                        };
                        used && e.path.starts_with(path_prefix)
                    })
                    .map(|(key, kind, e)| (key, (kind, e)))
                    .collect();
                let (list, next) = page(items, marker.as_deref(), max);
                for kind in [Kind::Group, Kind::User, Kind::Role] {
                    let title = kind.title();
                    w.open(&format!("Policy{title}s"));
                    for (_, e) in list.iter().filter(|(k, _)| *k == kind) {
                        w.open("member")
                            .text(&format!("{title}Name"), &e.name)
                            .text(&format!("{title}Id"), &e.id)
                            .close("member");
                    }
                    w.close(&format!("Policy{title}s"));
                }
                write_truncation(&mut w, next.as_deref());
            }
            _ => return self.attachments(ctx, action, q).await,
        }
        Ok(w.into_string())
    }

    async fn put_policy(
        &self,
        account: &str,
        p: &ManagedPolicy,
        entry: &Entry,
    ) -> Result<(), IamError> {
        let mut batch = WriteBatch::new();
        stage_policy(&mut batch, account, p, entry)?;
        self.commit(account, batch).await
    }

    /// Attach/Detach{User,Group,Role}Policy and ListAttached{User,Group,Role}Policies.
    async fn attachments(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let kind = Kind::of_action(action);
        let mut i = Input::new(q);
        let name = i.req(kind.name_param(), kind.existing_name_shape());
        let mut w = XmlWriter::new();
        if action.starts_with("ListAttached") {
            let prefix = i.opt("PathPrefix", input::POLICY_PATH);
            let (marker, max) = paging(&mut i);
            i.finish()?;
            let (e, _) = self
                .load_authorized(ctx, kind, &name, &format!("iam:{action}"))
                .await?;
            let items = e
                .attached
                .iter()
                .filter_map(|arn| {
                    let (path, pname) = parse_policy_arn(account, arn)?;
                    path.starts_with(prefix.as_deref().unwrap_or("/"))
                        .then(|| (arn.clone(), (pname.to_string(), arn.clone())))
                })
                .collect();
            let (list, next) = page(items, marker.as_deref(), max);
            w.open("AttachedPolicies");
            for (pname, arn) in &list {
                w.open("member")
                    .text("PolicyName", pname)
                    .text("PolicyArn", arn)
                    .close("member");
            }
            w.close("AttachedPolicies");
            write_truncation(&mut w, next.as_deref());
            return Ok(w.into_string());
        }
        let arn = i.req("PolicyArn", input::ARN);
        i.finish()?;
        let attach = action.starts_with("Attach");
        self.write(|| async {
            let (mut e, eentry) = self
                .load_authorized(ctx, kind, &name, &format!("iam:{action}"))
                .await?;
            let (mut p, pentry) = match self.load_policy(account, &arn).await {
                Err(IamError::NoSuchEntity(_)) if attach => return Err(not_attachable(&arn)),
                other => other?,
            };
            let present = e.attached.contains(&arn);
            if attach {
                if present {
                    return Ok(());
                }
                if e.attached.len() >= MAX_ATTACHED {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for PoliciesPer{}: {MAX_ATTACHED}",
                        kind.title()
                    )));
                }
                e.attached.push(arn.clone());
                p.attachments += 1;
            } else {
                if !present {
                    return Err(IamError::NoSuchEntity(format!(
                        "Policy {arn} was not found."
                    )));
                }
                e.attached.retain(|a| a != &arn);
                p.attachments = p.attachments.saturating_sub(1);
            }
            let ekey = model::entity_key(account, kind, &name);
            let mut batch = WriteBatch::new();
            batch
                .check(ekey.clone(), Some(&eentry))
                .put(ekey, json(&e)?);
            stage_policy(&mut batch, account, &p, &pentry)?;
            self.commit(account, batch).await
        })
        .await?;
        Ok(String::new())
    }
}

fn no_such_version(arn: &str, version: &str) -> IamError {
    IamError::NoSuchEntity(format!(
        "Policy {arn} version {version} does not exist or is not attachable."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_arns() {
        assert_eq!(
            parse_policy_arn("123456789012", "arn:aws:iam::123456789012:policy/a/b/Read"),
            Some(("/a/b/", "Read"))
        );
        assert_eq!(
            parse_policy_arn("123456789012", "arn:aws:iam::123456789012:policy/Read"),
            Some(("/", "Read"))
        );
        assert_eq!(
            parse_policy_arn("123456789012", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
            None
        );
        assert_eq!(
            parse_policy_arn("123456789012", "arn:aws:iam::123456789012:user/x"),
            None
        );
    }
}
