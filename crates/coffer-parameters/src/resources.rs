//! Tags (Add/List/RemoveTagsFromResource, ResourceType `Parameter`) and resource policies
//! (Put/Get/DeleteResourcePolicy): stored and validated here, enforced by access control.

use aws_lc_rs::digest;
use coffer_core::authz::ConditionKey;
use coffer_service::opctx::OpCtx;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ParametersError as E;
use crate::model::{ResourcePolicy, Tier, canon};
use crate::ops::{Loaded, Obj};
use crate::validate::{self, TagIn, required};
use crate::{ParametersService, retry};

const RESOURCE_TYPES: &[&str] = &[
    "Document",
    "ManagedInstance",
    "MaintenanceWindow",
    "Parameter",
    "PatchBaseline",
    "OpsItem",
    "OpsMetadata",
    "Automation",
    "Association",
    "CloudConnector",
];

/// Resource policies a parameter may carry.
const MAX_RESOURCE_POLICIES: usize = 1;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagsIn {
    resource_type: Option<String>,
    resource_id: Option<String>,
    tags: Option<Vec<TagIn>>,
    tag_keys: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PolicyIn {
    resource_arn: Option<String>,
    policy: Option<String>,
    policy_id: Option<String>,
    policy_hash: Option<String>,
    deletion_mode: Option<String>,
}

fn policy_hash(doc: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, doc.as_bytes()).as_ref())
}

fn invalid_resource_id() -> E {
    E::InvalidResourceId(
        "The resource ID is not valid. Verify that you entered the correct ID and try again."
            .into(),
    )
}

fn resource_not_found() -> E {
    E::ResourceNotFound("The specified parameter was not found.".into())
}

impl ParametersService {
    /// Checks ResourceType/ResourceId and returns the parameter's canonical name.
    async fn tag_target(
        &self,
        ctx: &OpCtx<'_>,
        input: &TagsIn,
        extra: &[ConditionKey<'_>],
    ) -> Result<String, E> {
        let rt = required("resourceType", input.resource_type.as_deref())?;
        validate::one_of("resourceType", Some(rt), RESOURCE_TYPES)?;
        if rt != "Parameter" {
            return Err(E::InvalidResourceType(
                "The resource type isn't valid. This server supports tags on resource type Parameter."
                    .into(),
            ));
        }
        let id = required("resourceId", input.resource_id.as_deref())?;
        let c = match self.target(ctx, id) {
            Ok((name, None)) => canon(&name),
            _ => return Err(invalid_resource_id()),
        };
        self.check_existing(ctx, &c, extra).await?;
        Ok(c)
    }

    async fn change_tagged(
        &self,
        ctx: &OpCtx<'_>,
        c: &str,
        f: impl Fn(&mut Loaded) -> Result<(), E>,
    ) -> Result<(), E> {
        retry!(
            self,
            ctx,
            c,
            async {
                let mut l = self
                    .load(ctx.account_id(), &ctx.region, c)
                    .await?
                    .ok_or_else(invalid_resource_id)?;
                f(&mut l)?;
                self.write_meta(ctx, c, &l).await
            }
            .await
        )
    }

    pub(crate) async fn add_tags_to_resource(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        let input: TagsIn = validate::decode(body)?;
        let tags = validate::tags(required("tags", input.tags.as_deref())?)?;
        let keys = [ConditionKey::list(
            "aws:TagKeys",
            tags.iter().map(|t| t.key.as_str()).collect(),
        )];
        let c = self
            .tag_target(&ctx.with_request_tags(&tags), &input, &keys)
            .await?;
        self.change_tagged(ctx, &c, |l| {
            validate::merge_tags(&mut l.param.tags, tags.clone())
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn remove_tags_from_resource(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        let input: TagsIn = validate::decode(body)?;
        let keys = required("tagKeys", input.tag_keys.as_ref())?;
        for k in keys {
            validate::length("tagKeys.member", k, 1, 128)?;
        }
        let tag_keys = [ConditionKey::list(
            "aws:TagKeys",
            keys.iter().map(String::as_str).collect(),
        )];
        let c = self.tag_target(ctx, &input, &tag_keys).await?;
        self.change_tagged(ctx, &c, |l| {
            l.param.tags.retain(|t| !keys.contains(&t.key));
            Ok(())
        })
        .await?;
        Ok(Obj::new())
    }

    pub(crate) async fn list_tags_for_resource(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        let input: TagsIn = validate::decode(body)?;
        let c = self.tag_target(ctx, &input, &[]).await?;
        let l = self
            .load(ctx.account_id(), &ctx.region, &c)
            .await?
            .ok_or_else(invalid_resource_id)?;
        let tags: Vec<Value> = l
            .param
            .tags
            .iter()
            .map(|t| json!({"Key": t.key, "Value": t.value}))
            .collect();
        let mut o = Obj::new();
        o.insert("TagList".into(), Value::Array(tags));
        Ok(o)
    }

    /// The canonical name of the parameter a `ResourceArn` names.
    async fn policy_target(&self, ctx: &OpCtx<'_>, arn: &str) -> Result<String, E> {
        validate::length("resourceArn", arn, 20, 2048)?;
        if !arn.starts_with("arn:") {
            return Err(E::ResourcePolicyInvalidParameter(
                "ResourceArn must be the ARN of a parameter.".into(),
            ));
        }
        let c = match self.target(ctx, arn) {
            Ok((name, None)) => canon(&name),
            _ => return Err(resource_not_found()),
        };
        self.check_existing(ctx, &c, &[]).await?;
        Ok(c)
    }

    pub(crate) async fn put_resource_policy(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, E> {
        let input: PolicyIn = validate::decode(body)?;
        let c = self
            .policy_target(ctx, required("resourceArn", input.resource_arn.as_deref())?)
            .await?;
        let doc = required("policy", input.policy.as_deref())?;
        if doc.trim().is_empty() {
            return Err(E::validation(
                "policy",
                "Member must satisfy regular expression pattern: ^(?!\\s*$).+",
            ));
        }
        coffer_policy::parse_resource_policy(doc)
            .map_err(|e| E::MalformedResourcePolicyDocument(e.to_string()))?;
        let hash = policy_hash(doc);
        let mut out_id = String::new();
        retry!(self, ctx, &c, async {
            let mut l = self
                .load(ctx.account_id(), &ctx.region, &c)
                .await?
                .ok_or_else(resource_not_found)?;
            if l.param.current.tier != Tier::Advanced {
                return Err(E::ResourcePolicyInvalidParameter(
                    "Only advanced-tier parameters can have a resource policy.".into(),
                ));
            }
            let policies = &mut l.param.resource_policies;
            match input.policy_id.as_deref() {
                Some(id) => {
                    let p = policies
                        .iter_mut()
                        .find(|p| p.id == id)
                        .ok_or_else(|| E::ResourcePolicyNotFound("No policy found with the given PolicyId.".into()))?;
                    if input.policy_hash.as_deref() != Some(p.hash.as_str()) {
                        return Err(E::ResourcePolicyConflict(
                            "The PolicyHash does not match the policy's current hash.".into(),
                        ));
                    }
                    p.doc = doc.to_owned();
                    p.hash = hash.clone();
                    out_id = p.id.clone();
                }
                None => {
                    if policies.len() >= MAX_RESOURCE_POLICIES {
                        return Err(E::ResourcePolicyLimitExceeded(format!(
                            "A parameter can have at most {MAX_RESOURCE_POLICIES} resource policy; update it with its PolicyId and PolicyHash."
                        )));
                    }
                    out_id = uuid::Uuid::new_v4().to_string();
                    policies.push(ResourcePolicy {
                        id: out_id.clone(),
                        hash: hash.clone(),
                        doc: doc.to_owned(),
                    });
                }
            }
            self.write_meta(ctx, &c, &l).await
        }
        .await)?;
        let mut o = Obj::new();
        o.insert("PolicyId".into(), json!(out_id));
        o.insert("PolicyHash".into(), json!(hash));
        Ok(o)
    }

    pub(crate) async fn get_resource_policies(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct GetIn {
            resource_arn: Option<String>,
            max_results: Option<i64>,
        }
        let input: GetIn = validate::decode(body)?;
        validate::range("maxResults", input.max_results, 1, 50)?;
        let c = self
            .policy_target(ctx, required("resourceArn", input.resource_arn.as_deref())?)
            .await?;
        let l = self
            .load(ctx.account_id(), &ctx.region, &c)
            .await?
            .ok_or_else(resource_not_found)?;
        let list: Vec<Value> = l
            .param
            .resource_policies
            .iter()
            .map(|p| json!({"PolicyId": p.id, "PolicyHash": p.hash, "Policy": p.doc}))
            .collect();
        let mut o = Obj::new();
        o.insert("Policies".into(), Value::Array(list));
        Ok(o)
    }

    pub(crate) async fn delete_resource_policy(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        let input: PolicyIn = validate::decode(body)?;
        let c = self
            .policy_target(ctx, required("resourceArn", input.resource_arn.as_deref())?)
            .await?;
        let id = required("policyId", input.policy_id.as_deref())?;
        let hash = required("policyHash", input.policy_hash.as_deref())?;
        validate::one_of(
            "deletionMode",
            input.deletion_mode.as_deref(),
            &["RemoveSharing", "RollbackMigration"],
        )?;
        retry!(
            self,
            ctx,
            &c,
            async {
                let mut l = self
                    .load(ctx.account_id(), &ctx.region, &c)
                    .await?
                    .ok_or_else(resource_not_found)?;
                let p = l
                    .param
                    .resource_policies
                    .iter()
                    .find(|p| p.id == id)
                    .ok_or_else(|| {
                        E::ResourcePolicyNotFound("No policy found with the given PolicyId.".into())
                    })?;
                if p.hash != hash {
                    return Err(E::ResourcePolicyConflict(
                        "The PolicyHash does not match the policy's current hash.".into(),
                    ));
                }
                l.param.resource_policies.retain(|p| p.id != id);
                self.write_meta(ctx, &c, &l).await
            }
            .await
        )?;
        Ok(Obj::new())
    }
}
