//! Roles: CreateRole, GetRole, ListRoles, DeleteRole, UpdateRole, UpdateRoleDescription,
//! UpdateAssumeRolePolicy, ListInstanceProfilesForRole and their tags.

use coffer_core::RequestContext;
use coffer_policy::PolicyKind;
use coffer_store::WriteBatch;
use coffer_wire::query::{QueryParams, XmlWriter};

use crate::entity::{self, paging, to_tags, write_entities, write_truncation};
use crate::input::{self, Input};
use crate::model::{self, Kind};
use crate::policies::check_document;
use crate::{Iam, IamError, authorize, json};

/// Default and bounds of `MaxSessionDuration` (seconds).
pub(crate) const DEFAULT_MAX_SESSION: i64 = 3600;
/// IAM's quota on a trust policy's size (characters, whitespace not counted).
pub(crate) const TRUST_POLICY_QUOTA: usize = 2048;

impl Iam {
    pub(crate) async fn roles(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let mut i = Input::new(q);
        let mut w = XmlWriter::new();
        match action {
            "CreateRole" => {
                let name = i.req("RoleName", input::ROLE_NAME);
                let path = i.opt("Path", input::PATH).unwrap_or_else(|| "/".into());
                let trust = i.req("AssumeRolePolicyDocument", input::POLICY_DOCUMENT);
                let description = i.opt("Description", input::ROLE_DESCRIPTION);
                let max = i.int("MaxSessionDuration", 3600, 43200);
                let boundary = i.opt("PermissionsBoundary", input::ARN);
                let tags = to_tags(i.tags("Tags", entity::MAX_TAGS));
                i.finish()?;
                check_document(
                    &trust,
                    PolicyKind::Trust,
                    TRUST_POLICY_QUOTA,
                    "ACLSizePerRole",
                )?;
                let e = self
                    .create_entity(ctx, Kind::Role, &name, &path, boundary.as_deref(), |e| {
                        e.tags = tags.clone();
                        e.trust_policy = Some(trust.clone());
                        e.description = description.clone();
                        e.max_session_secs = Some(max.unwrap_or(DEFAULT_MAX_SESSION));
                    })
                    .await?;
                w.open("Role");
                model::write_entity(&mut w, account, Kind::Role, &e, true);
                w.close("Role");
            }
            "GetRole" => {
                let name = i.req("RoleName", input::ROLE_NAME);
                i.finish()?;
                let (e, _) = self
                    .load_authorized(ctx, Kind::Role, &name, "iam:GetRole")
                    .await?;
                w.open("Role");
                model::write_entity(&mut w, account, Kind::Role, &e, true);
                w.close("Role");
            }
            "ListRoles" => {
                let prefix = i.opt("PathPrefix", input::PATH_PREFIX);
                let (marker, max) = paging(&mut i);
                i.finish()?;
                authorize(
                    ctx,
                    "iam:ListRoles",
                    &format!("arn:aws:iam::{account}:role/*"),
                )?;
                let (roles, next) = self
                    .list_entities(
                        account,
                        Kind::Role,
                        prefix.as_deref().unwrap_or("/"),
                        marker.as_deref(),
                        max,
                    )
                    .await?;
                write_entities(&mut w, account, Kind::Role, "Roles", &roles);
                write_truncation(&mut w, next.as_deref());
            }
            "UpdateAssumeRolePolicy" => {
                let name = i.req("RoleName", input::ROLE_NAME);
                let doc = i.req("PolicyDocument", input::POLICY_DOCUMENT);
                i.finish()?;
                check_document(
                    &doc,
                    PolicyKind::Trust,
                    TRUST_POLICY_QUOTA,
                    "ACLSizePerRole",
                )?;
                self.update_role(ctx, "iam:UpdateAssumeRolePolicy", &name, |e| {
                    e.trust_policy = Some(doc.clone());
                })
                .await?;
            }
            "UpdateRole" => {
                let name = i.req("RoleName", input::ROLE_NAME);
                let description = i.opt("Description", input::ROLE_DESCRIPTION);
                let max = i.int("MaxSessionDuration", 3600, 43200);
                i.finish()?;
                self.update_role(ctx, "iam:UpdateRole", &name, |e| {
                    if let Some(d) = &description {
                        e.description = Some(d.clone());
                    }
                    if let Some(m) = max {
                        e.max_session_secs = Some(m);
                    }
                })
                .await?;
            }
            "UpdateRoleDescription" => {
                let name = i.req("RoleName", input::ROLE_NAME);
                let description = i.req("Description", input::ROLE_DESCRIPTION);
                i.finish()?;
                let e = self
                    .update_role(ctx, "iam:UpdateRoleDescription", &name, |e| {
                        e.description = Some(description.clone());
                    })
                    .await?;
                w.open("Role");
                model::write_entity(&mut w, account, Kind::Role, &e, true);
                w.close("Role");
            }
            "ListInstanceProfilesForRole" => {
                let name = i.req("RoleName", input::ROLE_NAME);
                paging(&mut i);
                i.finish()?;
                self.load_authorized(ctx, Kind::Role, &name, "iam:ListInstanceProfilesForRole")
                    .await?;
                // Instance profiles belong to EC2, which Coffer does not serve: none can exist,
                // so a role is in none (tools such as Terraform ask before deleting a role).
                w.open("InstanceProfiles").close("InstanceProfiles");
                write_truncation(&mut w, None);
            }
            "DeleteRole" => {
                let name = i.req("RoleName", input::ROLE_NAME);
                i.finish()?;
                self.delete_entity(ctx, Kind::Role, &name, |e| {
                    if !e.attached.is_empty() {
                        Some("must detach all policies first.")
                    } else if !e.inline.is_empty() {
                        Some("must delete policies first.")
                    } else {
                        None
                    }
                })
                .await?;
            }
            _ => return self.entity_tags(ctx, Kind::Role, action, q).await,
        }
        Ok(w.into_string())
    }

    /// Changes role `name` with `change`, once `action` is allowed on it; answers the role as
    /// written.
    async fn update_role(
        &self,
        ctx: &RequestContext,
        action: &str,
        name: &str,
        change: impl Fn(&mut model::Entity),
    ) -> Result<model::Entity, IamError> {
        let account = ctx.account_id();
        self.write(|| async {
            let (mut e, entry) = self.load_authorized(ctx, Kind::Role, name, action).await?;
            change(&mut e);
            let key = model::entity_key(account, Kind::Role, name);
            let mut batch = WriteBatch::new();
            batch.check(key.clone(), Some(&entry)).put(key, json(&e)?);
            self.commit(account, batch).await?;
            Ok(e)
        })
        .await
    }
}
