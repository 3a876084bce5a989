//! Credentials AWS IAM keeps and Coffer does not: console passwords (login profiles), MFA
//! devices, SSH public keys, signing certificates and service-specific credentials. Coffer
//! signs every request with access keys and has no console, so none of these can exist; their
//! reads answer so (GetLoginProfile `NoSuchEntity`, the listings empty) after the user is found
//! and the action allowed, as AWS would for a user without them. Tools that clean a user up
//! before deleting it (Terraform's `force_destroy`, account-cleanup scripts) ask these first.

use coffer_core::RequestContext;
use coffer_wire::query::{QueryParams, XmlWriter};

use crate::entity::{paging, write_truncation};
use crate::input::{self, Input, Pattern};
use crate::{Iam, IamError, authorize};

/// The operations, and the list element each one answers.
pub(crate) const OPERATIONS: &[(&str, &str)] = &[
    ("GetLoginProfile", ""),
    ("ListMFADevices", "MFADevices"),
    ("ListSSHPublicKeys", "SSHPublicKeys"),
    (
        "ListServiceSpecificCredentials",
        "ServiceSpecificCredentials",
    ),
    ("ListSigningCertificates", "Certificates"),
    ("ListVirtualMFADevices", "VirtualMFADevices"),
];

impl Iam {
    pub(crate) async fn absent(
        &self,
        ctx: &RequestContext,
        action: &str,
        q: &QueryParams,
    ) -> Result<String, IamError> {
        let element = OPERATIONS
            .iter()
            .find(|(op, _)| *op == action)
            .map(|(_, e)| *e)
            .ok_or_else(|| IamError::internal("not an absent-credential operation"))?;
        let iam_action = format!("iam:{action}");
        let mut i = Input::new(q);
        if action == "ListVirtualMFADevices" {
            // Account-wide: no user to find.
            i.enumerated("AssignmentStatus", &["Assigned", "Unassigned", "Any"]);
            paging(&mut i);
            i.finish()?;
            authorize(
                ctx,
                &iam_action,
                &format!("arn:aws:iam::{}:mfa/*", ctx.account_id()),
            )?;
        } else {
            let name = i.opt("UserName", input::EXISTING_USER_NAME);
            if action == "ListServiceSpecificCredentials" {
                i.opt("ServiceName", input::s(0, usize::MAX, Pattern::None));
                i.bool("AllUsers");
            }
            if action.starts_with("List") {
                paging(&mut i);
            }
            i.finish()?;
            let user = self.user_or_caller(ctx, name, &iam_action).await?;
            if action == "GetLoginProfile" {
                let name = user.map_or_else(|| "root".to_string(), |u| u.name);
                return Err(IamError::NoSuchEntity(format!(
                    "Login Profile for User {name} cannot be found."
                )));
            }
        }
        let mut w = XmlWriter::new();
        w.open(element).close(element);
        write_truncation(&mut w, None);
        Ok(w.into_string())
    }
}
