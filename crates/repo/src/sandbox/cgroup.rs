//! A cgroup v2 of its own for each bubblewrap run, when the host delegates
//! one: `memory.max` bounds resident memory *and* the tmpfs pages the run
//! writes (which `RLIMIT_AS` does not see), `pids.max` the process count of
//! the run alone, and the whole tree is killed through the cgroup at the end.
//!
//! A cgroup can only get children with controllers when it holds no process
//! itself (cgroup v2's "no internal processes" rule). The usual delegation
//! (systemd's `Delegate=yes`, a container with a writable cgroup) hands suture
//! the cgroup it runs in, so the first run moves suture into a leaf of that
//! cgroup, [`LEAF`], and enables the `memory` and `pids` controllers for the
//! runs' cgroups beside it. Anything missing (cgroup v1, controllers not
//! offered, a read-only hierarchy, other processes in suture's cgroup) is a
//! reason, logged once, and the runner falls back to rlimits.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::{AsRawFd as _, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The leaf suture moves itself into, so its own cgroup may have children.
const LEAF: &str = "suture";

/// The controllers a run's cgroup needs.
const CONTROLLERS: [&str; 2] = ["memory", "pids"];

/// How long the end of a run waits for its cgroup to empty.
const EMPTY_WAIT: Duration = Duration::from_secs(5);

/// One run's cgroup; killed and removed when dropped.
#[derive(Debug)]
pub(super) struct RunCgroup {
    dir: PathBuf,
    procs: File,
}

impl RunCgroup {
    /// A fresh cgroup for one run with `memory.max` (swap off) and
    /// `pids.max`, `0` meaning no limit; `Err` is why there is none.
    pub(super) fn create(memory_bytes: u64, max_processes: u64) -> Result<RunCgroup, String> {
        let parent = delegated_parent()?;
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "run-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = parent.join(name);
        std::fs::create_dir(&dir)
            .map_err(|error| format!("creating {}: {error}", dir.display()))?;
        let configured = configure(&dir, memory_bytes, max_processes).and_then(|()| {
            OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .map_err(|error| format!("opening {}/cgroup.procs: {error}", dir.display()))
        });
        match configured {
            Ok(procs) => Ok(RunCgroup { dir, procs }),
            Err(reason) => {
                let _ = std::fs::remove_dir(&dir);
                Err(reason)
            }
        }
    }

    /// The open `cgroup.procs`, for the child to move itself in.
    pub(super) fn procs_fd(&self) -> RawFd {
        self.procs.as_raw_fd()
    }

    /// Whether the kernel's OOM killer ended a process of the run.
    pub(super) fn oom_killed(&self) -> bool {
        std::fs::read_to_string(self.dir.join("memory.events"))
            .ok()
            .and_then(|text| keyed_value(&text, "oom_kill"))
            .is_some_and(|count| count > 0)
    }
}

impl Drop for RunCgroup {
    fn drop(&mut self) {
        // cgroup.kill (Linux 5.14) kills the tree at once; else each process.
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        let give_up = Instant::now() + EMPTY_WAIT;
        loop {
            let pids = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<libc::pid_t> = pids.lines().filter_map(|pid| pid.parse().ok()).collect();
            if pids.is_empty() && std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            if Instant::now() >= give_up {
                tracing::warn!(cgroup = %self.dir.display(), "the run's cgroup did not empty; left in place");
                return;
            }
            for pid in pids {
                // SAFETY: kill has no memory effects; ESRCH is fine.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn configure(dir: &Path, memory_bytes: u64, max_processes: u64) -> Result<(), String> {
    let set = |file: &str, value: String| {
        std::fs::write(dir.join(file), &value)
            .map_err(|error| format!("writing {value} to {}/{file}: {error}", dir.display()))
    };
    if memory_bytes > 0 {
        set("memory.max", memory_bytes.to_string())?;
        // Without swap accounting the file is absent, and there is no swap
        // to escape to through it either.
        if dir.join("memory.swap.max").exists() {
            set("memory.swap.max", "0".to_string())?;
        }
    }
    // One OOM kill ends the whole run, not a random process of it.
    set("memory.oom.group", "1".to_string())?;
    if max_processes > 0 {
        set("pids.max", max_processes.to_string())?;
    }
    Ok(())
}

/// The cgroup under which runs' cgroups are made, set up once per process.
fn delegated_parent() -> Result<PathBuf, String> {
    static PARENT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PARENT
        .get_or_init(|| {
            let parent = find_delegated_parent();
            if let Err(reason) = &parent {
                tracing::info!(
                    reason,
                    "no cgroup v2 for sandbox runs: limits fall back to rlimits"
                );
            }
            parent
        })
        .clone()
}

fn find_delegated_parent() -> Result<PathBuf, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|error| format!("reading /proc/self/mountinfo: {error}"))?;
    let mount = cgroup2_mount(&mountinfo).ok_or("no cgroup2 filesystem is mounted")?;
    let membership = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|error| format!("reading /proc/self/cgroup: {error}"))?;
    let own = unified_path(&membership).ok_or("this process is in no cgroup v2")?;
    let own = mount.join(own.trim_start_matches('/'));
    // A suture started from inside the leaf (a re-exec) finds it set up.
    if own.file_name().is_some_and(|name| name == LEAF)
        && let Some(parent) = own.parent()
        && has_controllers(&parent.join("cgroup.subtree_control"))
    {
        return Ok(parent.to_path_buf());
    }
    if !has_controllers(&own.join("cgroup.controllers")) {
        return Err(format!(
            "{} does not offer the memory and pids controllers",
            own.display()
        ));
    }
    if has_controllers(&own.join("cgroup.subtree_control")) {
        return Ok(own);
    }
    let leaf = own.join(LEAF);
    match std::fs::create_dir(&leaf) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(format!("creating {}: {error}", leaf.display())),
    }
    std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string())
        .map_err(|error| format!("moving suture into {}: {error}", leaf.display()))?;
    let enable = CONTROLLERS.map(|name| format!("+{name}")).join(" ");
    OpenOptions::new()
        .write(true)
        .open(own.join("cgroup.subtree_control"))
        .and_then(|mut file| file.write_all(enable.as_bytes()))
        .map_err(|error| {
            format!(
                "enabling {enable} in {}/cgroup.subtree_control (other processes in the cgroup?): {error}",
                own.display()
            )
        })?;
    Ok(own)
}

/// Whether a controllers file (`cgroup.controllers`,
/// `cgroup.subtree_control`) lists every one of [`CONTROLLERS`].
fn has_controllers(file: &Path) -> bool {
    std::fs::read_to_string(file).is_ok_and(|text| lists_controllers(&text))
}

fn lists_controllers(text: &str) -> bool {
    let listed: Vec<&str> = text.split_whitespace().collect();
    CONTROLLERS.iter().all(|name| listed.contains(name))
}

/// The mount point of the first cgroup2 filesystem in `/proc/self/mountinfo`.
fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (mount, filesystem) = line.split_once(" - ")?;
        if filesystem.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        // Fields: id, parent, dev, root, mount point, …
        mount.split_whitespace().nth(4).map(PathBuf::from)
    })
}

/// The cgroup v2 path (`0::/path`) in `/proc/self/cgroup`.
fn unified_path(membership: &str) -> Option<&str> {
    membership
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .filter(|path| path.starts_with('/'))
}

/// The number after `key` in a flat keyed file such as `memory.events`.
fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        (name == key).then(|| value.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{cgroup2_mount, keyed_value, lists_controllers, unified_path};

    /// The cgroup2 mount is found in a hybrid host's mountinfo (v1
    /// controllers, v2 under `unified`) and in a pure v2 one.
    #[test]
    fn finds_the_cgroup2_mount() {
        let hybrid = "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                      31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                      32 30 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let pure = "35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(pure), Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(cgroup2_mount("31 30 0:27 / /x rw - cgroup cgroup rw"), None);
    }

    /// Only the unified line of /proc/self/cgroup names the v2 cgroup.
    #[test]
    fn reads_the_unified_membership() {
        let text = "4:memory:/a/b\n0::/system.slice/suture.service\n";
        assert_eq!(unified_path(text), Some("/system.slice/suture.service"));
        assert_eq!(unified_path("4:memory:/a/b\n"), None);
    }

    /// Both controllers must be listed, in any order, among others.
    #[test]
    fn controller_lists() {
        assert!(lists_controllers(
            "cpuset cpu io memory hugetlb pids rdma\n"
        ));
        assert!(!lists_controllers("cpu memory\n"));
        assert!(!lists_controllers(""));
    }

    /// OOM kills are counted from memory.events.
    #[test]
    fn memory_events() {
        let text = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n";
        assert_eq!(keyed_value(text, "oom_kill"), Some(1));
        assert_eq!(keyed_value(text, "missing"), None);
    }
}
