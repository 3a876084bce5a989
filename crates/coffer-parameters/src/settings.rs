//! Get/Update/ResetServiceSetting for Parameter Store's own settings.

use coffer_service::opctx::OpCtx;
use coffer_store::WriteBatch;
use serde::Deserialize;
use serde_json::json;

use crate::ParametersService;
use crate::error::ParametersError as E;
use crate::model::{Setting, setting_key};
use crate::ops::{Obj, decode_record, encode, ts};
use crate::validate::{self, required};

pub(crate) const DEFAULT_TIER: &str = "/ssm/parameter-store/default-parameter-tier";
pub(crate) const HIGH_THROUGHPUT: &str = "/ssm/parameter-store/high-throughput-enabled";

/// `(id, default value, allowed values)`.
const SETTINGS: &[(&str, &str, &[&str])] = &[
    (
        DEFAULT_TIER,
        "Standard",
        &["Standard", "Advanced", "Intelligent-Tiering"],
    ),
    (HIGH_THROUGHPUT, "false", &["true", "false"]),
];

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SettingIn {
    setting_id: Option<String>,
    setting_value: Option<String>,
}

/// The setting a `SettingId` (a path or its `servicesetting` ARN) names.
fn lookup(id: &str) -> Result<&'static (&'static str, &'static str, &'static [&'static str]), E> {
    validate::length("settingId", id, 1, 1000)?;
    let path = match id.strip_prefix("arn:") {
        Some(_) => id
            .split_once(":servicesetting")
            .map(|(_, p)| p)
            .unwrap_or(""),
        None => id,
    };
    SETTINGS
        .iter()
        .find(|(sid, _, _)| *sid == path)
        .ok_or_else(|| {
            E::ServiceSettingNotFound(format!("The service setting {id} was not found."))
        })
}

impl ParametersService {
    /// The effective value of a setting in the caller's account and region.
    pub(crate) async fn setting_value(&self, ctx: &OpCtx<'_>, id: &str) -> Result<String, E> {
        let (sid, default, _) = lookup(id)?;
        let key = setting_key(ctx.account_id(), &ctx.region, sid);
        Ok(match self.store.get(&key).await? {
            Some(e) => decode_record::<Setting>(&e.value)?.value,
            None => (*default).to_owned(),
        })
    }

    /// Decides the operation's action on the setting's ARN.
    fn check_setting(&self, ctx: &OpCtx<'_>, sid: &str) -> Result<(), E> {
        if ctx.root_fast_path() {
            return Ok(());
        }
        let arn = setting_arn(ctx, sid);
        ctx.check(&arn, None, coffer_core::authz::ResourcePolicy::None, &[])?;
        Ok(())
    }

    async fn setting_json(&self, ctx: &OpCtx<'_>, sid: &str, default: &str) -> Result<Obj, E> {
        let key = setting_key(ctx.account_id(), &ctx.region, sid);
        let stored = match self.store.get(&key).await? {
            Some(e) => Some(decode_record::<Setting>(&e.value)?),
            None => None,
        };
        let mut s = Obj::new();
        s.insert("SettingId".into(), json!(sid));
        s.insert("ARN".into(), json!(setting_arn(ctx, sid)));
        match stored {
            Some(st) => {
                s.insert("SettingValue".into(), json!(st.value));
                s.insert("LastModifiedDate".into(), ts(st.modified_ms));
                s.insert("LastModifiedUser".into(), json!(st.modified_user));
                s.insert("Status".into(), json!("Customized"));
            }
            None => {
                s.insert("SettingValue".into(), json!(default));
                s.insert("LastModifiedUser".into(), json!("System"));
                s.insert("Status".into(), json!("Default"));
            }
        }
        let mut o = Obj::new();
        o.insert("ServiceSetting".into(), serde_json::Value::Object(s));
        Ok(o)
    }

    pub(crate) async fn get_service_setting(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, E> {
        let input: SettingIn = validate::decode(body)?;
        let (sid, default, _) = lookup(required("settingId", input.setting_id.as_deref())?)?;
        self.check_setting(ctx, sid)?;
        self.setting_json(ctx, sid, default).await
    }

    pub(crate) async fn update_service_setting(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        let input: SettingIn = validate::decode(body)?;
        let (sid, _, allowed) = lookup(required("settingId", input.setting_id.as_deref())?)?;
        self.check_setting(ctx, sid)?;
        let value = required("settingValue", input.setting_value.as_deref())?;
        validate::length("settingValue", value, 1, 4096)?;
        if !allowed.contains(&value) {
            return Err(E::Validation(format!(
                "The value of the service setting {sid} must be one of: {}.",
                allowed.join(", ")
            )));
        }
        let setting = Setting {
            value: value.to_owned(),
            modified_ms: self.now(),
            modified_user: ctx.caller.principal_arn.clone(),
        };
        let mut batch = WriteBatch::new();
        batch.put(
            setting_key(ctx.account_id(), &ctx.region, sid),
            encode(&setting)?,
        );
        self.store.commit(batch).await?;
        Ok(Obj::new())
    }

    pub(crate) async fn reset_service_setting(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        let input: SettingIn = validate::decode(body)?;
        let (sid, default, _) = lookup(required("settingId", input.setting_id.as_deref())?)?;
        self.check_setting(ctx, sid)?;
        let mut batch = WriteBatch::new();
        batch.delete(setting_key(ctx.account_id(), &ctx.region, sid));
        self.store.commit(batch).await?;
        self.setting_json(ctx, sid, default).await
    }
}

/// `arn:PARTITION:ssm:REGION:ACCOUNT:servicesetting/ssm/...`.
fn setting_arn(ctx: &OpCtx<'_>, sid: &str) -> String {
    format!(
        "arn:{}:ssm:{}:{}:servicesetting{sid}",
        ctx.partition(),
        ctx.region,
        ctx.account_id()
    )
}
