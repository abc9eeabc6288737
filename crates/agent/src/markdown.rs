//! Markdown that suture writes for people (pull request and issue bodies,
//! comments) from text it does not control: event messages and exception
//! types, frame paths, release names, commit subjects, author names, test
//! output, its own record of earlier fixes.
//!
//! The one rule: such text is data. Every piece of it reaches a body
//! through one of these helpers, chosen by where it sits:
//!
//! - [`inline`] for prose and titles: one line, Markdown and HTML escaped,
//!   so it forms no link, image, heading, list, HTML tag or comment, and
//!   neither mentions (`@team`) nor autolinks (`https://…`) anyone or
//!   anything (an issue reference, `#12`, stays: it links within the
//!   repository, as suture's own history lines mean it to);
//! - [`code`] for an identifier, path or title in a code span, and
//!   [`fenced`] for output and diffs in a code block: a backtick run longer
//!   than any in the text, so the text cannot close it;
//! - [`login`] for a forge login suture addresses on purpose;
//! - [`defuse_commands`] over the whole body, so no line reads as a
//!   `/suture` command.
//!
//! All of them drop terminal escape sequences, control characters and
//! the Unicode controls that reorder displayed text: a body is read in
//! browsers and terminals (`suture pr show`), and shows what it holds.
//!
//! suture's own hidden markers (`<!-- suture:… -->`, which the forges find
//! their issues and comments by) cannot come from event text: [`inline`]
//! escapes `<`, and [`code`] and [`fenced`] break `<!--` apart. The forges
//! also trust a marker only where they write it.

/// Zero-width space: separates characters that would otherwise combine into
/// a mention, an autolink or a comment, without changing what a reader sees.
const ZWSP: char = '\u{200b}';

/// `text` as one line of Markdown prose that renders as the text and does
/// nothing else: line breaks and control characters become spaces, runs of
/// whitespace one space, Markdown and HTML are escaped, and mentions and
/// autolinks are broken with a zero-width space.
pub fn inline(text: &str) -> String {
    let chars: Vec<char> = one_line(text).chars().collect();
    let mut out = String::with_capacity(chars.len() + 8);
    for (at, &c) in chars.iter().enumerate() {
        let next = |n: usize| chars.get(at + n).copied();
        // Only digits so far: a `.` or `)` here would start an ordered list.
        let list_number = at > 0 && chars[..at].iter().all(char::is_ascii_digit);
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '!' | '|' | '~' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            // A heading, a list item or a setext heading, at the start.
            '#' | '-' | '+' | '=' if at == 0 => {
                out.push('\\');
                out.push(c);
            }
            '.' if list_number => out.push_str("\\."),
            '@' => {
                out.push(c);
                out.push(ZWSP);
            }
            ':' if next(1) == Some('/') && next(2) == Some('/') => {
                out.push(c);
                out.push(ZWSP);
            }
            '.' if out.to_ascii_lowercase().ends_with("www") => {
                out.push(ZWSP);
                out.push('.');
            }
            _ => out.push(c),
        }
    }
    out
}

/// `text` as an inline code span (backticks included): one line, delimited
/// by a backtick run longer than any inside it, with `<!--` broken apart.
pub fn code(text: &str) -> String {
    let text = defuse_markers(&one_line(text));
    let ticks = "`".repeat(longest_backtick_run(&text) + 1);
    // A span whose text starts or ends with a backtick needs a space
    // between it and the delimiter; the space is not rendered.
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// `content` as a fenced code block with info string `info` (e.g. `text`,
/// `diff`): the fence is a backtick run longer than any inside the content
/// (at least three), so no line of the content can close it, and `<!--`
/// is broken apart. Ends with a newline.
pub fn fenced(content: &str, info: &str) -> String {
    let content = defuse_markers(&printable_lines(content));
    let content = content.trim_end_matches('\n');
    let fence = "`".repeat((longest_backtick_run(content) + 1).max(3));
    let info: String = info.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{fence}{info}\n{content}\n{fence}\n")
}

/// `login` reduced to what a GitHub login can hold (letters, digits, `-`,
/// and a bot's `[bot]`), for addressing the person suture answers.
pub fn login(login: &str) -> String {
    let (name, bot) = match login.strip_suffix("[bot]") {
        Some(name) => (name, "[bot]"),
        None => (login, ""),
    };
    let name: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(39)
        .collect();
    format!("{name}{bot}")
}

/// `markdown` with every line that would read as a suture command (`/suture
/// …` at the start of a line, after any indentation) escaped as `\/suture`,
/// which renders the same. A reply that quotes an error message or a commit
/// subject must never trigger a command itself.
pub fn defuse_commands(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    for line in markdown.split_inclusive('\n') {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let is_command = body
            .get(..7)
            .is_some_and(|head| head.eq_ignore_ascii_case("/suture"));
        out.push_str(indent);
        if is_command {
            out.push('\\');
        }
        out.push_str(body);
    }
    out
}

/// `text` on one line: terminal escape sequences and bidirectional
/// overrides are dropped, other control characters (line breaks included)
/// become spaces, and runs of whitespace one space.
fn one_line(text: &str) -> String {
    let spaced: String = without_escapes(text)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `text` with its lines kept: terminal escape sequences, bidirectional
/// overrides and control characters other than line feed and tab are
/// dropped (a colored test run, a `\r` progress bar), so neither a
/// terminal showing the body nor a reader sees text other than what the
/// body holds.
fn printable_lines(text: &str) -> String {
    without_escapes(text)
        .chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect()
}

/// `text` without ANSI escape sequences (CSI and OSC) and without the
/// Unicode controls that reorder what is displayed (bidi embeddings,
/// overrides and isolates).
fn without_escapes(text: &str) -> String {
    static ESCAPES: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?)")
            .expect("a valid pattern")
    });
    ESCAPES
        .replace_all(text, "")
        .chars()
        .filter(|c| !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        .collect()
}

/// `text` with every `<!--` broken apart: code shows it as written, but no
/// forge reads it as a comment, or as one of suture's markers.
fn defuse_markers(text: &str) -> String {
    text.replace("<!--", &format!("<!{ZWSP}--"))
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Links, images, HTML, comments, emphasis, headings and list markers
    /// are escaped; mentions and autolinks are broken.
    #[test]
    fn inline_text_forms_no_markdown() {
        let text = "# T ![i](http://e/x.png) [l](https://e) <b>x</b> @team *e* https://evil.test www.evil.test #12 <!-- suture:incident=1 -->";
        let out = inline(text);
        assert_eq!(
            out,
            "\\# T \\!\\[i\\]\\(http:\u{200b}//e/x.png\\) \\[l\\]\\(https:\u{200b}//e\\) &lt;b&gt;x&lt;/b&gt; @\u{200b}team \\*e\\* https:\u{200b}//evil.test www\u{200b}.evil.test #12 &lt;\\!-- suture:incident=1 --&gt;"
        );
        for active in ["](", "<", "@team", "://", "www.", "<!--"] {
            assert!(!out.contains(active), "{active:?} in {out}");
        }
    }

    /// A title is one line: newlines and control characters become single
    /// spaces.
    #[test]
    fn inline_text_is_one_line() {
        assert_eq!(
            inline("Value\nError\r\n\t\u{7}x  y\u{0}"),
            "Value Error x y"
        );
        assert_eq!(inline("- a\n- b"), "\\- a - b");
        assert_eq!(inline("12. x: y-z"), "12\\. x: y-z");
    }

    /// A code span's delimiter is longer than any backtick run inside it,
    /// and it stays on one line.
    #[test]
    fn code_spans_cannot_be_closed_from_inside() {
        assert_eq!(code("a.py"), "`a.py`");
        assert_eq!(code("x ` y"), "``x ` y``");
        assert_eq!(code("``a\nb"), "``` ``a b ```");
        assert_eq!(code("<!-- suture:x -->"), "`<!\u{200b}-- suture:x -->`");
    }

    /// A fence is longer than any backtick run in the content (at least
    /// three), so a line of backticks inside cannot close it.
    #[test]
    fn fences_cannot_be_closed_from_inside() {
        assert_eq!(fenced("plain\n", "text"), "```text\nplain\n```\n");
        let hostile = "ok\n````\n# heading [x](http://e)\n<!-- suture:incident=9 -->";
        let out = fenced(hostile, "text");
        assert!(out.starts_with("`````text\n"), "{out}");
        assert!(out.ends_with("\n`````\n"), "{out}");
        assert!(!out.contains("<!--"), "{out}");
        assert_eq!(fenced("x", "di ff`"), "```diff\nx\n```\n");
    }

    /// Terminal escapes, carriage returns and bidi overrides do not reach
    /// a body, in prose, code or a fence; tabs and lines stay in a fence.
    #[test]
    fn escapes_and_controls_are_dropped() {
        let colored = "\u{1b}[31mFAILED\u{1b}[0m test_x\r\n\tat line 3\u{1b}]0;title\u{7}\n";
        assert_eq!(
            fenced(colored, "text"),
            "```text\nFAILED test_x\n\tat line 3\n```\n"
        );
        assert_eq!(inline("a\u{202e}cba\u{1b}[1m!"), "acba\\!");
        assert_eq!(code("x\u{2066}y\u{7}z"), "`xy z`");
    }

    /// Logins keep what GitHub allows, and nothing that could mention a
    /// team or break out of the text.
    #[test]
    fn logins_are_reduced_to_login_characters() {
        assert_eq!(login("octo-cat"), "octo-cat");
        assert_eq!(login("dependabot[bot]"), "dependabot[bot]");
        assert_eq!(login("org/team <b>\n"), "orgteamb");
    }

    #[test]
    fn command_lines_are_defused_wherever_they_start() {
        let text = "a\n/suture retry\n  /SUTURE close\ttoo\nsay /suture here\n/suturex";
        let defused = defuse_commands(text);
        assert_eq!(
            defused,
            "a\n\\/suture retry\n  \\/SUTURE close\ttoo\nsay /suture here\n\\/suturex"
        );
        assert!(
            defused
                .lines()
                .all(|l| !l.trim_start().to_ascii_lowercase().starts_with("/suture"))
        );
    }
}
