//! What users, groups and roles share: load, create, list, tag, and the page/marker logic of
//! every IAM list call.

use coffer_core::RequestContext;
use coffer_service::tags::Tag;
use coffer_store::{Entry, WriteBatch};
use coffer_wire::query::XmlWriter;

use crate::boundaries::authorize_bounded;
use crate::input::{self, Input};
use crate::model::{self, AccessKeyRecord, Entity, Kind};
use crate::{Iam, IamError, authorize, json};

/// IAM's tag quota per user, role and policy.
pub(crate) const MAX_TAGS: usize = 50;

/// One page of a list: the items after `marker` (a sort key), at most `max`, and the marker of
/// the next page when more remain.
pub(crate) fn page<T>(
    items: Vec<(String, T)>,
    marker: Option<&str>,
    max: usize,
) -> (Vec<T>, Option<String>) {
    let mut rest = items
        .into_iter()
        .filter(|(k, _)| marker.is_none_or(|m| k.as_str() > m))
        .peekable();
    let mut out = Vec::new();
    let mut last = None;
    while out.len() < max {
        match rest.next() {
            Some((k, v)) => {
                last = Some(k);
                out.push(v);
            }
            None => break,
        }
    }
    let next = rest.peek().is_some().then_some(last).flatten();
    (out, next)
}

/// `<IsTruncated>` and, when truncated, `<Marker>`.
pub(crate) fn write_truncation(w: &mut XmlWriter, next: Option<&str>) {
    w.text("IsTruncated", if next.is_some() { "true" } else { "false" })
        .opt("Marker", next);
}

/// `Marker` and `MaxItems` (1..1000, default 100) of a list call.
pub(crate) fn paging(i: &mut Input<'_>) -> (Option<String>, usize) {
    let marker = i.opt("Marker", input::MARKER);
    let max = i.int("MaxItems", 1, 1000).unwrap_or(100).clamp(1, 1000) as usize;
    (marker, max)
}

impl Iam {
    pub(crate) async fn find_entity(
        &self,
        account: &str,
        kind: Kind,
        name: &str,
    ) -> Result<Option<(Entity, Entry)>, IamError> {
        self.get_json(&model::entity_key(account, kind, name)).await
    }

    pub(crate) async fn load_entity(
        &self,
        account: &str,
        kind: Kind,
        name: &str,
    ) -> Result<(Entity, Entry), IamError> {
        self.find_entity(account, kind, name)
            .await?
            .ok_or_else(|| kind.no_such(name))
    }

    /// Loads entity `name` of the caller's account and authorizes `action` on its ARN.
    pub(crate) async fn load_authorized(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        name: &str,
        action: &str,
    ) -> Result<(Entity, Entry), IamError> {
        let account = ctx.account_id();
        let (e, entry) = self.load_entity(account, kind, name).await?;
        authorize_bounded(
            ctx,
            action,
            &model::entity_arn(account, kind, &e.path, &e.name),
            e.permissions_boundary.as_deref(),
        )?;
        Ok((e, entry))
    }

    /// Creates a user, group or role named `name`, bounded by the managed policy `boundary`
    /// (users and roles); `fill` sets the rest (tags, the kind's own fields).
    pub(crate) async fn create_entity(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        name: &str,
        path: &str,
        boundary: Option<&str>,
        fill: impl Fn(&mut Entity),
    ) -> Result<Entity, IamError> {
        let account = ctx.account_id();
        let arn = model::entity_arn(account, kind, path, name);
        authorize_bounded(ctx, &format!("iam:Create{}", kind.title()), &arn, boundary)?;
        self.write(|| async {
            let key = model::entity_key(account, kind, name);
            if self.store.get(key.as_bytes()).await?.is_some() {
                return Err(IamError::EntityAlreadyExists(format!(
                    "{} with name {name} already exists.",
                    kind.title()
                )));
            }
            let mut e = Entity {
                name: name.to_string(),
                path: path.to_string(),
                id: model::new_id(kind.id_prefix()),
                created_ms: self.now_ms(),
                permissions_boundary: boundary.map(str::to_string),
                ..Entity::default()
            };
            fill(&mut e);
            let mut batch = WriteBatch::new();
            self.move_boundary(account, &mut batch, None, boundary)
                .await?;
            batch.check(key.clone(), None).put(key, json(&e)?);
            self.commit(account, batch).await?;
            Ok(e)
        })
        .await
    }

    /// Every entity of the `kinds` asked, each with a sort key that orders them by kind (in the
    /// order asked), then name: the items of listings that page across kinds.
    pub(crate) async fn entities_of(
        &self,
        account: &str,
        kinds: &[Kind],
    ) -> Result<Vec<(String, Kind, Entity)>, IamError> {
        let mut out = Vec::new();
        for (n, kind) in kinds.iter().enumerate() {
            let prefix = model::entity_prefix(account, *kind);
            for (k, e, _) in self.scan_json::<Entity>(&prefix).await? {
                out.push((format!("{n}/{}", &k[prefix.len()..]), *kind, e));
            }
        }
        Ok(out)
    }

    /// All entities of a kind whose path starts with `path_prefix`, one page of them.
    pub(crate) async fn list_entities(
        &self,
        account: &str,
        kind: Kind,
        path_prefix: &str,
        marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<Entity>, Option<String>), IamError> {
        let prefix = model::entity_prefix(account, kind);
        let rows = self.scan_json::<Entity>(&prefix).await?;
        let items = rows
            .into_iter()
            .filter(|(_, e, _)| e.path.starts_with(path_prefix))
            .map(|(k, e, _)| (k[prefix.len()..].to_string(), e))
            .collect();
        Ok(page(items, marker, max))
    }

    /// TagUser / TagRole / UntagUser / UntagRole / ListUserTags / ListRoleTags.
    pub(crate) async fn entity_tags(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        action: &str,
        q: &coffer_wire::query::QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let mut i = Input::new(q);
        let name = i.req(kind.name_param(), kind.existing_name_shape());
        let change = TagChange::read(&mut i, q, &action[..action.len() - kind.title().len()]);
        i.finish()?;
        let (current, _) = self
            .load_authorized(ctx, kind, &name, &format!("iam:{action}"))
            .await?;
        if let TagChange::List(marker, max) = &change {
            return Ok(tag_page(&current.tags, marker.as_deref(), *max));
        }
        self.write(|| async {
            let (mut e, entry) = self.load_entity(account, kind, &name).await?;
            change.apply(&mut e.tags, kind.title())?;
            let key = model::entity_key(account, kind, &name);
            let mut batch = WriteBatch::new();
            batch.check(key.clone(), Some(&entry)).put(key, json(&e)?);
            self.commit(account, batch).await
        })
        .await?;
        Ok(String::new())
    }

    /// UpdateUser / UpdateGroup: a new path and/or name. A rename moves the record and rewrites
    /// what names the entity: a user's groups' member lists and its access keys, a group's
    /// members' group lists.
    pub(crate) async fn update_entity(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        name: &str,
        new_path: Option<String>,
        new_name: Option<String>,
    ) -> Result<(), IamError> {
        let account = ctx.account_id();
        let action = format!("iam:Update{}", kind.title());
        self.write(|| async {
            let (mut e, entry) = self.load_authorized(ctx, kind, name, &action).await?;
            let old_key = model::entity_key(account, kind, name);
            let mut batch = WriteBatch::new();
            batch.check(old_key.clone(), Some(&entry));
            if let Some(p) = &new_path {
                e.path = p.clone();
            }
            let renamed = new_name.as_deref().filter(|n| *n != e.name);
            if let Some(n) = renamed {
                let new_key = model::entity_key(account, kind, n);
                if new_key != old_key {
                    if self.store.get(new_key.as_bytes()).await?.is_some() {
                        return Err(IamError::EntityAlreadyExists(format!(
                            "{} with name {n} already exists.",
                            kind.title()
                        )));
                    }
                    batch.check(new_key.clone(), None).delete(old_key.clone());
                }
                // Who lists this entity by name: a user's groups, a group's members.
                let (other, names) = match kind {
                    Kind::User => (Kind::Group, &e.groups),
                    Kind::Group => (Kind::User, &e.members),
                    Kind::Role => (Kind::Role, &Vec::new()),
                };
                for o in names {
                    let (mut rec, oentry) = self.load_entity(account, other, o).await?;
                    let list = match kind {
                        Kind::User => &mut rec.members,
                        _ => &mut rec.groups,
                    };
                    for m in list.iter_mut().filter(|m| **m == e.name) {
                        *m = n.to_string();
                    }
                    let okey = model::entity_key(account, other, o);
                    batch
                        .check(okey.clone(), Some(&oentry))
                        .put(okey, json(&rec)?);
                }
                e.name = n.to_string();
            }
            if kind == Kind::User {
                let new_arn = model::entity_arn(account, kind, &e.path, &e.name);
                for akid in &e.access_keys {
                    let key = model::access_key_key(account, akid);
                    if let Some((mut rec, kentry)) = self.get_json::<AccessKeyRecord>(&key).await? {
                        rec.user_name = Some(e.name.clone());
                        rec.principal_arn = new_arn.clone();
                        batch
                            .check(key.clone(), Some(&kentry))
                            .put(key, json(&rec)?);
                    }
                }
            }
            batch.put(model::entity_key(account, kind, &e.name), json(&e)?);
            self.commit(account, batch).await
        })
        .await
    }

    /// Deletes an entity after `blocked` found nothing still hanging off it.
    pub(crate) async fn delete_entity(
        &self,
        ctx: &RequestContext,
        kind: Kind,
        name: &str,
        blocked: impl Fn(&Entity) -> Option<&'static str>,
    ) -> Result<(), IamError> {
        let account = ctx.account_id();
        self.write(|| async {
            let (e, entry) = self.load_entity(account, kind, name).await?;
            let arn = model::entity_arn(account, kind, &e.path, name);
            authorize(ctx, &format!("iam:Delete{}", kind.title()), &arn)?;
            if let Some(why) = blocked(&e) {
                return Err(IamError::DeleteConflict(format!(
                    "Cannot delete entity, {why}"
                )));
            }
            let key = model::entity_key(account, kind, name);
            let mut batch = WriteBatch::new();
            self.move_boundary(account, &mut batch, e.permissions_boundary.as_deref(), None)
                .await?;
            batch.check(key.clone(), Some(&entry)).delete(key);
            self.commit(account, batch).await
        })
        .await
    }
}

/// The entity list element (`<Users>` ...) with one `<member>` per entity.
pub(crate) fn write_entities(
    w: &mut XmlWriter,
    account: &str,
    kind: Kind,
    element: &str,
    items: &[Entity],
) {
    w.open(element);
    for e in items {
        w.open("member");
        model::write_entity(w, account, kind, e, false);
        w.close("member");
    }
    w.close(element);
}

/// What a Tag*, Untag* or List*Tags call asks of a tagged IAM resource.
pub(crate) enum TagChange {
    Tag(Vec<Tag>),
    Untag(Vec<String>),
    /// Marker and MaxItems.
    List(Option<String>, usize),
}

impl TagChange {
    /// Reads the input of `mode` (`Tag`, `Untag`, or `List` for List*Tags).
    pub(crate) fn read(i: &mut Input<'_>, q: &coffer_wire::query::QueryParams, mode: &str) -> Self {
        match mode {
            "Tag" => {
                if !q.has_prefix("Tags") {
                    i.req("Tags", input::TAG_KEY);
                }
                TagChange::Tag(to_tags(i.tags("Tags", MAX_TAGS)))
            }
            "Untag" => {
                if !q.has_prefix("TagKeys") {
                    i.req("TagKeys", input::TAG_KEY);
                }
                TagChange::Untag(i.list("TagKeys", input::TAG_KEY, MAX_TAGS))
            }
            _ => {
                let (marker, max) = paging(i);
                TagChange::List(marker, max)
            }
        }
    }

    /// Applies a Tag or Untag to `tags` (a `title` resource's: `User`, `Role`, `Policy`).
    pub(crate) fn apply(&self, tags: &mut Vec<Tag>, title: &str) -> Result<(), IamError> {
        match self {
            TagChange::Tag(new) => coffer_service::tags::merge(tags, new.clone(), MAX_TAGS)
                .map_err(|_| {
                    IamError::LimitExceeded(format!(
                        "Cannot exceed quota for TagsPer{title}: {MAX_TAGS}"
                    ))
                }),
            TagChange::Untag(keys) => {
                tags.retain(|t| !keys.contains(&t.key));
                Ok(())
            }
            TagChange::List(..) => Ok(()),
        }
    }
}

/// One page of a List*Tags answer, in key order (the marker is the last key shown).
pub(crate) fn tag_page(tags: &[Tag], marker: Option<&str>, max: usize) -> String {
    let mut items: Vec<_> = tags.iter().map(|t| (t.key.clone(), t.clone())).collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let (tags, next) = page(items, marker, max);
    let mut w = XmlWriter::new();
    model::write_tags(&mut w, &tags);
    write_truncation(&mut w, next.as_deref());
    w.into_string()
}

/// The `Tags` input as stored tags.
pub(crate) fn to_tags(raw: Vec<(String, String)>) -> Vec<Tag> {
    raw.into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_markers() {
        let items = |n: usize| (0..n).map(|i| (format!("k{i}"), i)).collect::<Vec<_>>();
        let (p, next) = page(items(5), None, 2);
        assert_eq!(p, vec![0, 1]);
        assert_eq!(next.as_deref(), Some("k1"));
        let (p, next) = page(items(5), Some("k1"), 2);
        assert_eq!(p, vec![2, 3]);
        let (p, next2) = page(items(5), next.as_deref(), 2);
        assert_eq!(p, vec![4]);
        assert_eq!(next2, None);
        let (p, next) = page(items(2), None, 2);
        assert_eq!((p.len(), next), (2, None));
    }
}
