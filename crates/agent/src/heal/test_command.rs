//! Guessing a repository's test command from its tree, for when none is
//! configured: the conventional runner of each ecosystem.

use std::path::Path;

/// The conventional test command for the project at `root`, if it is
/// recognisable.
pub fn detect_test_command(root: &Path) -> Option<String> {
    let has = |name: &str| root.join(name).exists();
    if has("Cargo.toml") {
        return Some("cargo test --offline".to_string());
    }
    if has("package.json") {
        let manifest = std::fs::read_to_string(root.join("package.json")).ok()?;
        let manifest: serde_json::Value = serde_json::from_str(&manifest).ok()?;
        if manifest["scripts"]["test"].is_string() {
            return Some("npm test --silent".to_string());
        }
    }
    if has("go.mod") {
        return Some("go test ./...".to_string());
    }
    if has("pom.xml") {
        return Some("mvn -q -o test".to_string());
    }
    let python = has("pyproject.toml")
        || has("setup.py")
        || has("setup.cfg")
        || has("pytest.ini")
        || has("tox.ini");
    let tests_dir = ["tests", "test"].iter().any(|d| root.join(d).is_dir());
    if python || tests_dir && has_python_files(root) {
        return Some("python3 -m pytest -q -p no:cacheprovider".to_string());
    }
    None
}

fn has_python_files(root: &Path) -> bool {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| {
            entry.path().extension().is_some_and(|e| e == "py")
                || entry.path().join("__init__.py").exists()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(files: &[(&str, &str)]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, content).unwrap();
        }
        detect_test_command(dir.path())
    }

    /// Each ecosystem's conventional runner, and nothing for an unknown tree.
    #[test]
    fn conventional_runners() {
        assert_eq!(
            detect(&[("Cargo.toml", "")]).as_deref(),
            Some("cargo test --offline")
        );
        assert_eq!(
            detect(&[("package.json", r#"{"scripts":{"test":"node --test"}}"#)]).as_deref(),
            Some("npm test --silent")
        );
        assert_eq!(detect(&[("package.json", "{}")]), None);
        assert_eq!(
            detect(&[("pyproject.toml", "")]).as_deref(),
            Some("python3 -m pytest -q -p no:cacheprovider")
        );
        assert_eq!(
            detect(&[("tests/test_a.py", ""), ("app.py", "")]).as_deref(),
            Some("python3 -m pytest -q -p no:cacheprovider")
        );
        assert_eq!(detect(&[("README.md", "")]), None);
    }
}
