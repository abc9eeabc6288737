//! How deep JSON nests, checked by one linear scan before a parser sees it.
//!
//! serde_json refuses past 128 levels, but only after it has allocated a
//! value for every level above; this scan allocates nothing, costs a pass
//! over bytes already in memory, and lets the refusal name the configured
//! cap (`limits.max_json_depth`). It does not validate JSON: brackets
//! inside strings are skipped, anything else is left to the parser.

/// JSON that nests deeper than allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("json nests deeper than {limit} levels (at byte {offset}; limits.max_json_depth)")]
pub struct TooDeep {
    /// The cap.
    pub limit: usize,
    /// Where the first bracket past it is.
    pub offset: usize,
}

/// Checks that `bytes` never open more than `limit` arrays and objects at once.
pub fn check(bytes: &[u8], limit: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (offset, &byte) in bytes.iter().enumerate() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(TooDeep { limit, offset });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Depth counts open brackets, not brackets inside strings.
    #[test]
    fn depth() {
        assert!(check(b"[[1]]", 2).is_ok());
        assert_eq!(
            check(b"[[[1]]]", 2),
            Err(TooDeep {
                limit: 2,
                offset: 2
            })
        );
        assert!(check(br#"{"a":"[[[[\"[[["}"#, 1).is_ok());
        assert!(check(br#"[{"a":[]},{"b":{}}]"#, 3).is_ok());
        assert!(check(br#"[{"a":[{}]}]"#, 3).is_err());
        assert!(check(b"", 0).is_ok());
        assert!(check(b"]]]][", 1).is_ok());
    }

    /// Agrees with serde_json on what parses: whatever the scan accepts
    /// at 100 levels, serde_json's own 128-level limit accepts too.
    #[test]
    fn agrees_with_serde_json() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check(nested(100).as_bytes(), 100).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&nested(100)).is_ok());
        assert!(check(nested(101).as_bytes(), 100).is_err());
    }
}
