//! IAM's glob: `*` matches any run of characters (including none), `?` exactly one.

/// Whether `value` matches `pattern`. Runs in O(pattern × value) at worst: the single-backtrack
/// method below never revisits more than the last `*`, so hostile patterns cannot blow up.
pub fn wildcard_match(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let fold = |c: char| {
        if case_insensitive {
            c.to_lowercase().next().unwrap_or(c)
        } else {
            c
        }
    };
    let p: Vec<char> = pattern.chars().map(fold).collect();
    let v: Vec<char> = value.chars().map(fold).collect();

    let (mut pi, mut vi) = (0usize, 0usize);
    // Position after the last `*` seen and the value position it is currently assumed to cover.
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, vi));
                pi += 1;
            }
            Some(&c) if c == '?' || c == v[vi] => {
                pi += 1;
                vi += 1;
            }
            _ => match star {
                Some((sp, sv)) => {
                    pi = sp;
                    vi = sv + 1;
                    star = Some((sp, sv + 1));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard_match as m;

    #[test]
    fn literals_and_wildcards() {
        assert!(m("", "", false));
        assert!(!m("", "a", false));
        assert!(m("*", "", false));
        assert!(m("*", "anything", false));
        assert!(m(
            "secretsmanager:Get*",
            "secretsmanager:GetSecretValue",
            false
        ));
        assert!(!m(
            "secretsmanager:Get*",
            "secretsmanager:PutSecretValue",
            false
        ));
        assert!(m("a?c", "abc", false));
        assert!(!m("a?c", "ac", false));
        assert!(m("*Secret*", "DescribeSecretValue", false));
        assert!(m("a*b*c", "aXXbYYc", false));
        assert!(!m("a*b*c", "aXXbYY", false));
        assert!(m("a**", "a", false));
        assert!(m("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b", false));
    }

    #[test]
    fn case_folding() {
        assert!(m(
            "SecretsManager:getsecretvalue",
            "secretsmanager:GetSecretValue",
            true
        ));
        assert!(!m(
            "SecretsManager:getsecretvalue",
            "secretsmanager:GetSecretValue",
            false
        ));
    }

    #[test]
    fn pathological_pattern_finishes() {
        let pattern = "*a".repeat(200) + "b";
        let value = "a".repeat(5000);
        assert!(!m(&pattern, &value, false));
    }
}
