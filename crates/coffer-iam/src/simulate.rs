//! IAM's policy simulator: SimulatePrincipalPolicy (a user's, group's or role's own policies,
//! optionally with more) and SimulateCustomPolicy (policies passed in), for each action and
//! resource asked, through the same evaluation the server enforces (`coffer_authz::evaluate`),
//! with the request's context keys taken from `ContextEntries`.
//!
//! Each result names the policies whose statements decided it (`MatchedStatements`, by policy,
//! without the statements' positions in the document, which Coffer does not keep) and, when a
//! permissions boundary took part, whether it allowed the action. `MissingContextValues` is
//! always empty: conditions on keys the simulation does not supply simply do not match.

use std::collections::HashMap;
use std::sync::Arc;

use coffer_core::RequestContext;
use coffer_core::authz::DenyReason;
use coffer_policy::{CompiledPolicy, Decision, PolicyKind, ResourceMode, Values};
use coffer_wire::query::{QueryParams, XmlWriter};

use crate::input::{self, Input, Pattern};
use crate::model::{self, Entity, Kind};
use crate::{Iam, IamError, authorize};

/// Action and resource pairs one call may ask about (the answer is paged; this bounds the work).
const MAX_RESULTS: usize = 1000;
const CONTEXT_TYPES: &[&str] = &[
    "string",
    "stringList",
    "numeric",
    "numericList",
    "boolean",
    "booleanList",
    "ip",
    "ipList",
    "binary",
    "binaryList",
    "date",
    "dateList",
];

/// A policy taking part, as results name it.
struct Source {
    id: String,
    /// `user`, `group`, `role`, `user-managed`, `resource` or `none` (passed in).
    kind: &'static str,
    policy: Arc<CompiledPolicy>,
}

/// `ContextEntries`, as the request context the conditions read.
struct Entries(HashMap<String, Vec<String>>);

impl coffer_policy::Context for Entries {
    fn get(&self, key: &str) -> Option<Values<'_>> {
        let v = self.0.get(key)?;
        Some(match v.as_slice() {
            [one] => Values::One(one.as_str().into()),
            many => Values::Many(many.iter().map(|s| s.as_str().into()).collect()),
        })
    }
}

fn compile(doc: &str, kind: PolicyKind) -> Result<Arc<CompiledPolicy>, IamError> {
    CompiledPolicy::parse(doc, kind)
        .map(Arc::new)
        .map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))
}

impl Iam {
    pub(crate) async fn simulate(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let principal = action == "SimulatePrincipalPolicy";
        let mut i = Input::new(q);
        let source_arn = principal.then(|| i.req("PolicySourceArn", input::ARN));
        let inputs = i.list("PolicyInputList", input::POLICY_DOCUMENT, usize::MAX);
        let boundaries = i.list(
            "PermissionsBoundaryPolicyInputList",
            input::POLICY_DOCUMENT,
            1,
        );
        let actions = i.list("ActionNames", input::s(3, 128, Pattern::None), MAX_RESULTS);
        let resources = i.list(
            "ResourceArns",
            input::s(1, 2048, Pattern::None),
            MAX_RESULTS,
        );
        let resource_policy = i.opt("ResourcePolicy", input::POLICY_DOCUMENT);
        let caller_arn = i.opt("CallerArn", input::ARN);
        i.opt("ResourceOwner", input::ARN);
        i.opt("ResourceHandlingOption", input::s(1, 64, Pattern::None));
        let (marker, max) = crate::entity::paging(&mut i);
        let mut context = HashMap::new();
        for n in 1..=q.structs("ContextEntries").len() {
            let head = format!("ContextEntries.member.{n}");
            let key = i.opt(
                &format!("{head}.ContextKeyName"),
                input::s(5, 256, Pattern::None),
            );
            i.enumerated(&format!("{head}.ContextKeyType"), CONTEXT_TYPES);
            let values: Vec<String> = q
                .list(&format!("{head}.ContextKeyValues"))
                .into_iter()
                .map(String::from)
                .collect();
            if let Some(k) = key {
                context.insert(k.to_ascii_lowercase(), values);
            }
        }
        if !principal && inputs.is_empty() {
            i.req("PolicyInputList", input::POLICY_DOCUMENT);
        }
        if actions.is_empty() {
            i.req("ActionNames", input::s(3, 128, Pattern::None));
        }
        i.finish()?;

        let mut identity = Vec::new();
        let mut boundary = None;
        let mut caller = caller_arn;
        if let Some(arn) = &source_arn {
            authorize(ctx, "iam:SimulatePrincipalPolicy", arn)?;
            let (kind, e) = self.entity_by_arn(account, arn).await?;
            self.sources_of(account, kind, &e, &mut identity).await?;
            if kind == Kind::User {
                for g in &e.groups {
                    let (group, _) = self.load_entity(account, Kind::Group, g).await?;
                    self.sources_of(account, Kind::Group, &group, &mut identity)
                        .await?;
                }
                caller.get_or_insert_with(|| arn.clone());
            }
            if let Some(b) = &e.permissions_boundary {
                let (p, _) = self.load_policy(account, b).await?;
                let doc = p.default_document().unwrap_or_default();
                boundary = Some(Source {
                    id: p.name.clone(),
                    kind: "user-managed",
                    policy: compile(doc, PolicyKind::Identity)?,
                });
            }
        } else {
            authorize(ctx, "iam:SimulateCustomPolicy", "*")?;
        }
        for (n, doc) in inputs.iter().enumerate() {
            identity.push(Source {
                id: format!("PolicyInputList.{}", n + 1),
                kind: "none",
                policy: compile(doc, PolicyKind::Identity)?,
            });
        }
        // A boundary passed in replaces the principal's own.
        if let Some(doc) = boundaries.first() {
            boundary = Some(Source {
                id: "PermissionsBoundaryPolicyInputList.1".into(),
                kind: "none",
                policy: compile(doc, PolicyKind::Identity)?,
            });
        }
        let resource = resource_policy
            .as_deref()
            .map(|doc| {
                Ok::<_, IamError>(Source {
                    id: "ResourcePolicy".into(),
                    kind: "resource",
                    policy: compile(doc, PolicyKind::Resource)?,
                })
            })
            .transpose()?;
        if resource.is_some() && caller.is_none() {
            return Err(IamError::InvalidInput(
                "A CallerArn is required when a ResourcePolicy is given.".into(),
            ));
        }
        let policies = coffer_authz::IdentityPolicies {
            identity: identity.iter().map(|s| s.policy.clone()).collect(),
            session: Vec::new(),
            boundary: boundary.as_ref().map(|s| s.policy.clone()),
        };

        let context = Entries(context);
        let resources = if resources.is_empty() {
            vec!["*".to_string()]
        } else {
            resources
        };
        let asked: Vec<(&str, &str)> = actions
            .iter()
            .flat_map(|a| resources.iter().map(move |r| (a.as_str(), r.as_str())))
            .collect();
        if asked.len() > MAX_RESULTS {
            return Err(IamError::InvalidInput(format!(
                "At most {MAX_RESULTS} action and resource pairs may be simulated at once."
            )));
        }
        let start = match marker.as_deref() {
            None => 0,
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= asked.len())
                .ok_or_else(|| IamError::InvalidInput("Invalid Marker.".into()))?,
        };
        let end = (start + max).min(asked.len());

        let mut w = XmlWriter::new();
        w.open("EvaluationResults");
        for (action, resource_arn) in &asked[start..end] {
            let request = coffer_policy::Request {
                action,
                resource: resource_arn,
                principal: coffer_policy::RequestPrincipal {
                    account,
                    arn: caller.as_deref().unwrap_or(""),
                    role_arn: None,
                    is_root: false,
                    service: None,
                    federated: None,
                },
                context: &context,
            };
            let mode = resource
                .as_ref()
                .map_or(ResourceMode::None, |s| ResourceMode::Combined(&s.policy));
            let decision = coffer_authz::evaluate(&policies, mode, &request);
            let (label, matches): (&str, fn(&coffer_policy::PolicyOutcome) -> bool) = match decision
            {
                Ok(()) => ("allowed", |o| o.allow),
                Err(
                    DenyReason::ExplicitDenyIdentity
                    | DenyReason::ExplicitDenyResource
                    | DenyReason::ExplicitDenyBoundary
                    | DenyReason::ExplicitDenySession,
                ) => ("explicitDeny", |o| o.deny),
                Err(_) => ("implicitDeny", |_| false),
            };
            w.open("member")
                .text("EvalActionName", action)
                .text("EvalResourceName", resource_arn)
                .text("EvalDecision", label);
            w.open("MatchedStatements");
            for s in identity.iter().chain(&resource).chain(&boundary) {
                if matches(&s.policy.evaluate(&request)) {
                    w.open("member")
                        .text("SourcePolicyId", &s.id)
                        .text("SourcePolicyType", s.kind)
                        .close("member");
                }
            }
            w.close("MatchedStatements");
            w.open("MissingContextValues").close("MissingContextValues");
            if let Some(b) = &boundary {
                let allowed = coffer_policy::decide([&*b.policy], ResourceMode::None, &request)
                    == Decision::Allow;
                w.open("PermissionsBoundaryDecisionDetail")
                    .text(
                        "AllowedByPermissionsBoundary",
                        if allowed { "true" } else { "false" },
                    )
                    .close("PermissionsBoundaryDecisionDetail");
            }
            w.close("member");
        }
        w.close("EvaluationResults");
        let next = (end < asked.len()).then(|| end.to_string());
        crate::entity::write_truncation(&mut w, next.as_deref());
        Ok(w.into_string())
    }

    /// The user, group or role an IAM ARN names.
    async fn entity_by_arn(&self, account: &str, arn: &str) -> Result<(Kind, Entity), IamError> {
        let no_such = || IamError::NoSuchEntity(format!("The entity {arn} cannot be found."));
        let resource = arn
            .strip_prefix("arn:")
            .and_then(|r| r.split_once(':'))
            .and_then(|(_, r)| r.strip_prefix("iam::"))
            .and_then(|r| r.strip_prefix(account))
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(|| IamError::InvalidInput(format!("Invalid ARN: {arn}")))?;
        let (segment, path_name) = resource.split_once('/').ok_or_else(no_such)?;
        let kind = [Kind::User, Kind::Group, Kind::Role]
            .into_iter()
            .find(|k| k.segment() == segment)
            .ok_or_else(|| IamError::InvalidInput(format!("Invalid ARN: {arn}")))?;
        let name = path_name.rsplit('/').next().unwrap_or(path_name);
        match self.find_entity(account, kind, name).await? {
            Some((e, _)) if model::entity_arn(account, kind, &e.path, &e.name) == arn => {
                Ok((kind, e))
            }
            _ => Err(no_such()),
        }
    }

    /// The inline and attached policies of one entity (what the authorizer collects), named as
    /// the simulator reports them: inline by name and its entity's kind, managed by name.
    async fn sources_of(
        &self,
        account: &str,
        kind: Kind,
        e: &Entity,
        out: &mut Vec<Source>,
    ) -> Result<(), IamError> {
        let mut docs = crate::IdentityPolicies::default();
        self.collect(account, e, &mut docs).await?;
        for (id, doc) in docs.identity {
            let (id, kind) = match crate::policies::parse_policy_arn(account, &id) {
                Some((_, name)) => (name.to_string(), "user-managed"),
                None => (id, kind.segment()),
            };
            out.push(Source {
                id,
                kind,
                policy: compile(&doc, PolicyKind::Identity)?,
            });
        }
        Ok(())
    }
}
