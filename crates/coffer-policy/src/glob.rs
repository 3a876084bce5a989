//! Compiled IAM globs with policy variables: `*` any run, `?` one character, `${key}` replaced
//! by the request's value of `key` (`${key, 'default'}` when absent), `${*}`, `${?}`, `${$}`
//! standing for the literal characters. Compiled once per policy; matching allocates only when a
//! variable is present.

use std::borrow::Cow;

/// One element of a compiled pattern or template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Literal text (already case-folded when the pattern is case-insensitive).
    Lit(Box<str>),
    /// `*`
    Star,
    /// `?`
    One,
    /// `${key}` or `${key, 'default'}`; `key` lowercased (condition keys ignore case).
    Var {
        key: Box<str>,
        default: Option<Box<str>>,
    },
}

/// A compiled pattern. `wild` decides whether `*`/`?` are wildcards (StringLike, Resource,
/// Action) or plain characters (StringEquals); variables are substituted only when `vars`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    parts: Box<[Part]>,
    fold: bool,
    has_vars: bool,
    /// Only literals and `*` (most resource patterns): matched by substring search.
    star_only: bool,
}

/// Resolves policy variables; `None` when the key is absent from the request.
pub(crate) trait Vars {
    fn var(&self, key: &str) -> Option<Cow<'_, str>>;
}

impl Glob {
    pub(crate) fn new(pattern: &str, wild: bool, vars: bool, fold: bool) -> Glob {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut has_vars = false;
        let flush = |lit: &mut String, parts: &mut Vec<Part>| {
            if !lit.is_empty() {
                let text = if fold {
                    lit.to_lowercase()
                } else {
                    lit.clone()
                };
                parts.push(Part::Lit(text.into()));
                lit.clear();
            }
        };
        let mut rest = pattern;
        while let Some(c) = rest.chars().next() {
            if vars
                && rest.starts_with("${")
                && let Some(end) = rest.find('}')
            {
                let inner = &rest[2..end];
                rest = &rest[end + 1..];
                match inner {
                    "*" | "?" | "$" => lit.push_str(inner),
                    _ => {
                        let (key, default) = match inner.split_once(',') {
                            Some((k, d)) => {
                                let d = d.trim();
                                let d = d
                                    .strip_prefix('\'')
                                    .and_then(|d| d.strip_suffix('\''))
                                    .unwrap_or(d);
                                (k.trim(), Some(d.into()))
                            }
                            None => (inner.trim(), None),
                        };
                        flush(&mut lit, &mut parts);
                        has_vars = true;
                        parts.push(Part::Var {
                            key: key.to_ascii_lowercase().into(),
                            default,
                        });
                    }
                }
                continue;
            }
            rest = &rest[c.len_utf8()..];
            match c {
                '*' if wild => {
                    flush(&mut lit, &mut parts);
                    parts.push(Part::Star);
                }
                '?' if wild => {
                    flush(&mut lit, &mut parts);
                    parts.push(Part::One);
                }
                _ => lit.push(c),
            }
        }
        flush(&mut lit, &mut parts);
        let star_only = parts.iter().all(|p| matches!(p, Part::Lit(_) | Part::Star));
        Glob {
            parts: parts.into(),
            fold,
            has_vars,
            star_only,
        }
    }

    /// The literal text the pattern starts with (case-folded if the pattern is), if any.
    pub(crate) fn literal_prefix(&self) -> Option<&str> {
        match self.parts.first() {
            Some(Part::Lit(t)) => Some(t),
            _ => None,
        }
    }

    /// Whether the pattern is exactly `*`.
    pub(crate) fn is_any(&self) -> bool {
        matches!(&*self.parts, [Part::Star])
    }

    /// Matches `value` that the caller already case-folded (an action, folded once for all the
    /// statements it is matched against). For patterns without variables.
    pub(crate) fn matches_folded(&self, folded: &str) -> bool {
        if self.star_only {
            match_stars(&self.parts, folded)
        } else {
            match_parts(&self.parts, folded.as_bytes(), false)
        }
    }

    /// Matches `value`. `None` when a variable has no value and no default: AWS then treats the
    /// element as not matching.
    pub(crate) fn matches(&self, value: &str, vars: &dyn Vars) -> Option<bool> {
        if !self.has_vars {
            if self.star_only && !self.fold {
                return Some(match_stars(&self.parts, value));
            }
            return Some(match_parts(&self.parts, value.as_bytes(), self.fold));
        }
        let mut resolved = Vec::with_capacity(self.parts.len());
        for p in self.parts.iter() {
            match p {
                Part::Var { key, default } => {
                    let v = match vars.var(key) {
                        Some(v) => v.into_owned(),
                        None => default.as_deref()?.to_string(),
                    };
                    let v = if self.fold { v.to_lowercase() } else { v };
                    resolved.push(Part::Lit(v.into()));
                }
                other => resolved.push(other.clone()),
            }
        }
        Some(match_parts(&resolved, value.as_bytes(), self.fold))
    }
}

/// Matching of a pattern of literals and `*` only: the first literal is a prefix, the last a
/// suffix, and the ones between are found leftmost-first in order (for `*`-only patterns the
/// leftmost occurrence never loses a match). Substring search instead of byte-wise
/// backtracking: a policy's resource patterns are matched on every call.
fn match_stars(parts: &[Part], v: &str) -> bool {
    fn lit(p: &Part) -> Option<&str> {
        match p {
            Part::Lit(l) => Some(l),
            _ => None,
        }
    }
    if parts.is_empty() {
        return v.is_empty();
    }
    let (mut start, mut end) = (0, v.len());
    let mut mid = parts;
    if let Some(first) = parts.first().and_then(lit) {
        if !v.starts_with(first) {
            return false;
        }
        if parts.len() == 1 {
            return v.len() == first.len();
        }
        start = first.len();
        mid = &mid[1..];
    }
    if let Some(last) = mid.last().and_then(lit) {
        if v.len() < start + last.len() || !v.ends_with(last) {
            return false;
        }
        end = v.len() - last.len();
        mid = &mid[..mid.len() - 1];
    }
    for l in mid.iter().filter_map(lit) {
        match v[start..end].find(l) {
            Some(i) => start += i + l.len(),
            None => return false,
        }
    }
    true
}

/// Glob matching over literal runs, `*` and `?` (one UTF-8 character), with single-point
/// backtracking: linear in practice, O(pattern × value) at worst.
fn match_parts(parts: &[Part], v: &[u8], fold: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if fold {
            a == b.to_ascii_lowercase()
        } else {
            a == b
        }
    };
    // Position: (part index, byte offset inside a literal part).
    let (mut pi, mut off, mut vi) = (0usize, 0usize, 0usize);
    let mut star: Option<(usize, usize)> = None; // (part after the star, value index it covers to)
    loop {
        if vi == v.len() {
            // Rest of the pattern must be stars (or an exhausted literal).
            let mut i = pi;
            if off > 0 {
                if let Some(Part::Lit(l)) = parts.get(i)
                    && off < l.len()
                {
                    return false;
                }
                i += 1;
            }
            return parts[i.min(parts.len())..]
                .iter()
                .all(|p| matches!(p, Part::Star) || matches!(p, Part::Lit(l) if l.is_empty()));
        }
        let step = match parts.get(pi) {
            Some(Part::Star) => {
                pi += 1;
                off = 0;
                star = Some((pi, vi));
                continue;
            }
            Some(Part::One) => {
                vi += utf8_len(v[vi]);
                pi += 1;
                true
            }
            Some(Part::Lit(l)) => {
                let lb = l.as_bytes();
                if eq(lb[off], v[vi]) {
                    off += 1;
                    vi += 1;
                    if off == lb.len() {
                        pi += 1;
                        off = 0;
                    }
                    true
                } else {
                    false
                }
            }
            // Variables are resolved before matching.
            Some(Part::Var { .. }) | None => false,
        };
        if !step {
            match star {
                Some((sp, sv)) => {
                    let next = sv + utf8_len(v[sv]);
                    star = Some((sp, next));
                    pi = sp;
                    off = 0;
                    vi = next;
                }
                None => return false,
            }
        }
        if vi > v.len() {
            return false;
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0..0x80 => 1,
        0xC0..0xE0 => 2,
        0xE0..0xF0 => 3,
        0xF0.. => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoVars;
    impl Vars for NoVars {
        fn var(&self, _: &str) -> Option<Cow<'_, str>> {
            None
        }
    }
    struct User;
    impl Vars for User {
        fn var(&self, key: &str) -> Option<Cow<'_, str>> {
            (key == "aws:username").then_some(Cow::Borrowed("alice"))
        }
    }

    fn m(p: &str, v: &str) -> bool {
        Glob::new(p, true, true, false).matches(v, &NoVars).unwrap()
    }

    /// The substring matcher agrees with the backtracking one on every pattern of `a`, `b`, `*`
    /// up to 5 characters and every value of `a`, `b` up to 6.
    #[test]
    fn star_matcher_agrees_with_backtracking() {
        fn all(alphabet: &[char], max: usize) -> Vec<String> {
            let mut out = vec![String::new()];
            let mut last = vec![String::new()];
            for _ in 0..max {
                last = last
                    .iter()
                    .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                    .collect();
                out.extend(last.iter().cloned());
            }
            out
        }
        let values = all(&['a', 'b'], 6);
        for p in all(&['a', 'b', '*'], 5) {
            let g = Glob::new(&p, true, false, false);
            assert!(g.star_only);
            for v in &values {
                assert_eq!(
                    match_stars(&g.parts, v),
                    match_parts(&g.parts, v.as_bytes(), false),
                    "pattern {p:?} value {v:?}"
                );
            }
        }
    }

    #[test]
    fn wildcards() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("*", ""));
        assert!(m("*", "abc"));
        assert!(m("a*", "a"));
        assert!(m("a*c", "abbbc"));
        assert!(!m("a*c", "abbb"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a?c", "aéc"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b", "xxaxxbxx"));
        assert!(m(
            "arn:aws:ssm:*:*:parameter/prod/*",
            "arn:aws:ssm:us-east-1:1:parameter/prod/db"
        ));
        assert!(!m(
            "arn:aws:ssm:*:*:parameter/prod/*",
            "arn:aws:ssm:us-east-1:1:parameter/dev/db"
        ));
        assert!(m("ab*ab*ab", "abababab"));
        let hostile = "*a".repeat(200) + "b";
        assert!(!m(&hostile, &"a".repeat(5000)));
    }

    #[test]
    fn folding_and_literal_mode() {
        let g = Glob::new("SecretsManager:Get*", true, false, true);
        assert_eq!(
            g.matches("secretsmanager:GetSecretValue", &NoVars),
            Some(true)
        );
        let lit = Glob::new("a*b", false, false, false);
        assert_eq!(lit.matches("a*b", &NoVars), Some(true));
        assert_eq!(lit.matches("axb", &NoVars), Some(false));
    }

    #[test]
    fn variables_and_escapes() {
        let g = Glob::new("home/${aws:username}/*", true, true, false);
        assert_eq!(g.matches("home/alice/x", &User), Some(true));
        assert_eq!(g.matches("home/bob/x", &User), Some(false));
        let missing = Glob::new("home/${aws:userid}/*", true, true, false);
        assert_eq!(missing.matches("home/x/y", &User), None);
        let dflt = Glob::new("home/${aws:userid, 'nobody'}/*", true, true, false);
        assert_eq!(dflt.matches("home/nobody/y", &User), Some(true));
        let esc = Glob::new("a${*}b${?}${$}", true, true, false);
        assert_eq!(esc.matches("a*b?$", &User), Some(true));
        assert_eq!(esc.matches("axb?$", &User), Some(false));
        // 2008 documents keep `${...}` as text.
        let old = Glob::new("home/${aws:username}", true, false, false);
        assert_eq!(old.matches("home/${aws:username}", &User), Some(true));
    }
}
