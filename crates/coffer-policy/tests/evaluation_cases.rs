//! The evaluation table: AWS's documented policy examples for Secrets Manager, Parameter Store
//! and KMS, plus edge cases of the grammar, each checked as a decision (allow, implicit deny,
//! explicit deny). Cases are grouped by the policies they share.

use std::borrow::Cow;
use std::collections::HashMap;

use coffer_policy::{
    CompiledPolicy, Context, Decision, DenyReason, PolicyKind, Request, RequestPrincipal,
    ResourceMode, Values, decide,
};

const ACCT: &str = "111122223333";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const SECRET: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf";
const OTHER_SECRET: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:dev/db-XyZabc";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum E {
    Allow,
    /// Implicit deny (nothing allows).
    Implicit,
    /// Explicit deny in an identity policy.
    DenyId,
    /// Explicit deny in the resource policy.
    DenyRes,
    /// A key policy neither allows nor delegates.
    NoRes,
}

#[derive(Clone, Copy)]
enum Who {
    Alice,
    Root,
    /// A session of role `app` (path `/svc/`).
    Session,
    /// A user of another account.
    Stranger,
}

impl Who {
    fn principal(self) -> RequestPrincipal<'static> {
        match self {
            Who::Alice => RequestPrincipal {
                account: ACCT,
                arn: ALICE,
                role_arn: None,
                is_root: false,
                service: None,
                federated: None,
            },
            Who::Root => RequestPrincipal {
                account: ACCT,
                arn: "arn:aws:iam::111122223333:root",
                role_arn: None,
                is_root: true,
                service: None,
                federated: None,
            },
            Who::Session => RequestPrincipal {
                account: ACCT,
                arn: "arn:aws:sts::111122223333:assumed-role/app/s1",
                role_arn: Some("arn:aws:iam::111122223333:role/svc/app"),
                is_root: false,
                service: None,
                federated: None,
            },
            Who::Stranger => RequestPrincipal {
                account: "444455556666",
                arn: "arn:aws:iam::444455556666:user/mallory",
                role_arn: None,
                is_root: false,
                service: None,
                federated: None,
            },
        }
    }
}

struct Ctx(HashMap<String, Values<'static>>);

impl Context for Ctx {
    fn get(&self, key: &str) -> Option<Values<'_>> {
        self.0.get(&key.to_ascii_lowercase()).cloned()
    }
}

/// One request: action, resource, who, condition keys (`k=v`, or `k=[a,b]` for a list; `[]` is
/// an empty list), and the expected outcome.
struct Q(&'static str, &'static str, Who, &'static [&'static str], E);

fn ctx(keys: &[&str]) -> Ctx {
    let mut m = HashMap::new();
    // Every request carries the caller's name, as the server does for IAM users.
    m.insert("aws:username".into(), Values::One(Cow::Borrowed("alice")));
    for kv in keys {
        let (k, v) = kv.split_once('=').expect("k=v");
        let val = if let Some(list) = v.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
            Values::Many(
                list.split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| Cow::Owned(s.to_string()))
                    .collect(),
            )
        } else {
            Values::One(Cow::Owned(v.to_string()))
        };
        m.insert(k.to_ascii_lowercase(), val);
    }
    Ctx(m)
}

enum Res {
    None,
    Combined(&'static str),
    Key(&'static str),
}

/// Runs `queries` against identity policies `ids` and resource policy `res`; returns the count.
fn run(group: &str, ids: &[&str], res: Res, queries: &[Q]) -> usize {
    let ids: Vec<CompiledPolicy> = ids
        .iter()
        .map(|d| CompiledPolicy::parse(d, PolicyKind::Identity).expect(group))
        .collect();
    let res_policy = match &res {
        Res::None => None,
        Res::Combined(d) | Res::Key(d) => {
            Some(CompiledPolicy::parse(d, PolicyKind::Resource).expect(group))
        }
    };
    let mode = match (&res, &res_policy) {
        (Res::Combined(_), Some(p)) => ResourceMode::Combined(p),
        (Res::Key(_), Some(p)) => ResourceMode::KeyPolicy(p),
        _ => ResourceMode::None,
    };
    for (i, Q(action, resource, who, keys, want)) in queries.iter().enumerate() {
        let c = ctx(keys);
        let req = Request {
            action,
            resource,
            principal: who.principal(),
            context: &c,
        };
        let got = match decide(&ids, mode, &req) {
            Decision::Allow => E::Allow,
            Decision::Deny(DenyReason::NoIdentityAllow) => E::Implicit,
            Decision::Deny(DenyReason::ExplicitIdentity) => E::DenyId,
            Decision::Deny(DenyReason::ExplicitResource) => E::DenyRes,
            Decision::Deny(DenyReason::NoResourceAllow) => E::NoRes,
        };
        assert_eq!(
            got, *want,
            "{group} #{i}: {action} on {resource} with {keys:?}"
        );
    }
    queries.len()
}

use E::*;
use Who::*;

const GSV: &str = "secretsmanager:GetSecretValue";
const PUT: &str = "secretsmanager:PutSecretValue";
const DESC: &str = "secretsmanager:DescribeSecret";
const CREATE: &str = "secretsmanager:CreateSecret";
const ROTATE: &str = "secretsmanager:RotateSecret";
const PARAM_PROD: &str = "arn:aws:ssm:us-east-1:111122223333:parameter/prod/db/password";
const PARAM_DEV: &str = "arn:aws:ssm:us-east-1:111122223333:parameter/dev/db/password";
const GP: &str = "ssm:GetParameter";

#[test]
fn evaluation_table() {
    let mut n = 0;

    // No policies at all: implicit deny for everything.
    n += run(
        "no policies",
        &[],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Implicit),
            Q(GP, PARAM_PROD, Alice, &[], Implicit),
            Q("kms:Decrypt", KEY, Alice, &[], Implicit),
        ],
    );

    // Statements are pre-sorted by the services their actions name: mixed case, `*` and
    // NotAction must all still reach the statements they match.
    n += run(
        "service prefilter",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["ssm:GetParameter","SecretsManager:Get*"],"Resource":"*"},
            {"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:*:*:secret:dev/*"},
            {"Effect":"Allow","NotAction":["kms:*","ssm:*","secretsmanager:*"],"Resource":"*"},
            {"Effect":"Deny","Action":"KMS:Decrypt","Resource":"*",
             "Condition":{"StringEquals":{"aws:username":"alice"}}}]}"#],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q("secretsmanager:getsecretvalue", SECRET, Alice, &[], Allow),
            Q(GP, PARAM_PROD, Alice, &[], Allow),
            Q("ssm:GetParameters", PARAM_PROD, Alice, &[], Implicit),
            Q(DESC, SECRET, Alice, &[], Implicit),
            Q(PUT, OTHER_SECRET, Alice, &[], Allow),
            Q(PUT, SECRET, Alice, &[], Implicit),
            Q("kms:Decrypt", KEY, Alice, &[], DenyId),
            Q("kms:Encrypt", KEY, Alice, &[], Implicit),
            Q("iam:GetUser", "*", Alice, &[], Allow),
        ],
    );

    // Secrets Manager: read one secret (AWS "Permission to read one secret").
    n += run(
        "read one secret",
        &[r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret"],
            "Resource":"arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf"}]}"#],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q(DESC, SECRET, Alice, &[], Allow),
            Q(PUT, SECRET, Alice, &[], Implicit),
            Q(GSV, OTHER_SECRET, Alice, &[], Implicit),
            // Actions compare case-insensitively, resources case-sensitively.
            Q("SecretsManager:getsecretvalue", SECRET, Alice, &[], Allow),
            Q(
                GSV,
                "arn:aws:secretsmanager:us-east-1:111122223333:secret:PROD/db-AbCdEf",
                Alice,
                &[],
                Implicit,
            ),
            Q("ssm:GetParameter", SECRET, Alice, &[], Implicit),
        ],
    );

    // Wildcards in names: secrets whose name starts with prod/ (AWS "Wildcards").
    n += run(
        "name prefix wildcard",
        &[r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
            "Action":"secretsmanager:Get*","Resource":"arn:aws:secretsmanager:*:*:secret:prod/*"}}"#],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q(
                "secretsmanager:GetResourcePolicy",
                SECRET,
                Alice,
                &[],
                Allow,
            ),
            Q(GSV, OTHER_SECRET, Alice, &[], Implicit),
            Q(DESC, SECRET, Alice, &[], Implicit),
            Q(
                GSV,
                "arn:aws:secretsmanager:eu-west-1:999999999999:secret:prod/x-AAAAAA",
                Alice,
                &[],
                Allow,
            ),
        ],
    );

    // `?` matches exactly one character: the six-character suffix.
    n += run(
        "question mark suffix",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue",
            "Resource":"arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-??????"}}"#,
        ],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q(
                GSV,
                "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEfG",
                Alice,
                &[],
                Implicit,
            ),
            Q(
                GSV,
                "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdE",
                Alice,
                &[],
                Implicit,
            ),
        ],
    );

    // Full access with one explicit deny (deny wins over allow in the same or another policy).
    n += run(
        "allow all, deny delete",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"secretsmanager:DeleteSecret","Resource":"*"}}"#,
        ],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q(CREATE, "*", Alice, &[], Allow),
            Q("secretsmanager:DeleteSecret", SECRET, Alice, &[], DenyId),
            Q("secretsmanager:deletesecret", SECRET, Alice, &[], DenyId),
            Q("ssm:GetParameter", PARAM_PROD, Alice, &[], Implicit),
        ],
    );

    // `*` action and resource: administrator.
    n += run(
        "administrator",
        &[
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        ],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q(GP, PARAM_DEV, Alice, &[], Allow),
            Q("kms:Decrypt", KEY, Alice, &[], Allow),
            Q(
                "iam:CreateUser",
                "arn:aws:iam::111122223333:user/bob",
                Alice,
                &[],
                Allow,
            ),
        ],
    );

    // NotAction: everything except Secrets Manager deletions.
    n += run(
        "NotAction",
        &[r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",
            "NotAction":["secretsmanager:Delete*","secretsmanager:PutResourcePolicy"],"Resource":"*"}}"#],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q("secretsmanager:DeleteSecret", SECRET, Alice, &[], Implicit),
            Q(
                "secretsmanager:DeleteResourcePolicy",
                SECRET,
                Alice,
                &[],
                Implicit,
            ),
            Q(
                "secretsmanager:PutResourcePolicy",
                SECRET,
                Alice,
                &[],
                Implicit,
            ),
            Q(GP, PARAM_PROD, Alice, &[], Allow),
        ],
    );

    // Deny with NotAction: deny everything except reads.
    n += run(
        "deny NotAction",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotAction":["secretsmanager:Get*","secretsmanager:Describe*","secretsmanager:List*"],"Resource":"*"}}"#,
        ],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q("secretsmanager:ListSecrets", "*", Alice, &[], Allow),
            Q(PUT, SECRET, Alice, &[], DenyId),
            Q(GP, PARAM_PROD, Alice, &[], DenyId),
        ],
    );

    // NotResource: everything but prod secrets.
    n += run(
        "NotResource",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue",
            "NotResource":"arn:aws:secretsmanager:*:*:secret:prod/*"}}"#,
        ],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &[], Implicit),
            Q(GSV, OTHER_SECRET, Alice, &[], Allow),
        ],
    );

    // ABAC: the secret's tag must equal the principal's tag (AWS "Control access with ABAC").
    n += run(
        "ABAC principal tag = resource tag",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*",
            "Condition":{"StringEquals":{"aws:ResourceTag/AccessProject":"${aws:PrincipalTag/AccessProject}"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "aws:PrincipalTag/AccessProject=alpha",
                    "aws:ResourceTag/AccessProject=alpha",
                ],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "aws:PrincipalTag/AccessProject=alpha",
                    "aws:ResourceTag/AccessProject=beta",
                ],
                Implicit,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:ResourceTag/AccessProject=alpha"],
                Implicit,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:PrincipalTag/AccessProject=alpha"],
                Implicit,
            ),
            // Condition key names ignore case.
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "AWS:PRINCIPALTAG/ACCESSPROJECT=alpha",
                    "aws:resourcetag/accessproject=alpha",
                ],
                Allow,
            ),
            // Values do not.
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "aws:PrincipalTag/AccessProject=Alpha",
                    "aws:ResourceTag/AccessProject=alpha",
                ],
                Implicit,
            ),
        ],
    );

    // secretsmanager:ResourceTag with the user's name (tag-based owner).
    n += run(
        "owner tag is username",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:PutSecretValue"],"Resource":"*",
            "Condition":{"StringEquals":{"secretsmanager:ResourceTag/Owner":"${aws:username}"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &["secretsmanager:ResourceTag/Owner=alice"],
                Allow,
            ),
            Q(
                PUT,
                SECRET,
                Alice,
                &["secretsmanager:ResourceTag/Owner=alice"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["secretsmanager:ResourceTag/Owner=bob"],
                Implicit,
            ),
            Q(GSV, SECRET, Alice, &[], Implicit),
        ],
    );

    // Only AWSCURRENT may be read (deny other stages), AWS's VersionStage example.
    n += run(
        "VersionStage",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"*",
                "Condition":{"StringNotEquals":{"secretsmanager:VersionStage":"AWSCURRENT"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &["secretsmanager:VersionStage=AWSCURRENT"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["secretsmanager:VersionStage=AWSPREVIOUS"],
                DenyId,
            ),
            // A negated operator is true when the key is absent: the deny applies.
            Q(GSV, SECRET, Alice, &[], DenyId),
        ],
    );

    // Same, written with IfExists on the allow side.
    n += run(
        "VersionStage IfExists",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*",
            "Condition":{"StringEqualsIfExists":{"secretsmanager:VersionStage":"AWSCURRENT"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &["secretsmanager:VersionStage=AWSCURRENT"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["secretsmanager:VersionStage=AWSPENDING"],
                Implicit,
            ),
            Q(GSV, SECRET, Alice, &[], Allow),
        ],
    );

    // Rotate only with one function (AWS's secretsmanager:RotationLambdaARN example), and a
    // guard on the function already attached (secretsmanager:resource/AllowRotationLambdaArn).
    n += run(
        "rotation function",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:RotateSecret","Resource":"*",
            "Condition":{"ArnEquals":{"secretsmanager:RotationLambdaARN":"arn:aws:lambda:us-east-1:111122223333:function:rot"}}}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"secretsmanager:*","Resource":"*",
            "Condition":{"StringLike":{"secretsmanager:resource/AllowRotationLambdaArn":"*:function:legacy-*"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                ROTATE,
                SECRET,
                Alice,
                &[
                    "secretsmanager:RotationLambdaARN=arn:aws:lambda:us-east-1:111122223333:function:rot",
                ],
                Allow,
            ),
            Q(
                ROTATE,
                SECRET,
                Alice,
                &[
                    "secretsmanager:RotationLambdaARN=arn:aws:lambda:us-east-1:111122223333:function:other",
                ],
                Implicit,
            ),
            // Rotating with the attached function (no ARN in the request): the key is absent.
            Q(ROTATE, SECRET, Alice, &[], Implicit),
            Q(
                ROTATE,
                SECRET,
                Alice,
                &[
                    "secretsmanager:RotationLambdaARN=arn:aws:lambda:us-east-1:111122223333:function:rot",
                    "secretsmanager:resource/AllowRotationLambdaArn=arn:aws:lambda:us-east-1:111122223333:function:legacy-1",
                ],
                DenyId,
            ),
            Q(
                ROTATE,
                SECRET,
                Alice,
                &[
                    "secretsmanager:RotationLambdaARN=arn:aws:lambda:us-east-1:111122223333:function:rot",
                    "secretsmanager:resource/AllowRotationLambdaArn=arn:aws:lambda:us-east-1:111122223333:function:rot",
                ],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "secretsmanager:resource/AllowRotationLambdaArn=arn:aws:lambda:us-east-1:111122223333:function:legacy-2",
                ],
                DenyId,
            ),
        ],
    );

    // Create only with required tags (AWS "require tags on create").
    n += run(
        "required request tags",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:CreateSecret","Resource":"*",
            "Condition":{"Null":{"aws:RequestTag/Project":"false"},
                         "ForAllValues:StringEquals":{"aws:TagKeys":["Project","Owner"]}}}}"#,
        ],
        Res::None,
        &[
            Q(
                CREATE,
                "*",
                Alice,
                &["aws:RequestTag/Project=x", "aws:TagKeys=[Project]"],
                Allow,
            ),
            Q(
                CREATE,
                "*",
                Alice,
                &["aws:RequestTag/Project=x", "aws:TagKeys=[Project,Owner]"],
                Allow,
            ),
            Q(
                CREATE,
                "*",
                Alice,
                &["aws:RequestTag/Project=x", "aws:TagKeys=[Project,Cost]"],
                Implicit,
            ),
            Q(CREATE, "*", Alice, &["aws:TagKeys=[Owner]"], Implicit),
            Q(CREATE, "*", Alice, &[], Implicit),
        ],
    );

    // ForAnyValue: at least one tag key from the list.
    n += run(
        "ForAnyValue tag keys",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:TagResource","Resource":"*",
            "Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":["team-*","Owner"]}}}}"#,
        ],
        Res::None,
        &[
            Q(
                "secretsmanager:TagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[team-a,Cost]"],
                Allow,
            ),
            Q(
                "secretsmanager:TagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[Owner]"],
                Allow,
            ),
            Q(
                "secretsmanager:TagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[Cost]"],
                Implicit,
            ),
            Q(
                "secretsmanager:TagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[]"],
                Implicit,
            ),
            Q("secretsmanager:TagResource", SECRET, Alice, &[], Implicit),
        ],
    );

    // ForAllValues with an absent key or an empty set is true (AWS's documented caveat).
    n += run(
        "ForAllValues absent",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:UntagResource","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["temp"]}}}}"#,
        ],
        Res::None,
        &[
            Q(
                "secretsmanager:UntagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[temp]"],
                Allow,
            ),
            Q(
                "secretsmanager:UntagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[temp,prod]"],
                Implicit,
            ),
            Q(
                "secretsmanager:UntagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[]"],
                Allow,
            ),
            Q("secretsmanager:UntagResource", SECRET, Alice, &[], Allow),
        ],
    );

    // Source IP restriction (AWS "deny access based on the source IP").
    n += run(
        "source ip",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*",
                "Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24","2001:db8::/32"]}}}}"#,
        ],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &["aws:SourceIp=192.0.2.17"], Allow),
            Q(GSV, SECRET, Alice, &["aws:SourceIp=203.0.113.255"], Allow),
            Q(GSV, SECRET, Alice, &["aws:SourceIp=2001:db8::1"], Allow),
            Q(GSV, SECRET, Alice, &["aws:SourceIp=198.51.100.1"], DenyId),
            Q(GSV, SECRET, Alice, &["aws:SourceIp=10.0.0.1"], DenyId),
            // No source address known: NotIpAddress holds, the deny applies.
            Q(GSV, SECRET, Alice, &[], DenyId),
        ],
    );

    // IpAddress allow with a single host (no prefix length).
    n += run(
        "ip single host",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*",
            "Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.1"}}}}"#,
        ],
        Res::None,
        &[
            Q(GP, PARAM_PROD, Alice, &["aws:SourceIp=127.0.0.1"], Allow),
            Q(GP, PARAM_PROD, Alice, &["aws:SourceIp=127.0.0.2"], Implicit),
            Q(GP, PARAM_PROD, Alice, &["aws:SourceIp=not-an-ip"], Implicit),
        ],
    );

    // TLS only (AWS "deny requests not over TLS").
    n += run(
        "secure transport",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*",
                "Condition":{"Bool":{"aws:SecureTransport":"false"}}}}"#,
        ],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &["aws:SecureTransport=true"], Allow),
            Q(GSV, SECRET, Alice, &["aws:SecureTransport=false"], DenyId),
            Q(GSV, SECRET, Alice, &["aws:SecureTransport=FALSE"], DenyId),
            Q(GSV, SECRET, Alice, &[], Allow),
        ],
    );

    // Time window (AWS "allow access within specific dates").
    n += run(
        "date window",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*",
            "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},
                         "DateLessThan":{"aws:CurrentTime":"2020-06-30T23:59:59Z"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:CurrentTime=2020-05-15T12:00:00Z"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:CurrentTime=2020-03-31T23:59:59Z"],
                Implicit,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:CurrentTime=2020-07-01T00:00:00Z"],
                Implicit,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:CurrentTime=2020-05-15T13:00:00+01:00"],
                Allow,
            ),
            Q(GSV, SECRET, Alice, &["aws:CurrentTime=1589544000"], Allow),
            Q(GSV, SECRET, Alice, &[], Implicit),
        ],
    );

    // Date equality operators with epoch policy values.
    n += run(
        "date operators",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"eq","Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*","Condition":{"DateEquals":{"aws:TokenIssueTime":"1577836800"}}},
            {"Sid":"ne","Effect":"Allow","Action":"secretsmanager:ListSecrets","Resource":"*","Condition":{"DateNotEquals":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}},
            {"Sid":"le","Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"DateLessThanEquals":{"aws:CurrentTime":"2020-01-01"}}},
            {"Sid":"ge","Effect":"Allow","Action":"secretsmanager:PutSecretValue","Resource":"*","Condition":{"DateGreaterThanEquals":{"aws:CurrentTime":"2020-01-01"}}}]}"#],
        Res::None,
        &[
            Q(
                DESC,
                SECRET,
                Alice,
                &["aws:TokenIssueTime=2020-01-01T00:00:00Z"],
                Allow,
            ),
            Q(
                DESC,
                SECRET,
                Alice,
                &["aws:TokenIssueTime=2020-01-01T00:00:01Z"],
                Implicit,
            ),
            Q(
                "secretsmanager:ListSecrets",
                "*",
                Alice,
                &["aws:TokenIssueTime=2020-01-01T00:00:00Z"],
                Implicit,
            ),
            Q(
                "secretsmanager:ListSecrets",
                "*",
                Alice,
                &["aws:TokenIssueTime=2021-01-01T00:00:00Z"],
                Allow,
            ),
            Q("secretsmanager:ListSecrets", "*", Alice, &[], Allow),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:CurrentTime=2020-01-01T00:00:00Z"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:CurrentTime=2020-01-01T00:00:01Z"],
                Implicit,
            ),
            Q(
                PUT,
                SECRET,
                Alice,
                &["aws:CurrentTime=2020-01-01T00:00:00Z"],
                Allow,
            ),
            Q(
                PUT,
                SECRET,
                Alice,
                &["aws:CurrentTime=2019-12-31T23:59:59Z"],
                Implicit,
            ),
            Q(
                DESC,
                SECRET,
                Alice,
                &["aws:TokenIssueTime=garbage"],
                Implicit,
            ),
        ],
    );

    // Numeric operators.
    n += run(
        "numeric",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"secretsmanager:ListSecrets","Resource":"*","Condition":{"NumericLessThanEquals":{"secretsmanager:MaxResults":"10"}}},
            {"Effect":"Allow","Action":"ssm:DescribeParameters","Resource":"*","Condition":{"NumericGreaterThan":{"ssm:MaxResults":5}}},
            {"Effect":"Allow","Action":"ssm:GetParameterHistory","Resource":"*","Condition":{"NumericEquals":{"ssm:MaxResults":["1","2.0"]}}},
            {"Effect":"Allow","Action":"ssm:GetParametersByPath","Resource":"*","Condition":{"NumericNotEquals":{"ssm:MaxResults":"3"}}},
            {"Effect":"Allow","Action":"ssm:ListTagsForResource","Resource":"*","Condition":{"NumericLessThan":{"ssm:MaxResults":"3"}}},
            {"Effect":"Allow","Action":"ssm:GetParameters","Resource":"*","Condition":{"NumericGreaterThanEquals":{"ssm:MaxResults":"3"}}}]}"#],
        Res::None,
        &[
            Q(
                "secretsmanager:ListSecrets",
                "*",
                Alice,
                &["secretsmanager:MaxResults=10"],
                Allow,
            ),
            Q(
                "secretsmanager:ListSecrets",
                "*",
                Alice,
                &["secretsmanager:MaxResults=11"],
                Implicit,
            ),
            Q(
                "secretsmanager:ListSecrets",
                "*",
                Alice,
                &["secretsmanager:MaxResults=abc"],
                Implicit,
            ),
            Q("secretsmanager:ListSecrets", "*", Alice, &[], Implicit),
            Q(
                "ssm:DescribeParameters",
                "*",
                Alice,
                &["ssm:MaxResults=6"],
                Allow,
            ),
            Q(
                "ssm:DescribeParameters",
                "*",
                Alice,
                &["ssm:MaxResults=5"],
                Implicit,
            ),
            Q(
                "ssm:GetParameterHistory",
                "*",
                Alice,
                &["ssm:MaxResults=2"],
                Allow,
            ),
            Q(
                "ssm:GetParameterHistory",
                "*",
                Alice,
                &["ssm:MaxResults=1.0"],
                Allow,
            ),
            Q(
                "ssm:GetParameterHistory",
                "*",
                Alice,
                &["ssm:MaxResults=3"],
                Implicit,
            ),
            Q(
                "ssm:GetParametersByPath",
                "*",
                Alice,
                &["ssm:MaxResults=4"],
                Allow,
            ),
            Q(
                "ssm:GetParametersByPath",
                "*",
                Alice,
                &["ssm:MaxResults=3"],
                Implicit,
            ),
            Q(
                "ssm:ListTagsForResource",
                "*",
                Alice,
                &["ssm:MaxResults=2"],
                Allow,
            ),
            Q(
                "ssm:ListTagsForResource",
                "*",
                Alice,
                &["ssm:MaxResults=3"],
                Implicit,
            ),
            Q(
                "ssm:GetParameters",
                "*",
                Alice,
                &["ssm:MaxResults=3"],
                Allow,
            ),
            Q(
                "ssm:GetParameters",
                "*",
                Alice,
                &["ssm:MaxResults=2"],
                Implicit,
            ),
        ],
    );

    // Rotation function restriction (secretsmanager:resource/AllowRotationLambdaArn, ArnLike).
    n += run(
        "rotation lambda arn",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:RotateSecret","Resource":"*",
            "Condition":{"ArnLike":{"secretsmanager:resource/AllowRotationLambdaArn":"arn:aws:lambda:*:111122223333:function:rotate-*"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                "secretsmanager:RotateSecret",
                SECRET,
                Alice,
                &[
                    "secretsmanager:resource/AllowRotationLambdaArn=arn:aws:lambda:us-east-1:111122223333:function:rotate-pg",
                ],
                Allow,
            ),
            Q(
                "secretsmanager:RotateSecret",
                SECRET,
                Alice,
                &[
                    "secretsmanager:resource/AllowRotationLambdaArn=arn:aws:lambda:us-east-1:444455556666:function:rotate-pg",
                ],
                Implicit,
            ),
            Q(
                "secretsmanager:RotateSecret",
                SECRET,
                Alice,
                &[
                    "secretsmanager:resource/AllowRotationLambdaArn=arn:aws:lambda:us-east-1:111122223333:function:other",
                ],
                Implicit,
            ),
            Q(
                "secretsmanager:RotateSecret",
                SECRET,
                Alice,
                &["secretsmanager:resource/AllowRotationLambdaArn=not-an-arn"],
                Implicit,
            ),
            Q("secretsmanager:RotateSecret", SECRET, Alice, &[], Implicit),
        ],
    );

    // ArnEquals and ArnNotLike compare component by component: `*` does not cross a colon.
    n += run(
        "arn components",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}},
            {"Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"}}},
            {"Effect":"Deny","Action":"secretsmanager:DescribeSecret","Resource":"*","Condition":{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:*"}}}]}"#],
        Res::None,
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:PrincipalArn=arn:aws:iam::111122223333:user/alice"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:PrincipalArn=arn:aws:iam::111122223333:user/bob"],
                Implicit,
            ),
            Q(
                DESC,
                SECRET,
                Alice,
                &["aws:PrincipalArn=arn:aws:iam::111122223333:user/x/y"],
                Allow,
            ),
            Q(
                DESC,
                SECRET,
                Alice,
                &["aws:PrincipalArn=arn:aws:iam::444455556666:user/x"],
                DenyId,
            ),
            Q(
                DESC,
                SECRET,
                Alice,
                &["aws:PrincipalArn=arn:aws:iam::111122223333:role/r"],
                Implicit,
            ),
        ],
    );

    // Multiple values are OR, multiple keys and operators are AND.
    n += run(
        "and/or",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*",
            "Condition":{"StringEquals":{"aws:ResourceTag/env":["prod","staging"],"aws:PrincipalTag/team":"db"},
                         "Bool":{"aws:SecureTransport":"true"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "aws:ResourceTag/env=prod",
                    "aws:PrincipalTag/team=db",
                    "aws:SecureTransport=true",
                ],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "aws:ResourceTag/env=staging",
                    "aws:PrincipalTag/team=db",
                    "aws:SecureTransport=true",
                ],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "aws:ResourceTag/env=dev",
                    "aws:PrincipalTag/team=db",
                    "aws:SecureTransport=true",
                ],
                Implicit,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "aws:ResourceTag/env=prod",
                    "aws:PrincipalTag/team=web",
                    "aws:SecureTransport=true",
                ],
                Implicit,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "aws:ResourceTag/env=prod",
                    "aws:PrincipalTag/team=db",
                    "aws:SecureTransport=false",
                ],
                Implicit,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:ResourceTag/env=prod", "aws:PrincipalTag/team=db"],
                Implicit,
            ),
        ],
    );

    // String operator family.
    n += run(
        "string operators",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"secretsmanager:Name":"Prod/DB"}}},
            {"Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*","Condition":{"StringLike":{"secretsmanager:Name":"prod/*"}}},
            {"Effect":"Allow","Action":"secretsmanager:ListSecretVersionIds","Resource":"*","Condition":{"StringNotLike":{"secretsmanager:Name":"prod/*"}}},
            {"Effect":"Allow","Action":"secretsmanager:GetResourcePolicy","Resource":"*","Condition":{"StringNotEqualsIgnoreCase":{"secretsmanager:Name":"PROD/DB"}}}]}"#],
        Res::None,
        &[
            Q(GSV, SECRET, Alice, &["secretsmanager:Name=prod/db"], Allow),
            Q(GSV, SECRET, Alice, &["secretsmanager:Name=PROD/DB"], Allow),
            Q(
                GSV,
                SECRET,
                Alice,
                &["secretsmanager:Name=prod/db2"],
                Implicit,
            ),
            Q(
                DESC,
                SECRET,
                Alice,
                &["secretsmanager:Name=prod/anything/else"],
                Allow,
            ),
            Q(
                DESC,
                SECRET,
                Alice,
                &["secretsmanager:Name=Prod/db"],
                Implicit,
            ),
            Q(
                "secretsmanager:ListSecretVersionIds",
                SECRET,
                Alice,
                &["secretsmanager:Name=dev/db"],
                Allow,
            ),
            Q(
                "secretsmanager:ListSecretVersionIds",
                SECRET,
                Alice,
                &["secretsmanager:Name=prod/db"],
                Implicit,
            ),
            Q(
                "secretsmanager:GetResourcePolicy",
                SECRET,
                Alice,
                &["secretsmanager:Name=prod/db"],
                Implicit,
            ),
            Q(
                "secretsmanager:GetResourcePolicy",
                SECRET,
                Alice,
                &["secretsmanager:Name=dev/db"],
                Allow,
            ),
        ],
    );

    // SecretId as given by the caller (name or ARN).
    n += run(
        "secret id",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*",
            "Condition":{"StringLike":{"secretsmanager:SecretId":["prod/db","arn:aws:secretsmanager:*:*:secret:prod/db-*"]}}}}"#,
        ],
        Res::None,
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &["secretsmanager:SecretId=prod/db"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &[
                    "secretsmanager:SecretId=arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf",
                ],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["secretsmanager:SecretId=prod/db-AbCdEf"],
                Implicit,
            ),
        ],
    );

    // BlockPublicPolicy must be requested with PutResourcePolicy.
    n += run(
        "block public policy",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:PutResourcePolicy","Resource":"*",
            "Condition":{"Bool":{"secretsmanager:BlockPublicPolicy":"true"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                "secretsmanager:PutResourcePolicy",
                SECRET,
                Alice,
                &["secretsmanager:BlockPublicPolicy=true"],
                Allow,
            ),
            Q(
                "secretsmanager:PutResourcePolicy",
                SECRET,
                Alice,
                &["secretsmanager:BlockPublicPolicy=false"],
                Implicit,
            ),
            Q(
                "secretsmanager:PutResourcePolicy",
                SECRET,
                Alice,
                &[],
                Implicit,
            ),
        ],
    );

    // Null operator both ways.
    n += run(
        "Null",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"secretsmanager:CreateSecret","Resource":"*","Condition":{"Null":{"aws:RequestTag/Owner":"true"}}},
            {"Effect":"Allow","Action":"secretsmanager:TagResource","Resource":"*","Condition":{"Null":{"aws:ResourceTag/Owner":"false"}}}]}"#],
        Res::None,
        &[
            Q(CREATE, "*", Alice, &[], Allow),
            Q(CREATE, "*", Alice, &["aws:RequestTag/Owner=x"], Implicit),
            Q(
                "secretsmanager:TagResource",
                SECRET,
                Alice,
                &["aws:ResourceTag/Owner=x"],
                Allow,
            ),
            Q("secretsmanager:TagResource", SECRET, Alice, &[], Implicit),
        ],
    );

    // Parameter Store: a path-scoped user (AWS "Restricting access to parameters by path").
    n += run(
        "ssm path scope",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["ssm:GetParameter","ssm:GetParameters","ssm:GetParametersByPath","ssm:GetParameterHistory"],
             "Resource":"arn:aws:ssm:*:*:parameter/prod/*"},
            {"Effect":"Allow","Action":"ssm:DescribeParameters","Resource":"*"}]}"#],
        Res::None,
        &[
            Q(GP, PARAM_PROD, Alice, &[], Allow),
            Q("ssm:GetParameters", PARAM_PROD, Alice, &[], Allow),
            Q(GP, PARAM_DEV, Alice, &[], Implicit),
            Q("ssm:PutParameter", PARAM_PROD, Alice, &[], Implicit),
            Q(
                "ssm:GetParametersByPath",
                "arn:aws:ssm:us-east-1:111122223333:parameter/prod/db",
                Alice,
                &[],
                Allow,
            ),
            // The path itself (`/prod`) is not under `/prod/*`.
            Q(
                "ssm:GetParametersByPath",
                "arn:aws:ssm:us-east-1:111122223333:parameter/prod",
                Alice,
                &[],
                Implicit,
            ),
            Q("ssm:DescribeParameters", "*", Alice, &[], Allow),
            Q("ssm:getparameter", PARAM_PROD, Alice, &[], Allow),
        ],
    );

    // ssm:Recursive: deny recursive path reads below /prod (AWS's documented example).
    n += run(
        "ssm recursive",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:GetParametersByPath","Resource":"arn:aws:ssm:*:*:parameter/prod*"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ssm:GetParametersByPath","Resource":"arn:aws:ssm:*:*:parameter/prod*",
                "Condition":{"StringEquals":{"ssm:Recursive":["true"]}}}}"#,
        ],
        Res::None,
        &[
            Q(
                "ssm:GetParametersByPath",
                "arn:aws:ssm:us-east-1:111122223333:parameter/prod",
                Alice,
                &["ssm:Recursive=false"],
                Allow,
            ),
            Q(
                "ssm:GetParametersByPath",
                "arn:aws:ssm:us-east-1:111122223333:parameter/prod",
                Alice,
                &["ssm:Recursive=true"],
                DenyId,
            ),
            Q(
                "ssm:GetParametersByPath",
                "arn:aws:ssm:us-east-1:111122223333:parameter/dev",
                Alice,
                &["ssm:Recursive=false"],
                Implicit,
            ),
        ],
    );

    // Home paths with ${aws:username}.
    n += run(
        "ssm home path variable",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["ssm:PutParameter","ssm:GetParameter"],
            "Resource":"arn:aws:ssm:us-east-1:111122223333:parameter/home/${aws:username}/*"}}"#,
        ],
        Res::None,
        &[
            Q(
                "ssm:PutParameter",
                "arn:aws:ssm:us-east-1:111122223333:parameter/home/alice/token",
                Alice,
                &[],
                Allow,
            ),
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/home/alice/a/b",
                Alice,
                &[],
                Allow,
            ),
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/home/bob/token",
                Alice,
                &[],
                Implicit,
            ),
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/home/${aws:username}/token",
                Alice,
                &[],
                Implicit,
            ),
        ],
    );

    // A variable with no value makes the entry match nothing; a default fills in.
    n += run(
        "variable missing and default",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:*:*:parameter/team/${aws:PrincipalTag/team}/*"},
            {"Effect":"Allow","Action":"ssm:PutParameter","Resource":"arn:aws:ssm:*:*:parameter/team/${aws:PrincipalTag/team, 'shared'}/*"}]}"#],
        Res::None,
        &[
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/team/db/x",
                Alice,
                &["aws:PrincipalTag/team=db"],
                Allow,
            ),
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/team/db/x",
                Alice,
                &[],
                Implicit,
            ),
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/team//x",
                Alice,
                &[],
                Implicit,
            ),
            Q(
                "ssm:PutParameter",
                "arn:aws:ssm:us-east-1:111122223333:parameter/team/shared/x",
                Alice,
                &[],
                Allow,
            ),
            Q(
                "ssm:PutParameter",
                "arn:aws:ssm:us-east-1:111122223333:parameter/team/db/x",
                Alice,
                &["aws:PrincipalTag/team=db"],
                Allow,
            ),
            Q(
                "ssm:PutParameter",
                "arn:aws:ssm:us-east-1:111122223333:parameter/team/shared/x",
                Alice,
                &["aws:PrincipalTag/team=db"],
                Implicit,
            ),
        ],
    );

    // Escapes: ${*}, ${?}, ${$} are literal characters, not wildcards.
    n += run(
        "variable escapes",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:GetParameter",
            "Resource":"arn:aws:ssm:*:*:parameter/odd/${*}${?}${$}"}}"#,
        ],
        Res::None,
        &[
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/odd/*?$",
                Alice,
                &[],
                Allow,
            ),
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/odd/ab$",
                Alice,
                &[],
                Implicit,
            ),
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/odd/*x$",
                Alice,
                &[],
                Implicit,
            ),
        ],
    );

    // Version 2008-10-17 (or none): `${...}` is literal text.
    n += run(
        "2008 no variables",
        &[
            r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"ssm:GetParameter",
            "Resource":"arn:aws:ssm:*:*:parameter/home/${aws:username}"}}"#,
            r#"{"Statement":{"Effect":"Allow","Action":"ssm:PutParameter",
            "Resource":"arn:aws:ssm:*:*:parameter/home/${aws:username}"}}"#,
        ],
        Res::None,
        &[
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/home/alice",
                Alice,
                &[],
                Implicit,
            ),
            Q(
                GP,
                "arn:aws:ssm:us-east-1:111122223333:parameter/home/${aws:username}",
                Alice,
                &[],
                Allow,
            ),
            Q(
                "ssm:PutParameter",
                "arn:aws:ssm:us-east-1:111122223333:parameter/home/alice",
                Alice,
                &[],
                Implicit,
            ),
            Q(
                "ssm:PutParameter",
                "arn:aws:ssm:us-east-1:111122223333:parameter/home/${aws:username}",
                Alice,
                &[],
                Allow,
            ),
        ],
    );

    // Variables in condition values (StringLike with a variable).
    n += run(
        "variable in condition",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:GetParametersByPath","Resource":"*",
            "Condition":{"StringLike":{"ssm:Path":"/users/${aws:username}/*"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                "ssm:GetParametersByPath",
                "*",
                Alice,
                &["ssm:Path=/users/alice/app"],
                Allow,
            ),
            Q(
                "ssm:GetParametersByPath",
                "*",
                Alice,
                &["ssm:Path=/users/bob/app"],
                Implicit,
            ),
        ],
    );

    // Tag-based Parameter Store access.
    n += run(
        "ssm resource tag",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ssm:GetParameter*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}},
            {"Effect":"Deny","Action":"ssm:*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/classification":"secret"}}}]}"#],
        Res::None,
        &[
            Q(GP, PARAM_PROD, Alice, &["aws:ResourceTag/env=prod"], Allow),
            Q(
                "ssm:GetParameterHistory",
                PARAM_PROD,
                Alice,
                &["aws:ResourceTag/env=prod"],
                Allow,
            ),
            Q(
                GP,
                PARAM_PROD,
                Alice,
                &["aws:ResourceTag/env=dev"],
                Implicit,
            ),
            Q(
                GP,
                PARAM_PROD,
                Alice,
                &[
                    "aws:ResourceTag/env=prod",
                    "aws:ResourceTag/classification=secret",
                ],
                DenyId,
            ),
            Q(
                "ssm:PutParameter",
                PARAM_PROD,
                Alice,
                &["aws:ResourceTag/env=prod"],
                Implicit,
            ),
        ],
    );

    // KMS: the default key policy delegates to IAM (the account root principal).
    n += run(
        "kms default key policy, user allowed by IAM",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*"}}"#,
        ],
        Res::Key(
            r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow",
                "Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#,
        ),
        &[
            Q("kms:Decrypt", KEY, Alice, &[], Allow),
            Q("kms:Encrypt", KEY, Alice, &[], Allow),
            Q("kms:ScheduleKeyDeletion", KEY, Alice, &[], Implicit),
            Q("kms:Decrypt", KEY, Root, &[], Allow),
            Q("kms:Decrypt", KEY, Stranger, &[], NoRes),
        ],
    );

    // KMS: the same key policy with an account-id principal; a user without IAM permission.
    n += run(
        "kms delegation without IAM permission",
        &[],
        Res::Key(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]}"#,
        ),
        &[
            Q("kms:Decrypt", KEY, Alice, &[], Implicit),
            Q("kms:Decrypt", KEY, Root, &[], Allow),
        ],
    );

    // KMS: a key policy without delegation. IAM permissions alone do not grant access.
    n += run(
        "kms key policy without delegation",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#,
        ],
        Res::Key(
            r#"{"Version":"2012-10-17","Statement":[
                {"Sid":"Allow use of the key","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/svc/app"},
                 "Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*"}]}"#,
        ),
        &[
            Q("kms:Decrypt", KEY, Alice, &[], NoRes),
            Q("kms:Decrypt", KEY, Session, &[], Allow),
            Q(
                "kms:GenerateDataKeyWithoutPlaintext",
                KEY,
                Session,
                &[],
                Allow,
            ),
            Q("kms:ScheduleKeyDeletion", KEY, Session, &[], NoRes),
        ],
    );

    // KMS: the key policy allows a user directly; no IAM policy needed.
    n += run(
        "kms key policy names the user",
        &[],
        Res::Key(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},
                "Action":"kms:Decrypt","Resource":"*"}]}"#,
        ),
        &[
            Q("kms:Decrypt", KEY, Alice, &[], Allow),
            Q("kms:Encrypt", KEY, Alice, &[], NoRes),
            Q("kms:Decrypt", KEY, Session, &[], NoRes),
        ],
    );

    // KMS: the AWS managed key policy (use through the service, by callers of the account).
    n += run(
        "kms aws managed key via service",
        &[],
        Res::Key(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Principal":{"AWS":"*"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*",
                 "Condition":{"StringEquals":{"kms:CallerAccount":"111122223333","kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}},
                {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["kms:Describe*","kms:Get*","kms:List*"],"Resource":"*"}]}"#,
        ),
        &[
            Q(
                "kms:Decrypt",
                KEY,
                Alice,
                &[
                    "kms:CallerAccount=111122223333",
                    "kms:ViaService=secretsmanager.us-east-1.amazonaws.com",
                ],
                Allow,
            ),
            Q(
                "kms:Decrypt",
                KEY,
                Alice,
                &["kms:CallerAccount=111122223333"],
                NoRes,
            ),
            Q(
                "kms:Decrypt",
                KEY,
                Alice,
                &[
                    "kms:CallerAccount=111122223333",
                    "kms:ViaService=ssm.us-east-1.amazonaws.com",
                ],
                NoRes,
            ),
            Q(
                "kms:Decrypt",
                KEY,
                Stranger,
                &[
                    "kms:CallerAccount=444455556666",
                    "kms:ViaService=secretsmanager.us-east-1.amazonaws.com",
                ],
                NoRes,
            ),
            // Delegated to IAM for Describe*, and Alice has no IAM policy.
            Q("kms:DescribeKey", KEY, Alice, &[], Implicit),
        ],
    );

    // KMS: encryption context conditions and ViaService in an identity policy.
    n += run(
        "kms encryption context",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:us-east-1:111122223333:key/*",
             "Condition":{"StringLike":{"kms:EncryptionContext:SecretARN":"arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/*"},
                          "StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}},
            {"Effect":"Deny","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:PARAMETER_ARN":"arn:aws:ssm:us-east-1:111122223333:parameter/locked"}}}]}"#],
        Res::Key(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#,
        ),
        &[
            Q(
                "kms:Decrypt",
                KEY,
                Alice,
                &[
                    "kms:EncryptionContext:SecretARN=arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf",
                    "kms:ViaService=secretsmanager.us-east-1.amazonaws.com",
                ],
                Allow,
            ),
            Q(
                "kms:Decrypt",
                KEY,
                Alice,
                &[
                    "kms:EncryptionContext:SecretARN=arn:aws:secretsmanager:us-east-1:111122223333:secret:dev/db-AbCdEf",
                    "kms:ViaService=secretsmanager.us-east-1.amazonaws.com",
                ],
                Implicit,
            ),
            Q(
                "kms:Decrypt",
                KEY,
                Alice,
                &[
                    "kms:EncryptionContext:SecretARN=arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf",
                ],
                Implicit,
            ),
            Q(
                "kms:Decrypt",
                KEY,
                Alice,
                &[
                    "kms:EncryptionContext:PARAMETER_ARN=arn:aws:ssm:us-east-1:111122223333:parameter/locked",
                ],
                DenyId,
            ),
            Q(
                "kms:Decrypt",
                "arn:aws:kms:us-east-1:444455556666:key/x",
                Alice,
                &[
                    "kms:EncryptionContext:SecretARN=arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-AbCdEf",
                    "kms:ViaService=secretsmanager.us-east-1.amazonaws.com",
                ],
                Implicit,
            ),
        ],
    );

    // KMS: an explicit deny in the key policy wins over everything, even a direct allow.
    n += run(
        "kms key policy deny",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#,
        ],
        Res::Key(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
                {"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
        ),
        &[
            Q(
                "kms:Decrypt",
                KEY,
                Alice,
                &["aws:SecureTransport=true"],
                Allow,
            ),
            Q(
                "kms:Decrypt",
                KEY,
                Alice,
                &["aws:SecureTransport=false"],
                DenyRes,
            ),
            Q(
                "kms:Encrypt",
                KEY,
                Alice,
                &["aws:SecureTransport=false"],
                Allow,
            ),
        ],
    );

    // Secrets Manager resource policy: cross-principal grant within the account.
    n += run(
        "resource policy names a role",
        &[],
        Res::Combined(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/svc/app"},
                "Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#,
        ),
        &[
            Q(GSV, SECRET, Session, &[], Allow),
            Q(PUT, SECRET, Session, &[], Implicit),
            Q(GSV, SECRET, Alice, &[], Implicit),
            Q(GSV, SECRET, Stranger, &[], Implicit),
        ],
    );

    // Resource policy naming the user; identity policies combine by union.
    n += run(
        "resource policy names the user",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:DescribeSecret","Resource":"*"}}"#,
        ],
        Res::Combined(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/alice"]},
                "Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#,
        ),
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q(DESC, SECRET, Alice, &[], Allow),
            Q(PUT, SECRET, Alice, &[], Implicit),
        ],
    );

    // Resource policy deny overrides the identity allow (AWS "deny all but one role").
    n += run(
        "resource policy deny all but one role",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}}"#,
        ],
        Res::Combined(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*",
                "Condition":{"StringNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/svc/app"}}}]}"#,
        ),
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:PrincipalArn=arn:aws:iam::111122223333:user/alice"],
                DenyRes,
            ),
            Q(
                DESC,
                SECRET,
                Alice,
                &["aws:PrincipalArn=arn:aws:iam::111122223333:user/alice"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Session,
                &["aws:PrincipalArn=arn:aws:iam::111122223333:role/svc/app"],
                Allow,
            ),
        ],
    );

    // A resource policy naming the account does not grant IAM users by itself.
    n += run(
        "resource policy names the account",
        &[],
        Res::Combined(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},
                "Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#,
        ),
        &[
            Q(GSV, SECRET, Alice, &[], Implicit),
            Q(GSV, SECRET, Session, &[], Implicit),
            Q(GSV, SECRET, Root, &[], Allow),
        ],
    );

    // Public (`*`) resource policy with an organization-like condition.
    n += run(
        "resource policy everyone with condition",
        &[],
        Res::Combined(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*",
                "Condition":{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}}}"#,
        ),
        &[
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:PrincipalAccount=111122223333"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Stranger,
                &["aws:PrincipalAccount=444455556666"],
                Implicit,
            ),
        ],
    );

    // NotPrincipal with Deny: everyone except the named role is denied.
    n += run(
        "NotPrincipal deny",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#,
        ],
        Res::Combined(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:role/svc/app","arn:aws:sts::111122223333:assumed-role/app/s1"]},
                "Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#,
        ),
        &[
            Q(GSV, SECRET, Alice, &[], DenyRes),
            Q(GSV, SECRET, Session, &[], Allow),
        ],
    );

    // Service principals never match an IAM caller.
    n += run(
        "service principal",
        &[],
        Res::Combined(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},
                "Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#,
        ),
        &[Q(GSV, SECRET, Alice, &[], Implicit)],
    );

    // The resource policy's Resource element still has to match.
    n += run(
        "resource policy resource element",
        &[],
        Res::Combined(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},
                "Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/*"}}"#,
        ),
        &[
            Q(GSV, SECRET, Alice, &[], Allow),
            Q(GSV, OTHER_SECRET, Alice, &[], Implicit),
        ],
    );

    // Statement order does not matter; a later deny still wins; Sids are irrelevant.
    n += run(
        "order independence",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"A","Effect":"Deny","Action":"ssm:PutParameter","Resource":"arn:aws:ssm:*:*:parameter/prod/*"},
            {"Sid":"B","Effect":"Allow","Action":"ssm:*","Resource":"*"}]}"#],
        Res::None,
        &[
            Q("ssm:PutParameter", PARAM_PROD, Alice, &[], DenyId),
            Q("ssm:PutParameter", PARAM_DEV, Alice, &[], Allow),
            Q(GP, PARAM_PROD, Alice, &[], Allow),
        ],
    );

    // Multivalued key without a qualifier, and IfExists with a negated operator.
    n += run(
        "multivalued without qualifier",
        &[r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ssm:AddTagsToResource","Resource":"*","Condition":{"StringEquals":{"aws:TagKeys":"env"}}},
            {"Effect":"Allow","Action":"ssm:RemoveTagsFromResource","Resource":"*","Condition":{"StringNotEqualsIfExists":{"aws:TagKeys":"owner"}}}]}"#],
        Res::None,
        &[
            Q(
                "ssm:AddTagsToResource",
                PARAM_PROD,
                Alice,
                &["aws:TagKeys=[env,team]"],
                Allow,
            ),
            Q(
                "ssm:AddTagsToResource",
                PARAM_PROD,
                Alice,
                &["aws:TagKeys=[team]"],
                Implicit,
            ),
            Q(
                "ssm:RemoveTagsFromResource",
                PARAM_PROD,
                Alice,
                &["aws:TagKeys=[env]"],
                Allow,
            ),
            Q(
                "ssm:RemoveTagsFromResource",
                PARAM_PROD,
                Alice,
                &["aws:TagKeys=[env,owner]"],
                Implicit,
            ),
            Q("ssm:RemoveTagsFromResource", PARAM_PROD, Alice, &[], Allow),
        ],
    );

    // ForAllValues with a negated operator: none of the keys may be protected.
    n += run(
        "ForAllValues negated",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:UntagResource","Resource":"*",
            "Condition":{"ForAllValues:StringNotLike":{"aws:TagKeys":["aws:*","protected-*"]}}}}"#,
        ],
        Res::None,
        &[
            Q(
                "secretsmanager:UntagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[team,env]"],
                Allow,
            ),
            Q(
                "secretsmanager:UntagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[team,protected-x]"],
                Implicit,
            ),
        ],
    );

    // ForAnyValue with a negated operator: at least one key outside the list.
    n += run(
        "ForAnyValue negated",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"secretsmanager:TagResource","Resource":"*",
            "Condition":{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["env","team"]}}}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:TagResource","Resource":"*"}}"#,
        ],
        Res::None,
        &[
            Q(
                "secretsmanager:TagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[env]"],
                Allow,
            ),
            Q(
                "secretsmanager:TagResource",
                SECRET,
                Alice,
                &["aws:TagKeys=[env,cost]"],
                DenyId,
            ),
            Q("secretsmanager:TagResource", SECRET, Alice, &[], Allow),
        ],
    );

    // Binary equality compares the base64 text.
    n += run(
        "binary",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"*",
            "Condition":{"BinaryEquals":{"custom:blob":"QmluYXJ5VmFsdWU="}}}}"#,
        ],
        Res::None,
        &[
            Q(
                GP,
                PARAM_PROD,
                Alice,
                &["custom:blob=QmluYXJ5VmFsdWU="],
                Allow,
            ),
            Q(
                GP,
                PARAM_PROD,
                Alice,
                &["custom:blob=QmluYXJ5VmFsdWF="],
                Implicit,
            ),
        ],
    );

    // Session principal matched by its own session ARN and by its role's ARN in aws:PrincipalArn.
    n += run(
        "role session identity",
        &[
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*",
            "Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/svc/*"}}}}"#,
        ],
        Res::None,
        &[
            Q(
                GSV,
                SECRET,
                Session,
                &["aws:PrincipalArn=arn:aws:iam::111122223333:role/svc/app"],
                Allow,
            ),
            Q(
                GSV,
                SECRET,
                Alice,
                &["aws:PrincipalArn=arn:aws:iam::111122223333:user/alice"],
                Implicit,
            ),
        ],
    );

    assert!(
        n >= 150,
        "the table has {n} cases; the issue asks for at least 150"
    );
}
