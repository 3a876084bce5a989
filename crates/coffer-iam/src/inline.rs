//! Inline policies: Put/Get/Delete/List {User,Group,Role}Policy / Policies.

use coffer_core::RequestContext;
use coffer_policy::PolicyKind;
use coffer_store::WriteBatch;
use coffer_wire::query::{QueryParams, XmlWriter};

use crate::entity::{page, paging, write_truncation};
use crate::input::{self, Input};
use crate::model::{self, Kind};
use crate::policies::check_document;
use crate::{Iam, IamError, json};

impl Iam {
    pub(crate) async fn inline(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let kind = Kind::of_action(action);
        let mut i = Input::new(q);
        let name = i.req(kind.name_param(), kind.existing_name_shape());
        let iam_action = format!("iam:{action}");
        let mut w = XmlWriter::new();
        let no_such_policy = |p: &str| {
            IamError::NoSuchEntity(format!(
                "The {} policy with name {p} cannot be found.",
                kind.segment()
            ))
        };
        if action.starts_with("List") {
            let (marker, max) = paging(&mut i);
            i.finish()?;
            let (e, _) = self.load_authorized(ctx, kind, &name, &iam_action).await?;
            let items = e.inline.keys().map(|k| (k.clone(), k.clone())).collect();
            let (names, next) = page(items, marker.as_deref(), max);
            w.open("PolicyNames");
            for n in &names {
                w.text("member", n);
            }
            w.close("PolicyNames");
            write_truncation(&mut w, next.as_deref());
            return Ok(w.into_string());
        }
        let policy = i.req("PolicyName", input::POLICY_NAME);
        if action.starts_with("Get") {
            i.finish()?;
            let (e, _) = self.load_authorized(ctx, kind, &name, &iam_action).await?;
            let doc = e
                .inline
                .get(&policy)
                .ok_or_else(|| no_such_policy(&policy))?;
            w.text(kind.name_param(), &e.name)
                .text("PolicyName", &policy)
                .text("PolicyDocument", &model::encode_document(doc));
            return Ok(w.into_string());
        }
        let doc = if action.starts_with("Put") {
            let d = i.req("PolicyDocument", input::POLICY_DOCUMENT);
            i.finish()?;
            check_document(&d, PolicyKind::Identity, kind.inline_quota(), "PolicySize")?;
            Some(d)
        } else {
            i.finish()?;
            None
        };
        self.write(|| async {
            let (mut e, entry) = self.load_authorized(ctx, kind, &name, &iam_action).await?;
            match &doc {
                Some(d) => {
                    e.inline.insert(policy.clone(), d.clone());
                    let total: usize = e
                        .inline
                        .values()
                        .map(|d| d.chars().filter(|c| !c.is_whitespace()).count())
                        .sum();
                    if total > kind.inline_quota() {
                        return Err(IamError::LimitExceeded(format!(
                            "Maximum policy size of {} bytes exceeded for {} {}",
                            kind.inline_quota(),
                            kind.segment(),
                            e.name
                        )));
                    }
                }
                None => {
                    e.inline
                        .remove(&policy)
                        .ok_or_else(|| no_such_policy(&policy))?;
                }
            }
            let key = model::entity_key(account, kind, &name);
            let mut batch = WriteBatch::new();
            batch.check(key.clone(), Some(&entry)).put(key, json(&e)?);
            self.commit(account, batch).await
        })
        .await?;
        Ok(String::new())
    }
}
