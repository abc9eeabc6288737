//! The sandbox runner: runs a repository's test command against a worktree
//! with no network, only the host directories a test needs (read-only), a
//! clean environment and time, memory, process and output limits, and
//! reports what happened as a [`RunOutcome`].
//!
//! A fix is only as good as the proof that it passes the tests, and that proof
//! runs code suture did not write (the repository's tests, plus whatever a
//! model put in a patch). So the run must not see suture's secrets, reach the
//! network or write outside the worktree, and must end, however the command
//! behaves. Three backends:
//!
//! - **bubblewrap** (default): Linux namespaces on this host.
//! - **docker**: a throwaway container of a production image, for
//!   repositories whose tests need that image's toolchain.
//! - **process**: the command runs directly, with the clean environment and
//!   the limits but **no isolation**: it reads everything suture can,
//!   `/proc/<suture's pid>/environ` included. Only by explicit opt-in (the
//!   configuration refuses it without `unsafe_allow_process_sandbox`).
//!
//! Linux only. This module is the one place in suture that spawns processes.
//!
//! **Limits, honestly.** The wall-clock timeout kills the whole process tree
//! (the process group; under bubblewrap the PID namespace; under docker the
//! container). The memory limit is `RLIMIT_AS` (under docker, the container's
//! cgroup limit): it caps *address space*, not resident memory, so runtimes
//! that reserve large virtual ranges up front (the JVM, V8/node,
//! AddressSanitizer) may need a higher limit or `0` (no limit). Under
//! bubblewrap, when the host delegates a cgroup v2 with the `memory` and
//! `pids` controllers, each run also gets a cgroup of its own (`memory.max`,
//! which counts tmpfs pages too, swap off, `pids.max`); see `cgroup`.
//! Without one the process limit is `RLIMIT_NPROC`, which counts every
//! process of the sandbox's *host* uid: `nobody` when suture runs as root,
//! else suture's own uid (its threads and concurrent runs share the budget).
//! There is no seccomp filter.
//!
//! ## bubblewrap
//!
//! The sandbox starts from an empty root and gets only what a test needs,
//! in mount order (later mounts win):
//!
//! 1. System directories, read-only: `/usr`, `/bin`, `/sbin`, `/lib*` and
//!    `/nix/store` where they exist (symlinks such as `/bin -> usr/bin` are
//!    recreated as symlinks), and a list of `/etc` entries: the loader's
//!    cache and configuration, `alternatives`, CA certificates (`ssl/certs`,
//!    not `ssl/private`), time zone, `nsswitch.conf`, `protocols`,
//!    `services`, `os-release`, fonts, perl, python and java configuration.
//!    Never `shadow`, `gshadow`, `sudoers`, `ssh`, `pip.conf`, `npmrc` or
//!    anything not listed.
//! 2. A fresh `/dev` (read-only, with a `/dev/shm` of at most 64 MiB within
//!    the `/tmp` size), a `/proc` of its own PID namespace, and a private
//!    `/tmp` tmpfs sized to [`SandboxConfig::tmp_bytes`], else the memory
//!    limit (with `HOME=/tmp/home`, `TMPDIR=/tmp`). bubblewrap before 0.8
//!    cannot size a tmpfs: the reason is logged and `/tmp` is unsized.
//!    There is no `/run`, `/home`, `/root`, `/var` or `/sys`: suture's data
//!    dir, configuration and key files, the invoking user's home, other
//!    repositories and daemon sockets are simply absent.
//! 3. Read-only exposures, each at its own path:
//!    - **absolute paths named by the command** (and, for a command starting
//!      with a bare name such as `pytest`, the program it resolves to on the
//!      command's `PATH`), where they resolve too: each is exposed as its
//!      directory (the path itself when it is a directory; for
//!      `…/bin/<exe>` the prefix above `bin`, i.e. the venv or install
//!      root). A directory that would be too broad (a top-level directory,
//!      a home or its ancestors, an ancestor of the worktree) gives way to
//!      the named file alone, or to nothing; paths in system directories
//!      are visible anyway and paths in `/etc`, `/proc`, `/sys`, `/dev`,
//!      `/run` and `/boot` are never exposed. Every unix socket and FIFO
//!      inside an exposed tree is masked (tmux, ssh-agent and X11 listen
//!      under `/tmp`); a tree too large or unreadable to check is not
//!      exposed. Anything else the command names becomes readable: that is
//!      the price of the rule;
//!    - the worktree's git directories and object alternates outside it, so
//!      git works inside a worktree that borrows another repository's
//!      objects (only the `objects` directory of that repository);
//!    - [`SandboxConfig::extra_ro_paths`], as given (not checked for sockets).
//! 4. The invoking user's well-known secret files and directories inside an
//!    exposed tree (a toolchain in the home), masked (an empty read-only
//!    directory, `/dev/null` over a file): `~/.ssh`, `~/.aws`,
//!    `~/.config/gh`, `~/.git-credentials`, `~/.netrc`, `~/.docker`,
//!    `~/.pypirc`, `~/.npmrc`, `~/.gnupg`, `~/.kube`, `~/.config/gcloud`,
//!    `~/.azure`, and cargo's `credentials{,.toml}`.
//! 5. The worktree, read-write at its own path, as the working directory.
//! 6. Generated `/etc/passwd`, `/etc/group` (root and the sandbox user) and
//!    `/etc/hosts` (localhost); then the root itself is made read-only.
//!
//! Identity: a new user namespace in which the command is uid and gid 65534.
//! When suture runs as an ordinary user, that uid is suture's on the host
//! (the only mapping an unprivileged bubblewrap can make), so the worktree,
//! owned by suture, is writable. When suture runs as root, bwrap itself is
//! started as `nobody` (65534:65534, no supplementary groups), so host root
//! is not root in the sandbox: root-only files in an exposed tree stay
//! unreadable and `RLIMIT_NPROC` counts `nobody`'s processes. The worktree
//! is then lent to `nobody` for the run (owner changed recursively, without
//! following symlinks) and handed back to its owner, with what the run
//! wrote, afterwards. Paths `nobody` cannot walk to (a toolchain under
//! `/root`, a repository in a 0700 temp dir) are first bound, in a private
//! mount namespace of the bwrap process made while it is still root, onto
//! mount points in a staging directory anyone may traverse; the host's
//! mount table never changes.
//!
//! Namespaces: all of them (`--unshare-all`: no network but a loopback of its
//! own, a new PID namespace that dies with its first process), a new session
//! (no terminal injection), `--die-with-parent`, and no capabilities
//! (`--cap-drop ALL`). The environment is cleared and rebuilt from the
//! allow-list.
//!
//! Not covered: a path the operator names in the test command (or in
//! `extra_ro_paths`) is readable, secrets included.
//!
//! ## docker
//!
//! `docker run --rm --init --network none` with the memory limit as the
//! container's (`--memory`, swap included), at most 512 processes, no
//! capabilities, no privilege escalation, as the invoking user's uid:gid, the
//! worktree bound read-write at its own path as the working directory, and
//! only the allow-listed variables (`HOME` and `TMPDIR` are `/tmp`). `PATH` is
//! the image's own: the host's would name directories the image lacks.
//! [`SandboxConfig::extra_ro_paths`] are bound read-only at their own paths.
//!
//! The docker CLI itself runs with the host's environment (it needs
//! `DOCKER_HOST` and its config); the container gets none of it. On timeout
//! the container is killed by its generated name (killing the CLI alone
//! would leave it running). Exit status 125 is docker's own failure (engine
//! unreachable, image missing) and is reported as a setup error, not as a
//! failing test.

mod bubblewrap;
mod cgroup;
mod docker;
mod exec;
mod output;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use output::CappedOutput;

/// Where the command runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Linux namespaces through `bwrap` on this host.
    #[default]
    Bubblewrap,
    /// A throwaway container of `image` through the `docker` CLI.
    Docker {
        /// The image to run, e.g. `python:3.12-slim`; pulled by docker when
        /// missing.
        image: String,
    },
    /// Directly on this host, without isolation (explicit opt-in only).
    Process,
}

impl Backend {
    /// The backend's name as configs and outcomes spell it.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Bubblewrap => "bubblewrap",
            Backend::Docker { .. } => "docker",
            Backend::Process => "process",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a command is sandboxed and limited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// Where the command runs. Default: bubblewrap.
    pub backend: Backend,
    /// Wall-clock limit; on expiry the whole process tree is killed.
    /// Default: 10 minutes.
    #[serde(rename = "timeout_ms", with = "millis")]
    pub timeout: Duration,
    /// Address-space limit in bytes (`RLIMIT_AS`; docker: `--memory`), `0` for
    /// none; under bubblewrap also the run's cgroup `memory.max` when the host
    /// delegates a cgroup. Default: 4 GiB. See the module docs for what it
    /// does not cover.
    pub memory_bytes: u64,
    /// Size of bubblewrap's private `/tmp` in bytes; `0` means the memory
    /// limit's. Default: 0.
    pub tmp_bytes: u64,
    /// Most processes (and threads) of a bubblewrap run: the cgroup's
    /// `pids.max`, else `RLIMIT_NPROC` of the sandbox's host uid; `0` for
    /// none. Default: 512.
    pub max_processes: u64,
    /// Bytes of output kept: the first and last halves, with a count of what
    /// was dropped in between. Default: 64 KiB.
    pub output_cap_bytes: usize,
    /// Names of host environment variables whose values the command sees.
    /// Nothing else is passed but `HOME` and `TMPDIR`, which point at private
    /// directories. Default: `PATH`, `LANG`, `LC_ALL`, `TZ`.
    pub env_allow: Vec<String>,
    /// Variables set to these values for the command, whatever the host
    /// has (a recovery action's `SUTURE_INCIDENT_*`: event text reaches a
    /// command only this way, never in its text). `HOME` and `TMPDIR` are
    /// not settable. Default: none.
    pub env_set: Vec<(String, String)>,
    /// Absolute host paths exposed read-only at the same path, in addition to
    /// the defaults (bubblewrap, docker; the process backend sees the whole
    /// host anyway). They must exist.
    pub extra_ro_paths: Vec<PathBuf>,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            backend: Backend::Bubblewrap,
            timeout: Duration::from_secs(10 * 60),
            memory_bytes: 4 << 30,
            tmp_bytes: 0,
            max_processes: 512,
            output_cap_bytes: 64 << 10,
            env_allow: ["PATH", "LANG", "LC_ALL", "TZ"].map(String::from).to_vec(),
            env_set: Vec::new(),
            extra_ro_paths: Vec::new(),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The command as given (run as `sh -c command`).
    pub command: String,
    /// The backend's name (`bubblewrap`, `docker`, `process`).
    pub backend: String,
    /// Exit status, when the command exited. Under bubblewrap and docker a
    /// command killed by signal `n` reports `128 + n` here, as a shell would.
    pub exit: Option<i32>,
    /// The signal that killed the runner's direct child (the shell, or `bwrap`
    /// / the docker CLI): `SIGKILL` after a timeout.
    pub signal: Option<i32>,
    /// The wall-clock limit expired and the process tree was killed.
    pub timed_out: bool,
    /// From spawn to exit.
    #[serde(rename = "duration_ms", with = "millis")]
    pub duration: Duration,
    /// stdout and stderr, interleaved as written, capped.
    pub output: CappedOutput,
}

impl RunOutcome {
    /// The command exited with status 0 within the time limit.
    pub fn passed(&self) -> bool {
        self.exit == Some(0) && !self.timed_out
    }

    /// The last `n_bytes` of the kept output (fewer if the cut would split a
    /// character), including the dropped-bytes marker if it falls in range.
    pub fn output_tail(&self, n_bytes: usize) -> String {
        let text = self.output.text();
        let mut start = text.len().saturating_sub(n_bytes);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text[start..].to_string()
    }
}

/// Why a command could not be run (a command that runs and fails is a
/// [`RunOutcome`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The backend cannot be used on this host.
    #[error("sandbox backend {backend} is unavailable: {reason}")]
    BackendUnavailable {
        /// The backend's name.
        backend: String,
        /// What is missing or refused.
        reason: String,
    },
    /// The backend started but could not build the sandbox (a mount or a
    /// namespace refused, the docker engine failed); the command never ran.
    #[error("sandbox backend {backend} could not start the command: {message}")]
    Setup {
        /// The backend's name.
        backend: String,
        /// The backend's own words, from its output.
        message: String,
    },
    /// The worktree or an extra read-only path is unusable.
    #[error("sandbox path {path}: {reason}")]
    InvalidPath {
        /// The path as configured or given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Preparing the run (pipes, private directories) failed.
    #[error("preparing the sandbox: {step}")]
    Prepare {
        /// What was being prepared.
        step: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The backend's process could not be spawned.
    #[error("spawning the sandbox")]
    Spawn(#[source] io::Error),
    /// Waiting for the command or reading its output failed; the process
    /// tree has been killed.
    #[error("waiting for the sandboxed command")]
    Wait(#[source] io::Error),
}

/// Runs `sh -c command` in `worktree` under `config`.
///
/// Blocks until the command exits or the timeout kills it; callers on an
/// async runtime run this on a blocking thread. Every process the command
/// started is gone when this returns.
///
/// # Errors
///
/// [`SandboxError`] when the command could not be run at all; a failing or
/// timed-out command is an `Ok` outcome that did not [`pass`](RunOutcome::passed).
pub fn run(
    config: &SandboxConfig,
    worktree: &Path,
    command: &str,
) -> Result<RunOutcome, SandboxError> {
    run_with_host(config, worktree, command, &Host::current())
}

/// Checks that `backend` can run commands here: `bwrap` is installed and may
/// create namespaces (by running `true` in a sandbox), or the docker CLI is
/// installed and its engine answers.
///
/// # Errors
///
/// [`SandboxError::BackendUnavailable`] with the reason.
pub fn probe(backend: &Backend) -> Result<(), SandboxError> {
    match backend {
        Backend::Bubblewrap => bubblewrap::probe(),
        Backend::Docker { .. } => docker::probe(),
        Backend::Process => Ok(()),
    }
}

/// What the runner reads from the invoking user's host; a value so tests can
/// stand in a home directory of their own.
#[derive(Debug, Clone)]
struct Host {
    /// The invoking user's homes, whose secret files are masked: `$HOME` and
    /// the passwd entry's (services often run without `HOME`, or with another).
    homes: Vec<PathBuf>,
    /// `CARGO_HOME`, when set (its credentials are masked too).
    cargo_home: Option<PathBuf>,
    /// Whether suture runs as root, whose sandbox then runs as `nobody`.
    is_root: bool,
}

impl Host {
    fn current() -> Host {
        let absolute = |name: &str| {
            std::env::var_os(name)
                .map(PathBuf::from)
                .filter(|path| path.is_absolute())
        };
        let mut homes: Vec<PathBuf> = absolute("HOME").into_iter().collect();
        if let Some(home) = passwd_home()
            && !homes.contains(&home)
        {
            homes.push(home);
        }
        Host {
            homes,
            cargo_home: absolute("CARGO_HOME"),
            // SAFETY: geteuid cannot fail and touches no memory.
            is_root: unsafe { libc::geteuid() } == 0,
        }
    }
}

/// The home directory of the current uid's passwd entry.
fn passwd_home() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt as _;
    let mut buffer: Vec<libc::c_char> = vec![0; 16 << 10];
    // SAFETY: an all-zero passwd is a valid value for getpwuid_r to fill.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to a live local, `buffer.len()` is its size,
    // and getuid cannot fail.
    let status = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    if status != 0 || result.is_null() || entry.pw_dir.is_null() {
        return None;
    }
    // SAFETY: on success pw_dir points to a NUL-terminated string in `buffer`.
    let dir = unsafe { std::ffi::CStr::from_ptr(entry.pw_dir) };
    let dir = PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()));
    dir.is_absolute().then_some(dir)
}

fn run_with_host(
    config: &SandboxConfig,
    worktree: &Path,
    command: &str,
    host: &Host,
) -> Result<RunOutcome, SandboxError> {
    let worktree = checked_worktree(worktree)?;
    check_extra_paths(config)?;
    let span =
        tracing::debug_span!("sandbox", backend = %config.backend, worktree = %worktree.display());
    let _entered = span.enter();
    tracing::debug!(command, "sandbox run starting");
    let finished = match &config.backend {
        Backend::Bubblewrap => bubblewrap::run(config, &worktree, command, host)?,
        Backend::Docker { image } => docker::run(config, image, &worktree, command)?,
        Backend::Process => run_process(config, &worktree, command)?,
    };
    let outcome = RunOutcome {
        command: command.to_string(),
        backend: config.backend.name().to_string(),
        exit: finished.exit,
        signal: finished.signal,
        timed_out: finished.timed_out,
        duration: finished.duration,
        output: finished.output,
    };
    tracing::info!(
        exit = ?outcome.exit,
        signal = ?outcome.signal,
        timed_out = outcome.timed_out,
        duration_ms = outcome.duration.as_millis() as u64,
        output_bytes = outcome.output.total_bytes,
        "sandbox run finished"
    );
    Ok(outcome)
}

/// The process backend: the clean environment and the limits, no isolation.
fn run_process(
    config: &SandboxConfig,
    worktree: &Path,
    command: &str,
) -> Result<exec::Finished, SandboxError> {
    // HOME and TMPDIR are fresh per run and removed after it, so runs do not
    // share caches or see the invoking user's dotfiles through HOME.
    let private = tempfile::Builder::new()
        .prefix("suture-sandbox-")
        .tempdir()
        .map_err(|source| SandboxError::Prepare {
            step: "creating the private home",
            source,
        })?;
    let home = private.path().join("home");
    let tmp = private.path().join("tmp");
    for dir in [&home, &tmp] {
        std::fs::create_dir(dir).map_err(|source| SandboxError::Prepare {
            step: "creating the private home",
            source,
        })?;
    }
    let env = command_env(config, home.into_os_string(), tmp.into_os_string());
    let args = [OsString::from("-c"), OsString::from(command)];
    exec::execute(
        &exec::Launch {
            program: Path::new(SHELL),
            args: &args,
            cwd: worktree,
            env: Some(&env),
            timeout: config.timeout,
            memory_bytes: config.memory_bytes,
            output_cap_bytes: config.output_cap_bytes,
            keep_fds: &[],
            max_processes: 0,
            run_as: None,
            cgroup_procs: None,
            private_binds: &[],
        },
        &mut || {},
    )
}

/// The shell that runs commands on this host (bubblewrap, process).
const SHELL: &str = "/bin/sh";

/// The command's environment: the allow-listed host variables that are set,
/// then `HOME` and `TMPDIR` (which win over an allow-listed namesake).
fn command_env(
    config: &SandboxConfig,
    home: OsString,
    tmpdir: OsString,
) -> Vec<(String, OsString)> {
    let mut env: Vec<(String, OsString)> = Vec::new();
    for name in &config.env_allow {
        if matches!(name.as_str(), "HOME" | "TMPDIR") || env.iter().any(|(seen, _)| seen == name) {
            continue;
        }
        if let Some(value) = std::env::var_os(name) {
            env.push((name.clone(), value));
        }
    }
    for (name, value) in &config.env_set {
        if matches!(name.as_str(), "HOME" | "TMPDIR") {
            continue;
        }
        env.retain(|(seen, _)| seen != name);
        env.push((name.clone(), OsString::from(value)));
    }
    env.push(("HOME".to_string(), home));
    env.push(("TMPDIR".to_string(), tmpdir));
    env
}

/// The worktree as an absolute, symlink-free directory path: it is bound at
/// that path inside the sandbox and named on docker's command line.
fn checked_worktree(worktree: &Path) -> Result<PathBuf, SandboxError> {
    let invalid = |reason: String| SandboxError::InvalidPath {
        path: worktree.to_path_buf(),
        reason,
    };
    let canonical = worktree
        .canonicalize()
        .map_err(|error| invalid(format!("worktree cannot be resolved: {error}")))?;
    if !canonical.is_dir() {
        return Err(invalid("worktree is not a directory".to_string()));
    }
    if canonical.to_str().is_none() {
        return Err(invalid("worktree path is not valid UTF-8".to_string()));
    }
    Ok(canonical)
}

/// Extra read-only paths must be absolute and exist: a typo in the config is
/// an error, not a test that fails for want of a file.
fn check_extra_paths(config: &SandboxConfig) -> Result<(), SandboxError> {
    for path in &config.extra_ro_paths {
        let reason = if !path.is_absolute() {
            "extra read-only path is not absolute"
        } else if !path.exists() {
            "extra read-only path does not exist"
        } else {
            continue;
        };
        return Err(SandboxError::InvalidPath {
            path: path.clone(),
            reason: reason.to_string(),
        });
    }
    Ok(())
}

/// Finds `name` on the host's `PATH` (the runner clears the environment of
/// what it spawns, so programs are resolved here, once).
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// `Duration` as whole milliseconds in JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}
