//! Unified diff text → file sections, structure only.
//!
//! The guard reads patches with its own parser rather than git's because
//! libgit2 quietly normalises what it reads: it strips one leading path
//! component whatever it is (`/etc/passwd` becomes `passwd`), skips text
//! before the first header and after a hunk's last counted line, and does not
//! read plain `---`/`+++` diffs at all. The guard must judge the text exactly
//! as written, so this parser is strict: every line belongs to a header or to
//! a hunk, a hunk holds exactly the lines its header counts, and anything else
//! is [`ScopeViolation::Malformed`] with a line number. Names are kept raw
//! (`a/` prefix and all); `resolve` decides what they mean.

use super::ScopeViolation;
use super::violation::snippet;

/// One file's part of a patch, as written.
#[derive(Debug, Default)]
pub(super) struct Section {
    /// 1-based line of the section's first line, for messages.
    pub(super) line_no: usize,
    /// The names on the `diff --git` line; `None` for a plain diff.
    pub(super) git_names: Option<GitNames>,
    /// The `---` name.
    pub(super) minus: Option<Name>,
    /// The `+++` name.
    pub(super) plus: Option<Name>,
    /// `rename from` (or `copy from`), unprefixed.
    pub(super) rename_from: Option<String>,
    /// `rename to` (or `copy to`), unprefixed.
    pub(super) rename_to: Option<String>,
    /// Set by `copy from`/`copy to`, which the guard refuses.
    pub(super) copy: bool,
    /// `similarity index` in percent (or 100 minus `dissimilarity index`).
    pub(super) similarity: Option<u8>,
    pub(super) old_mode: Option<String>,
    pub(super) new_mode: Option<String>,
    pub(super) new_file_mode: Option<String>,
    pub(super) deleted_file_mode: Option<String>,
    /// The mode at the end of an `index <id>..<id> <mode>` line.
    pub(super) index_mode: Option<String>,
    /// `GIT binary patch` or `Binary files … differ`.
    pub(super) binary: bool,
    pub(super) hunks: Vec<Hunk>,
}

/// The two names of a `diff --git` line, when they can be told apart.
#[derive(Debug)]
pub(super) enum GitNames {
    /// Both names, raw (with their `a/`, `b/` prefixes).
    Split { old: String, new: String },
    /// Unquoted names with spaces that split more than one way; the `---`,
    /// `+++` or `rename` lines must name the files instead.
    Ambiguous,
}

/// A `---` or `+++` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Name {
    DevNull,
    /// Raw, with its prefix.
    Path(String),
}

/// One `@@` hunk.
#[derive(Debug, Clone)]
pub(super) struct Hunk {
    /// 1-based line of the `@@` header, for messages.
    pub(super) line_no: usize,
    pub(super) old_start: usize,
    pub(super) old_lines: usize,
    pub(super) new_start: usize,
    pub(super) new_lines: usize,
    /// Whatever follows the closing `@@` (git's function context), verbatim.
    pub(super) heading: String,
    /// Body lines without their newline, each starting with ` `, `-`, `+`
    /// or `\`. An empty line, which GNU patch and git apply read as empty
    /// context, is stored as `" "` because libgit2 does not accept it.
    pub(super) lines: Vec<String>,
}

impl Hunk {
    pub(super) fn added(&self) -> usize {
        self.lines
            .iter()
            .filter(|line| line.starts_with('+'))
            .count()
    }

    pub(super) fn removed(&self) -> usize {
        self.lines
            .iter()
            .filter(|line| line.starts_with('-'))
            .count()
    }
}

/// Splits patch text into file sections.
pub(super) fn parse(text: &str) -> Result<Vec<Section>, ScopeViolation> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') {
        lines.pop();
    }
    let mut parser = Parser { lines, pos: 0 };
    let mut sections = Vec::new();
    while let Some(line) = parser.peek() {
        let line_no = parser.pos + 1;
        let section = if line.trim().is_empty() {
            parser.pos += 1;
            continue;
        } else if line.starts_with("diff --git ") {
            parser.git_section()?
        } else if line.starts_with("--- ") {
            parser.plain_section()?
        } else if is_binary_files_line(line) {
            parser.binary_files_section()
        } else if line.starts_with("@@") {
            return Err(malformed(line_no, "hunk header outside a file section"));
        } else {
            return Err(malformed(
                line_no,
                format!("expected `diff --git` or `---`, found {}", snippet(line)),
            ));
        };
        sections.push(section);
    }
    if sections.is_empty() {
        return Err(ScopeViolation::malformed("empty patch"));
    }
    Ok(sections)
}

fn malformed(line_no: usize, what: impl std::fmt::Display) -> ScopeViolation {
    ScopeViolation::malformed(format!("line {line_no}: {what}"))
}

/// Extended header lines of a `diff --git` section.
const EXTENDED_HEADERS: &[&str] = &[
    "old mode ",
    "new mode ",
    "deleted file mode ",
    "new file mode ",
    "similarity index ",
    "dissimilarity index ",
    "rename from ",
    "rename to ",
    "copy from ",
    "copy to ",
    "index ",
];

struct Parser<'a> {
    lines: Vec<&'a str>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.lines.get(self.pos).copied()
    }

    /// Takes a header line. Header lines ending in `\r` are refused here with
    /// a clear message; otherwise a CRLF patch would surface as a path with
    /// a control character in it.
    fn take_header(&mut self) -> Result<&'a str, ScopeViolation> {
        let line = self.lines[self.pos];
        self.pos += 1;
        if line.ends_with('\r') {
            return Err(malformed(
                self.pos,
                "header line ends with a carriage return (CRLF line endings)",
            ));
        }
        Ok(line)
    }

    fn git_section(&mut self) -> Result<Section, ScopeViolation> {
        let line_no = self.pos + 1;
        let line = self.take_header()?;
        let names = &line["diff --git ".len()..];
        let mut section = Section {
            line_no,
            git_names: Some(split_git_names(names).map_err(|what| malformed(line_no, what))?),
            ..Section::default()
        };
        while let Some(line) = self.peek() {
            if line.starts_with("diff --git ") || line.trim().is_empty() {
                break;
            }
            if line.starts_with("--- ") {
                self.file_names(&mut section)?;
                self.hunks(&mut section)?;
                break;
            }
            if line.starts_with("@@") {
                return Err(malformed(
                    self.pos + 1,
                    "hunk header before the `---`/`+++` lines",
                ));
            }
            if is_binary_files_line(line) {
                self.pos += 1;
                section.binary = true;
                break;
            }
            if line.starts_with("GIT binary patch") {
                // Base85 data lines never contain a space, so they can never
                // be mistaken for the next `diff --git` line.
                section.binary = true;
                while self
                    .peek()
                    .is_some_and(|line| !line.starts_with("diff --git "))
                {
                    self.pos += 1;
                }
                break;
            }
            self.extended_header(&mut section)?;
        }
        Ok(section)
    }

    fn extended_header(&mut self, section: &mut Section) -> Result<(), ScopeViolation> {
        let line_no = self.pos + 1;
        let line = self.take_header()?;
        let Some((keyword, value)) = EXTENDED_HEADERS
            .iter()
            .find_map(|keyword| line.strip_prefix(keyword).map(|value| (*keyword, value)))
        else {
            return Err(malformed(
                line_no,
                format!("unexpected line in a file header: {}", snippet(line)),
            ));
        };
        let slot = match keyword {
            "old mode " => &mut section.old_mode,
            "new mode " => &mut section.new_mode,
            "deleted file mode " => &mut section.deleted_file_mode,
            "new file mode " => &mut section.new_file_mode,
            "rename from " | "copy from " => &mut section.rename_from,
            "rename to " | "copy to " => &mut section.rename_to,
            "similarity index " | "dissimilarity index " => {
                if section.similarity.is_some() {
                    return Err(malformed(line_no, "repeated similarity index"));
                }
                let percent = parse_percent(value)
                    .ok_or_else(|| malformed(line_no, format!("bad {}", snippet(line))))?;
                section.similarity = Some(match keyword {
                    "similarity index " => percent,
                    _ => 100 - percent,
                });
                return Ok(());
            }
            _ => {
                section.index_mode = parse_index(value)
                    .ok_or_else(|| malformed(line_no, format!("bad {}", snippet(line))))?;
                return Ok(());
            }
        };
        if slot.is_some() {
            return Err(malformed(
                line_no,
                format!("repeated `{}`", keyword.trim_end()),
            ));
        }
        *slot = Some(match keyword {
            "rename from " | "copy from " | "rename to " | "copy to " => {
                section.copy |= keyword.starts_with("copy");
                parse_name(value).map_err(|what| malformed(line_no, what))?
            }
            _ => value.to_string(),
        });
        Ok(())
    }

    /// The `---` line and the `+++` line that must follow it.
    fn file_names(&mut self, section: &mut Section) -> Result<(), ScopeViolation> {
        let line_no = self.pos + 1;
        let minus = self.take_header()?;
        section.minus =
            Some(parse_file_name(&minus["--- ".len()..]).map_err(|what| malformed(line_no, what))?);
        if !self.peek().is_some_and(|line| line.starts_with("+++ ")) {
            return Err(malformed(
                line_no,
                "`---` line without a `+++` line after it",
            ));
        }
        let plus = self.take_header()?;
        section.plus = Some(
            parse_file_name(&plus["+++ ".len()..]).map_err(|what| malformed(line_no + 1, what))?,
        );
        Ok(())
    }

    fn plain_section(&mut self) -> Result<Section, ScopeViolation> {
        let mut section = Section {
            line_no: self.pos + 1,
            ..Section::default()
        };
        self.file_names(&mut section)?;
        self.hunks(&mut section)?;
        if section.hunks.is_empty() {
            return Err(malformed(section.line_no, "file header without hunks"));
        }
        Ok(section)
    }

    /// A lone `Binary files A and B differ` line, as GNU diff writes it. The
    /// names are only for the message that refuses it.
    fn binary_files_section(&mut self) -> Section {
        let line_no = self.pos + 1;
        let line = self.lines[self.pos];
        self.pos += 1;
        let names = line
            .strip_prefix("Binary files ")
            .and_then(|names| names.strip_suffix(" differ"))
            .unwrap_or_default();
        let (old, new) = names.split_once(" and ").unwrap_or((names, names));
        Section {
            line_no,
            minus: Some(Name::Path(old.to_string())),
            plus: Some(Name::Path(new.to_string())),
            binary: true,
            ..Section::default()
        }
    }

    fn hunks(&mut self, section: &mut Section) -> Result<(), ScopeViolation> {
        loop {
            // Blank lines before a hunk separate it from what came before: a
            // completed hunk has no room left for more context.
            let next = (self.pos..self.lines.len()).find(|&idx| !self.lines[idx].trim().is_empty());
            match next {
                Some(idx) if self.lines[idx].starts_with("@@") => self.pos = idx,
                _ => break,
            }
            let hunk = self.hunk()?;
            section.hunks.push(hunk);
        }
        // Whatever follows must start another file or end the patch; any
        // other text means the hunk's counts do not cover its lines.
        if let Some(line) = self.peek()
            && !(line.trim().is_empty()
                || line.starts_with("diff --git ")
                || line.starts_with("--- ")
                || is_binary_files_line(line))
        {
            let what = match section.hunks.last() {
                Some(hunk) => format!(
                    "unexpected {} after the hunk at line {} (its header counts fewer lines)",
                    snippet(line),
                    hunk.line_no
                ),
                None => format!("unexpected {} after the file header", snippet(line)),
            };
            return Err(malformed(self.pos + 1, what));
        }
        Ok(())
    }

    fn hunk(&mut self) -> Result<Hunk, ScopeViolation> {
        let line_no = self.pos + 1;
        let header = self.take_header()?;
        let (old_start, old_lines, new_start, new_lines, heading) = parse_hunk_header(header)
            .ok_or_else(|| malformed(line_no, format!("bad hunk header {}", snippet(header))))?;
        if old_lines == 0 && new_lines == 0 {
            return Err(malformed(line_no, "empty hunk"));
        }
        let mut hunk = Hunk {
            line_no,
            old_start,
            old_lines,
            new_start,
            new_lines,
            heading: heading.to_string(),
            lines: Vec::new(),
        };
        let (mut old_left, mut new_left) = (old_lines, new_lines);
        while old_left > 0 || new_left > 0 {
            let Some(line) = self.peek() else {
                return Err(malformed(
                    line_no,
                    format!(
                        "truncated hunk, the patch ends {old_left} old and {new_left} new lines early"
                    ),
                ));
            };
            let body_line_no = self.pos + 1;
            let (old_used, new_used) = match line.as_bytes().first() {
                None | Some(b' ') => (1, 1),
                Some(b'-') => (1, 0),
                Some(b'+') => (0, 1),
                Some(b'\\') if !hunk.lines.is_empty() => (0, 0),
                _ => {
                    return Err(malformed(
                        body_line_no,
                        format!(
                            "{} ends the hunk at line {line_no} before its header's count ({old_left} old and {new_left} new lines missing)",
                            snippet(line)
                        ),
                    ));
                }
            };
            if old_used > old_left || new_used > new_left {
                return Err(malformed(
                    body_line_no,
                    format!("the hunk at line {line_no} has more lines than its header counts"),
                ));
            }
            old_left -= old_used;
            new_left -= new_used;
            hunk.lines.push(match line {
                "" => " ".to_string(),
                line => line.to_string(),
            });
            self.pos += 1;
        }
        // A last line without a newline is followed by git's marker.
        if let Some(line) = self.peek()
            && line.starts_with('\\')
        {
            hunk.lines.push(line.to_string());
            self.pos += 1;
        }
        Ok(hunk)
    }
}

fn is_binary_files_line(line: &str) -> bool {
    line.starts_with("Binary files ") && line.ends_with(" differ")
}

/// `@@ -A[,B] +C[,D] @@[heading]`.
fn parse_hunk_header(line: &str) -> Option<(usize, usize, usize, usize, &str)> {
    let rest = line.strip_prefix("@@ -")?;
    let (ranges, heading) = rest.split_once(" @@")?;
    if !(heading.is_empty() || heading.starts_with(' ')) {
        return None;
    }
    let (old, new) = ranges.split_once(" +")?;
    let (old_start, old_lines) = parse_range(old)?;
    let (new_start, new_lines) = parse_range(new)?;
    Some((old_start, old_lines, new_start, new_lines, heading))
}

fn parse_range(text: &str) -> Option<(usize, usize)> {
    match text.split_once(',') {
        Some((start, count)) => Some((parse_number(start)?, parse_number(count)?)),
        None => Some((parse_number(text)?, 1)),
    }
}

/// Decimal digits only (no sign, no spaces), small enough that no count can
/// overflow.
fn parse_number(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > 9 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse_percent(text: &str) -> Option<u8> {
    let number = parse_number(text.strip_suffix('%')?)?;
    u8::try_from(number).ok().filter(|&percent| percent <= 100)
}

/// `<id>..<id>[ <mode>]`; returns the mode.
fn parse_index(text: &str) -> Option<Option<String>> {
    let mut parts = text.split(' ');
    let (old_id, new_id) = parts.next()?.split_once("..")?;
    let is_id = |id: &str| !id.is_empty() && id.bytes().all(|byte| byte.is_ascii_hexdigit());
    if !is_id(old_id) || !is_id(new_id) {
        return None;
    }
    let mode = parts.next().map(str::to_string);
    parts.next().is_none().then_some(mode)
}

/// A `---`/`+++` name: quoted, or raw up to a tab (plain diffs put a
/// timestamp after it).
fn parse_file_name(text: &str) -> Result<Name, String> {
    let name = if text.starts_with('"') {
        let (name, rest) = unquote_prefix(text)?;
        if !(rest.is_empty() || rest.starts_with('\t')) {
            return Err(format!("text after the quoted name {}", snippet(text)));
        }
        name
    } else {
        text.split('\t').next().unwrap_or_default().to_string()
    };
    Ok(match name.as_str() {
        "/dev/null" => Name::DevNull,
        _ => Name::Path(name),
    })
}

/// A whole-line name (`rename from …`): quoted or raw.
fn parse_name(text: &str) -> Result<String, String> {
    if !text.starts_with('"') {
        return Ok(text.to_string());
    }
    let (name, rest) = unquote_prefix(text)?;
    if !rest.is_empty() {
        return Err(format!("text after the quoted name {}", snippet(text)));
    }
    Ok(name)
}

/// The two names of `diff --git A B`. Quoted names are unambiguous; unquoted
/// ones are split where both halves name the same file after their one-letter
/// prefix (how git reads them), else at the only ` b/`.
fn split_git_names(text: &str) -> Result<GitNames, String> {
    if text.starts_with('"') {
        let (old, rest) = unquote_prefix(text)?;
        let new = rest
            .strip_prefix(' ')
            .ok_or_else(|| format!("no second name after `diff --git` in {}", snippet(text)))?;
        return Ok(GitNames::Split {
            old,
            new: parse_name(new)?,
        });
    }
    if let Some(idx) = text.find(" \"")
        && let Ok(new) = parse_name(&text[idx + 1..])
    {
        return Ok(GitNames::Split {
            old: text[..idx].to_string(),
            new,
        });
    }
    let same_file = |old: &str, new: &str| {
        let (old, new) = (old.as_bytes(), new.as_bytes());
        old.len() > 2
            && old.get(1) == Some(&b'/')
            && new.get(1) == Some(&b'/')
            && old[2..] == new[2..]
    };
    if let Some((idx, _)) = text
        .match_indices(' ')
        .find(|&(idx, _)| same_file(&text[..idx], &text[idx + 1..]))
    {
        return Ok(GitNames::Split {
            old: text[..idx].to_string(),
            new: text[idx + 1..].to_string(),
        });
    }
    let splits: Vec<usize> = text.match_indices(" b/").map(|(idx, _)| idx).collect();
    Ok(match splits[..] {
        [idx] => GitNames::Split {
            old: text[..idx].to_string(),
            new: text[idx + 1..].to_string(),
        },
        _ => GitNames::Ambiguous,
    })
}

/// Decodes a C-style quoted name as git writes it (`\"`, `\\`, `\t`, `\n`,
/// octal `\303\274` for UTF-8 bytes, …); returns it and the text after the
/// closing quote.
fn unquote_prefix(text: &str) -> Result<(String, &str), String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::new();
    let mut idx = 1;
    loop {
        match bytes.get(idx) {
            None => return Err(format!("unterminated quoted name {}", snippet(text))),
            Some(b'"') => break,
            Some(b'\\') => {
                let (byte, used) = match bytes.get(idx + 1) {
                    Some(b'a') => (0x07, 2),
                    Some(b'b') => (0x08, 2),
                    Some(b't') => (b'\t', 2),
                    Some(b'n') => (b'\n', 2),
                    Some(b'v') => (0x0b, 2),
                    Some(b'f') => (0x0c, 2),
                    Some(b'r') => (b'\r', 2),
                    Some(&byte @ (b'"' | b'\\')) => (byte, 2),
                    Some(b'0'..=b'3') => {
                        let octal = bytes.get(idx + 1..idx + 4).filter(|digits| {
                            digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
                        });
                        let Some(octal) = octal else {
                            return Err(format!("bad escape in quoted name {}", snippet(text)));
                        };
                        let value = octal
                            .iter()
                            .fold(0u32, |value, digit| value * 8 + u32::from(digit - b'0'));
                        (u8::try_from(value).unwrap_or(u8::MAX), 4)
                    }
                    _ => return Err(format!("bad escape in quoted name {}", snippet(text))),
                };
                decoded.push(byte);
                idx += used;
            }
            Some(&byte) => {
                decoded.push(byte);
                idx += 1;
            }
        }
    }
    let name = String::from_utf8(decoded)
        .map_err(|_| format!("quoted name is not utf-8: {}", snippet(text)))?;
    Ok((name, &text[idx + 1..]))
}
