//! Account-wide views for IAM auditing tools: GetAccountAuthorizationDetails (every user,
//! group, role and customer managed policy with everything that decides what they may do —
//! inline and attached policies, group memberships, trust policies, permissions boundaries,
//! every policy version — in one paged listing) and GetAccountSummary (counts and quotas).

use coffer_core::RequestContext;
use coffer_wire::query::{QueryParams, XmlWriter};

use crate::entity::{page, paging, write_truncation};
use crate::input::Input;
use crate::model::{self, Entity, Kind, ManagedPolicy};
use crate::policies::parse_policy_arn;
use crate::{Iam, IamError, authorize};

const ENTITY_TYPES: &[&str] = &[
    "User",
    "Role",
    "Group",
    "LocalManagedPolicy",
    "AWSManagedPolicy",
];

/// One item of the listing, in the order pages are cut: users, groups, roles, then policies.
enum Item {
    Entity(Kind, Entity),
    Policy(ManagedPolicy),
}

impl Iam {
    pub(crate) async fn authorization_details(
        &self,
        ctx: &RequestContext,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        let mut i = Input::new(q);
        let filter = i.enumerated_list("Filter", ENTITY_TYPES);
        let (marker, max) = paging(&mut i);
        i.finish()?;
        authorize(ctx, "iam:GetAccountAuthorizationDetails", "*")?;
        let wanted = |t: &str| filter.is_empty() || filter.iter().any(|f| f == t);

        let kinds: Vec<Kind> = [Kind::User, Kind::Group, Kind::Role]
            .into_iter()
            .filter(|k| wanted(k.title()))
            .collect();
        let mut items: Vec<(String, Item)> = self
            .entities_of(account, &kinds)
            .await?
            .into_iter()
            .map(|(key, kind, e)| (key, Item::Entity(kind, e)))
            .collect();
        // Coffer has no AWS managed policies: `AWSManagedPolicy` adds nothing.
        if wanted("LocalManagedPolicy") {
            let prefix = model::policy_prefix(account);
            for (k, p, _) in self.scan_json::<ManagedPolicy>(&prefix).await? {
                items.push((format!("3/{}", &k[prefix.len()..]), Item::Policy(p)));
            }
        }
        let (list, next) = page(items, marker.as_deref(), max);

        let mut w = XmlWriter::new();
        for (kind, element) in [
            (Kind::User, "UserDetailList"),
            (Kind::Group, "GroupDetailList"),
            (Kind::Role, "RoleDetailList"),
        ] {
            w.open(element);
            for item in &list {
                if let Item::Entity(k, e) = item
                    && *k == kind
                {
                    w.open("member");
                    write_entity_detail(&mut w, account, kind, e);
                    w.close("member");
                }
            }
            w.close(element);
        }
        w.open("Policies");
        for item in &list {
            if let Item::Policy(p) = item {
                w.open("member");
                model::write_policy(&mut w, account, p);
                w.open("PolicyVersionList");
                for v in &p.versions {
                    w.open("member");
                    model::write_version(&mut w, v, &p.default_version);
                    w.close("member");
                }
                w.close("PolicyVersionList");
                w.close("member");
            }
        }
        w.close("Policies");
        write_truncation(&mut w, next.as_deref());
        Ok(w.into_string())
    }
}

impl Iam {
    /// GetAccountSummary: how many users, groups, roles and managed policies the account has,
    /// whether its root has access keys, and the quotas Coffer enforces (only those: a quota
    /// listed here is one a write can hit). What Coffer has no place for (MFA devices, signing
    /// certificates, instance profiles, identity providers, server certificates) counts 0.
    pub(crate) async fn account_summary(
        &self,
        ctx: &RequestContext,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let account = ctx.account_id();
        Input::new(q).finish()?;
        authorize(ctx, "iam:GetAccountSummary", "*")?;
        let mut counts = Vec::new();
        for kind in [Kind::User, Kind::Group, Kind::Role] {
            let n = self
                .scan_json::<Entity>(&model::entity_prefix(account, kind))
                .await?
                .len();
            counts.push((format!("{}s", kind.title()), n));
        }
        let policies = self
            .scan_json::<ManagedPolicy>(&model::policy_prefix(account))
            .await?;
        let in_use: u32 = policies.iter().map(|(_, p, _)| p.attachments).sum();
        let root_keys = crate::keys::has_root_access_key(&*self.store, account).await?;
        use crate::{groups, keys, policies as pol, roles};
        let entries: Vec<(String, usize)> = counts
            .into_iter()
            .chain([
                ("Policies".to_string(), policies.len()),
                ("PolicyVersionsInUse".into(), in_use as usize),
                ("AccountAccessKeysPresent".into(), usize::from(root_keys)),
                ("AccountMFAEnabled".into(), 0),
                ("AccountPasswordPresent".into(), 0),
                ("AccountSigningCertificatesPresent".into(), 0),
                ("MFADevices".into(), 0),
                ("MFADevicesInUse".into(), 0),
                ("Providers".into(), 0),
                ("InstanceProfiles".into(), 0),
                ("ServerCertificates".into(), 0),
                ("AccessKeysPerUserQuota".into(), keys::MAX_KEYS_PER_USER),
                ("GroupsPerUserQuota".into(), groups::MAX_GROUPS_PER_USER),
                ("AttachedPoliciesPerUserQuota".into(), pol::MAX_ATTACHED),
                ("AttachedPoliciesPerGroupQuota".into(), pol::MAX_ATTACHED),
                ("AttachedPoliciesPerRoleQuota".into(), pol::MAX_ATTACHED),
                ("VersionsPerPolicyQuota".into(), pol::MAX_VERSIONS),
                ("PolicySizeQuota".into(), pol::MANAGED_POLICY_QUOTA),
                ("UserPolicySizeQuota".into(), Kind::User.inline_quota()),
                ("GroupPolicySizeQuota".into(), Kind::Group.inline_quota()),
                ("RolePolicySizeQuota".into(), Kind::Role.inline_quota()),
                (
                    "AssumeRolePolicySizeQuota".into(),
                    roles::TRUST_POLICY_QUOTA,
                ),
            ])
            .collect();
        let mut w = XmlWriter::new();
        w.open("SummaryMap");
        for (key, value) in &entries {
            w.open("entry")
                .text("key", key)
                .text("value", &value.to_string())
                .close("entry");
        }
        w.close("SummaryMap");
        Ok(w.into_string())
    }
}

/// A `UserDetail`, `GroupDetail` or `RoleDetail`: the entity as GetUser/GetGroup/GetRole show
/// it, with its inline policies' documents, its attached policies and (users) its groups.
fn write_entity_detail(w: &mut XmlWriter, account: &str, kind: Kind, e: &Entity) {
    model::write_entity(w, account, kind, e, true);
    w.open(&format!("{}PolicyList", kind.title()));
    for (name, doc) in &e.inline {
        w.open("member")
            .text("PolicyName", name)
            .text("PolicyDocument", &model::encode_document(doc))
            .close("member");
    }
    w.close(&format!("{}PolicyList", kind.title()));
    w.open("AttachedManagedPolicies");
    for arn in &e.attached {
        let name = parse_policy_arn(account, arn).map_or(arn.as_str(), |(_, n)| n);
        w.open("member")
            .text("PolicyName", name)
            .text("PolicyArn", arn)
            .close("member");
    }
    w.close("AttachedManagedPolicies");
    match kind {
        Kind::User => {
            w.open("GroupList");
            for g in &e.groups {
                w.text("member", g);
            }
            w.close("GroupList");
        }
        // Instance profiles are EC2's; a role is in none here.
        Kind::Role => {
            w.open("InstanceProfileList").close("InstanceProfileList");
        }
        Kind::Group => {}
    }
}
