//! The `resources` of a record: which secrets, parameters and keys a call named, as ARNs, taken
//! from the identifiers in its request (and the ARN its answer names, when there is one).

use serde_json::Value;

use crate::record::Resource;

/// Resources of a call to `service` by `account` in `region`. `response` is the raw answer when
/// the call succeeded (only its top-level `ARN`/`KeyId` is looked at).
pub fn resources(
    service: &str,
    account: &str,
    region: &str,
    request: &Value,
    response: Option<&[u8]>,
) -> Vec<Resource> {
    let partition = coffer_core::arn::partition_for_region(region);
    let mut out: Vec<Resource> = Vec::new();
    let mut add = |arn: String, kind: &'static str| {
        if !out.iter().any(|r| r.arn == arn) {
            out.push(Resource {
                arn,
                account_id: account.to_string(),
                kind,
            });
        }
    };
    let answer_arn = || {
        #[derive(serde::Deserialize)]
        struct Top {
            #[serde(rename = "ARN", alias = "KeyId", default)]
            arn: Option<String>,
        }
        let body = response?;
        leading_arn(body)
            .map(str::to_string)
            .or_else(|| serde_json::from_slice::<Top>(body).ok()?.arn)
            .filter(|a| a.starts_with("arn:"))
    };
    match service {
        "secretsmanager" => {
            const KIND: &str = "AWS::SecretsManager::Secret";
            if let Some(arn) = answer_arn() {
                add(arn, KIND);
            } else {
                let ids = request["SecretId"].as_str().into_iter().chain(
                    request["SecretIdList"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str),
                );
                for id in ids.filter(|id| id.starts_with("arn:")) {
                    add(id.to_string(), KIND);
                }
            }
        }
        "ssm" => {
            const KIND: &str = "AWS::SSM::Parameter";
            let param = |name: &str| {
                if name.starts_with("arn:") {
                    name.to_string()
                } else {
                    let sep = if name.starts_with('/') { "" } else { "/" };
                    format!("arn:{partition}:ssm:{region}:{account}:parameter{sep}{name}")
                }
            };
            let mut names: Vec<&str> = request["Name"].as_str().into_iter().collect();
            names.extend(
                request["Names"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str),
            );
            if request["ResourceType"] == "Parameter"
                && let Some(id) = request["ResourceId"].as_str()
            {
                names.push(id);
            }
            for n in names {
                add(param(n), KIND);
            }
        }
        "kms" => {
            let key = answer_arn().or_else(|| {
                let id = request["KeyId"].as_str()?;
                Some(if id.starts_with("arn:") {
                    id.to_string()
                } else if id.starts_with("alias/") {
                    format!("arn:{partition}:kms:{region}:{account}:{id}")
                } else {
                    format!("arn:{partition}:kms:{region}:{account}:key/{id}")
                })
            });
            if let Some(arn) = key {
                add(arn, "AWS::KMS::Key");
            }
        }
        _ => {}
    }
    out
}

/// The `ARN` of an answer that names it first (Secrets Manager's answers are written in sorted
/// key order, so `ARN` leads): read without parsing the rest, which may be a 64 KB secret value.
/// `None` sends the caller to the full parse.
fn leading_arn(body: &[u8]) -> Option<&str> {
    let rest = body.strip_prefix(br#"{"ARN":""#)?;
    let end = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    // A backslash would need unescaping: leave that to the parser.
    (rest[end] == b'"')
        .then(|| std::str::from_utf8(&rest[..end]).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn from_requests_and_answers() {
        let r = resources(
            "secretsmanager",
            "1",
            "us-east-1",
            &json!({"SecretId": "db"}),
            Some(br#"{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf","SecretString":"x"}"#),
        );
        assert_eq!(
            r[0].arn,
            "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf"
        );
        // Not first, or escaped: the full parse finds it all the same.
        for answer in [
            &br#"{"Name":"db","ARN":"arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf"}"#[..],
            br#"{"ARN":"arn:aws:secretsmanager:us-east-1:1:secret:d\u0062-AbCdEf","SecretString":"x"}"#,
        ] {
            let r = resources("secretsmanager", "1", "us-east-1", &json!({}), Some(answer));
            assert_eq!(r[0].arn, "arn:aws:secretsmanager:us-east-1:1:secret:db-AbCdEf");
        }
        assert!(
            resources(
                "secretsmanager",
                "1",
                "us-east-1",
                &json!({}),
                Some(br#"{"ARN":"not-an-arn"}"#)
            )
            .is_empty()
        );
        assert!(
            resources(
                "secretsmanager",
                "1",
                "us-east-1",
                &json!({"SecretId": "db"}),
                None
            )
            .is_empty()
        );
        let r = resources(
            "ssm",
            "1",
            "cn-north-1",
            &json!({"Names": ["/a", "b"]}),
            None,
        );
        assert_eq!(r[0].arn, "arn:aws-cn:ssm:cn-north-1:1:parameter/a");
        assert_eq!(r[1].arn, "arn:aws-cn:ssm:cn-north-1:1:parameter/b");
        let r = resources(
            "kms",
            "1",
            "us-east-1",
            &json!({"KeyId": "alias/aws/ssm"}),
            None,
        );
        assert_eq!(r[0].arn, "arn:aws:kms:us-east-1:1:alias/aws/ssm");
    }
}
