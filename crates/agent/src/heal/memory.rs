//! Fix memory: recognising a fix that was proposed before and did not hold.
//!
//! A fix that was merged and then the error came back must not be proposed
//! again as if it were new. suture keeps the [`patch_sha`] of each fix it
//! proposed; the next round passes the ones that did not hold as
//! [`AvoidedFix`]es, and the gates refuse a candidate with the same hash
//! before it costs a test run.
//!
//! The hash has to survive re-rendering: the same revert computed on a base
//! that moved a little has other hunk line numbers, other context and other
//! blob ids, yet it is the same fix. So the hash covers only what the fix
//! *does*, the file headers and the added and removed lines, in order.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A fix that was tried before and must not be proposed again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvoidedFix {
    /// [`patch_sha`] of the fix.
    pub patch_sha: String,
    /// Why it is avoided, in a sentence (it is shown to the model and in
    /// the report).
    pub reason: String,
}

/// Git's extended header lines that say what happens to a file (kept in the
/// hash, unlike `index` lines, which name blob ids that change with the
/// base).
const FILE_HEADERS: [&str; 8] = [
    "new file mode",
    "deleted file mode",
    "old mode",
    "new mode",
    "rename from",
    "rename to",
    "copy from",
    "copy to",
];

/// A stable hex SHA-256 of a unified diff, equal for two renderings of the
/// same fix.
///
/// Kept, in their order: the file headers (`--- a/x`, `+++ b/x`, mode and
/// rename lines) and the `+`/`-` lines. Ignored: `diff --git` and `index`
/// lines, hunk headers (their line numbers), context lines, `\ No newline at
/// end of file` markers, trailing whitespace and blank lines.
pub fn patch_sha(patch: &str) -> String {
    let mut hasher = Sha256::new();
    for line in patch.lines().map(str::trim_end) {
        let kept = line.starts_with('+')
            || line.starts_with('-')
            || FILE_HEADERS.iter().any(|header| line.starts_with(header));
        if kept {
            hasher.update(line.as_bytes());
            hasher.update(b"\n");
        }
    }
    hex::encode(hasher.finalize())
}

/// The avoided fix `patch` repeats, if any.
pub(crate) fn avoided<'a>(avoid: &'a [AvoidedFix], patch: &str) -> Option<&'a AvoidedFix> {
    if avoid.is_empty() {
        return None;
    }
    let sha = patch_sha(patch);
    avoid
        .iter()
        .find(|fix| fix.patch_sha.eq_ignore_ascii_case(&sha))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIX: &str = "diff --git a/inventory/stock.py b/inventory/stock.py\n\
index 3b18e51..a9c2f0d 100644\n\
--- a/inventory/stock.py\n\
+++ b/inventory/stock.py\n\
@@ -5,6 +5,8 @@ def parse_quantity(text):\n\
     \"\"\"'3' -> 3; an empty field means none.\"\"\"\n\
     text = text.strip()\n\
+    if not text:\n\
+        return 0\n\
     return int(text)\n";

    /// The same fix computed on a base with three more lines above it, other
    /// blob ids, other context, trailing blanks and no final newline.
    const SHIFTED: &str = "diff --git a/inventory/stock.py b/inventory/stock.py\n\
index 77aa001..0c0ffee 100644\n\
--- a/inventory/stock.py\n\
+++ b/inventory/stock.py  \n\
@@ -8,5 +8,7 @@\n\
     text = text.strip()\n\
+    if not text:   \n\
+        return 0\n\
     return int(text)\n\
 \n\
\\ No newline at end of file";

    #[test]
    fn same_fix_rendered_twice_has_one_sha() {
        assert_eq!(patch_sha(FIX), patch_sha(SHIFTED));
        assert_eq!(patch_sha(FIX), patch_sha(&FIX.replace('\n', "\r\n")));
        assert_eq!(patch_sha(FIX).len(), 64);
        assert!(patch_sha(FIX).chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_different_added_line_is_a_different_fix() {
        let other = FIX.replace("return 0\n", "return None\n");
        assert_ne!(patch_sha(FIX), patch_sha(&other));
    }

    #[test]
    fn the_file_is_part_of_the_fix() {
        let other = FIX.replace("inventory/stock.py", "inventory/orders.py");
        assert_ne!(patch_sha(FIX), patch_sha(&other));
    }

    #[test]
    fn the_order_of_changes_is_kept() {
        let swapped = FIX.replace(
            "+    if not text:\n+        return 0\n",
            "+        return 0\n+    if not text:\n",
        );
        assert_ne!(patch_sha(FIX), patch_sha(&swapped));
    }

    #[test]
    fn avoided_matches_by_sha_whatever_its_case() {
        let avoid = [AvoidedFix {
            patch_sha: patch_sha(FIX).to_uppercase(),
            reason: "did not hold".to_string(),
        }];
        assert_eq!(
            avoided(&avoid, SHIFTED).map(|f| f.reason.as_str()),
            Some("did not hold")
        );
        assert!(avoided(&avoid, &FIX.replace("return 0", "return -1")).is_none());
        assert!(avoided(&[], FIX).is_none());
    }
}
