//! Groups: CreateGroup, GetGroup, ListGroups, ListGroupsForUser, AddUserToGroup,
//! RemoveUserFromGroup, UpdateGroup, DeleteGroup. Membership is recorded on both sides (the group's members,
//! the user's groups), written in one batch.

use coffer_core::RequestContext;
use coffer_store::WriteBatch;
use coffer_wire::query::{QueryParams, XmlWriter};

use crate::entity::{page, paging, write_entities, write_truncation};
use crate::input::{self, Input};
use crate::model::{self, Kind};
use crate::{Iam, IamError, authorize, json};

/// IAM's quota of groups per user.
pub(crate) const MAX_GROUPS_PER_USER: usize = 10;

impl Iam {
    pub(crate) async fn groups(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let mut i = Input::new(q);
        let mut w = XmlWriter::new();
        match action {
            "CreateGroup" => {
                let name = i.req("GroupName", input::GROUP_NAME);
                let path = i.opt("Path", input::PATH).unwrap_or_else(|| "/".into());
                i.finish()?;
                let e = self
                    .create_entity(ctx, Kind::Group, &name, &path, None, |_| {})
                    .await?;
                w.open("Group");
                model::write_entity(&mut w, account, Kind::Group, &e, false);
                w.close("Group");
            }
            "GetGroup" => {
                let name = i.req("GroupName", input::GROUP_NAME);
                let (marker, max) = paging(&mut i);
                i.finish()?;
                let (g, _) = self
                    .load_authorized(ctx, Kind::Group, &name, "iam:GetGroup")
                    .await?;
                let mut users = Vec::new();
                for m in &g.members {
                    if let Some((u, _)) = self.find_entity(account, Kind::User, m).await? {
                        users.push((u.name.to_ascii_lowercase(), u));
                    }
                }
                users.sort_by(|a, b| a.0.cmp(&b.0));
                let (users, next) = page(users, marker.as_deref(), max);
                w.open("Group");
                model::write_entity(&mut w, account, Kind::Group, &g, false);
                w.close("Group");
                write_entities(&mut w, account, Kind::User, "Users", &users);
                write_truncation(&mut w, next.as_deref());
            }
            "ListGroups" => {
                let prefix = i.opt("PathPrefix", input::PATH_PREFIX);
                let (marker, max) = paging(&mut i);
                i.finish()?;
                authorize(
                    ctx,
                    "iam:ListGroups",
                    &format!("arn:aws:iam::{account}:group/*"),
                )?;
                let (groups, next) = self
                    .list_entities(
                        account,
                        Kind::Group,
                        prefix.as_deref().unwrap_or("/"),
                        marker.as_deref(),
                        max,
                    )
                    .await?;
                write_entities(&mut w, account, Kind::Group, "Groups", &groups);
                write_truncation(&mut w, next.as_deref());
            }
            "ListGroupsForUser" => {
                let name = i.req("UserName", input::EXISTING_USER_NAME);
                let (marker, max) = paging(&mut i);
                i.finish()?;
                let (u, _) = self
                    .load_authorized(ctx, Kind::User, &name, "iam:ListGroupsForUser")
                    .await?;
                let mut groups = Vec::new();
                for g in &u.groups {
                    if let Some((g, _)) = self.find_entity(account, Kind::Group, g).await? {
                        groups.push((g.name.to_ascii_lowercase(), g));
                    }
                }
                groups.sort_by(|a, b| a.0.cmp(&b.0));
                let (groups, next) = page(groups, marker.as_deref(), max);
                write_entities(&mut w, account, Kind::Group, "Groups", &groups);
                write_truncation(&mut w, next.as_deref());
            }
            "AddUserToGroup" | "RemoveUserFromGroup" => {
                let group = i.req("GroupName", input::GROUP_NAME);
                let user = i.req("UserName", input::EXISTING_USER_NAME);
                i.finish()?;
                let add = action == "AddUserToGroup";
                self.write(|| self.membership(ctx, &group, &user, add))
                    .await?;
            }
            "UpdateGroup" => {
                let name = i.req("GroupName", input::GROUP_NAME);
                let new_path = i.opt("NewPath", input::PATH);
                let new_name = i.opt("NewGroupName", input::GROUP_NAME);
                i.finish()?;
                self.update_entity(ctx, Kind::Group, &name, new_path, new_name)
                    .await?;
            }
            _ => {
                // DeleteGroup
                let name = i.req("GroupName", input::GROUP_NAME);
                i.finish()?;
                self.delete_entity(ctx, Kind::Group, &name, |e| {
                    if !e.members.is_empty() {
                        Some("must remove users from group first.")
                    } else if !e.attached.is_empty() {
                        Some("must detach all policies first.")
                    } else if !e.inline.is_empty() {
                        Some("must delete policies first.")
                    } else {
                        None
                    }
                })
                .await?;
            }
        }
        Ok(w.into_string())
    }

    async fn membership(
        &self,
        ctx: &RequestContext,
        group: &str,
        user: &str,
        add: bool,
    ) -> Result<(), IamError> {
        let account = ctx.account_id();
        let (mut g, gentry) = self.load_entity(account, Kind::Group, group).await?;
        let (mut u, uentry) = self.load_entity(account, Kind::User, user).await?;
        let action = if add {
            "iam:AddUserToGroup"
        } else {
            "iam:RemoveUserFromGroup"
        };
        authorize(
            ctx,
            action,
            &model::entity_arn(account, Kind::Group, &g.path, &g.name),
        )?;
        let member = g.members.iter().any(|m| m.eq_ignore_ascii_case(&u.name));
        if add {
            if member {
                return Ok(());
            }
            if u.groups.len() >= MAX_GROUPS_PER_USER {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for GroupsPerUser: {MAX_GROUPS_PER_USER}"
                )));
            }
            g.members.push(u.name.clone());
            u.groups.push(g.name.clone());
        } else {
            if !member {
                return Err(IamError::NoSuchEntity(format!(
                    "The user with name {} cannot be found in group {}.",
                    u.name, g.name
                )));
            }
            g.members.retain(|m| !m.eq_ignore_ascii_case(&u.name));
            u.groups.retain(|x| !x.eq_ignore_ascii_case(&g.name));
        }
        let gkey = model::entity_key(account, Kind::Group, group);
        let ukey = model::entity_key(account, Kind::User, user);
        let mut batch = WriteBatch::new();
        batch
            .check(gkey.clone(), Some(&gentry))
            .check(ukey.clone(), Some(&uentry))
            .put(gkey, json(&g)?)
            .put(ukey, json(&u)?);
        self.commit(account, batch).await
    }
}
