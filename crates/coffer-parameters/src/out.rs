//! The `Parameter` shape written straight into the response buffer from borrowed record fields
//! (GetParameter, GetParametersByPath), or turned into a map where an operation still edits or
//! sorts maps (GetParameters, GetParameterHistory). Both forms give the same bytes.

use std::fmt;

use coffer_service::jsonout::{DisplayStr, epoch_secs, write_str};
use serde::Serialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::error::ParametersError as E;
use crate::ops::{Obj, ts};

/// A parameter's ARN, formatted where it is written (`name` with or without its leading slash).
#[derive(Clone, Copy)]
pub(crate) struct ParamArn<'a> {
    pub partition: &'a str,
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

impl fmt::Display for ParamArn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:ssm:{}:{}:parameter",
            self.partition, self.region, self.account
        )?;
        if !self.name.starts_with('/') {
            f.write_str("/")?;
        }
        f.write_str(self.name)
    }
}

/// A `Value` as answered: borrowed from the record, or a decrypted plaintext (zeroized on drop).
pub(crate) enum Shown<'a> {
    Borrowed(&'a str),
    Decrypted(Zeroizing<String>),
}

impl Shown<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Shown::Borrowed(s) => s,
            Shown::Decrypted(s) => s.as_str(),
        }
    }
}

/// Fields in the order serde_json's (sorted) map writes them, so both forms give the same bytes.
#[derive(Serialize)]
pub(crate) struct ParameterOut<'a> {
    #[serde(rename = "ARN")]
    pub arn: DisplayStr<ParamArn<'a>>,
    #[serde(rename = "DataType")]
    pub data_type: &'a str,
    /// Epoch seconds with millisecond precision, as [`crate::ops::ts`].
    #[serde(rename = "LastModifiedDate")]
    pub last_modified_date: f64,
    #[serde(rename = "Name")]
    pub name: &'a str,
    #[serde(rename = "Selector", skip_serializing_if = "Option::is_none")]
    pub selector: Option<&'a str>,
    #[serde(rename = "Type")]
    pub ptype: &'static str,
    #[serde(rename = "Value")]
    pub value: &'a str,
    #[serde(rename = "Version")]
    pub version: u64,
}

impl<'a> ParameterOut<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        arn: ParamArn<'a>,
        data_type: &'a str,
        modified_ms: i64,
        name: &'a str,
        selector: Option<&'a str>,
        ptype: &'static str,
        value: &'a str,
        version: u64,
    ) -> Self {
        ParameterOut {
            arn: DisplayStr(arn),
            data_type,
            last_modified_date: epoch_secs(modified_ms),
            name,
            selector,
            ptype,
            value,
            version,
        }
    }

    /// Appends the JSON object to `buf`: the bytes of the derived serialisation (a test holds the
    /// two equal), written by hand because a listing page spends most of its time here.
    pub fn write(&self, buf: &mut Vec<u8>) -> Result<(), E> {
        let arn = &self.arn.0;
        let slash = if arn.name.starts_with('/') { "" } else { "/" };
        buf.extend_from_slice(b"{\"ARN\":");
        write_str(
            buf,
            &[
                "arn:",
                arn.partition,
                ":ssm:",
                arn.region,
                ":",
                arn.account,
                ":parameter",
                slash,
                arn.name,
            ],
        );
        buf.extend_from_slice(b",\"DataType\":");
        write_str(buf, &[self.data_type]);
        buf.extend_from_slice(b",\"LastModifiedDate\":");
        serde_json::to_writer(&mut *buf, &self.last_modified_date).map_err(|_| E::internal())?;
        buf.extend_from_slice(b",\"Name\":");
        write_str(buf, &[self.name]);
        if let Some(sel) = self.selector {
            buf.extend_from_slice(b",\"Selector\":");
            write_str(buf, &[sel]);
        }
        buf.extend_from_slice(b",\"Type\":");
        write_str(buf, &[self.ptype]);
        buf.extend_from_slice(b",\"Value\":");
        write_str(buf, &[self.value]);
        buf.extend_from_slice(b",\"Version\":");
        serde_json::to_writer(&mut *buf, &self.version).map_err(|_| E::internal())?;
        buf.push(b'}');
        Ok(())
    }

    /// The same object as a map.
    pub fn to_obj(&self, modified_ms: i64) -> Obj {
        let mut o = Obj::new();
        o.insert("Name".into(), json!(self.name));
        o.insert("Type".into(), json!(self.ptype));
        o.insert("Value".into(), Value::String(self.value.to_owned()));
        o.insert("Version".into(), json!(self.version));
        if let Some(s) = self.selector {
            o.insert("Selector".into(), json!(s));
        }
        o.insert("LastModifiedDate".into(), ts(modified_ms));
        o.insert("ARN".into(), json!(self.arn.0.to_string()));
        o.insert("DataType".into(), json!(self.data_type));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::param_arn;

    #[test]
    fn arn_matches_param_arn() {
        for name in ["/a/b", "a", "/x"] {
            let arn = ParamArn {
                partition: "aws",
                region: "us-east-1",
                account: "123456789012",
                name,
            };
            assert_eq!(
                arn.to_string(),
                param_arn(
                    "aws",
                    "us-east-1",
                    "123456789012",
                    &crate::model::canon(name)
                )
            );
        }
    }

    #[test]
    fn struct_and_map_forms_serialise_identically() {
        for name in ["/a/b \"q\"", "plain", "/\u{e9}\\x"] {
            for selector in [None, Some(":3"), Some(":lab\"el")] {
                for (value, ptype) in [
                    ("v \"1\"\n\\ \u{1} \u{2603}", "String"),
                    ("a,b,c", "StringList"),
                    ("", "SecureString"),
                ] {
                    for ms in [0i64, 999, 1_700_000_000_100, 1_700_000_000_123] {
                        let out = ParameterOut::new(
                            ParamArn {
                                partition: "aws",
                                region: "eu-west-1",
                                account: "000000000000",
                                name,
                            },
                            "text",
                            ms,
                            name,
                            selector,
                            ptype,
                            value,
                            u64::MAX - 1,
                        );
                        let mut direct = Vec::new();
                        out.write(&mut direct).unwrap();
                        let via_map = serde_json::to_vec(&Value::Object(out.to_obj(ms))).unwrap();
                        assert_eq!(direct, via_map);
                        assert_eq!(direct, serde_json::to_vec(&out).unwrap());
                    }
                }
            }
        }
    }
}
