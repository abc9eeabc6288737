//! The diagnosis for a person: the reply to `/suture explain`.
//!
//! Everything in it that came from the event or the history (the error,
//! commit subjects, author names, function names) is escaped as in the
//! pull request body, known secret values are blanked, and no line can read
//! as a suture command, so posting the reply cannot trigger one.

use std::fmt::Write as _;

use super::report::Diagnosis;
use super::score::CULPRIT_CONFIDENCE;
use crate::markdown::{code, defuse_commands, inline};
use crate::redact::Redactor;

/// Suspects shown.
const MAX_SUSPECTS: usize = 3;
/// Evidence lines shown per suspect.
const MAX_EVIDENCE: usize = 3;
/// Frames shown.
const MAX_FRAMES: usize = 8;
/// Locations shown.
const MAX_LOCATIONS: usize = 5;

impl Diagnosis {
    /// The diagnosis as Markdown for a person: the error, the culprit and
    /// how sure suture is, the strongest suspects with their evidence, the
    /// application frames and likely locations, and the commits scanned.
    /// Secret values of this process's environment are blanked.
    pub fn to_markdown(&self) -> String {
        self.render_markdown(&Redactor::from_env())
    }

    pub(crate) fn render_markdown(&self, redactor: &Redactor) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "## suture: diagnosis\n");
        let _ = writeln!(md, "{}\n", code(&self.title));

        match self
            .culprit
            .as_ref()
            .and_then(|c| self.suspects.iter().find(|s| &s.commit == c))
        {
            Some(culprit) => {
                let _ = writeln!(
                    md,
                    "**Culprit:** `{}` {} by {} (confidence **{:.2}**)\n",
                    culprit.short_id,
                    inline(&culprit.subject),
                    inline(&culprit.author),
                    self.confidence
                );
            }
            None => {
                let lead = match self.suspects.first() {
                    Some(top) => format!(
                        "the top suspect `{}` is a lead, not a verdict",
                        top.short_id
                    ),
                    None => "no commit in the window touched the code on the stack".to_string(),
                };
                let _ = writeln!(
                    md,
                    "**No culprit:** confidence **{:.2}** is below {:.2}; {lead}.\n",
                    self.confidence, CULPRIT_CONFIDENCE
                );
            }
        }

        if !self.suspects.is_empty() {
            let _ = writeln!(md, "### Suspects\n");
            for (rank, suspect) in self.suspects.iter().take(MAX_SUSPECTS).enumerate() {
                let _ = writeln!(
                    md,
                    "{}. `{}` {} by {} (score {:.2})",
                    rank + 1,
                    suspect.short_id,
                    inline(&suspect.subject),
                    inline(&suspect.author),
                    suspect.score
                );
                for item in suspect.evidence.iter().take(MAX_EVIDENCE) {
                    let _ = writeln!(md, "   - {}", inline(&item.detail));
                }
            }
            let _ = writeln!(md);
        }

        let frames: Vec<_> = self
            .frames
            .iter()
            .filter(|f| f.in_app)
            .take(MAX_FRAMES)
            .collect();
        if !frames.is_empty() {
            let _ = writeln!(md, "### Frames\n");
            for frame in frames {
                let symbol = frame.symbol.as_deref().or(frame.function.as_deref());
                let _ = write!(
                    md,
                    "- {}",
                    code(&format!(
                        "{}:{}",
                        frame.path.as_deref().unwrap_or("?"),
                        frame.line.unwrap_or_default()
                    ))
                );
                if let Some(symbol) = symbol {
                    let _ = write!(md, " in {}", code(symbol));
                }
                if let Some(commit) = &frame.blamed_commit {
                    let _ = write!(
                        md,
                        ", last changed by `{}`",
                        &commit[..commit.len().min(10)]
                    );
                }
                let _ = writeln!(md);
            }
            let _ = writeln!(md);
        }

        if !self.locations.is_empty() {
            let _ = writeln!(md, "### Likely locations\n");
            for location in self.locations.iter().take(MAX_LOCATIONS) {
                let _ = writeln!(
                    md,
                    "- {} in {} (lines {}–{})",
                    code(&location.symbol),
                    code(&location.path),
                    location.start_line,
                    location.end_line
                );
            }
            let _ = writeln!(md);
        }

        let window = &self.window;
        let mut scope = format!(
            "{} commit{} scanned",
            window.commits,
            if window.commits == 1 { "" } else { "s" }
        );
        if let Some(releases) = &window.releases {
            let _ = write!(
                scope,
                " deployed between releases {} and {}",
                code(&releases.previous),
                code(&releases.release)
            );
        } else if let Some(since) = &window.since {
            let _ = write!(scope, " since {}", code(since));
        } else if let Some(days) = window.days {
            let _ = write!(scope, " from the last {days} days");
        }
        if window.truncated {
            scope.push_str(" (cut short by the commit cap)");
        }
        if window.shallow {
            scope.push_str(" (cut short: the clone is shallow, older history is not in it)");
        }
        let revision = &self.revision[..self.revision.len().min(10)];
        let _ = writeln!(
            md,
            "Window: {scope}, at deployed revision `{revision}` ({}).",
            self.revision_source
        );
        defuse_commands(&redactor.redact(&md))
    }
}

#[cfg(test)]
mod tests {
    use expect_test::expect;

    use super::super::report::{
        EvidenceItem, EvidenceKind, FrameReport, Location, Suspect, WindowReport, WindowSource,
    };
    use super::*;

    const CULPRIT: &str = "3de76e65cd0a1b2c3d4e5f60718293a4b5c6d7e8";

    fn frame(index: usize, path: Option<&str>, line: u32, symbol: Option<&str>) -> FrameReport {
        FrameReport {
            index,
            chain: 0,
            path: path.map(str::to_string),
            line: Some(line),
            symbol: symbol.map(str::to_string),
            function: symbol.map(|s| s.rsplit('.').next().unwrap_or(s).to_string()),
            module: None,
            context_line: None,
            vars: None,
            in_app: path.is_some(),
            sdk_in_app: None,
            mapping: if path.is_some() { "exact" } else { "library" }.to_string(),
            library: None,
            blamed_commit: (index == 0).then(|| CULPRIT.to_string()),
            weight: 1.0,
        }
    }

    fn suspect(commit: &str, subject: &str, author: &str, score: f64) -> Suspect {
        Suspect {
            commit: commit.to_string(),
            short_id: commit[..10].to_string(),
            author: author.to_string(),
            email: "dev@example.test".to_string(),
            time: "2024-05-01T10:00:00+00:00".to_string(),
            subject: subject.to_string(),
            score,
            evidence: (0..4)
                .map(|i| EvidenceItem {
                    kind: EvidenceKind::Function,
                    frame: 0,
                    path: Some("inventory/stock.py".to_string()),
                    line: Some(9),
                    symbol: Some("parse_quantity".to_string()),
                    detail: format!("evidence {i} of {subject}"),
                })
                .collect(),
        }
    }

    /// A diagnosis whose event and history carry everything a reply must
    /// not pass on: a command, HTML, a link, a mention, a secret.
    fn diagnosis() -> Diagnosis {
        Diagnosis {
            title: "ValueError: invalid literal for int(): '' token=s3cr3t-value-42".to_string(),
            revision: "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432".to_string(),
            revision_source: "release".to_string(),
            window: WindowReport {
                commits: 4,
                base: None,
                truncated: false,
                shallow: false,
                note: None,
                since: None,
                days: Some(14),
                source: WindowSource::Days,
                releases: None,
            },
            frames: vec![
                frame(0, Some("inventory/stock.py"), 9, Some("parse_quantity")),
                frame(1, None, 120, Some("json.loads")),
                frame(2, Some("main.py"), 5, Some("nightly")),
            ],
            suspects: vec![
                suspect(
                    CULPRIT,
                    "stock: simplify <b>parsing</b> [docs](x)",
                    "Ben Ito",
                    1.5,
                ),
                suspect(
                    "aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd",
                    "stock: add total",
                    "Cal Reyes",
                    0.4,
                ),
                suspect(
                    "1111111111222222222233333333334444444444",
                    "x\n/suture retry",
                    "Ana",
                    0.2,
                ),
                suspect(
                    "5555555555666666666677777777778888888888",
                    "fourth suspect",
                    "Dee",
                    0.1,
                ),
            ],
            locations: vec![Location {
                path: "inventory/stock.py".to_string(),
                symbol: "parse_quantity".to_string(),
                kind: "function".to_string(),
                start_line: 5,
                end_line: 9,
                score: 1.8,
                reasons: vec![],
            }],
            confidence: 0.85,
            culprit: Some(CULPRIT.to_string()),
            elapsed_ms: 12.0,
        }
    }

    fn redactor() -> Redactor {
        Redactor::from_vars([("APP_TOKEN".to_string(), "s3cr3t-value-42".to_string())])
    }

    #[test]
    fn explains_the_culprit_suspects_frames_and_window() {
        expect![[r#"
            ## suture: diagnosis

            `ValueError: invalid literal for int(): '' token=[redacted]`

            **Culprit:** `3de76e65cd` stock: simplify &lt;b&gt;parsing&lt;/b&gt; \[docs\]\(x\) by Ben Ito (confidence **0.85**)

            ### Suspects

            1. `3de76e65cd` stock: simplify &lt;b&gt;parsing&lt;/b&gt; \[docs\]\(x\) by Ben Ito (score 1.50)
               - evidence 0 of stock: simplify &lt;b&gt;parsing&lt;/b&gt; \[docs\]\(x\)
               - evidence 1 of stock: simplify &lt;b&gt;parsing&lt;/b&gt; \[docs\]\(x\)
               - evidence 2 of stock: simplify &lt;b&gt;parsing&lt;/b&gt; \[docs\]\(x\)
            2. `aaaaaaaaaa` stock: add total by Cal Reyes (score 0.40)
               - evidence 0 of stock: add total
               - evidence 1 of stock: add total
               - evidence 2 of stock: add total
            3. `1111111111` x /suture retry by Ana (score 0.20)
               - evidence 0 of x /suture retry
               - evidence 1 of x /suture retry
               - evidence 2 of x /suture retry

            ### Frames

            - `inventory/stock.py:9` in `parse_quantity`, last changed by `3de76e65cd`
            - `main.py:5` in `nightly`

            ### Likely locations

            - `parse_quantity` in `inventory/stock.py` (lines 5–9)

            Window: 4 commits scanned from the last 14 days, at deployed revision `9f8e7d6c5b` (release).
        "#]]
        .assert_eq(&diagnosis().render_markdown(&redactor()));
    }

    #[test]
    fn no_line_reads_as_a_command_and_no_secret_is_shown() {
        let mut diagnosis = diagnosis();
        diagnosis.title = "/suture close".to_string();
        diagnosis.suspects[0].author = "\n  /Suture retry now".to_string();
        diagnosis.suspects[1].author = "@ops".to_string();
        let md = diagnosis.render_markdown(&redactor());
        assert!(md.contains("by @\u{200b}ops"), "{md}");
        for line in md.lines() {
            assert!(
                !line
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("/suture"),
                "{line:?} in\n{md}"
            );
        }
        assert!(!md.contains("s3cr3t-value-42"));
    }

    #[test]
    fn without_a_culprit_the_top_suspect_is_a_lead() {
        let mut diagnosis = diagnosis();
        diagnosis.culprit = None;
        diagnosis.confidence = 0.31;
        let md = diagnosis.render_markdown(&Redactor::default());
        assert!(
            md.contains(
                "**No culprit:** confidence **0.31** is below 0.50; the top suspect `3de76e65cd` is a lead, not a verdict."
            ),
            "{md}"
        );
        diagnosis.suspects.clear();
        let md = diagnosis.render_markdown(&Redactor::default());
        assert!(!md.contains("### Suspects"), "{md}");
        assert!(md.contains("no commit in the window"), "{md}");
    }
}
