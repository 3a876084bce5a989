//! The constraint half of AWS's ValidationException wording (`Member must have length ...`).
//! Each check returns `Some(constraint)` when violated; services wrap it with the member name in
//! their own error type (see `coffer_wire::json::violation`). Values are never quoted.

pub fn length(value: &str, min: usize, max: usize) -> Option<String> {
    let n = value.chars().count();
    if n < min {
        Some(format!(
            "Member must have length greater than or equal to {min}"
        ))
    } else if n > max {
        Some(format!(
            "Member must have length less than or equal to {max}"
        ))
    } else {
        None
    }
}

pub fn range(value: i64, min: i64, max: i64) -> Option<String> {
    if value < min {
        Some(format!(
            "Member must have value greater than or equal to {min}"
        ))
    } else if value > max {
        Some(format!(
            "Member must have value less than or equal to {max}"
        ))
    } else {
        None
    }
}

pub fn one_of(value: &str, allowed: &[&str]) -> Option<String> {
    (!allowed.contains(&value)).then(|| {
        format!(
            "Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        )
    })
}

/// AWS's tag character class `[\p{L}\p{Z}\p{N}_.:/=+\-@]*` (letters, separators, numbers and
/// `_.:/=+-@`), shared by every service that tags resources.
pub fn tag_chars_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints() {
        assert_eq!(length("ab", 1, 2), None);
        assert!(
            length("", 1, 2)
                .unwrap()
                .contains("greater than or equal to 1")
        );
        assert!(
            length("ééé", 1, 2)
                .unwrap()
                .contains("less than or equal to 2")
        );
        assert_eq!(range(5, 1, 10), None);
        assert!(
            range(11, 1, 10)
                .unwrap()
                .contains("less than or equal to 10")
        );
        assert!(
            range(0, 1, 10)
                .unwrap()
                .contains("greater than or equal to 1")
        );
        assert_eq!(one_of("a", &["a", "b"]), None);
        assert_eq!(
            one_of("c", &["a", "b"]).unwrap(),
            "Member must satisfy enum value set: [a, b]"
        );
        assert!(tag_chars_ok("env prod:/x=y+z-@é1"));
        assert!(!tag_chars_ok("semi;colon"));
    }
}
