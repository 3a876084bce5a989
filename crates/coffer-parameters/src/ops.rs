//! The parameter lifecycle: put (create/overwrite), get (by name, version, label), history,
//! labels, delete; plus what every operation shares (loading, encryption, output shapes).

use coffer_core::authz::{ConditionKey, ResourcePolicy as AuthzPolicy, TagLookup};
use coffer_service::opctx::OpCtx;
use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_core::RequestContext;
use coffer_store::{Entry, WriteBatch};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use crate::error::{ParametersError as E, key_error};
use crate::model::*;
use crate::out::{ParamArn, ParameterOut, Shown};
use crate::validate::{self, Selector, TagIn, required};
use crate::{ParametersService, retry};

pub(crate) type Obj = Map<String, Value>;

/// AWS keeps at most this many versions of a parameter.
pub(crate) const MAX_VERSIONS: u64 = 100;
pub(crate) const MAX_LABELS_PER_VERSION: usize = 10;
pub(crate) const DEFAULT_KEY: &str = coffer_kms::SSM_ALIAS;
pub(crate) const REFERENCE_PREFIX: &str = "/aws/reference/secretsmanager/";

/// Epoch seconds with millisecond precision, as AWS's JSON timestamps.
pub(crate) fn ts(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// A value from a request: zeroized on drop, never printed.
pub(crate) struct Plain(pub Zeroizing<String>);

impl std::fmt::Debug for Plain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Plain(**redacted**)")
    }
}

fn plain<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Plain>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|s| Plain(Zeroizing::new(s))))
}

/// What a name (with optional selector) designates.
enum Located {
    /// `/aws/reference/secretsmanager/...`: the `Parameter` shape of a secret.
    Reference(Obj),
    /// A parameter; `version`: the selected one unless it is the current one.
    Found {
        param: Arc<Param>,
        version: Option<Box<Version>>,
        selector: Option<String>,
    },
}

/// A parameter as read from the store.
pub(crate) struct Loaded {
    pub key: Vec<u8>,
    pub entry: Entry,
    pub param: Param,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutIn {
    name: Option<String>,
    description: Option<String>,
    #[serde(default, deserialize_with = "plain")]
    value: Option<Plain>,
    #[serde(rename = "Type")]
    ptype: Option<String>,
    key_id: Option<String>,
    overwrite: Option<bool>,
    allowed_pattern: Option<String>,
    tags: Option<Vec<TagIn>>,
    tier: Option<String>,
    policies: Option<String>,
    data_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetIn {
    name: Option<String>,
    with_decryption: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetManyIn {
    names: Option<Vec<String>>,
    with_decryption: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HistoryIn {
    name: Option<String>,
    with_decryption: Option<bool>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LabelIn {
    name: Option<String>,
    parameter_version: Option<i64>,
    labels: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameIn {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NamesIn {
    names: Option<Vec<String>>,
}

fn version_not_found(what: &str, name: &str) -> E {
    E::ParameterVersionNotFound(format!(
        "Systems Manager could not find version {what} of {name}. Verify the version and try again."
    ))
}

fn names_list(names: Option<&Vec<String>>) -> Result<&Vec<String>, E> {
    let names = required("names", names)?;
    if names.is_empty() || names.len() > 10 {
        return Err(E::validation(
            "names",
            if names.is_empty() {
                "Member must have length greater than or equal to 1"
            } else {
                "Member must have length less than or equal to 10"
            },
        ));
    }
    for n in names {
        validate::length("names.member", n, 1, 2048)?;
    }
    Ok(names)
}

impl ParametersService {
    pub(crate) fn now(&self) -> i64 {
        self.clock.now_millis()
    }

    pub(crate) fn arn(&self, ctx: &OpCtx<'_>, canon: &str) -> String {
        param_arn(ctx.partition(), &ctx.region, ctx.account_id(), canon)
    }

    pub(crate) async fn load(
        &self,
        account: &str,
        region: &str,
        canon: &str,
    ) -> Result<Option<Loaded>, E> {
        let key = param_key(account, region, canon);
        let Some(entry) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let param = decode_record(&entry.value)?;
        Ok(Some(Loaded { key, entry, param }))
    }

    /// [`ParametersService::load`] for read-only use: the decoding is shared with the read
    /// cache (a writer must use `load`, which gives it an owned copy to change).
    pub(crate) async fn load_shared(
        &self,
        account: &str,
        region: &str,
        canon: &str,
    ) -> Result<Option<Arc<Param>>, E> {
        let key = param_key(account, region, canon);
        let Some(entry) = self.store.get(&key).await? else {
            return Ok(None);
        };
        self.shared_param(&key, &entry).map(Some)
    }

    /// The parameter record `entry` (just read at `key`), decoded or from the read cache.
    pub(crate) fn shared_param(&self, key: &[u8], entry: &Entry) -> Result<Arc<Param>, E> {
        self.reads
            .get(key, entry, |raw| decode_record(raw).ok())
            .ok_or_else(E::internal)
    }

    /// The canonical name a request's `Name`/`ResourceId` designates (a name or this account's
    /// and region's parameter ARN); `None` for an ARN of elsewhere.
    pub(crate) fn target(
        &self,
        ctx: &OpCtx<'_>,
        full: &str,
    ) -> Result<(String, Option<(Selector, String)>), E> {
        if full.starts_with("arn:") {
            let mine = format!(
                "arn:{}:ssm:{}:{}:parameter/",
                ctx.partition(),
                ctx.region,
                ctx.account_id()
            );
            if !full.starts_with(&mine) {
                return Err(E::not_found(full));
            }
        }
        let (name, sel) = validate::split_selector(full)?;
        validate::existing_name(&name)?;
        Ok((name, sel))
    }

    /// Loads the parameter `name` (validated) designates, or ParameterNotFound, after deciding
    /// the operation's action on it.
    pub(crate) async fn resolve(&self, ctx: &OpCtx<'_>, name: &str) -> Result<Loaded, E> {
        let c = canon(name);
        let l = self.load(ctx.account_id(), &ctx.region, &c).await?;
        self.check_param(ctx, &c, l.as_ref().map(|l| &l.param.tags), &[])?;
        l.ok_or_else(|| E::not_found(name))
    }

    /// Decides the operation's action on parameter `c` (canonical name): its ARN, its tags when
    /// it exists, and `extra` condition keys. A parameter that does not exist is decided on the
    /// ARN the caller named, so callers without access learn nothing about what exists.
    pub(crate) fn check_param(
        &self,
        ctx: &OpCtx<'_>,
        c: &str,
        tags: Option<&Vec<coffer_service::tags::Tag>>,
        extra: &[ConditionKey<'_>],
    ) -> Result<(), E> {
        if ctx.root_fast_path() {
            return Ok(());
        }
        let arn = self.arn(ctx, c);
        ctx.check(
            &arn,
            tags.map(|t| t as &dyn TagLookup),
            AuthzPolicy::None,
            extra,
        )?;
        Ok(())
    }

    /// [`Self::check_param`] for operations that load the parameter later themselves.
    pub(crate) async fn check_existing(
        &self,
        ctx: &OpCtx<'_>,
        c: &str,
        extra: &[ConditionKey<'_>],
    ) -> Result<(), E> {
        if ctx.root_fast_path() {
            return Ok(());
        }
        let p = self.load_shared(ctx.account_id(), &ctx.region, c).await?;
        self.check_param(ctx, c, p.as_ref().map(|p| &p.tags), extra)
    }

    /// SecureString decryption needs `kms:Decrypt` on the parameter's key as well, decided with
    /// the key's policy (the AWS managed key allows use through Parameter Store by the
    /// account; a customer key's policy decides, by default delegating to IAM).
    pub(crate) async fn check_decrypt(
        &self,
        ctx: &OpCtx<'_>,
        key_id: Option<&str>,
        param_arn: &str,
    ) -> Result<(), E> {
        if ctx.root_fast_path() {
            return Ok(());
        }
        let key_id = key_id.unwrap_or(DEFAULT_KEY);
        self.keys
            .authorize_use(
                ctx,
                "kms:Decrypt",
                key_id,
                "ssm",
                &[("PARAMETER_ARN", param_arn)],
            )
            .await
            .map_err(|e| match e {
                coffer_kms::KeyUseError::Key(e) => key_error(e, key_id),
                coffer_kms::KeyUseError::Denied(d) => d.into(),
            })
    }

    /// The version a selector picks; `None` for the current one (also without a selector).
    pub(crate) async fn pick_version(
        &self,
        ctx: &OpCtx<'_>,
        canon_name: &str,
        p: &Param,
        sel: Option<&Selector>,
    ) -> Result<Option<Version>, E> {
        let v = match sel {
            None => return Ok(None),
            Some(Selector::Version(v)) => *v,
            Some(Selector::Label(l)) => p
                .version_of_label(l)
                .ok_or_else(|| version_not_found(l, &p.name))?,
        };
        if v == p.current.version {
            return Ok(None);
        }
        if v < p.oldest || v > p.current.version {
            return Err(version_not_found(&v.to_string(), &p.name));
        }
        let key = version_key(ctx.account_id(), &ctx.region, canon_name, v);
        let entry = self
            .store
            .get(&key)
            .await?
            .ok_or_else(|| version_not_found(&v.to_string(), &p.name))?;
        decode_record(&entry.value).map(Some)
    }

    /// The ARN of the parameter `name` (with or without its leading slash) in the caller's
    /// account and region, formatted where it is written.
    pub(crate) fn arn_of<'a>(&self, ctx: &'a RequestContext, name: &'a str) -> ParamArn<'a> {
        ParamArn {
            partition: ctx.partition(),
            region: &ctx.region,
            account: ctx.account_id(),
            name,
        }
    }

    /// The `Value` AWS returns: plaintext, or for a SecureString without decryption the base64
    /// of the stored blob. Borrowed from `v` unless decrypted.
    pub(crate) async fn value_out<'v>(
        &self,
        ctx: &OpCtx<'_>,
        name: &str,
        v: &'v Version,
        decrypt: bool,
    ) -> Result<Shown<'v>, E> {
        match &v.value {
            Stored::Plain(s) => Ok(Shown::Borrowed(s)),
            Stored::Cipher(b) if !decrypt => Ok(Shown::Borrowed(b)),
            Stored::Cipher(b) => {
                let blob = B64.decode(b.as_bytes()).map_err(|_| E::internal())?;
                let arn = self.arn_of(ctx, name).to_string();
                self.check_decrypt(ctx, v.key_id.as_deref(), &arn).await?;
                let plain = self
                    .keys
                    .decrypt(
                        ctx.account_id(),
                        &ctx.region,
                        &blob,
                        &[("PARAMETER_ARN", arn.as_str())],
                    )
                    .await
                    .map_err(|e| key_error(e, v.key_id.as_deref().unwrap_or(DEFAULT_KEY)))?;
                let s = std::str::from_utf8(&plain).map_err(|_| E::internal())?;
                Ok(Shown::Decrypted(Zeroizing::new(s.to_owned())))
            }
        }
    }

    /// Appends the `Parameter` shape of version `v` of `p` to `buf`.
    pub(crate) async fn write_parameter(
        &self,
        ctx: &OpCtx<'_>,
        p: &Param,
        v: &Version,
        selector: Option<&str>,
        decrypt: bool,
        buf: &mut Vec<u8>,
    ) -> Result<(), E> {
        let value = self.value_out(ctx, &p.name, v, decrypt).await?;
        self.parameter_out(ctx, p, v, selector, value.as_str())
            .write(buf)
    }

    fn parameter_out<'a>(
        &self,
        ctx: &'a RequestContext,
        p: &'a Param,
        v: &'a Version,
        selector: Option<&'a str>,
        value: &'a str,
    ) -> ParameterOut<'a> {
        ParameterOut::new(
            self.arn_of(ctx, &p.name),
            &v.data_type,
            v.modified_ms,
            &p.name,
            selector,
            v.ptype.as_str(),
            value,
            v.version,
        )
    }

    /// The `Parameter` shape as a map.
    pub(crate) async fn parameter_json(
        &self,
        ctx: &OpCtx<'_>,
        p: &Param,
        v: &Version,
        selector: Option<&str>,
        decrypt: bool,
    ) -> Result<Obj, E> {
        let value = self.value_out(ctx, &p.name, v, decrypt).await?;
        Ok(self
            .parameter_out(ctx, p, v, selector, value.as_str())
            .to_obj(v.modified_ms))
    }

    // ----- PutParameter --------------------------------------------------------------------

    pub(crate) async fn put_parameter(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, E> {
        let input: PutIn = validate::decode(body)?;
        // AWS removes spaces around a name (spaces inside it are still refused).
        let name = required("name", input.name.as_deref())?.trim_matches(' ');
        let value = required("value", input.value.as_ref())?;
        validate::new_name(name)?;
        if value.0.is_empty() {
            return Err(E::validation(
                "value",
                "Member must have length greater than or equal to 1",
            ));
        }
        if value.0.contains("{{") && value.0.contains("}}") {
            return Err(E::Validation(
                "Parameter value can't nest another parameter. Do not use \"{{}}\" in the value."
                    .into(),
            ));
        }
        validate::opt_length("description", input.description.as_deref(), 0, 1024)?;
        validate::one_of("type", input.ptype.as_deref(), crate::model::TYPES)?;
        validate::one_of("tier", input.tier.as_deref(), crate::model::TIERS)?;
        if let Some(k) = input.key_id.as_deref() {
            validate::key_id(k)?;
        }
        if let Some(p) = input.allowed_pattern.as_deref() {
            validate::allowed_pattern(p)?;
        }
        let overwrite = input.overwrite.unwrap_or(false);
        let tags = match input.tags.as_deref() {
            Some(t) if overwrite && !t.is_empty() => {
                return Err(E::Validation(
                    "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource."
                        .into(),
                ));
            }
            Some(t) => validate::tags(t)?,
            None => Vec::new(),
        };
        validate::merge_tags(&mut Vec::new(), tags.clone())?;
        let now = self.now();
        let new_policies = match input.policies.as_deref() {
            Some(text) => Some(validate::parameter_policies(text, now)?),
            None => None,
        };
        let c = canon(name);
        let tag_keys = [ConditionKey::list(
            "aws:TagKeys",
            tags.iter().map(|t| t.key.as_str()).collect(),
        )];
        let extra: &[ConditionKey<'_>] = if tags.is_empty() { &[] } else { &tag_keys };
        self.check_existing(&ctx.with_request_tags(&tags), &c, extra)
            .await?;
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        let default_tier = self
            .setting_value(ctx, crate::settings::DEFAULT_TIER)
            .await?;

        retry!(self, ctx, &c, async {
            let existing = self.load(account, region, &c).await?;
            let old = existing.as_ref().map(|l| &l.param);
            if old.is_some() && !overwrite {
                return Err(E::ParameterAlreadyExists(
                    "The parameter already exists. To overwrite this value, set the overwrite option in the request to true."
                        .into(),
                ));
            }
            let ptype = match (input.ptype.as_deref().and_then(ParamType::parse), old) {
                (Some(t), Some(o)) if t != o.current.ptype => {
                    return Err(E::HierarchyTypeMismatch(
                        "Parameter Store doesn't support changing a parameter type in a hierarchy. For example, you can't change a parameter from a String type to a SecureString type. You must create a new, unique parameter."
                            .into(),
                    ));
                }
                (Some(t), _) => t,
                (None, Some(o)) => o.current.ptype,
                (None, None) => {
                    return Err(E::Validation(
                        "A parameter type is required when you create a parameter.".into(),
                    ));
                }
            };
            if input.key_id.is_some() && ptype != ParamType::SecureString {
                return Err(E::Validation(
                    "KeyId is only supported for SecureString parameters.".into(),
                ));
            }
            if ptype == ParamType::StringList {
                validate::string_list(&value.0)?;
            }
            let data_type = input
                .data_type
                .clone()
                .or_else(|| old.map(|o| o.current.data_type.clone()))
                .unwrap_or_else(|| "text".to_owned());
            validate::data_type(&data_type, ptype, &value.0)?;
            let allowed_pattern = input
                .allowed_pattern
                .clone()
                .or_else(|| old.and_then(|o| o.current.allowed_pattern.clone()));
            if let Some(p) = allowed_pattern.as_deref().filter(|p| !p.is_empty()) {
                validate::check_pattern(p, &value.0)?;
            }
            let policies = match (&new_policies, old) {
                (Some(p), _) => p.clone(),
                (None, Some(o)) => o.current.policies.clone(),
                (None, None) => Vec::new(),
            };
            let tier = resolve_tier(
                input.tier.as_deref(),
                &default_tier,
                old.map(|o| o.current.tier),
                value.0.len(),
                !policies.is_empty(),
                self.standard_full(account, region, old.is_none()).await?,
            )?;
            if value.0.len() > tier.max_value_bytes() {
                return Err(E::validation(
                    "value",
                    &format!(
                        "Member must have length less than or equal to {}",
                        tier.max_value_bytes()
                    ),
                ));
            }
            let key_id = (ptype == ParamType::SecureString)
                .then(|| input.key_id.clone().unwrap_or_else(|| DEFAULT_KEY.to_owned()));
            let arn = self.arn(ctx, &c);
            let stored = match &key_id {
                Some(k) => {
                    let blob = self
                        .keys
                        .encrypt(account, region, k, value.0.as_bytes(), &[("PARAMETER_ARN", arn.as_str())])
                        .await
                        .map_err(|e| key_error(e, k))?;
                    Stored::Cipher(B64.encode(blob))
                }
                None => Stored::Plain(value.0.to_string()),
            };
            let version = old.map_or(1, |o| o.current.version + 1);
            let mut param = match old {
                Some(o) => o.clone(),
                None => Param {
                    name: name.to_owned(),
                    current: Version {
                        version: 0,
                        ptype,
                        data_type: String::new(),
                        description: None,
                        allowed_pattern: None,
                        key_id: None,
                        tier,
                        policies: Vec::new(),
                        modified_ms: now,
                        modified_user: String::new(),
                        value: Stored::Plain(String::new()),
                    },
                    oldest: 1,
                    labels: BTreeMap::new(),
                    tags: tags.clone(),
                    resource_policies: Vec::new(),
                },
            };
            let old_expiration = old.and_then(Param::expiration_ms);
            param.current = Version {
                version,
                ptype,
                data_type: data_type.clone(),
                description: input
                    .description
                    .clone()
                    .or_else(|| old.and_then(|o| o.current.description.clone())),
                allowed_pattern: allowed_pattern.clone(),
                key_id,
                tier,
                policies,
                modified_ms: now,
                modified_user: ctx.caller.principal_arn.clone(),
                value: stored,
            };
            let mut batch = WriteBatch::new();
            // History holds at most 100 versions: the oldest goes, unless it carries a label.
            if version - param.oldest + 1 > MAX_VERSIONS {
                let oldest = param.oldest;
                if !param.labels_of(oldest).is_empty() {
                    return Err(E::ParameterMaxVersionLimitExceeded(format!(
                        "You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {oldest}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again."
                    )));
                }
                batch.delete(version_key(account, region, &c, oldest));
                param.oldest = oldest + 1;
            }
            crate::policies::schedule(&mut batch, account, region, &c, old, Some(&mut param));
            batch.check(param_key(account, region, &c), existing.as_ref().map(|l| &l.entry));
            batch.put(param_key(account, region, &c), encode(&param)?);
            batch.put(version_key(account, region, &c, version), encode(&param.current)?);
            if old.is_none() {
                batch.put(child_key(account, region, &c), Vec::new());
            }
            let new_expiration = param.expiration_ms();
            if old_expiration != new_expiration {
                if let Some(e) = old_expiration {
                    batch.delete(expire_key(e, account, region, &c));
                }
                if let Some(e) = new_expiration {
                    batch.put(expire_key(e, account, region, &c), Vec::new());
                }
            }
            let old_tier = old.map(|o| o.current.tier);
            if old_tier != Some(tier) {
                let _counts = self.count_lock.lock().await;
                self.count_change(&mut batch, account, region, old_tier, Some(tier)).await?;
                self.store.commit(batch).await?;
            } else {
                self.store.commit(batch).await?;
            }
            let mut o = Obj::new();
            o.insert("Version".into(), json!(version));
            o.insert("Tier".into(), json!(tier.as_str()));
            Ok(o)
        }
        .await)
    }

    /// Whether a new Standard parameter would exceed the quota (for Intelligent-Tiering).
    async fn standard_full(&self, account: &str, region: &str, creating: bool) -> Result<bool, E> {
        if !creating {
            return Ok(false);
        }
        let n = self.count(account, region, Tier::Standard).await?.1.n;
        Ok(n >= self.limits.standard_parameters)
    }

    pub(crate) async fn count(
        &self,
        account: &str,
        region: &str,
        tier: Tier,
    ) -> Result<(Option<Entry>, Count), E> {
        let e = self.store.get(&count_key(account, region, tier)).await?;
        let c = match &e {
            Some(e) => decode_record(&e.value)?,
            None => Count::default(),
        };
        Ok((e, c))
    }

    /// Adds to `batch` the move of one parameter from tier `from` to tier `to` (`None` = absent),
    /// enforcing the quota of `to`. Call holding `count_lock`.
    pub(crate) async fn count_change(
        &self,
        batch: &mut WriteBatch,
        account: &str,
        region: &str,
        from: Option<Tier>,
        to: Option<Tier>,
    ) -> Result<(), E> {
        if let Some(t) = from {
            let (e, mut c) = self.count(account, region, t).await?;
            c.n = c.n.saturating_sub(1);
            batch.check(count_key(account, region, t), e.as_ref());
            batch.put(count_key(account, region, t), encode(&c)?);
        }
        if let Some(t) = to {
            let (e, mut c) = self.count(account, region, t).await?;
            let limit = match t {
                Tier::Standard => self.limits.standard_parameters,
                Tier::Advanced => self.limits.advanced_parameters,
            };
            if c.n >= limit {
                return Err(E::ParameterLimitExceeded(
                    "You have exceeded the number of parameters for this AWS account. Delete one or more parameters and try again."
                        .into(),
                ));
            }
            c.n += 1;
            batch.check(count_key(account, region, t), e.as_ref());
            batch.put(count_key(account, region, t), encode(&c)?);
        }
        Ok(())
    }

    // ----- GetParameter(s) -----------------------------------------------------------------

    /// What one name with optional selector designates.
    async fn locate(&self, ctx: &OpCtx<'_>, full: &str, decrypt: bool) -> Result<Located, E> {
        let (name, sel) = self.target(ctx, full)?;
        if let Some(id) = canon(&name).strip_prefix(REFERENCE_PREFIX) {
            self.check_param(ctx, &canon(&name), None, &[])?;
            return self
                .get_reference(
                    ctx,
                    &name,
                    id,
                    sel.as_ref().map(|(_, t)| t.as_str()),
                    decrypt,
                )
                .await
                .map(Located::Reference);
        }
        let c = canon(&name);
        let param = self.load_shared(ctx.account_id(), &ctx.region, &c).await?;
        self.check_param(ctx, &c, param.as_ref().map(|p| &p.tags), &[])?;
        let param = param.ok_or_else(|| E::not_found(&name))?;
        let (version, selector) = match sel {
            Some((s, text)) => (
                self.pick_version(ctx, &c, &param, Some(&s))
                    .await?
                    .map(Box::new),
                Some(text),
            ),
            None => (None, None),
        };
        Ok(Located::Found {
            param,
            version,
            selector,
        })
    }

    /// One name with optional selector → the `Parameter` shape.
    async fn get_one(&self, ctx: &OpCtx<'_>, full: &str, decrypt: bool) -> Result<Obj, E> {
        match self.locate(ctx, full, decrypt).await? {
            Located::Reference(o) => Ok(o),
            Located::Found {
                param,
                version,
                selector,
            } => {
                let v = version.as_deref().unwrap_or(&param.current);
                self.parameter_json(ctx, &param, v, selector.as_deref(), decrypt)
                    .await
            }
        }
    }

    /// The response body, written straight from the (shared) record.
    pub(crate) async fn get_parameter(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Vec<u8>, E> {
        let input: GetIn = validate::decode(body)?;
        let name = required("name", input.name.as_deref())?;
        validate::length("name", name, 1, 2048)?;
        let decrypt = input.with_decryption.unwrap_or(false);
        match self.locate(ctx, name, decrypt).await? {
            Located::Reference(p) => {
                let mut o = Obj::new();
                o.insert("Parameter".into(), Value::Object(p));
                encode(&Value::Object(o))
            }
            Located::Found {
                param,
                version,
                selector,
            } => {
                let v = version.as_deref().unwrap_or(&param.current);
                let mut buf = Vec::with_capacity(512);
                buf.extend_from_slice(b"{\"Parameter\":");
                self.write_parameter(ctx, &param, v, selector.as_deref(), decrypt, &mut buf)
                    .await?;
                buf.push(b'}');
                Ok(buf)
            }
        }
    }

    pub(crate) async fn get_parameters(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, E> {
        let input: GetManyIn = validate::decode(body)?;
        let names = names_list(input.names.as_ref())?;
        let decrypt = input.with_decryption.unwrap_or(false);
        let mut found = Vec::new();
        let mut invalid = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for n in names {
            if !seen.insert(n.as_str()) {
                continue;
            }
            match self.get_one(ctx, n, decrypt).await {
                Ok(p) => found.push(Value::Object(p)),
                Err(E::ParameterNotFound(_) | E::ParameterVersionNotFound(_)) => {
                    invalid.push(json!(n))
                }
                Err(E::Validation(_) | E::HierarchyLevelLimitExceeded(_)) => {
                    // Not a name at all: decided on the ARN it would have, like any other.
                    self.check_param(ctx, &canon(n), None, &[])?;
                    invalid.push(json!(n))
                }
                Err(e) => return Err(e),
            }
        }
        // AWS lists GetParameters results in alphabetical order.
        found.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
        let mut o = Obj::new();
        o.insert("Parameters".into(), Value::Array(found));
        o.insert("InvalidParameters".into(), Value::Array(invalid));
        Ok(o)
    }

    // ----- GetParameterHistory -------------------------------------------------------------

    pub(crate) async fn get_parameter_history(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        let input: HistoryIn = validate::decode(body)?;
        let name = required("name", input.name.as_deref())?;
        validate::range("maxResults", input.max_results, 1, 50)?;
        let (name, _) = self.target(ctx, name)?;
        let decrypt = input.with_decryption.unwrap_or(false);
        let max = input.max_results.unwrap_or(50) as usize;
        let l = self.resolve(ctx, &name).await?;
        let c = canon(&name);
        let (account, region) = (ctx.account_id(), ctx.region.as_str());
        let scope = coffer_service::token::scope(&["GetParameterHistory", account, region, &c]);
        let from = match input.next_token.as_deref() {
            Some(t) => self.tokens.open::<u64>(&scope, t)? + 1,
            None => l.param.oldest,
        };
        let start = version_key(account, region, &c, from);
        let end = coffer_store::prefix_end(&version_prefix(account, region, &c));
        let page = self.store.scan(&start, &end, max + 1).await?;
        let mut out = Vec::with_capacity(max);
        let mut last = None;
        for (_, entry) in page.iter().take(max) {
            let v: Version = decode_record(&entry.value)?;
            out.push(Value::Object(
                self.history_json(ctx, &l.param, &v, decrypt).await?,
            ));
            last = Some(v.version);
        }
        let mut o = Obj::new();
        o.insert("Parameters".into(), Value::Array(out));
        if page.len() > max
            && let Some(v) = last
        {
            o.insert("NextToken".into(), json!(self.tokens.issue(&scope, &v)));
        }
        Ok(o)
    }

    async fn history_json(
        &self,
        ctx: &OpCtx<'_>,
        p: &Param,
        v: &Version,
        decrypt: bool,
    ) -> Result<Obj, E> {
        let mut o = self.parameter_json(ctx, p, v, None, decrypt).await?;
        o.remove("ARN");
        if let Some(k) = &v.key_id {
            o.insert("KeyId".into(), json!(k));
        }
        o.insert("LastModifiedUser".into(), json!(v.modified_user));
        if let Some(d) = &v.description {
            o.insert("Description".into(), json!(d));
        }
        if let Some(a) = &v.allowed_pattern {
            o.insert("AllowedPattern".into(), json!(a));
        }
        o.insert("Labels".into(), json!(p.labels_of(v.version)));
        o.insert("Tier".into(), json!(v.tier.as_str()));
        o.insert("Policies".into(), policies_json(&v.policies, self.now()));
        Ok(o)
    }

    // ----- labels --------------------------------------------------------------------------

    pub(crate) async fn label_parameter_version(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        let input: LabelIn = validate::decode(body)?;
        let name = required("name", input.name.as_deref())?;
        let labels = required("labels", input.labels.as_ref())?;
        validate::labels("labels", labels)?;
        let (name, _) = self.target(ctx, name)?;
        let c = canon(&name);
        retry!(self, ctx, &c, async {
            let mut l = self.resolve(ctx, &name).await?;
            let version = match input.parameter_version {
                Some(v) => u64::try_from(v)
                    .ok()
                    .filter(|v| (l.param.oldest..=l.param.current.version).contains(v))
                    .ok_or_else(|| version_not_found(&v.to_string(), &name))?,
                None => l.param.current.version,
            };
            let (valid, invalid): (Vec<&String>, Vec<&String>) =
                labels.iter().partition(|l| validate::label_ok(l));
            for lab in &valid {
                // A label moves: take it off whichever version holds it.
                for ls in l.param.labels.values_mut() {
                    ls.retain(|x| x != *lab);
                }
                let here = l.param.labels.entry(version).or_default();
                here.push((*lab).clone());
            }
            l.param.labels.retain(|_, ls| !ls.is_empty());
            if l.param.labels_of(version).len() > MAX_LABELS_PER_VERSION {
                return Err(E::ParameterVersionLabelLimitExceeded(
                    "A parameter version can have maximum 10 labels.Move one or more labels to another version and try again."
                        .into(),
                ));
            }
            self.write_meta(ctx, &c, &l).await?;
            let mut o = Obj::new();
            o.insert("InvalidLabels".into(), json!(invalid));
            o.insert("ParameterVersion".into(), json!(version));
            Ok(o)
        }
        .await)
    }

    pub(crate) async fn unlabel_parameter_version(
        &self,
        ctx: &OpCtx<'_>,
        body: &[u8],
    ) -> Result<Obj, E> {
        let input: LabelIn = validate::decode(body)?;
        let name = required("name", input.name.as_deref())?;
        let version = required("parameterVersion", input.parameter_version)?;
        let labels = required("labels", input.labels.as_ref())?;
        validate::labels("labels", labels)?;
        let (name, _) = self.target(ctx, name)?;
        let c = canon(&name);
        retry!(
            self,
            ctx,
            &c,
            async {
                let mut l = self.resolve(ctx, &name).await?;
                let v = u64::try_from(version)
                    .ok()
                    .filter(|v| (l.param.oldest..=l.param.current.version).contains(v))
                    .ok_or_else(|| version_not_found(&version.to_string(), &name))?;
                let attached = l.param.labels.entry(v).or_default();
                let (removed, invalid): (Vec<&String>, Vec<&String>) =
                    labels.iter().partition(|x| attached.contains(x));
                attached.retain(|x| !removed.contains(&x));
                l.param.labels.retain(|_, ls| !ls.is_empty());
                if !removed.is_empty() {
                    self.write_meta(ctx, &c, &l).await?;
                }
                let mut o = Obj::new();
                o.insert("RemovedLabels".into(), json!(removed));
                o.insert("InvalidLabels".into(), json!(invalid));
                Ok(o)
            }
            .await
        )
    }

    /// Commits a metadata-only change (labels, tags, resource policies) of a loaded parameter.
    pub(crate) async fn write_meta(&self, ctx: &OpCtx<'_>, c: &str, l: &Loaded) -> Result<(), E> {
        let mut batch = WriteBatch::new();
        batch.check(l.key.clone(), Some(&l.entry));
        batch.put(
            param_key(ctx.account_id(), &ctx.region, c),
            encode(&l.param)?,
        );
        self.store.commit(batch).await?;
        Ok(())
    }

    // ----- delete --------------------------------------------------------------------------

    /// Deletes the parameter `c` in one batch (record, index, history, expiration, count).
    /// `expect` = the record must still be exactly this one (used by the policy runner).
    pub(crate) async fn erase(
        &self,
        account: &str,
        region: &str,
        c: &str,
        expect: Option<&Entry>,
    ) -> Result<bool, E> {
        self.erase_with(account, region, c, expect, WriteBatch::new())
            .await
    }

    /// [`Self::erase`], committing `batch` (e.g. the policy runner's queued event) with it.
    pub(crate) async fn erase_with(
        &self,
        account: &str,
        region: &str,
        c: &str,
        expect: Option<&Entry>,
        mut batch: WriteBatch,
    ) -> Result<bool, E> {
        let Some(l) = self.load(account, region, c).await? else {
            return Ok(false);
        };
        if expect.is_some_and(|e| e.version != l.entry.version) {
            return Ok(false);
        }
        crate::policies::schedule(&mut batch, account, region, c, Some(&l.param), None);
        batch.check(l.key.clone(), Some(&l.entry));
        batch.delete(l.key.clone());
        batch.delete(child_key(account, region, c));
        for v in l.param.oldest..=l.param.current.version {
            batch.delete(version_key(account, region, c, v));
        }
        if let Some(e) = l.param.expiration_ms() {
            batch.delete(expire_key(e, account, region, c));
        }
        let _counts = self.count_lock.lock().await;
        self.count_change(
            &mut batch,
            account,
            region,
            Some(l.param.current.tier),
            None,
        )
        .await?;
        self.store.commit(batch).await?;
        Ok(true)
    }

    pub(crate) async fn delete_parameter(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, E> {
        let input: NameIn = validate::decode(body)?;
        let name = required("name", input.name.as_deref())?;
        let (name, _) = self.target(ctx, name)?;
        let c = canon(&name);
        self.check_existing(ctx, &c, &[]).await?;
        let deleted = retry!(
            self,
            ctx,
            &c,
            self.erase(ctx.account_id(), &ctx.region, &c, None).await
        )?;
        if !deleted {
            return Err(E::not_found(&name));
        }
        Ok(Obj::new())
    }

    pub(crate) async fn delete_parameters(&self, ctx: &OpCtx<'_>, body: &[u8]) -> Result<Obj, E> {
        let input: NamesIn = validate::decode(body)?;
        let names = names_list(input.names.as_ref())?;
        let mut deleted = Vec::new();
        let mut invalid = Vec::new();
        for n in names {
            let Ok((name, None)) = self.target(ctx, n) else {
                // Not a name at all: decided on the ARN it would have, like any other.
                self.check_param(ctx, &canon(n), None, &[])?;
                invalid.push(json!(n));
                continue;
            };
            let c = canon(&name);
            self.check_existing(ctx, &c, &[]).await?;
            let done = retry!(
                self,
                ctx,
                &c,
                self.erase(ctx.account_id(), &ctx.region, &c, None).await
            )?;
            if done {
                deleted.push(json!(n));
            } else {
                invalid.push(json!(n));
            }
        }
        let mut o = Obj::new();
        o.insert("DeletedParameters".into(), Value::Array(deleted));
        o.insert("InvalidParameters".into(), Value::Array(invalid));
        Ok(o)
    }
}

/// Picks the tier a write stores the parameter in, by AWS's rules: Standard holds 4 KB and no
/// policies and never takes an Advanced parameter back; Intelligent-Tiering chooses Advanced
/// only when Standard cannot hold the parameter.
fn resolve_tier(
    requested: Option<&str>,
    default_tier: &str,
    old: Option<Tier>,
    value_len: usize,
    has_policies: bool,
    standard_full: bool,
) -> Result<Tier, E> {
    let requested = match (requested, old) {
        (Some(r), _) => r,
        (None, Some(Tier::Advanced)) => "Advanced",
        (None, _) => default_tier,
    };
    let needs_advanced = value_len > Tier::Standard.max_value_bytes() || has_policies;
    match requested {
        "Advanced" => Ok(Tier::Advanced),
        "Intelligent-Tiering" => Ok(
            if old == Some(Tier::Advanced) || needs_advanced || standard_full {
                Tier::Advanced
            } else {
                Tier::Standard
            },
        ),
        _ if old == Some(Tier::Advanced) => Err(E::Validation(
            "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter."
                .into(),
        )),
        _ if has_policies => Err(E::Validation(
            "Parameter policies are supported only for advanced-tier parameters. Use the Advanced or Intelligent-Tiering tier."
                .into(),
        )),
        _ if value_len > Tier::Standard.max_value_bytes() => Err(E::validation(
            "value",
            "Member must have length less than or equal to 4096",
        )),
        _ => Ok(Tier::Standard),
    }
}

/// `ParameterInlinePolicy` list; a policy whose time has passed is `Finished`.
pub(crate) fn policies_json(policies: &[InlinePolicy], now: i64) -> Value {
    Value::Array(
        policies
            .iter()
            .map(|p| {
                let status = if p.due_ms.is_some_and(|d| d <= now) {
                    "Finished"
                } else {
                    "Pending"
                };
                json!({"PolicyText": p.text, "PolicyType": p.kind, "PolicyStatus": status})
            })
            .collect(),
    )
}

pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, E> {
    serde_json::to_vec(v).map_err(|_| E::internal())
}

pub(crate) fn decode_record<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, E> {
    serde_json::from_slice(bytes).map_err(|_| {
        tracing::error!("corrupt parameter record");
        E::internal()
    })
}
