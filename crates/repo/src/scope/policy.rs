//! The scope policy: which paths a patch may touch and how big it may be,
//! with defaults that keep CI, secrets, lockfiles and git's own files out of
//! reach of any automated patch.
//!
//! Globs use gitignore-like syntax compiled by globset with `*` stopping at
//! `/` (so `*.pem` is the root only and `**/*.pem` is everywhere). Deny globs
//! match case-insensitively: on a case-insensitive file system
//! `.GitHub/workflows/x.yml` *is* the workflow, and a denial must not be
//! evaded by spelling. Allow globs match case-sensitively: they only ever
//! widen what is permitted, so they stay as narrow as written.

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::ScopeViolation;

/// What a patch may touch. Part of the repository's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScopePolicy {
    /// Globs a patch may touch; a path must match one. Default `["**"]`.
    pub allow: Vec<String>,
    /// Globs a patch may never touch, checked before `allow`. Default: CI
    /// and automation config, secrets and keys, lockfiles, `.git/**`,
    /// `.gitmodules` and `.gitattributes` (see [`ScopePolicy::default`]).
    pub deny: Vec<String>,
    /// Most files one patch may touch (a rename counts once). Default 8.
    pub max_files: usize,
    /// Most lines one patch may change, added plus removed. Default 200.
    pub max_changed_lines: usize,
}

impl Default for ScopePolicy {
    fn default() -> ScopePolicy {
        ScopePolicy {
            allow: vec!["**".to_string()],
            deny: DEFAULT_DENY.iter().map(|glob| glob.to_string()).collect(),
            max_files: 8,
            max_changed_lines: 200,
        }
    }
}

/// Denied by default, grouped by why.
const DEFAULT_DENY: &[&str] = &[
    // CI and automation: a patch here runs with the pipeline's credentials.
    ".github/**",
    ".gitlab-ci.yml",
    ".circleci/**",
    "Jenkinsfile",
    ".buildkite/**",
    "azure-pipelines.yml",
    ".travis.yml",
    // Secrets and keys: never read into a diff, never rewritten.
    ".env",
    ".env.*",
    "**/.env",
    "**/.env.*",
    "*.pem",
    "**/*.pem",
    "*.key",
    "**/*.key",
    "**/id_rsa*",
    "**/*.p12",
    "**/*.pfx",
    "**/secrets/**",
    "**/.npmrc",
    "**/.pypirc",
    // Lockfiles: a changed dependency is a supply-chain change, not a fix.
    "Cargo.lock",
    "**/package-lock.json",
    "**/yarn.lock",
    "**/pnpm-lock.yaml",
    "**/poetry.lock",
    "**/Pipfile.lock",
    "**/go.sum",
    // git's own configuration: hooks, submodule URLs, filters and diff drivers.
    ".git/**",
    ".gitmodules",
    "**/.gitattributes",
];

impl ScopePolicy {
    /// Compiles every glob, so a typo in the configuration is reported at
    /// startup rather than on the first patch.
    pub fn validate(&self) -> Result<(), ScopeViolation> {
        Matchers::new(self).map(|_| ())
    }
}

/// A policy's globs, compiled.
pub(super) struct Matchers<'a> {
    policy: &'a ScopePolicy,
    allow: GlobSet,
    deny: GlobSet,
}

impl<'a> Matchers<'a> {
    pub(super) fn new(policy: &'a ScopePolicy) -> Result<Matchers<'a>, ScopeViolation> {
        Ok(Matchers {
            policy,
            allow: compile(&policy.allow, false)?,
            deny: compile(&policy.deny, true)?,
        })
    }

    /// Refuses a path matching any deny glob, naming the first one.
    pub(super) fn check_denied(&self, path: &str) -> Result<(), ScopeViolation> {
        match self.deny.matches(path).first() {
            Some(&glob_idx) => Err(ScopeViolation::Denied {
                path: path.to_string(),
                glob: self.policy.deny[glob_idx].clone(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses a path matching no allow glob.
    pub(super) fn check_allowed(&self, path: &str) -> Result<(), ScopeViolation> {
        if self.allow.is_match(path) {
            return Ok(());
        }
        Err(ScopeViolation::NotAllowed {
            path: path.to_string(),
        })
    }
}

fn compile(globs: &[String], case_insensitive: bool) -> Result<GlobSet, ScopeViolation> {
    let mut set = GlobSetBuilder::new();
    for glob in globs {
        set.add(build_glob(glob, case_insensitive)?);
    }
    set.build().map_err(|error| ScopeViolation::InvalidPolicy {
        glob: error.glob().unwrap_or_default().to_string(),
        reason: error.kind().to_string(),
    })
}

fn build_glob(glob: &str, case_insensitive: bool) -> Result<Glob, ScopeViolation> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .case_insensitive(case_insensitive)
        .build()
        .map_err(|error| ScopeViolation::InvalidPolicy {
            glob: glob.to_string(),
            reason: error.kind().to_string(),
        })
}
