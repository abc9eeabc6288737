//! The docker backend: the `docker run` command line (a pure function,
//! snapshotted in the tests), killing the container on timeout, and the
//! probe of the CLI and engine. The flags and their reasons are in the parent
//! module's docs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::exec::{self, Finished, Launch};
use super::{SandboxConfig, SandboxError};

/// How long host-side docker commands (probe, kill) may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// Exit status of `docker run` when docker itself failed.
const DOCKER_FAILED: i32 = 125;

pub(super) fn run(
    config: &SandboxConfig,
    image: &str,
    worktree: &Path,
    command: &str,
) -> Result<Finished, SandboxError> {
    let docker = super::find_program("docker").ok_or_else(not_installed)?;
    let bound = std::iter::once(worktree).chain(config.extra_ro_paths.iter().map(PathBuf::as_path));
    for path in bound {
        if path.to_string_lossy().contains(':') {
            return Err(SandboxError::InvalidPath {
                path: path.to_path_buf(),
                reason: "a path with ':' cannot be bound by docker -v".to_string(),
            });
        }
    }
    let mut env = super::command_env(config, "/tmp".into(), "/tmp".into());
    env.retain(|(name, _)| name != "PATH");
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    let user = unsafe { (libc::getuid(), libc::getgid()) };
    let spec = DockerRun {
        image,
        name: container_name(),
        worktree,
        read_only: &config.extra_ro_paths,
        env: &env,
        memory_bytes: config.memory_bytes,
        user,
        command,
    };
    let args = spec.args();
    let mut kill_container = || kill(&docker, &spec.name);
    let finished = exec::execute(
        &Launch {
            program: &docker,
            args: &args,
            cwd: worktree,
            env: None,
            timeout: config.timeout,
            memory_bytes: 0,
            output_cap_bytes: config.output_cap_bytes,
            keep_fds: &[],
            max_processes: 0,
            run_as: None,
            cgroup_procs: None,
            private_binds: &[],
        },
        &mut kill_container,
    )?;
    if !finished.timed_out && finished.exit == Some(DOCKER_FAILED) {
        return Err(SandboxError::Setup {
            backend: "docker".to_string(),
            message: finished.output.text().trim().to_string(),
        });
    }
    Ok(finished)
}

pub(super) fn probe() -> Result<(), SandboxError> {
    let docker = super::find_program("docker").ok_or_else(not_installed)?;
    let unavailable = |reason: String| SandboxError::BackendUnavailable {
        backend: "docker".to_string(),
        reason,
    };
    let args = ["version", "--format", "{{.Server.Version}}"].map(OsString::from);
    let finished = exec::execute(
        &Launch {
            program: &docker,
            args: &args,
            cwd: Path::new("/"),
            env: None,
            timeout: CLI_TIMEOUT,
            memory_bytes: 0,
            output_cap_bytes: 4 << 10,
            keep_fds: &[],
            max_processes: 0,
            run_as: None,
            cgroup_procs: None,
            private_binds: &[],
        },
        &mut || {},
    )
    .map_err(|error| unavailable(format!("running `docker version`: {error}")))?;
    if finished.timed_out {
        return Err(unavailable(format!(
            "docker engine did not answer within {}s",
            CLI_TIMEOUT.as_secs()
        )));
    }
    if finished.exit != Some(0) {
        let text = finished.output.text();
        let last_line = text
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("");
        return Err(unavailable(format!(
            "docker engine unreachable: {}",
            last_line.trim()
        )));
    }
    Ok(())
}

fn not_installed() -> SandboxError {
    SandboxError::BackendUnavailable {
        backend: "docker".to_string(),
        reason: "docker cli not found on PATH".to_string(),
    }
}

/// `docker kill`, after a timeout; failures are logged (the container may
/// have exited meanwhile, and `--rm` removes it either way once it stops).
fn kill(docker: &Path, name: &str) {
    let args = [OsString::from("kill"), OsString::from(name)];
    let result = exec::execute(
        &Launch {
            program: docker,
            args: &args,
            cwd: Path::new("/"),
            env: None,
            timeout: CLI_TIMEOUT,
            memory_bytes: 0,
            output_cap_bytes: 4 << 10,
            keep_fds: &[],
            max_processes: 0,
            run_as: None,
            cgroup_procs: None,
            private_binds: &[],
        },
        &mut || {},
    );
    match result {
        Ok(finished) if finished.exit == Some(0) => {}
        Ok(finished) => tracing::warn!(
            container = name,
            exit = ?finished.exit,
            output = %finished.output.text().trim(),
            "docker kill failed"
        ),
        Err(error) => tracing::warn!(container = name, error = %error, "docker kill failed"),
    }
}

/// A container name unique to this run, so a timeout kills exactly it.
fn container_name() -> String {
    static N_RUNS: AtomicU64 = AtomicU64::new(0);
    let n_run = N_RUNS.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    format!("suture-sandbox-{}-{n_run}-{nanos:09}", std::process::id())
}

/// One `docker run`, as data.
struct DockerRun<'a> {
    image: &'a str,
    name: String,
    worktree: &'a Path,
    /// Host paths bound read-only at their own paths.
    read_only: &'a [PathBuf],
    env: &'a [(String, OsString)],
    memory_bytes: u64,
    user: (u32, u32),
    command: &'a str,
}

impl DockerRun<'_> {
    /// The command line after `docker`.
    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = ["run", "--rm", "--init", "--name"]
            .map(OsString::from)
            .to_vec();
        args.push(self.name.clone().into());
        args.extend(["--network", "none"].map(OsString::from));
        if self.memory_bytes > 0 {
            let bytes = self.memory_bytes.to_string();
            // Swap equal to memory: no swap on top of the limit.
            args.extend([
                "--memory".into(),
                bytes.clone().into(),
                "--memory-swap".into(),
                bytes.into(),
            ]);
        }
        args.extend(
            [
                "--pids-limit",
                "512",
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
            ]
            .map(OsString::from),
        );
        args.push("--user".into());
        args.push(format!("{}:{}", self.user.0, self.user.1).into());
        let mut volume = self.worktree.as_os_str().to_os_string();
        volume.push(":");
        volume.push(self.worktree);
        for path in self.read_only {
            let mut volume = path.as_os_str().to_os_string();
            volume.push(":");
            volume.push(path);
            volume.push(":ro");
            args.extend([OsString::from("-v"), volume]);
        }
        args.extend([
            "-v".into(),
            volume,
            "-w".into(),
            self.worktree.as_os_str().to_os_string(),
        ]);
        for (name, value) in self.env {
            let mut assignment = OsString::from(format!("{name}="));
            assignment.push(value);
            args.extend([OsString::from("--env"), assignment]);
        }
        args.extend([self.image, "sh", "-c", self.command].map(OsString::from));
        args
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use expect_test::expect;

    use super::DockerRun;

    /// The full `docker run` line: no network, memory without extra swap,
    /// process and privilege limits, the invoking user, the worktree at its
    /// own path, only the given variables, then the image and the shell.
    #[test]
    fn run_arguments() {
        let env = [
            ("LANG".to_string(), "C.UTF-8".into()),
            ("HOME".to_string(), "/tmp".into()),
            ("TMPDIR".to_string(), "/tmp".into()),
        ];
        let spec = DockerRun {
            image: "python:3.12-slim",
            name: "suture-sandbox-1-0-000000001".to_string(),
            worktree: Path::new("/tmp/suture-worktree-1"),
            read_only: &[PathBuf::from("/opt/cache")],
            env: &env,
            memory_bytes: 4 << 30,
            user: (1000, 1000),
            command: "python -m pytest -x",
        };
        let args: Vec<String> = spec
            .args()
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        expect![[r#"
            [
                "run",
                "--rm",
                "--init",
                "--name",
                "suture-sandbox-1-0-000000001",
                "--network",
                "none",
                "--memory",
                "4294967296",
                "--memory-swap",
                "4294967296",
                "--pids-limit",
                "512",
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
                "--user",
                "1000:1000",
                "-v",
                "/opt/cache:/opt/cache:ro",
                "-v",
                "/tmp/suture-worktree-1:/tmp/suture-worktree-1",
                "-w",
                "/tmp/suture-worktree-1",
                "--env",
                "LANG=C.UTF-8",
                "--env",
                "HOME=/tmp",
                "--env",
                "TMPDIR=/tmp",
                "python:3.12-slim",
                "sh",
                "-c",
                "python -m pytest -x",
            ]
        "#]]
        .assert_debug_eq(&args);
    }

    /// Without a memory limit no memory flags are passed.
    #[test]
    fn run_arguments_without_memory_limit() {
        let spec = DockerRun {
            image: "alpine",
            name: "n".to_string(),
            worktree: Path::new("/w"),
            read_only: &[],
            env: &[],
            memory_bytes: 0,
            user: (0, 0),
            command: "true",
        };
        let args: Vec<String> = spec
            .args()
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        expect![[r#"run --rm --init --name n --network none --pids-limit 512 --cap-drop ALL --security-opt no-new-privileges --user 0:0 -v /w:/w -w /w alpine sh -c true"#]]
            .assert_eq(&args.join(" "));
    }
}
