//! Spawning one process tree, reading its output and ending it: the part of
//! the runner every backend shares.
//!
//! The child leads a new process group, so the whole tree can be killed with
//! one signal. stdout and stderr are the same pipe, so their order is kept.
//! One thread does everything: it `poll`s the pipe and a pidfd of the child
//! (or ticks, on kernels without pidfds), so a chatty child never blocks on a
//! full pipe and a process that escaped the group while holding the pipe
//! cannot hang the runner. When the child exits (or the deadline passes) the
//! group is killed *before* the child is reaped: until then its pid, and so
//! the group id, cannot be reused by an unrelated process.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{self, Read as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::SandboxError;
use super::output::{CappedOutput, OutputCollector};

/// One process to run.
pub(super) struct Launch<'a> {
    /// Absolute path of the program (resolved on the host's `PATH` first).
    pub(super) program: &'a Path,
    pub(super) args: &'a [OsString],
    pub(super) cwd: &'a Path,
    /// The whole environment; `None` inherits the host's, for host-side tools
    /// such as the docker CLI, never for the command under test.
    pub(super) env: Option<&'a [(String, OsString)]>,
    pub(super) timeout: Duration,
    /// `RLIMIT_AS` in bytes, `0` for none.
    pub(super) memory_bytes: u64,
    /// `RLIMIT_NPROC`, `0` for none: it counts every process of the real
    /// uid, so it is a fork-bomb guard only for a uid of the sandbox's own.
    pub(super) max_processes: u64,
    pub(super) output_cap_bytes: usize,
    /// Descriptors the child keeps across exec (bubblewrap's status pipe and
    /// the paths it binds); everything else the runner opens is close-on-exec.
    pub(super) keep_fds: &'a [RawFd],
    /// `(uid, gid)` the child switches to before exec, with no supplementary
    /// groups (a root invoker's sandbox runs as an unprivileged uid).
    pub(super) run_as: Option<(u32, u32)>,
    /// `cgroup.procs` of the run's cgroup, opened by the runner: the child
    /// moves itself in before anything else, so its whole tree is counted.
    pub(super) cgroup_procs: Option<RawFd>,
    /// `(source, mount point)` bind mounts made, while still privileged, in a
    /// private mount namespace of the child (bubblewrap's staging).
    pub(super) private_binds: &'a [(CString, CString)],
}

/// How the process ended.
#[derive(Debug)]
pub(super) struct Finished {
    pub(super) exit: Option<i32>,
    pub(super) signal: Option<i32>,
    pub(super) timed_out: bool,
    pub(super) duration: Duration,
    pub(super) output: CappedOutput,
}

/// How long output may keep flowing after the child exited and its group was
/// killed: only a process that left the group (possible with the process
/// backend alone) keeps the pipe open that long.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How often the child is checked when the kernel has no pidfds.
const TICK: Duration = Duration::from_millis(20);

/// Runs `launch` to its end; `on_timeout` runs when the deadline passes,
/// before the process group is killed (docker kills its container there).
pub(super) fn execute(
    launch: &Launch<'_>,
    on_timeout: &mut dyn FnMut(),
) -> Result<Finished, SandboxError> {
    let prepare = |step| move |source| SandboxError::Prepare { step, source };
    let (read_end, write_end) = pipe().map_err(prepare("creating the output pipe"))?;
    let stderr_end = write_end
        .try_clone()
        .map_err(prepare("creating the output pipe"))?;

    #[allow(clippy::disallowed_methods)]
    // the sandbox runner is the one place that spawns processes
    #[allow(clippy::disallowed_methods)] // the sandbox is the one place that spawns
    let mut command = Command::new(launch.program);
    command
        .args(launch.args)
        .current_dir(launch.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write_end))
        .stderr(Stdio::from(stderr_end))
        .process_group(0);
    if let Some(env) = launch.env {
        command
            .env_clear()
            .envs(env.iter().map(|(name, value)| (name, value)));
    }
    let limits = ChildLimits {
        memory_bytes: launch.memory_bytes,
        max_processes: launch.max_processes,
        keep_fds: launch.keep_fds.to_vec(),
        run_as: launch.run_as,
        cgroup_procs: launch.cgroup_procs,
        private_binds: launch.private_binds.to_vec(),
    };
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe calls (write, setrlimit, fcntl, set*id) on values
    // moved in; it allocates nothing.
    unsafe {
        command.pre_exec(move || limits.apply());
    }
    let started = Instant::now();
    let child = command.spawn().map_err(SandboxError::Spawn)?;
    // Our copies of the pipe's write end go with the command: from here on,
    // end of file means every process holding it has exited.
    drop(command);
    let mut running = Running::new(child);
    let mut output = OutputReader::new(read_end, launch.output_cap_bytes);
    // A timeout too large for the clock means none (a year still fits).
    let deadline = started
        .checked_add(launch.timeout)
        .unwrap_or_else(|| started + Duration::from_secs(365 * 24 * 3600));
    // Without a pidfd (kernels before 5.3) the loop ticks instead.
    let pidfd = pidfd_open(running.pid).ok();

    let mut timed_out = false;
    loop {
        if running.has_exited().map_err(SandboxError::Wait)? {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            tracing::debug!(
                timeout_ms = launch.timeout.as_millis() as u64,
                "sandbox timed out, killing"
            );
            on_timeout();
            break;
        }
        let wait = if pidfd.is_some() {
            deadline - now
        } else {
            (deadline - now).min(TICK)
        };
        let pidfd_raw = pidfd.as_ref().map(|fd| fd.as_raw_fd());
        output.poll(pidfd_raw, wait).map_err(SandboxError::Wait)?;
    }
    let duration = started.elapsed();
    // The child is exited or about to be killed, and not reaped: the group id
    // still names only its tree.
    running.kill_group();
    let status = running.reap().map_err(SandboxError::Wait)?;
    let drain_deadline = Instant::now() + DRAIN_GRACE;
    while output.is_open() {
        let now = Instant::now();
        if now >= drain_deadline {
            tracing::warn!(
                "sandbox output still open after the command ended; a process left its process group"
            );
            break;
        }
        output
            .poll(None, drain_deadline - now)
            .map_err(SandboxError::Wait)?;
    }
    Ok(Finished {
        exit: status.code(),
        signal: status.signal(),
        timed_out,
        duration,
        output: output.finish(),
    })
}

/// What the child sets up between fork and exec.
struct ChildLimits {
    memory_bytes: u64,
    max_processes: u64,
    keep_fds: Vec<RawFd>,
    run_as: Option<(u32, u32)>,
    cgroup_procs: Option<RawFd>,
    private_binds: Vec<(CString, CString)>,
}

impl ChildLimits {
    /// Runs in the child before exec: into the cgroup (while still
    /// privileged), the limits, no core files, the kept descriptors made
    /// inheritable, the private binds, and last the identity.
    fn apply(&self) -> io::Result<()> {
        let check = |status: libc::c_int| {
            if status == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        if let Some(fd) = self.cgroup_procs {
            // "0" is the writing process itself.
            // SAFETY: write reads one byte from a static string.
            if unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) } != 1 {
                return Err(io::Error::last_os_error());
            }
        }
        let rlimit = |value: u64| libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        if self.memory_bytes > 0 {
            // SAFETY: setrlimit reads the struct passed and nothing else.
            check(unsafe { libc::setrlimit(libc::RLIMIT_AS, &rlimit(self.memory_bytes)) })?;
        }
        if self.max_processes > 0 {
            // SAFETY: as above.
            check(unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &rlimit(self.max_processes)) })?;
        }
        // A crashing test must not fill the worktree with core files.
        // SAFETY: as above.
        check(unsafe { libc::setrlimit(libc::RLIMIT_CORE, &rlimit(0)) })?;
        for &fd in &self.keep_fds {
            // SAFETY: fcntl on a descriptor number; the worst outcome is EBADF.
            check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) })?;
        }
        if !self.private_binds.is_empty() {
            // SAFETY: unshare and mount read only the NUL-terminated strings
            // passed, which live in `self` across the calls.
            unsafe {
                check(libc::unshare(libc::CLONE_NEWNS))?;
                // Nothing mounted here may propagate to the host.
                check(libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                for (source, point) in &self.private_binds {
                    check(libc::mount(
                        source.as_ptr(),
                        point.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ))?;
                }
            }
        }
        if let Some((uid, gid)) = self.run_as {
            // Groups, then gid, then uid: each later call needs the privilege
            // the earlier ones still had.
            // SAFETY: setgroups with a count of 0 reads no memory; set*id take
            // plain integers.
            check(unsafe { libc::setgroups(0, std::ptr::null()) })?;
            check(unsafe { libc::setresgid(gid, gid, gid) })?;
            check(unsafe { libc::setresuid(uid, uid, uid) })?;
        }
        Ok(())
    }
}

/// A spawned child that is killed (with its group) and reaped if dropped
/// early, so no error path leaves a process or a zombie behind.
struct Running {
    child: Child,
    pid: libc::pid_t,
    reaped: bool,
}

impl Running {
    fn new(child: Child) -> Running {
        // Pids fit in pid_t; std hands them out as u32.
        let pid = child.id() as libc::pid_t;
        Running {
            child,
            pid,
            reaped: false,
        }
    }

    /// Whether the child has exited, without reaping it.
    fn has_exited(&self) -> io::Result<bool> {
        // SAFETY: a zeroed siginfo_t is a valid value for waitid to fill.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: waitid writes into `info`, which lives across the call.
        if unsafe { libc::waitid(libc::P_PID, self.pid as libc::id_t, &mut info, flags) } != 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(error)
            };
        }
        // SAFETY: waitid filled `info` (si_pid stays 0 when nothing exited).
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// SIGKILLs the child's process group; only before the child is reaped.
    fn kill_group(&self) {
        debug_assert!(
            !self.reaped,
            "the group id may be reused once the leader is reaped"
        );
        // SAFETY: kill has no memory effects; ESRCH (group already gone) is fine.
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
    }

    fn reap(&mut self) -> io::Result<std::process::ExitStatus> {
        let status = self.child.wait()?;
        self.reaped = true;
        Ok(status)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

/// The read end of the output pipe and what came through it.
struct OutputReader {
    file: Option<File>,
    collector: OutputCollector,
    buffer: Vec<u8>,
}

impl OutputReader {
    fn new(read_end: OwnedFd, cap: usize) -> OutputReader {
        OutputReader {
            file: Some(File::from(read_end)),
            collector: OutputCollector::new(cap),
            buffer: vec![0; 64 << 10],
        }
    }

    fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// Waits up to `wait` for output (or for `pidfd` to turn readable, when
    /// the child exits) and reads what is there.
    fn poll(&mut self, pidfd: Option<RawFd>, wait: Duration) -> io::Result<()> {
        let mut fds: Vec<libc::pollfd> = Vec::with_capacity(2);
        if let Some(file) = &self.file {
            fds.push(libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        if let Some(fd) = pidfd {
            fds.push(libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // Round up so a sub-millisecond wait does not spin.
        let timeout_ms = i32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a live array of `fds.len()` pollfd structs.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(error)
            };
        }
        let pipe_ready = self.file.is_some() && fds.first().is_some_and(|fd| fd.revents != 0);
        if pipe_ready {
            self.read_once()?;
        }
        Ok(())
    }

    fn read_once(&mut self) -> io::Result<()> {
        let Some(file) = &mut self.file else {
            return Ok(());
        };
        match file.read(&mut self.buffer) {
            Ok(0) => self.file = None,
            Ok(n) => self.collector.push(&self.buffer[..n]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
        Ok(())
    }

    fn finish(self) -> CappedOutput {
        self.collector.finish()
    }
}

/// A close-on-exec pipe: (read end, write end).
pub(super) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [RawFd; 2] = [-1; 2];
    // SAFETY: pipe2 writes two descriptors into `fds` on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is fresh (and close-on-exec by the kernel's rule).
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
