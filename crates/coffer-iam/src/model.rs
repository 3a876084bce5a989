//! What IAM stores, where, and how each record reads in XML.
//!
//! Layout (IAM is global per account; names are unique case-insensitively, so keys use the
//! lower-cased name):
//!   iam/{account}/user/{name}        a user: path, id, tags, groups, attached and inline policies,
//!                                    its access key ids
//!   iam/{account}/group/{name}       a group: members, attached and inline policies
//!   iam/{account}/role/{name}        a role: trust policy, max session, tags, policies
//!   iam/{account}/policy/{name}      a customer managed policy with its versions
//!   iam/{account}/accesskey/{akid}   a long-term access key, secret sealed under the root key
//!                                    (the root principal's keys live here too)
//!   iam/{account}/generation         changed by every IAM write: other nodes drop their caches

use std::collections::BTreeMap;

use coffer_service::tags::Tag;
use coffer_wire::query::XmlWriter;
use serde::{Deserialize, Serialize};

/// Users, groups and roles: one record shape, the kind decides which fields are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    User,
    Group,
    Role,
}

impl Kind {
    /// The kind an operation acts on, from its name (`PutUserPolicy`, `AttachRolePolicy`, ...).
    pub fn of_action(action: &str) -> Kind {
        if action.contains("User") {
            Kind::User
        } else if action.contains("Group") {
            Kind::Group
        } else {
            Kind::Role
        }
    }
    /// The shape of the name parameter that names an existing entity of this kind.
    pub fn existing_name_shape(self) -> crate::input::Str {
        match self {
            Kind::User => crate::input::EXISTING_USER_NAME,
            Kind::Group => crate::input::GROUP_NAME,
            Kind::Role => crate::input::ROLE_NAME,
        }
    }
    pub fn segment(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Role => "role",
        }
    }
    /// `UserName`, `GroupName`, `RoleName`.
    pub fn name_param(self) -> &'static str {
        match self {
            Kind::User => "UserName",
            Kind::Group => "GroupName",
            Kind::Role => "RoleName",
        }
    }
    pub fn id_prefix(self) -> &'static str {
        match self {
            Kind::User => "AIDA",
            Kind::Group => "AGPA",
            Kind::Role => "AROA",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
            Kind::Role => "Role",
        }
    }
    /// IAM's quota on the total size of an entity's inline policies (characters).
    pub fn inline_quota(self) -> usize {
        match self {
            Kind::User => 2048,
            Kind::Group => 5120,
            Kind::Role => 10_240,
        }
    }
    pub fn no_such(self, name: &str) -> crate::IamError {
        crate::IamError::NoSuchEntity(format!(
            "The {} with name {name} cannot be found.",
            self.segment()
        ))
    }
}

pub(crate) fn entity_key(account: &str, kind: Kind, name: &str) -> String {
    format!(
        "iam/{account}/{}/{}",
        kind.segment(),
        name.to_ascii_lowercase()
    )
}

pub(crate) fn entity_prefix(account: &str, kind: Kind) -> String {
    format!("iam/{account}/{}/", kind.segment())
}

pub(crate) fn policy_key(account: &str, name: &str) -> String {
    format!("iam/{account}/policy/{}", name.to_ascii_lowercase())
}

pub(crate) fn policy_prefix(account: &str) -> String {
    format!("iam/{account}/policy/")
}

pub fn access_key_key(account: &str, akid: &str) -> String {
    format!("{}{akid}", access_key_prefix(account))
}

pub fn access_key_prefix(account: &str) -> String {
    format!("iam/{account}/accesskey/")
}

pub(crate) fn generation_key(account: &str) -> String {
    format!("iam/{account}/generation")
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Entity {
    pub name: String,
    pub path: String,
    pub id: String,
    pub created_ms: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Managed policy ARNs, in attach order.
    #[serde(default)]
    pub attached: Vec<String>,
    /// Inline policy name → document.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// User: group names it belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// User: its access key ids.
    #[serde(default)]
    pub access_keys: Vec<String>,
    /// Group: member user names.
    #[serde(default)]
    pub members: Vec<String>,
    /// Role: the trust policy.
    #[serde(default)]
    pub trust_policy: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub max_session_secs: Option<i64>,
    /// User or role: the ARN of the managed policy that caps its permissions.
    #[serde(default)]
    pub permissions_boundary: Option<String>,
}

pub(crate) fn entity_arn(account: &str, kind: Kind, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{}{path}{name}", kind.segment())
}

pub(crate) fn policy_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:policy{path}{name}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PolicyVersion {
    pub id: String,
    pub document: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ManagedPolicy {
    pub name: String,
    pub path: String,
    pub id: String,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default)]
    pub description: Option<String>,
    pub default_version: String,
    pub versions: Vec<PolicyVersion>,
    /// The number the next version gets (`v{n}`); never reused.
    pub next_version: u32,
    pub attachments: u32,
    /// Users and roles whose permissions boundary this policy is.
    #[serde(default)]
    pub boundary_uses: u32,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ManagedPolicy {
    pub fn default_document(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.id == self.default_version)
            .map(|v| v.document.as_str())
    }
}

/// A long-term access key. The root principal's keys (written at bootstrap) have no user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub principal_arn: String,
    pub account_id: String,
    /// base64 of the secret access key sealed under the root key, bound to the key id.
    pub sealed_secret: String,
    #[serde(default)]
    pub user_name: Option<String>,
    /// `Active` or `Inactive`.
    #[serde(default = "active")]
    pub status: String,
    #[serde(default)]
    pub created_ms: i64,
}

fn active() -> String {
    "Active".into()
}

/// IAM's timestamps: ISO 8601 in UTC with seconds, e.g. `2024-05-01T12:00:00Z`.
pub(crate) fn iso8601(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

/// Policy documents in IAM answers are URL-encoded (RFC 3986), as AWS returns them.
pub(crate) fn encode_document(doc: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(doc, SET).to_string()
}

pub(crate) fn write_tags(w: &mut XmlWriter, tags: &[Tag]) {
    w.open("Tags");
    for t in tags {
        w.open("member")
            .text("Key", &t.key)
            .text("Value", &t.value)
            .close("member");
    }
    w.close("Tags");
}

/// `<User>`, `<Group>`, `<Role>` contents (without the enclosing element); `full` adds what
/// only Get and Create answers carry (the permissions boundary and the tags).
pub(crate) fn write_entity(w: &mut XmlWriter, account: &str, kind: Kind, e: &Entity, full: bool) {
    let arn = entity_arn(account, kind, &e.path, &e.name);
    let created = iso8601(e.created_ms);
    w.text("Path", &e.path)
        .text(&format!("{}Name", kind.title()), &e.name)
        .text(&format!("{}Id", kind.title()), &e.id)
        .text("Arn", &arn)
        .text("CreateDate", &created);
    if kind == Kind::Role {
        if let Some(t) = &e.trust_policy {
            w.text("AssumeRolePolicyDocument", &encode_document(t));
        }
        w.opt("Description", e.description.as_deref());
        if let Some(m) = e.max_session_secs {
            w.text("MaxSessionDuration", &m.to_string());
        }
    }
    if let (true, Some(arn)) = (full, &e.permissions_boundary) {
        w.open("PermissionsBoundary")
            .text("PermissionsBoundaryType", "PermissionsBoundaryPolicy")
            .text("PermissionsBoundaryArn", arn)
            .close("PermissionsBoundary");
    }
    if full && !e.tags.is_empty() && kind != Kind::Group {
        write_tags(w, &e.tags);
    }
}

pub(crate) fn write_policy(w: &mut XmlWriter, account: &str, p: &ManagedPolicy) {
    w.text("PolicyName", &p.name)
        .text("PolicyId", &p.id)
        .text("Arn", &policy_arn(account, &p.path, &p.name))
        .text("Path", &p.path)
        .text("DefaultVersionId", &p.default_version)
        .text("AttachmentCount", &p.attachments.to_string())
        .text(
            "PermissionsBoundaryUsageCount",
            &p.boundary_uses.to_string(),
        )
        .text("IsAttachable", "true")
        .opt("Description", p.description.as_deref())
        .text("CreateDate", &iso8601(p.created_ms))
        .text("UpdateDate", &iso8601(p.updated_ms));
    if !p.tags.is_empty() {
        write_tags(w, &p.tags);
    }
}

pub(crate) fn write_version(w: &mut XmlWriter, v: &PolicyVersion, default: &str) {
    w.text("Document", &encode_document(&v.document))
        .text("VersionId", &v.id)
        .text(
            "IsDefaultVersion",
            if v.id == default { "true" } else { "false" },
        )
        .text("CreateDate", &iso8601(v.created_ms));
}

/// AWS-looking unique ids: a four-letter type prefix and 17 characters of base32.
pub(crate) fn new_id(prefix: &str) -> String {
    const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let bytes: [u8; 17] = coffer_crypto::random_bytes();
    let tail: String = bytes
        .iter()
        .map(|b| B32[(b & 31) as usize] as char)
        .collect();
    format!("{prefix}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20Z");
        assert_eq!(
            encode_document(r#"{"Version":"2012-10-17"}"#),
            "%7B%22Version%22%3A%222012-10-17%22%7D"
        );
        let id = new_id("AIDA");
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("AIDA"));
        assert_eq!(
            entity_arn("123456789012", Kind::User, "/eng/", "bob"),
            "arn:aws:iam::123456789012:user/eng/bob"
        );
        assert_eq!(
            policy_arn("123456789012", "/", "p"),
            "arn:aws:iam::123456789012:policy/p"
        );
    }
}
