//! Frame → repository path.
//!
//! A stack frame names a file as the running program saw it
//! (`/srv/app/shop/cart.py`, `webpack:///./src/cart.ts`, a Python module
//! `shop.cart`). This maps it onto a path of the repository's tree the way
//! Sentry's code mappings do: explicit `stack_root → source_root` mappings
//! first, then the longest unique suffix match against the tree, then the
//! module name. Frames from installed packages, the standard library,
//! `node_modules`, the Rust toolchain or the cargo registry are recognised as
//! library frames and never mapped by guesswork.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use serde::Serialize;

/// A code mapping as Sentry configures them: frame paths starting with
/// `stack_root` live under `source_root` in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMapping {
    /// Prefix of the path as the frame reports it, e.g. `/srv/app/`.
    pub stack_root: String,
    /// Repository-relative prefix that replaces it, e.g. `` or `backend/`.
    pub source_root: String,
}

impl FromStr for CodeMapping {
    type Err = String;

    /// Parses `STACK_ROOT=SOURCE_ROOT`; either side may be empty.
    fn from_str(text: &str) -> Result<CodeMapping, String> {
        let (stack_root, source_root) = text
            .split_once('=')
            .ok_or_else(|| format!("code mapping {text:?} is not STACK_ROOT=SOURCE_ROOT"))?;
        if stack_root.is_empty() {
            return Err(format!("code mapping {text:?} has an empty stack root"));
        }
        let source_root = source_root.trim_start_matches("./").trim_start_matches('/');
        Ok(CodeMapping {
            stack_root: stack_root.to_string(),
            source_root: source_root.to_string(),
        })
    }
}

/// What a frame says about where its code lives.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameLocation<'a> {
    /// Absolute path or URL of the file.
    pub abs_path: Option<&'a str>,
    /// The (often relative) file name.
    pub filename: Option<&'a str>,
    /// The module (Python dotted name, Java class, …).
    pub module: Option<&'a str>,
    /// The SDK's in-app verdict, if any.
    pub in_app: Option<bool>,
}

/// How a frame was mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MapOutcome {
    /// The frame's code is this repository file.
    Repo {
        /// Repository-relative path.
        path: String,
        /// Which rule found it.
        method: MapMethod,
    },
    /// The frame is library code (not the application's).
    Library {
        /// Which kind of library, for the evidence.
        reason: &'static str,
    },
    /// No file of the tree matches the frame.
    Unmapped,
}

/// The rule that mapped a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapMethod {
    /// A configured code mapping.
    CodeMapping,
    /// The frame path is a tree path as it is.
    Exact,
    /// The longest unique suffix of the frame path.
    Suffix,
    /// Derived from the module name.
    Module,
}

/// Maps frames onto one tree.
pub struct PathMapper {
    mappings: Vec<CodeMapping>,
    files: HashSet<String>,
    by_basename: HashMap<String, Vec<String>>,
}

impl PathMapper {
    /// A mapper over the given tree paths.
    pub fn new(paths: impl IntoIterator<Item = String>, mappings: Vec<CodeMapping>) -> PathMapper {
        let files: HashSet<String> = paths.into_iter().collect();
        let mut by_basename: HashMap<String, Vec<String>> = HashMap::new();
        for path in &files {
            let base = path.rsplit('/').next().unwrap_or(path);
            by_basename
                .entry(base.to_string())
                .or_default()
                .push(path.clone());
        }
        PathMapper {
            mappings,
            files,
            by_basename,
        }
    }

    /// Whether `path` is a file of the tree.
    pub fn contains(&self, path: &str) -> bool {
        self.files.contains(path)
    }

    /// Maps one frame.
    pub fn map(&self, frame: &FrameLocation<'_>) -> MapOutcome {
        let candidates: Vec<String> = [frame.abs_path, frame.filename]
            .into_iter()
            .flatten()
            .map(normalize)
            .filter(|p| !p.is_empty())
            .collect();
        for candidate in &candidates {
            for mapping in &self.mappings {
                if let Some(rest) = candidate.strip_prefix(mapping.stack_root.as_str()) {
                    let path = join(&mapping.source_root, rest);
                    if self.files.contains(&path) {
                        return MapOutcome::Repo {
                            path,
                            method: MapMethod::CodeMapping,
                        };
                    }
                }
            }
        }
        if let Some(reason) = candidates.iter().find_map(|p| library_kind(p)) {
            return MapOutcome::Library { reason };
        }
        if let Some(reason) = frame.module.and_then(library_module) {
            return MapOutcome::Library { reason };
        }
        for candidate in &candidates {
            let relative = candidate.trim_start_matches('/');
            if self.files.contains(relative) {
                return MapOutcome::Repo {
                    path: relative.to_string(),
                    method: MapMethod::Exact,
                };
            }
        }
        for candidate in &candidates {
            if let Some(path) = self.suffix_match(candidate, frame.in_app) {
                return MapOutcome::Repo {
                    path,
                    method: MapMethod::Suffix,
                };
            }
        }
        if let Some(module) = frame.module {
            for candidate in module_paths(module) {
                if let Some(path) = self.suffix_match(&candidate, frame.in_app) {
                    return MapOutcome::Repo {
                        path,
                        method: MapMethod::Module,
                    };
                }
            }
        }
        MapOutcome::Unmapped
    }

    /// The tree path sharing the longest run of trailing components with
    /// `candidate`, when that path is the only one with that many. A match
    /// on the file name alone is accepted only for a top-level file or when
    /// the SDK marked the frame in-app and the name is unique in the tree.
    fn suffix_match(&self, candidate: &str, in_app: Option<bool>) -> Option<String> {
        let parts: Vec<&str> = candidate.split('/').filter(|s| !s.is_empty()).collect();
        let base = *parts.last()?;
        let same_name = self.by_basename.get(base)?;
        let mut best: Option<(&String, usize)> = None;
        let mut tied = false;
        for path in same_name {
            let shared = path
                .rsplit('/')
                .zip(parts.iter().rev())
                .take_while(|(a, b)| a == *b)
                .count();
            match best {
                Some((_, n)) if shared < n => {}
                Some((_, n)) if shared == n => tied = true,
                _ => {
                    best = Some((path, shared));
                    tied = false;
                }
            }
        }
        let (path, shared) = best?;
        if tied {
            return None;
        }
        let whole_path = shared == path.split('/').count();
        let unique_name = same_name.len() == 1 && in_app == Some(true) && !is_generic_name(base);
        (shared >= 2 || whole_path || unique_name).then(|| path.clone())
    }
}

/// File names that say nothing about which package they belong to.
fn is_generic_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or(name);
    matches!(
        stem,
        "__init__" | "__main__" | "index" | "main" | "mod" | "lib" | "app" | "utils" | "util"
    )
}

/// Strips URL schemes and hosts, `./` and `~/` prefixes and Windows
/// separators, so that every frame path compares as `a/b/c.ext`.
fn normalize(path: &str) -> String {
    let mut path = path.replace('\\', "/");
    if let Some(idx) = path.find("://") {
        let rest = &path[idx + 3..];
        // `webpack:///./src/x.js`, `app:///dist/x.js`: empty host; `https://host/x.js`: drop host.
        let rest = match rest.strip_prefix('/') {
            Some(r) => r.to_string(),
            None => rest
                .split_once('/')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default(),
        };
        path = format!("/{rest}");
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut path = path.to_string();
    for prefix in ["/./", "./", "~/", "/~/"] {
        if let Some(rest) = path.strip_prefix(prefix) {
            path = format!("/{rest}");
        }
    }
    // `C:/app/x.py` → `/app/x.py`
    if path.len() > 2 && path.as_bytes()[1] == b':' {
        path = path[2..].to_string();
    }
    path
}

fn join(root: &str, rest: &str) -> String {
    let rest = rest.trim_start_matches('/');
    if root.is_empty() {
        rest.to_string()
    } else {
        format!("{}/{rest}", root.trim_end_matches('/'))
    }
}

/// Recognises third-party and runtime code by its path.
pub fn library_kind(path: &str) -> Option<&'static str> {
    let path = path.replace('\\', "/");
    let contains = |needle: &str| path.contains(needle);
    if contains("/site-packages/") || contains("/dist-packages/") {
        return Some("python package");
    }
    if path.starts_with("<frozen ") || path.starts_with('<') && path.ends_with('>') {
        return Some("python runtime");
    }
    if is_python_stdlib(&path) {
        return Some("python standard library");
    }
    if contains("/node_modules/") || path.starts_with("node_modules/") {
        return Some("node module");
    }
    if path.starts_with("node:") || path.starts_with("internal/") || path.starts_with("/internal/")
    {
        return Some("node runtime");
    }
    if path.starts_with("/rustc/") || contains("/rustlib/") {
        return Some("rust toolchain");
    }
    if contains("/.cargo/registry/") || contains("/.cargo/git/") {
        return Some("rust crate");
    }
    if contains("/go/pkg/mod/") || contains("/usr/local/go/src/") || contains("/usr/lib/go/src/") {
        return Some("go module");
    }
    if contains("/vendor/") || path.starts_with("vendor/") {
        return Some("vendored dependency");
    }
    None
}

/// `…/lib/python3.11/json/encoder.py` and friends (but not site-packages,
/// checked before).
fn is_python_stdlib(path: &str) -> bool {
    path.split('/').any(|part| {
        part.strip_prefix("python")
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    }) && (path.contains("/lib/") || path.contains("/Lib/"))
}

/// Runtime modules named without a file path (Java, Kotlin, .NET).
fn library_module(module: &str) -> Option<&'static str> {
    const RUNTIME: [&str; 8] = [
        "java.", "javax.", "jdk.", "sun.", "kotlin.", "kotlinx.", "scala.", "System.",
    ];
    RUNTIME
        .iter()
        .any(|prefix| module.starts_with(prefix))
        .then_some("language runtime")
}

/// Candidate file paths for a Python-style dotted module name.
fn module_paths(module: &str) -> Vec<String> {
    if module.is_empty() || module.contains('/') || module == "__main__" {
        return Vec::new();
    }
    let base = module.replace('.', "/");
    vec![format!("{base}.py"), format!("{base}/__init__.py")]
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};

    use super::*;

    fn mapper(mappings: &[&str]) -> PathMapper {
        let paths = [
            "app/models/user.py",
            "app/views.py",
            "lib/views.py",
            "manage.py",
            "src/cart/checkout.ts",
            "web/src/cart/checkout.ts",
            "src/main.rs",
            "pkg/shop/__init__.py",
            "pkg/shop/orders.py",
            "deep/unique_name.py",
        ];
        PathMapper::new(
            paths.iter().map(|p| p.to_string()),
            mappings.iter().map(|m| m.parse().unwrap()).collect(),
        )
    }

    fn check(frame: FrameLocation<'_>, mappings: &[&str], expect: Expect) {
        let outcome = mapper(mappings).map(&frame);
        let actual = match outcome {
            MapOutcome::Repo { path, method } => format!("{path} ({method:?})"),
            MapOutcome::Library { reason } => format!("library: {reason}"),
            MapOutcome::Unmapped => "unmapped".to_string(),
        };
        expect.assert_eq(&actual);
    }

    fn abs(path: &str) -> FrameLocation<'_> {
        FrameLocation {
            abs_path: Some(path),
            ..FrameLocation::default()
        }
    }

    #[test]
    fn code_mapping_wins() {
        check(
            abs("/srv/app/app/views.py"),
            &["/srv/app/="],
            expect!["app/views.py (CodeMapping)"],
        );
        check(
            abs("/opt/web/cart/checkout.ts"),
            &["/opt/web/=web/src"],
            expect!["web/src/cart/checkout.ts (CodeMapping)"],
        );
    }

    #[test]
    fn suffix_needs_two_components_or_a_unique_in_app_name() {
        check(
            abs("/srv/app/app/models/user.py"),
            &[],
            expect!["app/models/user.py (Suffix)"],
        );
        check(abs("/deploy/views.py"), &[], expect!["unmapped"]);
        check(abs("/deploy/manage.py"), &[], expect!["manage.py (Suffix)"]);
        let frame = FrameLocation {
            in_app: Some(true),
            ..abs("/x/y/unique_name.py")
        };
        check(frame, &[], expect!["deep/unique_name.py (Suffix)"]);
        check(abs("/x/y/unique_name.py"), &[], expect!["unmapped"]);
        let frame = FrameLocation {
            in_app: Some(true),
            ..abs("/elsewhere/pkg/__init__.py")
        };
        check(frame, &[], expect!["unmapped"]);
        let frame = FrameLocation {
            in_app: Some(true),
            module: Some("__main__"),
            ..abs("/tmp/job.py")
        };
        check(frame, &[], expect!["unmapped"]);
    }

    #[test]
    fn ambiguous_suffix_is_not_guessed() {
        check(abs("/build/cart/checkout.ts"), &[], expect!["unmapped"]);
        check(
            abs("/build/web/src/cart/checkout.ts"),
            &[],
            expect!["web/src/cart/checkout.ts (Suffix)"],
        );
    }

    #[test]
    fn urls_and_relative_names() {
        check(
            abs("webpack:///./src/cart/checkout.ts"),
            &[],
            expect!["src/cart/checkout.ts (Exact)"],
        );
        check(
            abs("https://cdn.example.com/web/src/cart/checkout.ts?v=3"),
            &[],
            expect!["web/src/cart/checkout.ts (Exact)"],
        );
        let frame = FrameLocation {
            filename: Some("app/views.py"),
            ..FrameLocation::default()
        };
        check(frame, &[], expect!["app/views.py (Exact)"]);
    }

    #[test]
    fn python_module_fallback() {
        let frame = FrameLocation {
            module: Some("shop.orders"),
            filename: Some("orders.py"),
            ..FrameLocation::default()
        };
        check(frame, &[], expect!["pkg/shop/orders.py (Module)"]);
        let frame = FrameLocation {
            module: Some("shop"),
            ..FrameLocation::default()
        };
        check(frame, &[], expect!["pkg/shop/__init__.py (Module)"]);
    }

    #[test]
    fn library_frames() {
        check(
            abs("/srv/venv/lib/python3.11/site-packages/app/views.py"),
            &[],
            expect!["library: python package"],
        );
        check(
            abs("/usr/local/lib/python3.11/json/encoder.py"),
            &[],
            expect!["library: python standard library"],
        );
        check(
            abs("<frozen importlib._bootstrap>"),
            &[],
            expect!["library: python runtime"],
        );
        check(
            abs("/app/node_modules/react/index.js"),
            &[],
            expect!["library: node module"],
        );
        check(
            abs("node:internal/process/task_queues"),
            &[],
            expect!["library: node runtime"],
        );
        check(
            abs("/rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/panicking.rs"),
            &[],
            expect!["library: rust toolchain"],
        );
        check(
            abs(
                "/home/u/.cargo/registry/src/index.crates.io-6f17d22bba15001f/tokio-1.0.0/src/main.rs",
            ),
            &[],
            expect!["library: rust crate"],
        );
        let frame = FrameLocation {
            module: Some("java.lang.Thread"),
            filename: Some("Thread.java"),
            ..FrameLocation::default()
        };
        check(frame, &[], expect!["library: language runtime"]);
    }

    #[test]
    fn explicit_mapping_beats_library_rules() {
        check(
            abs("/usr/lib/python3/site-packages/app/views.py"),
            &["/usr/lib/python3/site-packages/="],
            expect!["app/views.py (CodeMapping)"],
        );
    }

    #[test]
    fn bad_code_mapping_is_explained() {
        expect![[r#"Err("code mapping \"/srv/app\" is not STACK_ROOT=SOURCE_ROOT")"#]]
            .assert_eq(&format!("{:?}", "/srv/app".parse::<CodeMapping>()));
    }
}
