//! The AWS Query protocol (IAM, STS): form-encoded request parameters in, XML out.
//!
//! Requests are `Action=CreateUser&Version=2010-05-08&UserName=bob` (a POST body, or the query
//! string of a GET); lists and maps are flattened as `Tags.member.1.Key=...`. Answers are
//! `<ActionResponse xmlns=NS><ActionResult>...</ActionResult><ResponseMetadata><RequestId>`,
//! errors `<ErrorResponse xmlns=NS><Error><Type>Sender|Receiver</Type><Code/><Message/></Error>
//! <RequestId/></ErrorResponse>`.

use std::collections::BTreeMap;

use crate::error::ErrorEnvelope;

/// Decoded request parameters, by name (names are case-sensitive, as AWS treats them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams {
    params: BTreeMap<String, String>,
}

/// Why a body is not a form-encoded parameter list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the request body is not valid form-encoded UTF-8")]
    Encoding,
}

impl QueryParams {
    /// Parses `application/x-www-form-urlencoded` text (`+` is a space, `%XX` a byte).
    pub fn parse(form: &[u8]) -> Result<Self, QueryError> {
        let mut params = BTreeMap::new();
        for pair in form.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            params.insert(decode(k)?, decode(v)?);
        }
        Ok(Self { params })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// The flattened list `PREFIX.member.1`, `PREFIX.member.2`, ... up to the first gap.
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        (1..)
            .map_while(|i| self.get(&format!("{prefix}.member.{i}")))
            .collect()
    }

    /// The flattened structure list `PREFIX.member.N.FIELD`: one map of field → value per index,
    /// up to the first index with no field at all.
    pub fn structs(&self, prefix: &str) -> Vec<BTreeMap<&str, &str>> {
        let mut out = Vec::new();
        for i in 1.. {
            let head = format!("{prefix}.member.{i}.");
            let fields: BTreeMap<&str, &str> = self
                .params
                .range(head.clone()..)
                .take_while(|(k, _)| k.starts_with(&head))
                .map(|(k, v)| (&k[head.len()..], v.as_str()))
                .collect();
            if fields.is_empty() {
                break;
            }
            out.push(fields);
        }
        out
    }

    /// The top-level scalar parameters (names without a `.`), `Action` and `Version` included.
    pub fn scalars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .iter()
            .filter(|(k, _)| !k.contains('.'))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// True when some parameter starts with `prefix` (an empty list was sent explicitly, e.g.
    /// `TagKeys=` with no members, shows as a bare `TagKeys`).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.params
            .range(prefix.to_string()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }
}

fn decode(raw: &[u8]) -> Result<String, QueryError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(i + 1..i + 3).ok_or(QueryError::Encoding)?;
                let s = std::str::from_utf8(hex).map_err(|_| QueryError::Encoding)?;
                out.push(u8::from_str_radix(s, 16).map_err(|_| QueryError::Encoding)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| QueryError::Encoding)
}

/// A small XML writer for Query answers: elements and escaped text, nothing else.
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// `<name>`.
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name>text</name>` with `text` escaped.
    pub fn text(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name)
    }

    /// [`Self::text`] when `text` is present.
    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.text(name, t);
        }
        self
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

/// The success envelope around an operation's result elements (`result_xml`, already written;
/// empty for operations without output, which then have no `<ActionResult>`).
pub fn response(action: &str, namespace: &str, result_xml: &str, request_id: &str) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    w.out.push('<');
    w.out.push_str(action);
    w.out.push_str(r#"Response xmlns=""#);
    escape_into(&mut w.out, namespace);
    w.out.push_str(r#"">"#);
    if !result_xml.is_empty() {
        w.out.push('<');
        w.out.push_str(action);
        w.out.push_str("Result>");
        w.out.push_str(result_xml);
        w.out.push_str("</");
        w.out.push_str(action);
        w.out.push_str("Result>");
    }
    w.open("ResponseMetadata")
        .text("RequestId", request_id)
        .close("ResponseMetadata");
    w.out.push_str("</");
    w.out.push_str(action);
    w.out.push_str("Response>");
    w.into_string().into_bytes()
}

/// The Query error envelope; `Type` is `Receiver` for server faults (5xx), else `Sender`.
pub fn error_response(env: &ErrorEnvelope, namespace: &str, request_id: &str) -> Vec<u8> {
    let mut w = XmlWriter::new();
    w.out
        .push_str(r#"<?xml version="1.0" encoding="UTF-8"?><ErrorResponse xmlns=""#);
    escape_into(&mut w.out, namespace);
    w.out.push_str(r#"">"#);
    let kind = if env.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    w.open("Error")
        .text("Type", kind)
        .text("Code", &env.code)
        .text("Message", &env.message)
        .close("Error")
        .text("RequestId", request_id);
    w.out.push_str("</ErrorResponse>");
    w.into_string().into_bytes()
}

/// Query services answer framework errors the Query way: the code without the JSON services'
/// `Exception` suffix where AWS drops it, and 403 for authentication failures.
pub fn framework_error(env: &ErrorEnvelope) -> ErrorEnvelope {
    use crate::error as e;
    let (code, status) = match env.code.as_str() {
        e::UNRECOGNIZED_CLIENT => ("InvalidClientTokenId", 403),
        e::EXPIRED_TOKEN => ("ExpiredToken", 403),
        e::INVALID_SIGNATURE => ("SignatureDoesNotMatch", 403),
        e::INCOMPLETE_SIGNATURE => ("IncompleteSignature", 403),
        e::MISSING_AUTHENTICATION_TOKEN => ("MissingAuthenticationToken", 403),
        e::ACCESS_DENIED => ("AccessDenied", 403),
        e::THROTTLING => ("Throttling", 400),
        e::UNKNOWN_OPERATION => ("InvalidAction", 400),
        e::VALIDATION => ("ValidationError", 400),
        _ => return env.clone(),
    };
    ErrorEnvelope::new(code, env.message.clone(), status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_form_with_escapes_and_lists() {
        let q = QueryParams::parse(
            b"Action=TagUser&UserName=a%2Bb+c&Tags.member.1.Key=k1&Tags.member.1.Value=v%3D1\
              &Tags.member.2.Key=k2&Tags.member.2.Value=&TagKeys.member.1=x&TagKeys.member.2=y\
              &TagKeys.member.4=z&Empty",
        )
        .unwrap();
        assert_eq!(q.get("Action"), Some("TagUser"));
        assert_eq!(q.get("UserName"), Some("a+b c"));
        assert_eq!(q.get("Empty"), Some(""));
        assert_eq!(q.list("TagKeys"), vec!["x", "y"], "stops at the first gap");
        let tags = q.structs("Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0]["Key"], "k1");
        assert_eq!(tags[0]["Value"], "v=1");
        assert_eq!(tags[1]["Value"], "");
        assert!(q.has_prefix("TagKeys"));
        assert!(!q.has_prefix("Nope"));
    }

    #[test]
    fn bad_escapes_are_refused() {
        assert_eq!(QueryParams::parse(b"a=%zz"), Err(QueryError::Encoding));
        assert_eq!(QueryParams::parse(b"a=%4"), Err(QueryError::Encoding));
        assert_eq!(QueryParams::parse(b"a=%ff"), Err(QueryError::Encoding));
    }

    #[test]
    fn response_shape() {
        let mut w = XmlWriter::new();
        w.open("User").text("UserName", "a<&>\"'").close("User");
        let body = response(
            "GetUser",
            "https://iam.amazonaws.com/doc/2010-05-08/",
            &w.into_string(),
            "rid",
        );
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><GetUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <GetUserResult><User><UserName>a&lt;&amp;&gt;&quot;&apos;</UserName></User></GetUserResult>\
             <ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetUserResponse>"
        );
        let empty = response("DeleteUser", "ns", "", "r");
        assert!(
            !String::from_utf8(empty)
                .unwrap()
                .contains("DeleteUserResult")
        );
    }

    #[test]
    fn error_shape_and_framework_codes() {
        let env = ErrorEnvelope::new("NoSuchEntity", "The user with name x cannot be found.", 404);
        let body = String::from_utf8(error_response(&env, "ns", "rid")).unwrap();
        assert!(body.contains("<Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name x cannot be found.</Message></Error><RequestId>rid</RequestId>"), "{body}");
        let internal = ErrorEnvelope::internal_failure("x");
        assert!(
            String::from_utf8(error_response(&internal, "ns", "r"))
                .unwrap()
                .contains("<Type>Receiver</Type>")
        );
        let f = framework_error(&ErrorEnvelope::unrecognized_client());
        assert_eq!((f.code.as_str(), f.status), ("InvalidClientTokenId", 403));
        let f = framework_error(&ErrorEnvelope::access_denied("no"));
        assert_eq!(
            (f.code.as_str(), f.status, f.message.as_str()),
            ("AccessDenied", 403, "no")
        );
        assert_eq!(framework_error(&env), env);
    }
}
