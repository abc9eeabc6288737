//! Markdown that suture writes for people (pull request bodies, replies to
//! comments) from text it does not control: event messages, commit
//! subjects, author names, its own record of earlier fixes.

/// Event- and history-derived text is data: keep it from forming Markdown
/// links, HTML or mentions.
pub(crate) fn escape(text: &str) -> String {
    text.replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('@', "@\u{200b}")
        .replace('[', "\\[")
        .replace(']', "\\]")
}

/// `markdown` with every line that would read as a suture command (`/suture
/// …` at the start of a line, after any indentation) escaped as `\/suture`,
/// which renders the same. A reply that quotes an error message or a commit
/// subject must never trigger a command itself.
pub(crate) fn defuse_commands(markdown: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_links_html_and_mentions_inert() {
        assert_eq!(
            escape("<b>[x](http://e) @team"),
            "&lt;b&gt;\\[x\\](http://e) @\u{200b}team"
        );
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
