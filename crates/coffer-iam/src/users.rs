//! Users: CreateUser, GetUser, ListUsers, UpdateUser, DeleteUser and their tags.

use coffer_core::{PrincipalType, RequestContext};
use coffer_wire::query::{QueryParams, XmlWriter};

use crate::entity::{self, paging, to_tags, write_entities, write_truncation};
use crate::input::{self, Input};
use crate::model::{self, Kind};
use crate::{Iam, IamError, authorize};

impl Iam {
    pub(crate) async fn users(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let mut i = Input::new(q);
        let mut w = XmlWriter::new();
        match action {
            "CreateUser" => {
                let name = i.req("UserName", input::USER_NAME);
                let path = i.opt("Path", input::PATH).unwrap_or_else(|| "/".into());
                let boundary = i.opt("PermissionsBoundary", input::ARN);
                let tags = to_tags(i.tags("Tags", entity::MAX_TAGS));
                i.finish()?;
                let e = self
                    .create_entity(ctx, Kind::User, &name, &path, boundary.as_deref(), |e| {
                        e.tags = tags.clone();
                    })
                    .await?;
                w.open("User");
                model::write_entity(&mut w, account, Kind::User, &e, true);
                w.close("User");
            }
            "GetUser" => {
                let name = i.opt("UserName", input::EXISTING_USER_NAME);
                i.finish()?;
                match self.user_or_caller(ctx, name, "iam:GetUser").await? {
                    Some(e) => {
                        w.open("User");
                        model::write_entity(&mut w, account, Kind::User, &e, true);
                        w.close("User");
                    }
                    None => {
                        w.open("User")
                            .text("UserId", account)
                            .text("Arn", &ctx.caller.principal_arn)
                            .text("CreateDate", &model::iso8601(0))
                            .close("User");
                    }
                }
            }
            "ListUsers" => {
                let prefix = i.opt("PathPrefix", input::PATH_PREFIX);
                let (marker, max) = paging(&mut i);
                i.finish()?;
                authorize(
                    ctx,
                    "iam:ListUsers",
                    &format!("arn:aws:iam::{account}:user/*"),
                )?;
                let (users, next) = self
                    .list_entities(
                        account,
                        Kind::User,
                        prefix.as_deref().unwrap_or("/"),
                        marker.as_deref(),
                        max,
                    )
                    .await?;
                write_entities(&mut w, account, Kind::User, "Users", &users);
                write_truncation(&mut w, next.as_deref());
            }
            "UpdateUser" => {
                let name = i.req("UserName", input::EXISTING_USER_NAME);
                let new_path = i.opt("NewPath", input::PATH);
                let new_name = i.opt("NewUserName", input::USER_NAME);
                i.finish()?;
                self.update_entity(ctx, Kind::User, &name, new_path, new_name)
                    .await?;
            }
            "DeleteUser" => {
                let name = i.req("UserName", input::EXISTING_USER_NAME);
                i.finish()?;
                self.delete_entity(ctx, Kind::User, &name, |e| {
                    if !e.access_keys.is_empty() {
                        Some("must delete access keys first.")
                    } else if !e.groups.is_empty() {
                        Some("must remove user from all groups first.")
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
            _ => return self.entity_tags(ctx, Kind::User, action, q).await,
        }
        Ok(w.into_string())
    }
}

/// Which user a call whose `UserName` is optional is about: the named one, else the calling
/// IAM user, else (`None`) the account root calling without a name. Other callers (role
/// sessions) must name a user, as in AWS.
pub(crate) fn named_or_calling(
    ctx: &RequestContext,
    named: Option<String>,
) -> Result<Option<String>, IamError> {
    match (named, &ctx.caller.user_name, ctx.caller.principal_type) {
        (Some(n), _, _) => Ok(Some(n)),
        (None, Some(n), PrincipalType::IamUser) => Ok(Some(n.clone())),
        (None, _, PrincipalType::Root) => Ok(None),
        _ => Err(IamError::Validation(
            "Must specify userName when calling with non-User credentials".into(),
        )),
    }
}

impl Iam {
    /// The user [`named_or_calling`] finds, loaded and with `action` authorized on it (`None`:
    /// the calling account root, with `action` authorized on its ARN).
    pub(crate) async fn user_or_caller(
        &self,
        ctx: &RequestContext,
        name: Option<String>,
        action: &str,
    ) -> Result<Option<model::Entity>, IamError> {
        let Some(name) = named_or_calling(ctx, name)? else {
            authorize(ctx, action, &ctx.caller.principal_arn)?;
            return Ok(None);
        };
        let (e, _) = self.load_authorized(ctx, Kind::User, &name, action).await?;
        Ok(Some(e))
    }
}
