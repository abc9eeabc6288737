//! CODEOWNERS: who reviews a fix, read at the fix's base revision.
//!
//! GitHub's rules (docs "About code owners"): the first of
//! `.github/CODEOWNERS`, `CODEOWNERS`, `docs/CODEOWNERS` is used; each line
//! is a gitignore-style pattern and owners (`@user`, `@org/team`, an
//! email); the **last** matching line wins, and a matching line without
//! owners leaves the path unowned. Patterns differ from gitignore in two
//! ways GitHub documents: no `!` negation and no `[ ]` ranges, and
//! `docs/*` owns the files directly in `docs` but not deeper ones. A line
//! that does not parse is skipped and reported, as GitHub does.

use globset::{Glob, GlobBuilder, GlobMatcher};

/// Where GitHub looks for the file, in order.
pub(crate) const LOCATIONS: [&str; 3] = [".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

/// An owner named on a CODEOWNERS line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `@login`.
    User(String),
    /// `@org/team-slug`.
    Team {
        /// The organisation.
        org: String,
        /// The team's slug.
        slug: String,
    },
    /// `someone@example.com` (cannot be asked for a review by API).
    Email(String),
}

/// A parsed CODEOWNERS file.
#[derive(Debug, Clone, Default)]
pub struct CodeOwners {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    matchers: Vec<GlobMatcher>,
    owners: Vec<Owner>,
}

impl CodeOwners {
    /// Parses the file; lines that do not parse are skipped and described
    /// in the second value (`line N: reason`).
    pub fn parse(text: &str) -> (CodeOwners, Vec<String>) {
        let mut rules = Vec::new();
        let mut problems = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let mut tokens = tokens(line).into_iter();
            let Some(pattern) = tokens.next() else {
                continue;
            };
            let owners: Vec<Owner> = tokens.filter_map(|token| owner(&token)).collect();
            match matchers(&pattern) {
                Ok(matchers) => rules.push(Rule { matchers, owners }),
                Err(reason) => problems.push(format!("line {line_number}: {reason}")),
            }
        }
        (CodeOwners { rules }, problems)
    }

    /// The owners of `path` (repository-relative, `/`-separated): those of
    /// the last matching line; empty when none matches or it names nobody.
    pub fn owners_of(&self, path: &str) -> &[Owner] {
        let path = path.trim_start_matches('/');
        self.rules
            .iter()
            .rev()
            .find(|rule| rule.matchers.iter().any(|m| m.is_match(path)))
            .map(|rule| rule.owners.as_slice())
            .unwrap_or_default()
    }

    /// Review requests for a change touching `paths`: user logins and team
    /// slugs (teams of `org` only, the only ones a pull request in `org`'s
    /// repository can ask), without `author` (GitHub refuses a review
    /// request to the pull request's author), first-seen order, no repeats.
    pub fn reviewers(&self, paths: &[String], org: &str, author: Option<&str>) -> Reviewers {
        let mut reviewers = Reviewers::default();
        for path in paths {
            for owner in self.owners_of(path) {
                match owner {
                    Owner::User(login) => {
                        let is_author = author.is_some_and(|a| a.eq_ignore_ascii_case(login));
                        if !is_author
                            && !reviewers
                                .users
                                .iter()
                                .any(|u| u.eq_ignore_ascii_case(login))
                        {
                            reviewers.users.push(login.clone());
                        }
                    }
                    Owner::Team {
                        org: team_org,
                        slug,
                    } => {
                        if team_org.eq_ignore_ascii_case(org) && !reviewers.teams.contains(slug) {
                            reviewers.teams.push(slug.clone());
                        }
                    }
                    Owner::Email(_) => {}
                }
            }
        }
        reviewers
    }
}

/// Users and teams to ask for a review.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reviewers {
    /// Logins.
    pub users: Vec<String>,
    /// Team slugs.
    pub teams: Vec<String>,
}

impl Reviewers {
    /// Whether nobody is named.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.teams.is_empty()
    }
}

/// Whitespace-separated tokens up to a `#` comment; `\#` and `\ ` escape.
fn tokens(line: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => current.push(next),
                None => current.push('\\'),
            },
            '#' if current.is_empty() => break,
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

fn owner(token: &str) -> Option<Owner> {
    if let Some(name) = token.strip_prefix('@') {
        return Some(match name.split_once('/') {
            Some((org, slug)) => Owner::Team {
                org: org.to_string(),
                slug: slug.to_string(),
            },
            None => Owner::User(name.to_string()),
        });
    }
    token.contains('@').then(|| Owner::Email(token.to_string()))
}

/// Globs for one pattern: the path itself, and (for a directory) all under it.
fn matchers(pattern: &str) -> Result<Vec<GlobMatcher>, String> {
    if pattern.starts_with('!') {
        return Err(format!(
            "{pattern:?}: negation is not supported in CODEOWNERS"
        ));
    }
    if pattern.contains('[') || pattern.contains(']') {
        return Err(format!(
            "{pattern:?}: character ranges are not supported in CODEOWNERS"
        ));
    }
    let dir_only = pattern.ends_with('/');
    let trimmed = pattern.trim_end_matches('/');
    let anchored = trimmed.starts_with('/') || trimmed.contains('/');
    let trimmed = trimmed.trim_start_matches('/');
    if trimmed.is_empty() {
        // `/` alone: the whole repository.
        return glob("**").map(|m| vec![m]);
    }
    let base = if anchored || trimmed.starts_with("**") {
        trimmed.to_string()
    } else {
        format!("**/{trimmed}")
    };
    // `docs/*` owns only the files right in docs; a last segment without a
    // wildcard may name a directory, which owns everything inside.
    let last = trimmed.rsplit('/').next().unwrap_or(trimmed);
    let wildcard_last = last.contains('*') && last != "**";
    let mut globs = Vec::new();
    if !dir_only {
        globs.push(glob(&base)?);
    }
    if !wildcard_last || dir_only {
        let inside = if base.ends_with("/**") {
            base.clone()
        } else {
            format!("{base}/**")
        };
        globs.push(glob(&inside)?);
    }
    Ok(globs)
}

fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|glob: Glob| glob.compile_matcher())
        .map_err(|error| format!("{pattern:?}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(file: &str, path: &str) -> Vec<String> {
        let (codeowners, problems) = CodeOwners::parse(file);
        assert_eq!(problems, Vec::<String>::new());
        codeowners
            .owners_of(path)
            .iter()
            .map(|owner| match owner {
                Owner::User(login) => format!("@{login}"),
                Owner::Team { org, slug } => format!("@{org}/{slug}"),
                Owner::Email(email) => email.clone(),
            })
            .collect()
    }

    /// The examples of GitHub's CODEOWNERS documentation, line by line.
    #[test]
    fn githubs_documented_examples() {
        let file = "\
# comment
*       @global-owner1 @global-owner2
*.js    @js-owner #This is an inline comment.
*.go docs@example.com
*.txt @octo-org/octocats
/build/logs/ @doctocat
docs/*  docs@example.com
apps/ @octocat
/docs/ @doctocat
/scripts/ @doctocat @octocat
**/logs @octocat
/apps/ @octocat
/apps/github
";
        assert_eq!(
            owners(file, "README.md"),
            ["@global-owner1", "@global-owner2"]
        );
        assert_eq!(owners(file, "src/app.js"), ["@js-owner"]);
        assert_eq!(owners(file, "main.go"), ["docs@example.com"]);
        assert_eq!(owners(file, "notes/a.txt"), ["@octo-org/octocats"]);
        assert_eq!(
            owners(file, "build/logs/x/y.log"),
            ["@octocat"],
            "**/logs comes later"
        );
        assert_eq!(owners(file, "docs/getting-started.md"), ["@doctocat"]);
        assert_eq!(owners(file, "scripts/deploy.sh"), ["@doctocat", "@octocat"]);
        assert_eq!(owners(file, "deep/logs/a"), ["@octocat"]);
        assert_eq!(owners(file, "apps/web/index.html"), ["@octocat"]);
        assert_eq!(
            owners(file, "apps/github/readme.md"),
            Vec::<String>::new(),
            "no owners: unowned"
        );
    }

    /// `docs/*` owns files right in docs, not deeper; `apps/` owns any
    /// `apps` directory's contents; a bare name matches at any depth.
    #[test]
    fn wildcards_and_directories() {
        let file = "docs/* @a\napps/ @b\nMakefile @c\n";
        assert_eq!(owners(file, "docs/x.md"), ["@a"]);
        assert_eq!(owners(file, "docs/deep/x.md"), Vec::<String>::new());
        assert_eq!(owners(file, "src/apps/x.py"), ["@b"]);
        assert_eq!(
            owners(file, "apps"),
            Vec::<String>::new(),
            "apps/ is a directory"
        );
        assert_eq!(owners(file, "tools/Makefile"), ["@c"]);
    }

    /// Unsupported syntax is skipped and reported; the other lines stand.
    #[test]
    fn broken_lines_are_reported() {
        let (codeowners, problems) = CodeOwners::parse("!x @a\n[ab].py @b\n*.py @c\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(codeowners.owners_of("a.py"), [Owner::User("c".into())]);
    }

    /// Reviewers: users and the organisation's teams, first-seen order,
    /// without the author or other organisations' teams.
    #[test]
    fn reviewers_for_touched_paths() {
        let (codeowners, _) =
            CodeOwners::parse("*.py @alice @acme/backend @Bot\n*.md @bob @other/docs\n");
        let paths = vec!["a.py".to_string(), "b.md".to_string(), "c.py".to_string()];
        let reviewers = codeowners.reviewers(&paths, "acme", Some("bot"));
        assert_eq!(reviewers.users, ["alice", "bob"]);
        assert_eq!(reviewers.teams, ["backend"]);
    }
}
