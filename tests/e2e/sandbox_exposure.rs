//! What a test command can reach, through the real binary: `check-config`
//! and `serve` refuse the unisolated process sandbox unless a repository
//! opts in, and under `suture heal` test code cannot read files beside the
//! repository (standing for suture's data dir, config and keys, and another
//! repository) nor any other process's environment, while the process
//! backend, as control, reads them all.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{ScriptedRepo, suture_bin};

use crate::heal::{crash, inventory, test_command};

/// A config with one repository at `repo` using the process sandbox, plus
/// `extra` lines in its `[[repos]]` table.
fn process_config(dir: &Path, repo: &Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("suture.toml");
    std::fs::write(
        &path,
        format!(
            "[[repos]]\nname = \"shop\"\npath = \"{}\"\nsandbox = \"process\"\ntest_command = \"true\"\nlearning_seconds = 0\n{extra}",
            repo.display()
        ),
    )
    .unwrap();
    path
}

const REFUSAL: &str = "error: repos[0].sandbox: \"process\" runs tests unisolated, able to read suture's data, configuration, keys and environment: use \"bubblewrap\" or \"docker\", or set repos[0].unsafe_allow_process_sandbox = true on a throwaway machine";

/// `check-config` exits 2 with one line naming the key and the remedy; the
/// explicit opt-in is accepted.
#[test]
fn check_config_refuses_the_process_sandbox() {
    let repo = ScriptedRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let config = process_config(dir.path(), repo.path(), "");
    let output = Command::new(suture_bin())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.lines().any(|line| line == REFUSAL), "{stderr}");

    let config = process_config(
        dir.path(),
        repo.path(),
        "unsafe_allow_process_sandbox = true\n",
    );
    let output = Command::new(suture_bin())
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `serve` refuses the same configuration before it listens or touches the
/// data dir. (A serve that wrongly starts is stopped after a bound, and the
/// test fails.)
#[test]
fn serve_refuses_the_process_sandbox() {
    let repo = ScriptedRepo::new();
    let dir = tempfile::tempdir().unwrap();
    let config = process_config(dir.path(), repo.path(), "");
    let data_dir = dir.path().join("data");
    let mut child = Command::new(suture_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--workers",
            "0",
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let give_up = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= give_up {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let status =
        status.unwrap_or_else(|| panic!("serve started with the process sandbox: {stderr}"));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.lines().any(|line| line == REFUSAL), "{stderr}");
    assert!(!data_dir.exists(), "serve touched its data dir");
}

/// `suture heal`'s test command, as test code would, reads files it finds at
/// run time (their paths are not in the command: printf builds them) and every
/// process's environment. Under bubblewrap none of the planted markers (a
/// data dir, a config file, a key file, a repository beside the one healed,
/// a variable in suture's own environment) reaches the report; under the
/// process backend every one does.
#[test]
fn heal_test_code_cannot_read_suture_s_files_or_environment() {
    let (repo, _) = inventory();
    let event = crash(&repo);
    let event_path = repo.path().join(".git/event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let host = tempfile::tempdir().unwrap();
    let plant = |relative: &str, marker: &str| {
        let path = host.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, marker).unwrap();
        path
    };
    let planted = [
        (
            plant("data/suture.db", "PLANTED-DATA-DIR"),
            "PLANTED-DATA-DIR",
        ),
        (plant("suture.toml", "PLANTED-CONFIG"), "PLANTED-CONFIG"),
        (
            plant("keys/app.pem", "PLANTED-KEY-FILE"),
            "PLANTED-KEY-FILE",
        ),
        (
            plant("repos/other/app.py", "PLANTED-OTHER-REPO"),
            "PLANTED-OTHER-REPO",
        ),
    ];
    let mut reads = String::new();
    for (path, _) in &planted {
        // Octal escapes for printf: the command names no path to expose.
        let encoded: String = path
            .display()
            .to_string()
            .bytes()
            .map(|byte| format!("\\{byte:03o}"))
            .collect();
        reads.push_str(&format!("cat \"$(printf '{encoded}')\"; echo; "));
    }
    let command = format!(
        "{reads}cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -a SUTURE_E2E_PLANTED; {}",
        test_command()
    );
    let environment_marker = "PLANTED-ENVIRONMENT";

    let run = |sandbox: &str| {
        let out = tempfile::tempdir().unwrap();
        let output = Command::new(suture_bin())
            .args(["heal", "--repo"])
            .arg(repo.path())
            .arg("--event")
            .arg(&event_path)
            .args(["--test-cmd", &command, "--sandbox", sandbox, "--out"])
            .arg(out.path())
            .env("SUTURE_E2E_PLANTED", environment_marker)
            .env_remove("SUTURE_LLM_BASE_URL")
            .env_remove("SUTURE_LLM_MODEL")
            .output()
            .unwrap();
        // A compound command gives suture no structured results: the
        // revert is plausible, not proven (exit 1), and the report is whole.
        assert_eq!(
            output.status.code(),
            Some(1),
            "{sandbox}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::read_to_string(out.path().join("report.json")).unwrap()
    };

    let sandboxed = run("bubblewrap");
    for (path, marker) in &planted {
        assert!(
            !sandboxed.contains(marker),
            "{} was readable in bubblewrap: {sandboxed}",
            path.display()
        );
    }
    assert!(!sandboxed.contains(environment_marker), "{sandboxed}");

    let control = run("process");
    for (path, marker) in &planted {
        assert!(
            control.contains(marker),
            "control: {} unread by the process backend: {control}",
            path.display()
        );
    }
    assert!(control.contains(environment_marker), "control: {control}");
}
