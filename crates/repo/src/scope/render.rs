//! File changes → the canonical git diff that is actually applied.
//!
//! The guard never hands the model's text to git. It re-renders what it
//! checked: `diff --git` headers built from the validated paths, modes taken
//! from the work tree, hunks line for line. libgit2 therefore only ever reads
//! text the guard wrote, and the shape is the one libgit2 reads correctly:
//! an `index` line carries the current mode (without it libgit2 drops a
//! script's executable bit), and `---`/`+++` lines close every header (without
//! them libgit2 cannot read an empty new file or a pure rename of a script).

use std::fmt::Write as _;

use super::parse::Hunk;
use super::resolve::FileChange;
use super::tree::Mode;

/// The whole patch, one section per file.
pub(super) fn render(files: &[FileChange]) -> String {
    files.iter().map(render_file).collect()
}

pub(super) fn render_file(file: &FileChange) -> String {
    let path = file.path();
    let old = file.old_path.as_deref().unwrap_or(path);
    let new = file.new_path.as_deref().unwrap_or(path);
    let base_mode = file.base_mode.unwrap_or(Mode::Regular).as_str();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "diff --git {} {}",
        quote(&format!("a/{old}")),
        quote(&format!("b/{new}"))
    );
    if file.is_add() {
        // Only plain files may be created (see `tree::check_executables`).
        let _ = writeln!(out, "new file mode {}", Mode::Regular.as_str());
    } else if file.is_delete() {
        let _ = writeln!(out, "deleted file mode {base_mode}");
    } else {
        let target_mode = file.target_mode().as_str();
        if target_mode != base_mode {
            let _ = writeln!(out, "old mode {base_mode}\nnew mode {target_mode}");
        }
        if file.is_rename() {
            let _ = writeln!(
                out,
                "similarity index {}%\nrename from {}\nrename to {}",
                file.similarity,
                quote(old),
                quote(new)
            );
        }
        // With a mode change the mode lines say it; otherwise the index
        // line keeps the current mode.
        if target_mode == base_mode {
            let _ = writeln!(out, "index 0000000..0000000 {base_mode}");
        } else {
            out.push_str("index 0000000..0000000\n");
        }
    }
    let minus = match &file.old_path {
        Some(old) => quote(&format!("a/{old}")),
        None => "/dev/null".to_string(),
    };
    let plus = match &file.new_path {
        Some(new) => quote(&format!("b/{new}")),
        None => "/dev/null".to_string(),
    };
    let _ = writeln!(out, "--- {minus}\n+++ {plus}");
    for hunk in &file.hunks {
        render_hunk(&mut out, hunk);
    }
    out
}

fn render_hunk(out: &mut String, hunk: &Hunk) {
    let _ = writeln!(
        out,
        "@@ -{},{} +{},{} @@{}",
        hunk.old_start, hunk.old_lines, hunk.new_start, hunk.new_lines, hunk.heading
    );
    for line in &hunk.lines {
        out.push_str(line);
        out.push('\n');
    }
}

/// Quotes a name the way git does when it must (`"`, `\`, control
/// characters, non-ASCII bytes as octal), and also when it has a space, so
/// that no `diff --git` line can be split two ways.
pub(super) fn quote(name: &str) -> String {
    let needs_quotes = name
        .bytes()
        .any(|byte| matches!(byte, b'"' | b'\\' | b' ') || !(0x20..0x7f).contains(&byte));
    if !needs_quotes {
        return name.to_string();
    }
    let mut quoted = String::from("\"");
    for byte in name.bytes() {
        match byte {
            b'"' => quoted.push_str("\\\""),
            b'\\' => quoted.push_str("\\\\"),
            b'\t' => quoted.push_str("\\t"),
            b'\n' => quoted.push_str("\\n"),
            byte if !(0x20..0x7f).contains(&byte) => {
                let _ = write!(quoted, "\\{byte:03o}");
            }
            byte => quoted.push(char::from(byte)),
        }
    }
    quoted.push('"');
    quoted
}
