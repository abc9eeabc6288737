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
//!
//! A patch written by a model gets a stricter policy
//! ([`ScopePolicy::for_generated_patches`]): it may not touch the files that
//! decide what CI or the build runs (test fixtures loaded by the runner,
//! Makefiles, package scripts, build scripts, hooks, CODEOWNERS, packaging
//! files). A test suite that passes proves nothing when the patch chose
//! what the test command runs. A revert of a human's commit keeps the
//! configured policy: it restores what ran before that commit.

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

/// Files that change what CI, the test runner or the build executes, denied
/// to patches a model wrote (on top of the configured deny globs). Whole
/// files: a section-level rule (`[build-system]`, `"scripts"`) would have
/// to parse each format, and a fix rarely needs these files.
const BUILD_AND_CI_DENY: &[&str] = &[
    // Loaded and run by the test runner itself.
    "**/conftest.py",
    "**/pytest.ini",
    "**/tox.ini",
    "**/noxfile.py",
    // Build and task definitions.
    "**/Makefile",
    "**/GNUmakefile",
    "**/*.mk",
    "**/package.json",
    "**/build.rs",
    "**/.cargo/**",
    "**/setup.py",
    "**/setup.cfg",
    "**/pyproject.toml",
    // Hooks, CI and who reviews.
    "**/.pre-commit-config.yaml",
    "**/.husky/**",
    "**/.github/**",
    "**/CODEOWNERS",
];

impl ScopePolicy {
    /// This policy for a patch a model wrote: the same, with the files that
    /// decide what CI and the build run denied as well.
    pub fn for_generated_patches(&self) -> ScopePolicy {
        let mut policy = self.clone();
        for glob in BUILD_AND_CI_DENY {
            if !policy.deny.iter().any(|denied| denied == glob) {
                policy.deny.push((*glob).to_string());
            }
        }
        policy
    }

    /// The deny globs, compiled, for whoever reads the tree on a patch
    /// writer's behalf (a model's tools): what may not be changed is not
    /// shown either.
    pub fn denied_paths(&self) -> Result<DeniedPaths, ScopeViolation> {
        Ok(DeniedPaths {
            globs: self.deny.clone(),
            set: compile(&self.deny, true)?,
        })
    }

    /// Compiles every glob, so a typo in the configuration is reported at
    /// startup rather than on the first patch.
    pub fn validate(&self) -> Result<(), ScopeViolation> {
        Matchers::new(self).map(|_| ())
    }
}

/// A policy's deny globs, compiled.
#[derive(Debug, Clone)]
pub struct DeniedPaths {
    globs: Vec<String>,
    set: GlobSet,
}

impl DeniedPaths {
    /// The first deny glob matching `path` (relative to the repository
    /// root, `/`-separated), if any.
    pub fn glob_for(&self, path: &str) -> Option<&str> {
        let path = path.trim_start_matches("./");
        self.set
            .matches(path)
            .first()
            .map(|&idx| self.globs[idx].as_str())
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
