//! The bubblewrap backend: gathers what the sandbox must expose and mask from
//! the host, builds the `bwrap` command line (a pure function, snapshotted in
//! the tests), runs it as an unprivileged uid under the run's limits, and
//! tells a failed sandbox setup from a failing command. The layout and its
//! reasons are in the parent module's docs.

use std::ffi::{CString, OsString};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use super::cgroup::RunCgroup;
use super::exec::{self, Finished, Launch};
use super::{Host, SandboxConfig, SandboxError};

/// The uid and gid of the command inside the sandbox.
pub(super) const SANDBOX_ID: u32 = 65534;

/// The host uid and gid a root invoker's sandbox runs as (`nobody`), so
/// that host root's files are not the sandbox's own.
pub(super) const UNPRIVILEGED_HOST_ID: (u32, u32) = (65534, 65534);

/// Host directories bound read-only at their own paths when they exist (as
/// symlinks when they are symlinks, e.g. `/bin -> usr/bin`).
const SYSTEM_DIRS: [&str; 8] = [
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/nix/store",
];

/// What of the host's `/etc` the sandbox sees: the dynamic loader's cache,
/// certificates, time zone, name-service and toolchain configuration. Never
/// `shadow`, `gshadow`, `sudoers`, `ssh`, `ssl/private`, package manager
/// credentials (`pip.conf`, `npmrc`) or anything else not listed.
const ETC_ENTRIES: [&str; 24] = [
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl/certs",
    "ssl/openssl.cnf",
    "pki/tls/certs",
    "pki/ca-trust/extracted",
    "ca-certificates.conf",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "protocols",
    "services",
    "os-release",
    "debian_version",
    "lsb-release",
    "mime.types",
    "locale.alias",
    "gai.conf",
    "host.conf",
    "fonts",
    "perl",
    "terminfo",
];

/// Names in `/etc` bound when they start with one of these (versioned
/// toolchain configuration: `python3.11`, `java-17-openjdk`).
const ETC_PREFIXES: [&str; 2] = ["python3", "java-"];

/// Generated files at these paths: the sandbox's own users, groups and hosts.
const ETC_STUBS: [(&str, &str); 3] = [
    (
        "/etc/passwd",
        "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:65534:65534:suture sandbox:/tmp/home:/bin/sh\n",
    ),
    ("/etc/group", "root:x:0:\nsandbox:x:65534:\n"),
    (
        "/etc/hosts",
        "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
    ),
];

/// Host trees a path the command names never exposes: their useful parts are
/// in the system layout, the rest is the host's own business.
const NEVER_EXPOSED: [&str; 6] = ["/etc", "/proc", "/sys", "/dev", "/run", "/boot"];

/// `/dev/shm` gets at most this much (docker's default), within the /tmp size.
const SHM_MAX_BYTES: u64 = 64 << 20;

/// The private, sized tmpfs.
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
    let prepare = |step| move |source| SandboxError::Prepare { step, source };
    let (status_read, status_write) = exec::pipe().map_err(prepare("creating the status pipe"))?;
    let tmp_bytes = match (tmp_size(config), size_support(&bwrap)) {
        (Some(bytes), Ok(())) => Some(bytes),
        (Some(_), Err(reason)) => {
            tracing::warn!(reason, "the sandbox's /tmp is not size-limited");
            None
        }
        (None, _) => None,
    };
    let mut staging =
        Staging::new(host.is_root).map_err(prepare("creating the staging directory"))?;
    let layout = Layout::gather(
        config,
        worktree,
        command,
        host,
        tmp_bytes,
        status_write.as_raw_fd(),
        &mut staging,
    )
    .map_err(prepare("staging the paths the sandbox binds"))?;
    let private_binds = staging
        .c_binds()
        .map_err(prepare("staging the paths the sandbox binds"))?;
    let args = layout.args();
    tracing::debug!(?args, "bwrap command line");

    let cgroup = match RunCgroup::create(config.memory_bytes, config.max_processes) {
        Ok(cgroup) => Some(cgroup),
        Err(reason) => {
            tracing::debug!(reason, "sandbox limits are rlimits");
            None
        }
    };
    let run_as = host.is_root.then_some(UNPRIVILEGED_HOST_ID);
    // A root invoker's sandbox runs as nobody: the worktree is lent to it for
    // the run and handed back, with what the run wrote, afterwards.
    let _lent = match run_as {
        Some((uid, gid)) => Some(
            LentWorktree::lend(worktree, uid, gid)
                .map_err(prepare("handing the worktree to the sandbox's uid"))?,
        ),
        None => None,
    };
    let mut keep_fds: Vec<RawFd> = staging.fds.iter().map(|fd| fd.as_raw_fd()).collect();
    keep_fds.push(status_write.as_raw_fd());
    let finished = exec::execute(
        &Launch {
            program: &bwrap,
            args: &args,
            cwd: Path::new("/"),
            env: Some(&[]),
            timeout: config.timeout,
            memory_bytes: config.memory_bytes,
            // Under a cgroup, pids.max counts the run alone.
            max_processes: if cgroup.is_some() {
                0
            } else {
                config.max_processes
            },
            output_cap_bytes: config.output_cap_bytes,
            keep_fds: &keep_fds,
            run_as,
            cgroup_procs: cgroup.as_ref().map(RunCgroup::procs_fd),
            private_binds: &private_binds,
        },
        &mut || {},
    )?;
    if cgroup.as_ref().is_some_and(RunCgroup::oom_killed) {
        tracing::info!("the sandboxed command was killed at its cgroup's memory limit");
    }
    // bwrap has exited: with our write end closed, the read ends at EOF.
    drop(status_write);
    drop(staging);
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

/// The size of the private `/tmp`: the configured one, else the memory limit.
fn tmp_size(config: &SandboxConfig) -> Option<u64> {
    [config.tmp_bytes, config.memory_bytes]
        .into_iter()
        .find(|&bytes| bytes > 0)
}

/// Whether this `bwrap` can size a tmpfs (`--size`, bubblewrap 0.8), asked
/// once per process.
fn size_support(bwrap: &Path) -> Result<(), String> {
    static SUPPORT: OnceLock<Result<(), String>> = OnceLock::new();
    SUPPORT
        .get_or_init(|| {
            let args = [OsString::from("--version")];
            let finished = exec::execute(
                &Launch {
                    program: bwrap,
                    args: &args,
                    cwd: Path::new("/"),
                    env: Some(&[]),
                    timeout: Duration::from_secs(30),
                    memory_bytes: 0,
                    max_processes: 0,
                    output_cap_bytes: 4 << 10,
                    keep_fds: &[],
                    run_as: None,
                    cgroup_procs: None,
                    private_binds: &[],
                },
                &mut || {},
            )
            .map_err(|error| format!("running `bwrap --version`: {}", error_chain(&error)))?;
            let text = finished.output.text();
            match parse_version(&text) {
                Some(version) if version >= (0, 8) => Ok(()),
                Some((major, minor)) => Err(format!(
                    "bubblewrap {major}.{minor} has no --size (0.8 or later has)"
                )),
                None => Err(format!(
                    "`bwrap --version` said {:?}, not a version",
                    text.trim()
                )),
            }
        })
        .clone()
}

/// `(major, minor)` from `bubblewrap 0.8.0`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
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

/// The worktree, owned by the sandbox's host uid for one run; every entry
/// goes back to the worktree's owner when dropped (the run has ended by
/// then: nothing in it can race the walk). Symlinks are not followed, and
/// the sandbox cannot hard-link to anything outside its own mount.
struct LentWorktree {
    root: PathBuf,
    owner: (u32, u32),
}

impl LentWorktree {
    fn lend(worktree: &Path, uid: u32, gid: u32) -> std::io::Result<LentWorktree> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = worktree.symlink_metadata()?;
        let lent = LentWorktree {
            root: worktree.to_path_buf(),
            owner: (meta.uid(), meta.gid()),
        };
        chown_tree(worktree, uid, gid)?;
        Ok(lent)
    }
}

impl Drop for LentWorktree {
    fn drop(&mut self) {
        if let Err(error) = chown_tree(&self.root, self.owner.0, self.owner.1) {
            tracing::warn!(
                worktree = %self.root.display(),
                %error,
                "could not take the worktree back from the sandbox's uid"
            );
        }
    }
}

fn chown_tree(root: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    let mut pending = vec![root.to_path_buf()];
    while let Some(path) = pending.pop() {
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
        if path.symlink_metadata()?.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(())
}

/// What the command line refers to besides host paths, alive until bwrap
/// has exited: the pipes of the generated files and, for a root invoker,
/// the staging directory.
///
/// A root invoker's bwrap runs as `nobody`, which cannot walk to paths under
/// private directories (a toolchain in `/root`, a repository in a 0700
/// temp dir), and bwrap resolves every source by its path. So each host path
/// is bound, in a private mount namespace of the bwrap process made while it
/// is still root, onto a mount point in a staging directory anyone may
/// traverse, and bwrap binds it from there. The host's mount table never
/// changes: the namespace ends with the process.
struct Staging {
    dir: Option<tempfile::TempDir>,
    /// `(host path, mount point)` for the child's private mount namespace.
    binds: Vec<(PathBuf, PathBuf)>,
    fds: Vec<OwnedFd>,
}

impl Staging {
    fn new(stage: bool) -> std::io::Result<Staging> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = if stage {
            // In /tmp, not $TMPDIR: `nobody` must be able to walk to it, and
            // a private TMPDIR (0700) is exactly what it cannot walk.
            let world_walkable = |dir: &Path| {
                dir.metadata()
                    .is_ok_and(|meta| meta.is_dir() && meta.permissions().mode() & 0o001 != 0)
            };
            let parent = Some(PathBuf::from(PRIVATE_TMP))
                .filter(|dir| world_walkable(dir))
                .unwrap_or_else(std::env::temp_dir);
            let dir = tempfile::Builder::new()
                .prefix("suture-stage-")
                .tempdir_in(parent)?;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
            Some(dir)
        } else {
            None
        };
        Ok(Staging {
            dir,
            binds: Vec::new(),
            fds: Vec::new(),
        })
    }

    /// The path bwrap binds `path` from: itself, or its staged mount point.
    fn source(&mut self, path: &Path) -> std::io::Result<PathBuf> {
        let Some(dir) = &self.dir else {
            return Ok(path.to_path_buf());
        };
        let point = dir.path().join(self.binds.len().to_string());
        if path.is_dir() {
            std::fs::create_dir(&point)?;
        } else {
            std::fs::File::create(&point)?;
        }
        self.binds.push((path.to_path_buf(), point.clone()));
        Ok(point)
    }

    /// A pipe holding `data`, for bwrap to copy into a file.
    fn data(&mut self, data: &str) -> std::io::Result<RawFd> {
        let (read, write) = exec::pipe()?;
        // Far below a pipe's capacity: the write cannot block.
        std::fs::File::from(write).write_all(data.as_bytes())?;
        let raw = read.as_raw_fd();
        self.fds.push(read);
        Ok(raw)
    }

    /// The binds as C strings, made before the fork (the child may not
    /// allocate).
    fn c_binds(&self) -> std::io::Result<Vec<(CString, CString)>> {
        use std::os::unix::ffi::OsStrExt as _;
        let c_path = |path: &Path| {
            CString::new(path.as_os_str().as_bytes())
                .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))
        };
        self.binds
            .iter()
            .map(|(source, point)| Ok((c_path(source)?, c_path(point)?)))
            .collect()
    }
}

/// One entry of the sandbox's filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mount {
    /// A host path, read-only at the same path (system directories).
    ReadOnly(PathBuf),
    /// A symlink, as on the host.
    Symlink { target: PathBuf, link: PathBuf },
    /// A host path (or its staged mount point), read-only at `path`.
    Exposed { source: PathBuf, path: PathBuf },
    /// A read-only file of generated content (from a pipe).
    Data { fd: RawFd, path: PathBuf },
    /// An empty read-only directory over `path` (a masked directory).
    EmptyDir(PathBuf),
    /// `/dev/null` over `path` (a masked file).
    Null(PathBuf),
}

impl Mount {
    fn push_args(&self, args: &mut Vec<OsString>) {
        let mut push = |items: &[&dyn AsRef<std::ffi::OsStr>]| {
            args.extend(items.iter().map(|item| item.as_ref().to_os_string()));
        };
        match self {
            Mount::ReadOnly(path) => push(&[&"--ro-bind", path, path]),
            Mount::Symlink { target, link } => push(&[&"--symlink", target, link]),
            Mount::Exposed { source, path } => push(&[&"--ro-bind", source, path]),
            Mount::Data { fd, path } => push(&[&"--ro-bind-data", &fd.to_string(), path]),
            Mount::EmptyDir(path) => push(&[&"--tmpfs", path, &"--remount-ro", path]),
            Mount::Null(path) => push(&[&"--ro-bind", &"/dev/null", path]),
        }
    }
}

/// Everything the bwrap command line depends on, gathered from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Layout {
    /// System directories and the listed parts of `/etc`.
    system: Vec<Mount>,
    /// Size of the private `/tmp` (and the cap of `/dev/shm`); `None` when
    /// unlimited or unsupported.
    tmp_bytes: Option<u64>,
    /// What the command names, git's directories, the configured extras.
    exposed: Vec<Mount>,
    /// Secrets inside exposed trees.
    masked: Vec<Mount>,
    worktree: PathBuf,
    /// Where bwrap finds the worktree: itself, or its staged mount point.
    worktree_source: PathBuf,
    /// The generated `/etc` files.
    stubs: Vec<Mount>,
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
        tmp_bytes: Option<u64>,
        status_fd: i32,
        staging: &mut Staging,
    ) -> std::io::Result<Layout> {
        let mut system = Vec::new();
        for dir in SYSTEM_DIRS.map(Path::new) {
            system.extend(system_mount(dir));
        }
        for entry in etc_entries() {
            system.extend(system_mount(&entry));
        }

        let mut wanted = Vec::new();
        for path in command_paths(command)
            .into_iter()
            .chain(command_program(command, config))
        {
            let resolved = path.canonicalize().ok();
            for path in std::iter::once(path).chain(resolved) {
                let Ok(meta) = path.metadata() else { continue };
                let dir = exposure(&path, meta.is_dir(), worktree, &host.homes);
                wanted.extend(dir.filter(|dir| is_canonical(dir)));
            }
        }
        for path in git_paths(worktree) {
            if path.is_dir() && !path.starts_with(worktree) && !is_system(&path) {
                wanted.push(path);
            }
        }
        let mut exposed_paths = Vec::new();
        let mut masked = Vec::new();
        // A unix socket or FIFO stays connectable through a read-only mount,
        // and under /tmp live tmux, ssh-agent and X11 sockets: each one in an
        // exposed tree is masked, and a tree that cannot be checked is not
        // exposed.
        for path in outermost(wanted) {
            match endpoints_under(&path) {
                Some(endpoints) if !endpoints.contains(&path) => {
                    masked.extend(endpoints.into_iter().map(Mount::Null));
                    exposed_paths.push(path);
                }
                Some(_) => tracing::debug!(path = %path.display(), "not exposing a socket or fifo"),
                None => tracing::warn!(
                    path = %path.display(),
                    "not exposing a path the command names: too large or unreadable to check for sockets"
                ),
            }
        }
        exposed_paths.extend(config.extra_ro_paths.iter().cloned());
        let mut exposed = Vec::new();
        for path in &exposed_paths {
            exposed.push(Mount::Exposed {
                source: staging.source(path)?,
                path: path.clone(),
            });
        }

        for path in secret_paths(host) {
            if !exposed_paths
                .iter()
                .any(|exposed| path.starts_with(exposed))
            {
                continue;
            }
            match path.metadata() {
                Ok(meta) if meta.is_dir() => masked.push(Mount::EmptyDir(path)),
                Ok(_) => masked.push(Mount::Null(path)),
                Err(_) => {}
            }
        }

        let mut stubs = Vec::new();
        for (path, contents) in ETC_STUBS {
            let fd = staging.data(contents)?;
            stubs.push(Mount::Data {
                fd,
                path: PathBuf::from(path),
            });
        }

        Ok(Layout {
            system,
            tmp_bytes,
            exposed,
            masked,
            worktree: worktree.to_path_buf(),
            worktree_source: staging.source(worktree)?,
            stubs,
            env: super::command_env(config, HOME.into(), PRIVATE_TMP.into()),
            status_fd,
            command: command.to_string(),
        })
    }

    /// The bwrap command line (everything after `bwrap`).
    fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let push = |args: &mut Vec<OsString>, items: &[&dyn AsRef<std::ffi::OsStr>]| {
            args.extend(items.iter().map(|item| item.as_ref().to_os_string()));
        };
        let id = SANDBOX_ID.to_string();
        push(&mut args, &[&"--unshare-all", &"--unshare-user"]);
        push(&mut args, &[&"--uid", &id, &"--gid", &id]);
        push(&mut args, &[&"--die-with-parent", &"--new-session"]);
        push(&mut args, &[&"--cap-drop", &"ALL"]);
        for mount in &self.system {
            mount.push_args(&mut args);
        }
        // /dev is a tmpfs the sandbox's uid owns: read-only, but for a sized
        // /dev/shm.
        push(&mut args, &[&"--dev", &"/dev"]);
        if let Some(bytes) = self.tmp_bytes {
            push(
                &mut args,
                &[&"--size", &bytes.min(SHM_MAX_BYTES).to_string()],
            );
        }
        push(
            &mut args,
            &[&"--tmpfs", &"/dev/shm", &"--remount-ro", &"/dev"],
        );
        push(&mut args, &[&"--proc", &"/proc"]);
        if let Some(bytes) = self.tmp_bytes {
            push(&mut args, &[&"--size", &bytes.to_string()]);
        }
        push(&mut args, &[&"--tmpfs", &PRIVATE_TMP, &"--dir", &HOME]);
        for mount in self.exposed.iter().chain(&self.masked) {
            mount.push_args(&mut args);
        }
        push(
            &mut args,
            &[&"--bind", &self.worktree_source, &self.worktree],
        );
        for mount in &self.stubs {
            mount.push_args(&mut args);
        }
        // The root is a tmpfs the sandbox's uid owns, unsized: read-only.
        push(&mut args, &[&"--remount-ro", &"/"]);
        push(&mut args, &[&"--chdir", &self.worktree, &"--clearenv"]);
        for (name, value) in &self.env {
            push(&mut args, &[&"--setenv", name, value]);
        }
        push(
            &mut args,
            &[&"--json-status-fd", &self.status_fd.to_string()],
        );
        push(&mut args, &[&super::SHELL, &"-c", &self.command]);
        args
    }
}

/// How a system path appears: bound read-only, or recreated as the symlink
/// it is; nothing when the host lacks it.
fn system_mount(path: &Path) -> Option<Mount> {
    let meta = path.symlink_metadata().ok()?;
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(path).ok()?;
        return Some(Mount::Symlink {
            target,
            link: path.to_path_buf(),
        });
    }
    Some(Mount::ReadOnly(path.to_path_buf()))
}

/// The host's `/etc` entries of [`ETC_ENTRIES`] and [`ETC_PREFIXES`], sorted.
fn etc_entries() -> Vec<PathBuf> {
    let etc = Path::new("/etc");
    let mut entries: Vec<PathBuf> = ETC_ENTRIES.iter().map(|name| etc.join(name)).collect();
    for entry in std::fs::read_dir(etc).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ETC_PREFIXES.iter().any(|prefix| name.starts_with(prefix)) {
            entries.push(entry.path());
        }
    }
    entries.sort();
    entries.dedup();
    entries
}

/// Whether `path` is inside a directory of [`SYSTEM_DIRS`] (visible anyway).
fn is_system(path: &Path) -> bool {
    SYSTEM_DIRS.iter().any(|dir| path.starts_with(dir))
}

/// The program a command starts with when it is a bare name (`pytest`),
/// resolved on the `PATH` the command gets: a venv's or toolchain's binary
/// whose prefix must be exposed.
fn command_program(command: &str, config: &SandboxConfig) -> Option<PathBuf> {
    let first = command.split_whitespace().next()?;
    if first.contains(['/', '=', '$', '`', '(', ';', '&', '|']) {
        return None;
    }
    if !config.env_allow.iter().any(|name| name == "PATH") {
        return None;
    }
    super::find_program(first)
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
/// is reachable: `None` when it is in the worktree, visible anyway, or in a
/// place never exposed. A file exposes its directory (`…/bin/<exe>` the prefix
/// above `bin`, the venv or install root), a directory itself; a directory
/// that would be too broad (a top-level directory, a home or one of its
/// ancestors) gives way to the path alone, or to nothing for a directory.
fn exposure(path: &Path, is_dir: bool, worktree: &Path, homes: &[PathBuf]) -> Option<PathBuf> {
    if path.starts_with(worktree) || is_system(path) {
        return None;
    }
    if NEVER_EXPOSED.iter().any(|root| path.starts_with(root)) {
        return None;
    }
    // An ancestor of the worktree would show the repositories beside it.
    let too_broad = |dir: &Path| {
        dir.components().count() < 3
            || worktree.starts_with(dir)
            || homes.iter().any(|home| home.starts_with(dir))
    };
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
        candidates.push(path);
    }
    candidates
        .into_iter()
        .find(|dir| !too_broad(dir) || (*dir == path && !is_dir))
        .map(Path::to_path_buf)
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

    use super::{Layout, Mount, command_paths, exposure, outermost, parse_version, ran_command};

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
    /// the worktree at `/tmp/wt` and the home at `/home/u`.
    fn check_exposure(path: &str, expect: Expect) {
        let is_dir = path.ends_with('/');
        let exposed = exposure(
            Path::new(path.trim_end_matches('/')),
            is_dir,
            Path::new("/tmp/wt"),
            &[PathBuf::from("/home/u")],
        );
        expect.assert_eq(&format!("{exposed:?}"));
    }

    /// A `bin/<exe>` exposes its prefix, another file its directory, a
    /// directory itself, wherever they are; nothing in the worktree or the
    /// system directories; a path whose directory is too broad (top level,
    /// the home, an ancestor of the worktree) alone, and a directory that is
    /// too broad not at all; never anything in /etc, /proc or /run.
    #[test]
    fn exposure_rule() {
        check_exposure(
            "/tmp/x/venvs/p/bin/python",
            expect![[r#"Some("/tmp/x/venvs/p")"#]],
        );
        check_exposure(
            "/opt/toolchain/bin/node",
            expect![[r#"Some("/opt/toolchain")"#]],
        );
        check_exposure(
            "/home/u/.cargo/bin/cargo",
            expect![[r#"Some("/home/u/.cargo")"#]],
        );
        check_exposure("/tmp/x/data/file.txt", expect![[r#"Some("/tmp/x/data")"#]]);
        check_exposure("/tmp/x/data/", expect![[r#"Some("/tmp/x/data")"#]]);
        check_exposure("/tmp/bin/tool", expect![[r#"Some("/tmp/bin")"#]]);
        check_exposure("/tmp/file.txt", expect![[r#"Some("/tmp/file.txt")"#]]);
        check_exposure(
            "/home/u/notes.txt",
            expect![[r#"Some("/home/u/notes.txt")"#]],
        );
        check_exposure("/tmp/", expect!["None"]);
        check_exposure("/srv/", expect!["None"]);
        check_exposure("/home/u/", expect!["None"]);
        check_exposure("/home/", expect!["None"]);
        check_exposure("/tmp/wt/src/main.py", expect!["None"]);
        check_exposure("/usr/bin/python3", expect!["None"]);
        check_exposure("/etc/shadow", expect!["None"]);
        check_exposure("/etc/app/", expect!["None"]);
        check_exposure("/proc/1/environ", expect!["None"]);
        check_exposure("/run/user/0/tool", expect!["None"]);
    }

    /// The worktree's parent is never exposed for being named: it holds the
    /// repositories beside the worktree.
    #[test]
    fn exposure_never_shows_the_worktree_s_neighbours() {
        let exposed = exposure(
            Path::new("/var/work/repos"),
            true,
            Path::new("/var/work/repos/wt"),
            &[],
        );
        assert_eq!(exposed, None);
    }

    /// `bwrap --version` is read as major and minor.
    #[test]
    fn bwrap_versions() {
        assert_eq!(parse_version("bubblewrap 0.8.0\n"), Some((0, 8)));
        assert_eq!(parse_version("bubblewrap 0.11.1"), Some((0, 11)));
        assert_eq!(parse_version("bwrap: unknown option"), None);
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

    /// The whole command line: a new user namespace as uid 65534, the system
    /// directories read-only, a read-only /dev with a sized /dev/shm, /proc,
    /// the sized private /tmp, exposures and masks, the worktree from its
    /// descriptor, the generated /etc files, a read-only root, then the clean
    /// environment and the shell.
    #[test]
    fn command_line() {
        let layout = Layout {
            system: vec![
                Mount::ReadOnly(PathBuf::from("/usr")),
                Mount::Symlink {
                    target: PathBuf::from("usr/bin"),
                    link: PathBuf::from("/bin"),
                },
                Mount::ReadOnly(PathBuf::from("/etc/ld.so.cache")),
            ],
            tmp_bytes: Some(256 << 20),
            exposed: vec![Mount::Exposed {
                source: PathBuf::from("/tmp/suture-stage-1/0"),
                path: PathBuf::from("/opt/venvs/p"),
            }],
            masked: vec![
                Mount::EmptyDir(PathBuf::from("/opt/venvs/p/.ssh")),
                Mount::Null(PathBuf::from("/opt/venvs/p/agent.sock")),
            ],
            worktree: PathBuf::from("/tmp/suture-worktree-1"),
            worktree_source: PathBuf::from("/tmp/suture-stage-1/1"),
            stubs: vec![Mount::Data {
                fd: 7,
                path: PathBuf::from("/etc/passwd"),
            }],
            env: vec![
                ("PATH".to_string(), "/usr/bin:/bin".into()),
                ("HOME".to_string(), "/tmp/home".into()),
                ("TMPDIR".to_string(), "/tmp".into()),
            ],
            status_fd: 9,
            command: "/opt/venvs/p/bin/python -m pytest".to_string(),
        };
        let args: Vec<String> = layout
            .args()
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let args = args.join(" ").replace(" --", "\n--");
        expect![[r#"
            --unshare-all
            --unshare-user
            --uid 65534
            --gid 65534
            --die-with-parent
            --new-session
            --cap-drop ALL
            --ro-bind /usr /usr
            --symlink usr/bin /bin
            --ro-bind /etc/ld.so.cache /etc/ld.so.cache
            --dev /dev
            --size 67108864
            --tmpfs /dev/shm
            --remount-ro /dev
            --proc /proc
            --size 268435456
            --tmpfs /tmp
            --dir /tmp/home
            --ro-bind /tmp/suture-stage-1/0 /opt/venvs/p
            --tmpfs /opt/venvs/p/.ssh
            --remount-ro /opt/venvs/p/.ssh
            --ro-bind /dev/null /opt/venvs/p/agent.sock
            --bind /tmp/suture-stage-1/1 /tmp/suture-worktree-1
            --ro-bind-data 7 /etc/passwd
            --remount-ro /
            --chdir /tmp/suture-worktree-1
            --clearenv
            --setenv PATH /usr/bin:/bin
            --setenv HOME /tmp/home
            --setenv TMPDIR /tmp
            --json-status-fd 9 /bin/sh -c /opt/venvs/p/bin/python -m pytest"#]]
        .assert_eq(&args);
    }
}
