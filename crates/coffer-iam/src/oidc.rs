//! OpenID Connect identity providers: Create/Get/List/Delete, client ids, thumbprints and tags.
//! A provider names an issuer whose tokens AssumeRoleWithWebIdentity accepts (see `sts`), and
//! the audiences (client ids) they must be issued for.
//!
//! Layout: `iam/{account}/oidc/{host/path}`; the ARN is
//! `arn:aws:iam::{account}:oidc-provider/{host/path}`, the issuer `https://{host/path}`.

use coffer_core::RequestContext;
use coffer_service::tags::Tag;
use coffer_store::{Entry, WriteBatch};
use coffer_wire::query::{QueryParams, XmlWriter};
use serde::{Deserialize, Serialize};

use crate::entity::{self, TagChange, tag_page, to_tags};
use crate::input::{self, Input, Pattern};
use crate::model;
use crate::{Iam, IamError, authorize, json};

const URL: input::Str = input::s(1, 255, Pattern::None);
const CLIENT_ID: input::Str = input::s(1, 255, Pattern::None);
const THUMBPRINT: input::Str = input::s(40, 40, Pattern::None);
/// IAM's quotas: client ids per provider, thumbprints per provider.
const MAX_CLIENT_IDS: usize = 100;
const MAX_THUMBPRINTS: usize = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Provider {
    /// `host/path`, without the scheme.
    pub url: String,
    pub client_ids: Vec<String>,
    pub thumbprints: Vec<String>,
    pub created_ms: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

fn provider_key(account: &str, url: &str) -> String {
    format!("iam/{account}/oidc/{url}")
}

pub(crate) fn provider_arn(account: &str, url: &str) -> String {
    format!("arn:aws:iam::{account}:oidc-provider/{url}")
}

/// `host/path` of an issuer URL, which must be `https://` with no query or fragment.
pub(crate) fn issuer_id(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?.trim_end_matches('/');
    let host = rest.split('/').next().unwrap_or("");
    (!host.is_empty() && !rest.contains(['?', '#', ' '])).then_some(rest)
}

fn not_found(arn: &str) -> IamError {
    IamError::NoSuchEntity(format!("OpenIDConnect Provider not found for arn {arn}"))
}

impl Iam {
    /// The provider an ARN of `account` names, or NoSuchEntity.
    pub(crate) async fn load_provider(
        &self,
        account: &str,
        arn: &str,
    ) -> Result<(Provider, Entry), IamError> {
        let url = arn
            .strip_prefix(&format!("arn:aws:iam::{account}:oidc-provider/"))
            .ok_or_else(|| not_found(arn))?;
        self.get_json::<Provider>(&provider_key(account, url))
            .await?
            .ok_or_else(|| not_found(arn))
    }

    pub(crate) async fn oidc(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let iam_action = format!("iam:{action}");
        let mut i = Input::new(q);
        let mut w = XmlWriter::new();
        match action {
            "CreateOpenIDConnectProvider" => {
                let url = i.req("Url", URL);
                let client_ids = i.list("ClientIDList", CLIENT_ID, MAX_CLIENT_IDS);
                let thumbprints = i.list("ThumbprintList", THUMBPRINT, MAX_THUMBPRINTS);
                let tags = to_tags(i.tags("Tags", entity::MAX_TAGS));
                i.finish()?;
                let id = issuer_id(&url).ok_or_else(|| {
                    IamError::InvalidInput(
                        "Invalid Url: it must begin with https:// and name a host, with no query \
                         or fragment."
                            .into(),
                    )
                })?;
                let arn = provider_arn(account, id);
                authorize(ctx, &iam_action, &arn)?;
                self.write(|| async {
                    let key = provider_key(account, id);
                    if self.store.get(key.as_bytes()).await?.is_some() {
                        return Err(IamError::EntityAlreadyExists(format!(
                            "Provider with url https://{id} already exists."
                        )));
                    }
                    let p = Provider {
                        url: id.to_string(),
                        client_ids: dedup(client_ids.clone()),
                        thumbprints: thumbprints.clone(),
                        created_ms: self.now_ms(),
                        tags: tags.clone(),
                    };
                    let mut batch = WriteBatch::new();
                    batch.check(key.clone(), None).put(key, json(&p)?);
                    self.commit(account, batch).await
                })
                .await?;
                w.text("OpenIDConnectProviderArn", &arn);
                if !tags.is_empty() {
                    model::write_tags(&mut w, &tags);
                }
            }
            "ListOpenIDConnectProviders" => {
                i.finish()?;
                authorize(
                    ctx,
                    &iam_action,
                    &format!("arn:aws:iam::{account}:oidc-provider/*"),
                )?;
                let prefix = provider_key(account, "");
                w.open("OpenIDConnectProviderList");
                for (_, p, _) in self.scan_json::<Provider>(&prefix).await? {
                    w.open("member")
                        .text("Arn", &provider_arn(account, &p.url))
                        .close("member");
                }
                w.close("OpenIDConnectProviderList");
            }
            _ => {
                let arn = i.req("OpenIDConnectProviderArn", input::ARN);
                let change = match action {
                    "AddClientIDToOpenIDConnectProvider"
                    | "RemoveClientIDFromOpenIDConnectProvider" => {
                        Change::ClientId(i.req("ClientID", CLIENT_ID))
                    }
                    "UpdateOpenIDConnectProviderThumbprint" => {
                        if !q.has_prefix("ThumbprintList") {
                            i.req("ThumbprintList", THUMBPRINT);
                        }
                        Change::Thumbprints(i.list("ThumbprintList", THUMBPRINT, MAX_THUMBPRINTS))
                    }
                    "TagOpenIDConnectProvider" => Change::Tags(TagChange::read(&mut i, q, "Tag")),
                    "UntagOpenIDConnectProvider" => {
                        Change::Tags(TagChange::read(&mut i, q, "Untag"))
                    }
                    "ListOpenIDConnectProviderTags" => {
                        Change::Tags(TagChange::read(&mut i, q, "List"))
                    }
                    _ => Change::None,
                };
                i.finish()?;
                let (p, _) = self.load_provider(account, &arn).await?;
                authorize(ctx, &iam_action, &arn)?;
                match (action, &change) {
                    ("GetOpenIDConnectProvider", _) => {
                        w.text("Url", &p.url);
                        w.open("ClientIDList");
                        for c in &p.client_ids {
                            w.text("member", c);
                        }
                        w.close("ClientIDList").open("ThumbprintList");
                        for t in &p.thumbprints {
                            w.text("member", t);
                        }
                        w.close("ThumbprintList")
                            .text("CreateDate", &model::iso8601(p.created_ms));
                        model::write_tags(&mut w, &p.tags);
                        return Ok(w.into_string());
                    }
                    (_, Change::Tags(TagChange::List(marker, max))) => {
                        return Ok(tag_page(&p.tags, marker.as_deref(), *max));
                    }
                    _ => {}
                }
                self.write(|| async {
                    let (mut p, entry) = self.load_provider(account, &arn).await?;
                    let key = provider_key(account, &p.url);
                    let mut batch = WriteBatch::new();
                    batch.check(key.clone(), Some(&entry));
                    match (action, &change) {
                        ("DeleteOpenIDConnectProvider", _) => {
                            batch.delete(key);
                            return self.commit(account, batch).await;
                        }
                        ("AddClientIDToOpenIDConnectProvider", Change::ClientId(c)) => {
                            if !p.client_ids.contains(c) {
                                if p.client_ids.len() >= MAX_CLIENT_IDS {
                                    return Err(IamError::LimitExceeded(format!(
                                        "Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: \
                                         {MAX_CLIENT_IDS}"
                                    )));
                                }
                                p.client_ids.push(c.clone());
                            }
                        }
                        (_, Change::ClientId(c)) => p.client_ids.retain(|x| x != c),
                        (_, Change::Thumbprints(t)) => p.thumbprints = t.clone(),
                        (_, Change::Tags(t)) => t.apply(&mut p.tags, "OpenIDConnectProvider")?,
                        _ => return Err(IamError::internal("an unrouted OIDC action")),
                    }
                    batch.put(key, json(&p)?);
                    self.commit(account, batch).await
                })
                .await?;
            }
        }
        Ok(w.into_string())
    }
}

/// What a provider call changes.
enum Change {
    None,
    ClientId(String),
    Thumbprints(Vec<String>),
    Tags(TagChange),
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_urls() {
        assert_eq!(
            issuer_id("https://token.actions.githubusercontent.com"),
            Some("token.actions.githubusercontent.com")
        );
        assert_eq!(
            issuer_id("https://oidc.example.com/id/ABC/"),
            Some("oidc.example.com/id/ABC")
        );
        assert_eq!(issuer_id("http://insecure.example.com"), None);
        assert_eq!(issuer_id("https://"), None);
        assert_eq!(issuer_id("https://x.example.com/?a=b"), None);
    }
}
