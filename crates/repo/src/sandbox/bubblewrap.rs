//! The bubblewrap backend: gathers what the sandbox must expose and mask from
//! the host, builds the `bwrap` command line (a pure function, snapshotted in
//! the tests) and tells a failed sandbox setup from a failing command. The
//! layout and its reasons are in the parent module's docs.

use std::ffi::OsString;
use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::exec::{self, Finished, Launch};
use super::{Host, SandboxConfig, SandboxError};

/// The host directory replaced by an empty one inside the sandbox, below
/// which paths the command names are re-exposed. (`/run` is replaced too, but
/// never re-exposed: it holds daemon sockets.)
const PRIVATE_TMP: &str = "/tmp";

/// Most entries scanned for sockets in one exposed tree; a larger tree is not
/// exposed (the scan is what makes exposing it safe).
const MAX_SCANNED: usize = 200_000;

/// `HOME` inside the sandbox.
const HOME: &str = "/tmp/home";

/// Secret locations relative to the invoking user's home.
const HOME_SECRETS: [&str; 13] = [
    ".ssh",
    ".aws",
    ".config/gh",
    ".git-credentials",
    ".netrc",
    ".docker",
    ".pypirc",
    ".npmrc",
    ".gnupg",
    ".kube",
    ".config/gcloud",
    ".azure",
    ".config/hub",
];

pub(super) fn run(
    config: &SandboxConfig,
    worktree: &Path,
    command: &str,
    host: &Host,
) -> Result<Finished, SandboxError> {
    let bwrap = super::find_program("bwrap").ok_or_else(not_installed)?;
    let (status_read, status_write) = exec::pipe().map_err(|source| SandboxError::Prepare {
        step: "creating the status pipe",
        source,
    })?;
    let layout = Layout::gather(config, worktree, command, host, status_write.as_raw_fd());
    let args = layout.args();
    tracing::debug!(?args, "bwrap command line");
    let finished = exec::execute(
        &Launch {
            program: &bwrap,
            args: &args,
            cwd: worktree,
            env: Some(&[]),
            timeout: config.timeout,
            memory_bytes: config.memory_bytes,
            output_cap_bytes: config.output_cap_bytes,
            keep_fd: Some(status_write.as_raw_fd()),
        },
        &mut || {},
    )?;
    // bwrap has exited: with our write end closed, the read ends at EOF.
    drop(status_write);
    let mut status = String::new();
    let _ = std::fs::File::from(status_read).read_to_string(&mut status);
    // A bwrap killed from outside (timeout, OOM killer) wrote no exit code
    // either; that is an outcome, not a setup failure.
    if finished.signal.is_none() && !ran_command(&status) {
        let message = finished.output.text().trim().to_string();
        return Err(SandboxError::Setup {
            backend: "bubblewrap".to_string(),
            message: if message.is_empty() {
                format!("bwrap exited with {:?} before running it", finished.exit)
            } else {
                message
            },
        });
    }
    Ok(finished)
}

pub(super) fn probe() -> Result<(), SandboxError> {
    super::find_program("bwrap").ok_or_else(not_installed)?;
    let unavailable = |reason: String| SandboxError::BackendUnavailable {
        backend: "bubblewrap".to_string(),
        reason,
    };
    let worktree = tempfile::tempdir()
        .map_err(|error| unavailable(format!("creating a trial worktree: {error}")))?;
    let config = SandboxConfig {
        timeout: Duration::from_secs(30),
        ..SandboxConfig::default()
    };
    match super::run(&config, worktree.path(), "true") {
        Ok(outcome) if outcome.passed() => Ok(()),
        Ok(outcome) => Err(unavailable(format!(
            "a trial run of `true` failed: {}",
            outcome.output_tail(500).trim()
        ))),
        Err(SandboxError::Setup { message, .. }) => Err(unavailable(message)),
        Err(error) => Err(unavailable(error_chain(&error))),
    }
}

fn not_installed() -> SandboxError {
    SandboxError::BackendUnavailable {
        backend: "bubblewrap".to_string(),
        reason: "bwrap not found on PATH (install bubblewrap)".to_string(),
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// bubblewrap writes `{"exit-code": n}` to its status fd only when the
/// command ran; a failed mount or exec ends without it.
fn ran_command(status: &str) -> bool {
    status.lines().any(|line| {
        serde_json::from_str::<serde_json::Value>(line)
            .is_ok_and(|value| value.get("exit-code").is_some())
    })
}

/// Everything the bwrap command line depends on, gathered from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    worktree: PathBuf,
    /// Whether `/run` exists on the host (and so is replaced).
    mask_run: bool,
    /// `(link, target)` for each symlink directly in the host's `/run`.
    run_symlinks: Vec<(PathBuf, PathBuf)>,
    exposed: Vec<PathBuf>,
    masked_dirs: Vec<PathBuf>,
    masked_files: Vec<PathBuf>,
    env: Vec<(String, OsString)>,
    status_fd: i32,
    command: String,
}

impl Layout {
    fn gather(
        config: &SandboxConfig,
        worktree: &Path,
        command: &str,
        host: &Host,
        status_fd: i32,
    ) -> Layout {
        let run_dir = Path::new("/run");
        let mask_run = run_dir.symlink_metadata().is_ok_and(|meta| meta.is_dir());
        let mut run_symlinks = Vec::new();
        if mask_run {
            for entry in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
                let link = entry.path();
                if let Ok(target) = std::fs::read_link(&link) {
                    run_symlinks.push((link, target));
                }
            }
            run_symlinks.sort();
        }

        let mut wanted = Vec::new();
        for path in command_paths(command) {
            let resolved = path.canonicalize().ok();
            for path in std::iter::once(path).chain(resolved) {
                let Ok(meta) = path.metadata() else { continue };
                let dir = exposure(&path, meta.is_dir(), worktree);
                wanted.extend(dir.filter(|dir| is_canonical(dir)));
            }
        }
        for path in git_paths(worktree) {
            if path.is_dir() && !path.starts_with(worktree) && below_tmp(&path) {
                wanted.push(path);
            }
        }
        let mut exposed = Vec::new();
        let mut masked_dirs = Vec::new();
        let mut masked_files = Vec::new();
        // A unix socket or FIFO stays connectable through a read-only mount,
        // and under /tmp live tmux, ssh-agent and X11 sockets: each one in an
        // exposed tree is masked, and a tree that cannot be checked is not
        // exposed.
        for path in outermost(wanted) {
            match endpoints_under(&path) {
                Some(endpoints) if !endpoints.contains(&path) => {
                    masked_files.extend(endpoints);
                    exposed.push(path);
                }
                Some(_) => tracing::debug!(path = %path.display(), "not exposing a socket or fifo"),
                None => tracing::warn!(
                    path = %path.display(),
                    "not exposing a path the command names: too large or unreadable to check for sockets"
                ),
            }
        }
        exposed.extend(config.extra_ro_paths.iter().cloned());

        for path in secret_paths(host) {
            match path.metadata() {
                Ok(meta) if meta.is_dir() => masked_dirs.push(path),
                Ok(_) => masked_files.push(path),
                Err(_) => {}
            }
        }

        Layout {
            worktree: worktree.to_path_buf(),
            mask_run,
            run_symlinks,
            exposed,
            masked_dirs,
            masked_files,
            env: super::command_env(config, HOME.into(), "/tmp".into()),
            status_fd,
            command: command.to_string(),
        }
    }

    /// The bwrap command line (everything after `bwrap`).
    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |items: &[&dyn AsRef<std::ffi::OsStr>]| {
            args.extend(items.iter().map(|item| item.as_ref().to_os_string()));
        };
        push(&[&"--unshare-all", &"--die-with-parent", &"--new-session"]);
        push(&[&"--cap-drop", &"ALL"]);
        push(&[&"--ro-bind", &"/", &"/"]);
        push(&[&"--dev", &"/dev", &"--proc", &"/proc"]);
        push(&[&"--tmpfs", &"/tmp", &"--dir", &HOME]);
        if self.mask_run {
            push(&[&"--tmpfs", &"/run"]);
            for (link, target) in &self.run_symlinks {
                push(&[&"--symlink", target, link]);
            }
        }
        for path in &self.exposed {
            push(&[&"--ro-bind", path, path]);
        }
        for path in &self.masked_dirs {
            push(&[&"--tmpfs", path]);
        }
        for path in &self.masked_files {
            push(&[&"--ro-bind", &"/dev/null", path]);
        }
        push(&[&"--bind", &self.worktree, &self.worktree]);
        push(&[&"--chdir", &self.worktree]);
        push(&[&"--clearenv"]);
        for (name, value) in &self.env {
            push(&[&"--setenv", name, value]);
        }
        push(&[&"--json-status-fd", &self.status_fd.to_string()]);
        push(&[&super::SHELL, &"-c", &self.command]);
        args
    }
}

/// Absolute paths named in a shell command, lexically normalised. Words are
/// split at whitespace and shell punctuation (`=` and `:` too, for
/// `--opt=/path` and `PATH`-like lists); a glob is cut at its directory.
fn command_paths(command: &str) -> Vec<PathBuf> {
    let separators = |c: char| c.is_whitespace() || "'\"`;|&<>(){}=:,$".contains(c);
    let mut paths = Vec::new();
    for word in command.split(separators) {
        if !word.starts_with('/') {
            continue;
        }
        let word = match word.find(['*', '?', '[']) {
            Some(glob) => &word[..=word[..glob].rfind('/').unwrap_or(0)],
            None => word,
        };
        let mut path = PathBuf::from("/");
        for component in Path::new(word).components() {
            match component {
                Component::Normal(name) => path.push(name),
                Component::ParentDir => {
                    path.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        if path != Path::new("/") && !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

/// What to expose so `path` (existing on the host; `is_dir` says what it is)
/// is reachable: `None` when it is in the worktree or visible anyway.
fn exposure(path: &Path, is_dir: bool, worktree: &Path) -> Option<PathBuf> {
    if path.starts_with(worktree) {
        return None;
    }
    if !below_tmp(path) {
        return None;
    }
    let root = Path::new(PRIVATE_TMP);
    let mut candidates: Vec<&Path> = Vec::new();
    if is_dir {
        candidates.push(path);
    } else if let Some(parent) = path.parent() {
        let in_bin = matches!(
            parent.file_name().and_then(|name| name.to_str()),
            Some("bin" | "sbin")
        );
        if let (true, Some(prefix)) = (in_bin, parent.parent()) {
            candidates.push(prefix);
        }
        candidates.push(parent);
    }
    let strictly_below = |dir: &&Path| dir.starts_with(root) && *dir != root;
    let dir = candidates.into_iter().find(strictly_below).unwrap_or(path);
    Some(dir.to_path_buf())
}

fn below_tmp(path: &Path) -> bool {
    path.starts_with(PRIVATE_TMP) && path != Path::new(PRIVATE_TMP)
}

/// Unix sockets and FIFOs at or under `root` (symlinks not followed: their
/// targets resolve inside the sandbox, where /tmp and /run are private).
/// `None` when the tree is larger than [`MAX_SCANNED`] or a directory in it
/// cannot be read.
fn endpoints_under(root: &Path) -> Option<Vec<PathBuf>> {
    use std::os::unix::fs::FileTypeExt as _;
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    let mut n_scanned = 0;
    while let Some(path) = pending.pop() {
        n_scanned += 1;
        if n_scanned > MAX_SCANNED {
            return None;
        }
        let kind = path.symlink_metadata().ok()?.file_type();
        if kind.is_socket() || kind.is_fifo() {
            found.push(path);
        } else if kind.is_dir() {
            for entry in std::fs::read_dir(&path).ok()? {
                pending.push(entry.ok()?.path());
            }
        }
    }
    Some(found)
}

fn is_canonical(path: &Path) -> bool {
    path.canonicalize().is_ok_and(|canonical| canonical == path)
}

/// Drops paths inside another path of the list, sorted.
fn outermost(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort();
    paths.dedup();
    let mut kept: Vec<PathBuf> = Vec::new();
    for path in paths {
        if !kept.iter().any(|outer| path.starts_with(outer)) {
            kept.push(path);
        }
    }
    kept
}

/// The worktree's git directory when it lives elsewhere (`.git` file), its
/// common directory, and every object alternate, followed a few levels.
fn git_paths(worktree: &Path) -> Vec<PathBuf> {
    let dot_git = worktree.join(".git");
    let git_dir = if dot_git.is_dir() {
        dot_git
    } else {
        let Ok(text) = std::fs::read_to_string(&dot_git) else {
            return Vec::new();
        };
        let Some(dir) = text.lines().find_map(|line| line.strip_prefix("gitdir:")) else {
            return Vec::new();
        };
        worktree.join(dir.trim())
    };
    let mut paths = vec![git_dir.clone()];
    if let Ok(common) = std::fs::read_to_string(git_dir.join("commondir")) {
        paths.push(git_dir.join(common.trim()));
    }
    let mut object_dirs: Vec<PathBuf> = paths.iter().map(|dir| dir.join("objects")).collect();
    for _depth in 0..5 {
        let mut next = Vec::new();
        for objects in &object_dirs {
            let Ok(text) = std::fs::read_to_string(objects.join("info/alternates")) else {
                continue;
            };
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let alternate = objects.join(line);
                if !paths.contains(&alternate) {
                    paths.push(alternate.clone());
                    next.push(alternate);
                }
            }
        }
        object_dirs = next;
    }
    paths
        .into_iter()
        .filter_map(|path| path.canonicalize().ok())
        .collect()
}

/// Secret locations of the invoking user (existing or not).
fn secret_paths(host: &Host) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for home in &host.homes {
        paths.extend(HOME_SECRETS.iter().map(|name| home.join(name)));
        paths.push(home.join(".cargo/credentials"));
        paths.push(home.join(".cargo/credentials.toml"));
    }
    if let Some(cargo_home) = &host.cargo_home {
        paths.push(cargo_home.join("credentials"));
        paths.push(cargo_home.join("credentials.toml"));
    }
    paths.dedup();
    paths
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use expect_test::{Expect, expect};

    use super::{Layout, command_paths, exposure, outermost, ran_command};

    /// Shows the absolute paths found in `command`.
    fn check_paths(command: &str, expect: Expect) {
        let paths: Vec<String> = command_paths(command)
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        expect.assert_eq(&paths.join(" "));
    }

    /// Absolute words are found at shell punctuation, `=` and `:`; relative
    /// words and the bare root are not paths to expose.
    #[test]
    fn paths_in_commands() {
        check_paths(
            "/tmp/x/venv/bin/python -m pytest tests/ --rootdir=/tmp/x/wt",
            expect!["/tmp/x/venv/bin/python /tmp/x/wt"],
        );
        check_paths(
            "PYTHONPATH=/tmp/a/lib:/tmp/b/lib make test && echo '/tmp/c' > log",
            expect!["/tmp/a/lib /tmp/b/lib /tmp/c"],
        );
        check_paths("cd / && ls ./x ~/y", expect![""]);
    }

    /// `..` and `.` are resolved lexically and a glob is cut at its directory.
    #[test]
    fn paths_are_normalised() {
        check_paths(
            "/tmp/x/./venv/../bin/tool /tmp/y/tests/test_*.py",
            expect!["/tmp/x/bin/tool /tmp/y/tests"],
        );
    }

    /// Shows what is exposed for `path` (a file unless it ends in `/`) with
    /// the worktree at `/tmp/wt`.
    fn check_exposure(path: &str, expect: Expect) {
        let is_dir = path.ends_with('/');
        let exposed = exposure(
            Path::new(path.trim_end_matches('/')),
            is_dir,
            Path::new("/tmp/wt"),
        );
        expect.assert_eq(&format!("{exposed:?}"));
    }

    /// A `bin/<exe>` exposes its prefix, another file its directory, a
    /// directory itself; nothing in the worktree or outside the private roots;
    /// a path whose directory is `/tmp` itself alone; never anything in `/run`.
    #[test]
    fn exposure_rule() {
        check_exposure(
            "/tmp/x/venvs/p/bin/python",
            expect![[r#"Some("/tmp/x/venvs/p")"#]],
        );
        check_exposure("/tmp/x/data/file.txt", expect![[r#"Some("/tmp/x/data")"#]]);
        check_exposure("/tmp/x/data/", expect![[r#"Some("/tmp/x/data")"#]]);
        check_exposure("/tmp/bin/tool", expect![[r#"Some("/tmp/bin")"#]]);
        check_exposure("/tmp/file.txt", expect![[r#"Some("/tmp/file.txt")"#]]);
        check_exposure("/tmp/", expect!["None"]);
        check_exposure("/tmp/wt/src/main.py", expect!["None"]);
        check_exposure("/usr/bin/python3", expect!["None"]);
        check_exposure("/run/user/0/tool", expect!["None"]);
    }

    /// Nested exposures collapse into the outermost.
    #[test]
    fn outermost_paths() {
        let paths = ["/tmp/a/b", "/tmp/a", "/tmp/ab", "/tmp/a/c/d", "/tmp/a"].map(PathBuf::from);
        expect![[r#"["/tmp/a", "/tmp/ab"]"#]]
            .assert_eq(&format!("{:?}", outermost(paths.to_vec())));
    }

    /// The status fd says whether the command ran.
    #[test]
    fn status_parsing() {
        let ran = "{ \"child-pid\": 7 }\n{ \"exit-code\": 3 }\n";
        let setup_failed = "{ \"child-pid\": 7 }\n";
        assert!(ran_command(ran));
        assert!(!ran_command(setup_failed));
        assert!(!ran_command(""));
    }

    /// The whole command line: host read-only, private /tmp and /run with the
    /// /run symlinks, exposures, masks, then the worktree, the clean
    /// environment and the shell.
    #[test]
    fn command_line() {
        let layout = Layout {
            worktree: PathBuf::from("/tmp/suture-worktree-1"),
            mask_run: true,
            run_symlinks: vec![(PathBuf::from("/run/shm"), PathBuf::from("/dev/shm"))],
            exposed: vec![PathBuf::from("/tmp/x/venvs/p")],
            masked_dirs: vec![PathBuf::from("/home/u/.ssh")],
            masked_files: vec![PathBuf::from("/home/u/.netrc")],
            env: vec![
                ("PATH".to_string(), "/usr/bin:/bin".into()),
                ("HOME".to_string(), "/tmp/home".into()),
                ("TMPDIR".to_string(), "/tmp".into()),
            ],
            status_fd: 9,
            command: "/tmp/x/venvs/p/bin/python -m pytest".to_string(),
        };
        let args: Vec<String> = layout
            .args()
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let args = args.join(" ").replace(" --", "\n--");
        expect![[r#"
            --unshare-all
            --die-with-parent
            --new-session
            --cap-drop ALL
            --ro-bind / /
            --dev /dev
            --proc /proc
            --tmpfs /tmp
            --dir /tmp/home
            --tmpfs /run
            --symlink /dev/shm /run/shm
            --ro-bind /tmp/x/venvs/p /tmp/x/venvs/p
            --tmpfs /home/u/.ssh
            --ro-bind /dev/null /home/u/.netrc
            --bind /tmp/suture-worktree-1 /tmp/suture-worktree-1
            --chdir /tmp/suture-worktree-1
            --clearenv
            --setenv PATH /usr/bin:/bin
            --setenv HOME /tmp/home
            --setenv TMPDIR /tmp
            --json-status-fd 9 /bin/sh -c /tmp/x/venvs/p/bin/python -m pytest"#]]
        .assert_eq(&args);
    }
}
