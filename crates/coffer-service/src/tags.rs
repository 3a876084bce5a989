//! Resource tags as every service stores them, and the merge every TagResource-like call does.
//! Which keys and values are allowed differs per service (each validates its own input).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Resource tags as policies see them (`aws:ResourceTag/KEY`; keys ignore case).
impl coffer_core::authz::TagPair for Tag {
    fn tag_key(&self) -> &str {
        &self.key
    }
    fn tag_value(&self) -> &str {
        &self.value
    }
}

/// The merge would leave more than the quota allows; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyTags;

/// Merges `new` into `existing` (a key already present takes the new value) and enforces the
/// quota of `max` tags; on failure `existing` is left as it was.
pub fn merge(existing: &mut Vec<Tag>, new: Vec<Tag>, max: usize) -> Result<(), TooManyTags> {
    let mut merged = existing.clone();
    for t in new {
        match merged.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value,
            None => merged.push(t),
        }
    }
    if merged.len() > max {
        return Err(TooManyTags);
    }
    *existing = merged;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn merge_overwrites_adds_and_enforces_the_quota() {
        let mut tags = vec![tag("a", "1")];
        merge(&mut tags, vec![tag("a", "2"), tag("b", "3")], 2).unwrap();
        assert_eq!(tags, vec![tag("a", "2"), tag("b", "3")]);
        assert_eq!(merge(&mut tags, vec![tag("c", "4")], 2), Err(TooManyTags));
        assert_eq!(
            tags,
            vec![tag("a", "2"), tag("b", "3")],
            "a refused merge changed nothing"
        );
    }
}
