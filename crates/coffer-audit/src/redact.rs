//! Redaction by shape: what a record may say about a request or a response is decided by the
//! botocore model of the operation, never by looking at the values. A member whose shape the
//! model marks `"sensitive": true` (SecretString, SecretBinary, every Parameter Store `Value`,
//! KMS `Plaintext`, IAM passwords and secret access keys, ...) is replaced by
//! [`HIDDEN`]; members the model does not know are dropped (CloudTrail records only modelled
//! parameters, and an unknown member could carry anything). Member names are written the way
//! CloudTrail writes them (`secretId`, `arn`, `kmsKeyId`).
//!
//! The models are the checked-in ones under `models/` (botocore, documentation stripped); each is
//! parsed once, on first use, into a shape table with a precomputed "has anything sensitive below"
//! flag per shape, so clean subtrees are copied without inspection.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

/// What CloudTrail writes in place of a sensitive value.
pub const HIDDEN: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

/// Shapes the models do not mark sensitive but that must never reach a record: STS session
/// tokens (`Credentials.SessionToken`, shape `tokenType`). Kept by hand, per service; public so
/// the e2e grep test looks for these values too.
pub const EXTRA_SENSITIVE: &[(&str, &str)] = &[("sts", "tokenType")];

#[derive(Debug)]
enum Kind {
    Structure(HashMap<String, usize>),
    List(usize),
    Map(usize),
    Scalar,
}

#[derive(Debug)]
struct Shape {
    kind: Kind,
    sensitive: bool,
    /// This shape or anything reachable from it is sensitive.
    tainted: bool,
}

/// One service's shapes and operations.
#[derive(Debug)]
pub struct Model {
    shapes: Vec<Shape>,
    /// Operation → (input shape, output shape).
    operations: HashMap<String, (Option<usize>, Option<usize>)>,
}

/// Which side of a call is being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Input,
    Output,
}

macro_rules! model {
    ($name:literal) => {
        LazyLock::new(|| {
            Model::parse(
                $name,
                include_str!(concat!("../../../models/", $name, ".json")),
            )
        })
    };
}

static SECRETSMANAGER: LazyLock<Model> = model!("secretsmanager");
static SSM: LazyLock<Model> = model!("ssm");
static KMS: LazyLock<Model> = model!("kms");
static IAM: LazyLock<Model> = model!("iam");
static STS: LazyLock<Model> = model!("sts");
static CLOUDTRAIL: LazyLock<Model> = model!("cloudtrail");

/// The model of a service by its signing name (`secretsmanager`, `ssm`, `kms`, `iam`, `sts`,
/// `cloudtrail`).
pub fn model(service: &str) -> Option<&'static Model> {
    Some(match service {
        "secretsmanager" => &*SECRETSMANAGER,
        "ssm" => &*SSM,
        "kms" => &*KMS,
        "iam" => &*IAM,
        "sts" => &*STS,
        "cloudtrail" => &*CLOUDTRAIL,
        _ => return None,
    })
}

impl Model {
    fn parse(service: &str, text: &str) -> Model {
        // The models are checked in and tested; a broken one is a build defect, not input.
        let doc: Value = serde_json::from_str(text).expect("checked-in botocore model");
        let empty = Map::new();
        let raw = doc["shapes"].as_object().unwrap_or(&empty);
        let index: HashMap<&str, usize> = raw
            .keys()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let target = |m: &Value| m["shape"].as_str().and_then(|s| index.get(s).copied());
        let mut shapes: Vec<Shape> = raw
            .iter()
            .map(|(name, s)| {
                let kind = match s["type"].as_str() {
                    Some("structure") => Kind::Structure(
                        s["members"]
                            .as_object()
                            .unwrap_or(&empty)
                            .iter()
                            .filter_map(|(m, r)| Some((m.clone(), target(r)?)))
                            .collect(),
                    ),
                    Some("list") => target(&s["member"]).map_or(Kind::Scalar, Kind::List),
                    Some("map") => target(&s["value"]).map_or(Kind::Scalar, Kind::Map),
                    _ => Kind::Scalar,
                };
                let members_sensitive = s["members"]
                    .as_object()
                    .is_some_and(|ms| ms.values().any(|m| m["sensitive"] == Value::Bool(true)));
                let sensitive = s["sensitive"] == Value::Bool(true)
                    || EXTRA_SENSITIVE.contains(&(service, name.as_str()));
                Shape {
                    kind,
                    sensitive,
                    tainted: sensitive || members_sensitive,
                }
            })
            .collect();
        // Taint flows from a shape to everything that contains it: iterate to a fixpoint
        // (shapes can be recursive, so a single depth-first pass is not enough).
        loop {
            let mut changed = false;
            for i in 0..shapes.len() {
                if shapes[i].tainted {
                    continue;
                }
                let t = match &shapes[i].kind {
                    Kind::Structure(ms) => ms.values().any(|&j| shapes[j].tainted),
                    Kind::List(j) | Kind::Map(j) => shapes[*j].tainted,
                    Kind::Scalar => false,
                };
                if t {
                    shapes[i].tainted = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let operations = doc["operations"]
            .as_object()
            .unwrap_or(&empty)
            .iter()
            .map(|(name, op)| (name.clone(), (target(&op["input"]), target(&op["output"]))))
            .collect();
        Model { shapes, operations }
    }

    pub fn has_operation(&self, operation: &str) -> bool {
        self.operations.contains_key(operation)
    }

    /// The record form of one side of `operation`: modelled members only, sensitive ones hidden,
    /// names in CloudTrail's casing. `None` when the model has no shape for that side.
    pub fn redact(&self, operation: &str, side: Side, value: &Value) -> Option<Value> {
        let (input, output) = self.operations.get(operation)?;
        let shape = match side {
            Side::Input => (*input)?,
            Side::Output => (*output)?,
        };
        Some(self.walk(shape, value))
    }

    /// Query-protocol parameters (`Name=x&Tags.member.1.Key=k`): each top-level member is kept
    /// as its flattened string(s) if nothing under its shape is sensitive, hidden otherwise, and
    /// dropped if the model does not know it.
    pub fn redact_query(&self, operation: &str, params: &[(String, String)]) -> Option<Value> {
        let (input, _) = self.operations.get(operation)?;
        let Kind::Structure(members) = &self.shapes[(*input)?].kind else {
            return None;
        };
        let mut out = Map::new();
        for (k, v) in params {
            let (top, rest) = k.split_once('.').unwrap_or((k, ""));
            let Some(&shape) = members.get(top) else {
                continue;
            };
            let name = if rest.is_empty() {
                cloudtrail_name(top)
            } else {
                format!("{}.{rest}", cloudtrail_name(top))
            };
            let value = if self.shapes[shape].tainted {
                Value::String(HIDDEN.into())
            } else {
                Value::String(v.clone())
            };
            out.insert(name, value);
        }
        Some(Value::Object(out))
    }

    fn walk(&self, shape: usize, v: &Value) -> Value {
        let s = &self.shapes[shape];
        if s.sensitive {
            return Value::String(HIDDEN.into());
        }
        match (&s.kind, v) {
            (Kind::Structure(members), Value::Object(obj)) => {
                let mut out = Map::new();
                for (k, val) in obj {
                    if let Some(&m) = members.get(k) {
                        out.insert(cloudtrail_name(k), self.walk(m, val));
                    }
                }
                Value::Object(out)
            }
            (Kind::List(m), Value::Array(items)) => {
                Value::Array(items.iter().map(|i| self.walk(*m, i)).collect())
            }
            (Kind::Map(m), Value::Object(obj)) => Value::Object(
                obj.iter()
                    .map(|(k, val)| (k.clone(), self.walk(*m, val)))
                    .collect(),
            ),
            (Kind::Scalar, v) if !v.is_object() && !v.is_array() => v.clone(),
            // A value of the wrong type: keep it only if nothing sensitive could be in it.
            (_, v) if !s.tainted && !v.is_object() && !v.is_array() => v.clone(),
            _ => Value::String(HIDDEN.into()),
        }
    }
}

/// CloudTrail's spelling of a member name: the leading capital run lowered, keeping the last
/// capital when a lowercase letter follows (`SecretId` → `secretId`, `ARN` → `arn`,
/// `KMSKeyId` → `kmsKeyId`).
pub fn cloudtrail_name(member: &str) -> String {
    let chars: Vec<char> = member.chars().collect();
    let run = chars.iter().take_while(|c| c.is_ascii_uppercase()).count();
    let lower = if run > 1 && run < chars.len() {
        run - 1
    } else {
        run
    };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < lower {
                c.to_ascii_lowercase()
            } else {
                *c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert_eq!(cloudtrail_name("SecretId"), "secretId");
        assert_eq!(cloudtrail_name("ARN"), "arn");
        assert_eq!(cloudtrail_name("KMSKeyId"), "kmsKeyId");
        assert_eq!(cloudtrail_name("Name"), "name");
        assert_eq!(cloudtrail_name("key"), "key");
    }

    #[test]
    fn every_model_loads_with_its_operations() {
        for (svc, op) in [
            ("secretsmanager", "GetSecretValue"),
            ("ssm", "PutParameter"),
            ("kms", "Decrypt"),
            ("iam", "CreateAccessKey"),
            ("sts", "AssumeRole"),
            ("cloudtrail", "LookupEvents"),
        ] {
            assert!(model(svc).unwrap().has_operation(op), "{svc} {op}");
        }
        assert!(model("s3").is_none());
    }

    #[test]
    fn secrets_manager_values_hidden_names_kept() {
        let m = model("secretsmanager").unwrap();
        let r = m
            .redact(
                "CreateSecret",
                Side::Input,
                &json!({"Name": "db", "SecretString": "MARK", "SecretBinary": "TUFSSw==",
                        "Tags": [{"Key": "k", "Value": "v"}], "Bogus": "MARK"}),
            )
            .unwrap();
        assert_eq!(
            r,
            json!({"name": "db", "secretString": HIDDEN, "secretBinary": HIDDEN,
                   "tags": [{"key": "k", "value": "v"}]})
        );
        let out = m
            .redact(
                "GetSecretValue",
                Side::Output,
                &json!({"ARN": "a", "SecretString": "MARK"}),
            )
            .unwrap();
        assert_eq!(out, json!({"arn": "a", "secretString": HIDDEN}));
        // A sensitive member of the wrong type is hidden too.
        let odd = m
            .redact(
                "PutSecretValue",
                Side::Input,
                &json!({"SecretId": "x", "SecretString": {"nested": "MARK"}}),
            )
            .unwrap();
        assert_eq!(odd["secretString"], json!(HIDDEN));
    }

    #[test]
    fn other_services_sensitive_shapes() {
        let ssm = model("ssm").unwrap();
        let r = ssm
            .redact(
                "PutParameter",
                Side::Input,
                &json!({"Name": "/a", "Value": "MARK", "Type": "String"}),
            )
            .unwrap();
        assert_eq!(r["value"], json!(HIDDEN));
        let out = ssm
            .redact(
                "GetParameters",
                Side::Output,
                &json!({"Parameters": [{"Name": "/a", "Value": "MARK"}]}),
            )
            .unwrap();
        assert_eq!(out["parameters"][0]["value"], json!(HIDDEN));
        assert_eq!(out["parameters"][0]["name"], json!("/a"));
        let kms = model("kms").unwrap();
        let r = kms
            .redact(
                "Encrypt",
                Side::Input,
                &json!({"KeyId": "k", "Plaintext": "TUFSSw=="}),
            )
            .unwrap();
        assert_eq!(r["plaintext"], json!(HIDDEN));
        let sts = model("sts").unwrap();
        let out = sts
            .redact(
                "AssumeRole",
                Side::Output,
                &json!({"Credentials": {"AccessKeyId": "AKIA", "SecretAccessKey": "MARK",
                        "SessionToken": "MARK", "Expiration": 1}}),
            )
            .unwrap();
        let c = &out["credentials"];
        assert_eq!(c["accessKeyId"], json!("AKIA"));
        assert_eq!(c["secretAccessKey"], json!(HIDDEN));
        assert_eq!(c["sessionToken"], json!(HIDDEN));
        let iam = model("iam").unwrap();
        let q = iam
            .redact_query(
                "CreateLoginProfile",
                &[
                    ("UserName".into(), "bob".into()),
                    ("Password".into(), "MARK".into()),
                    ("Unknown".into(), "MARK".into()),
                ],
            )
            .unwrap();
        assert_eq!(q, json!({"userName": "bob", "password": HIDDEN}));
    }
}
