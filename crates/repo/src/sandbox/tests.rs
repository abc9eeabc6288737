//! Tests of the sandbox against the real backends on this host: bubblewrap
//! (installed by CI's test command) and the process backend, with tempdirs as
//! worktrees. Each test states the attack or failure it stands for; the
//! assertions are about what the command could or could not do, never about
//! how long it took beyond "finished" or "timed out".
//!
//! Host paths the sandbox must not reach are planted outside `/tmp` (under
//! `/var/tmp`) where the point is that they would otherwise be visible.

use std::ffi::OsString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::exec::{self, Launch};
use super::{Backend, Host, RunOutcome, SandboxConfig, SandboxError, probe, run, run_with_host};

fn bubblewrap() -> SandboxConfig {
    SandboxConfig {
        timeout: Duration::from_secs(60),
        ..SandboxConfig::default()
    }
}

fn process() -> SandboxConfig {
    SandboxConfig {
        backend: Backend::Process,
        ..bubblewrap()
    }
}

fn worktree() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("suture-sandbox-test-")
        .tempdir()
        .expect("creating a worktree")
}

/// A directory visible on the host outside `/tmp`, removed afterwards.
fn outside_tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("suture-sandbox-test-")
        .tempdir_in("/var/tmp")
        .expect("creating a dir under /var/tmp")
}

/// Runs `command` and returns the outcome, failing the test on a runner error.
fn run_ok(config: &SandboxConfig, worktree: &Path, command: &str) -> RunOutcome {
    run(config, worktree, command).unwrap_or_else(|error| panic!("running {command:?}: {error:?}"))
}

/// A real Python interpreter (not a shell shim that needs the user's HOME):
/// the test command's venv when set, else the system's.
fn python() -> String {
    std::env::var("SUTURE_TEST_PYTHON")
        .ok()
        .filter(|path| Path::new(path).exists())
        .or_else(|| {
            ["/usr/bin/python3", "/usr/local/bin/python3"]
                .into_iter()
                .find(|path| Path::new(path).exists())
                .map(String::from)
        })
        .unwrap_or_else(|| "python3".to_string())
}

/// Whether a process whose command line contains `needle` (or with pid
/// `pid`) is still alive (zombies awaiting their parent count as dead).
fn alive(pid: Option<u32>, needle: Option<&str>) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(this_pid) = name.to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        if pid.is_some_and(|pid| pid != this_pid) {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        if status
            .lines()
            .any(|line| line.starts_with("State:") && line.contains('Z'))
            || status.is_empty()
        {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if needle.is_none_or(|needle| cmdline.contains(needle)) {
            return true;
        }
    }
    false
}

/// Waits (bounded) for no process to match; true when none does.
fn all_gone(pid: Option<u32>, needle: Option<&str>) -> bool {
    let give_up = Instant::now() + Duration::from_secs(20);
    while Instant::now() < give_up {
        if !alive(pid, needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A number no other test or process uses, for finding our processes by
/// their command line.
fn unique_sleep_seconds() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("{}.{nanos:09}", 1000 + std::process::id() % 1000)
}

// ---- isolation -------------------------------------------------------------

/// Exfiltration over the network: the command sees only its own loopback,
/// cannot reach the internet, and cannot reach a service listening on the
/// host's 127.0.0.1 (which the unsandboxed process backend does reach).
#[test]
fn bubblewrap_has_no_network() {
    let worktree = worktree();
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a host listener");
    let port = listener.local_addr().expect("listener address").port();
    let python = python();
    let connect = |host: &str| {
        format!(
            "{python} -c \"import socket; socket.create_connection(('{host}', {port}), timeout=2); print('CONNECTED')\""
        )
    };

    let interfaces = run_ok(
        &bubblewrap(),
        worktree.path(),
        "tail -n +3 /proc/net/dev | cut -d: -f1",
    );
    assert_eq!(interfaces.output.text().trim(), "lo", "{interfaces:#?}");
    let outcome = run_ok(&bubblewrap(), worktree.path(), &connect("127.0.0.1"));
    assert!(
        !outcome.passed() && !outcome.output.text().contains("CONNECTED"),
        "{outcome:#?}"
    );
    let outcome = run_ok(&bubblewrap(), worktree.path(), &connect("1.1.1.1"));
    assert!(
        !outcome.passed() && !outcome.output.text().contains("CONNECTED"),
        "{outcome:#?}"
    );

    let control = run_ok(&process(), worktree.path(), &connect("127.0.0.1"));
    assert!(
        control.passed() && control.output.text().contains("CONNECTED"),
        "{control:#?}"
    );
}

/// Tampering with the host: writes outside the worktree fail (system files,
/// the invoking user's home, a shared host dir), writes inside succeed and
/// are on the host afterwards.
#[test]
fn bubblewrap_host_is_read_only_and_worktree_is_writable() {
    let worktree = worktree();
    let shared = outside_tmp();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".to_string());
    for target in [
        "/etc/suture-sandbox-test".to_string(),
        format!("{home}/suture-sandbox-test"),
        shared.path().join("x").display().to_string(),
    ] {
        let outcome = run_ok(&bubblewrap(), worktree.path(), &format!("touch {target}"));
        let written = Path::new(&target).exists();
        if written {
            // Leave the host as it was, then fail.
            let _ = std::fs::remove_file(&target);
        }
        assert!(
            !outcome.passed() && !written,
            "{target} was written: {outcome:#?}"
        );
    }

    let outcome = run_ok(
        &bubblewrap(),
        worktree.path(),
        "mkdir -p out && echo built > out/result.txt",
    );
    assert!(outcome.passed(), "{outcome:#?}");
    let written = std::fs::read_to_string(worktree.path().join("out/result.txt"))
        .expect("reading the result");
    assert_eq!(written, "built\n");
}

/// Reaching host daemons through their unix sockets (docker, dbus,
/// postgresql, per-user agents live in /run, and a socket stays connectable
/// through a read-only mount): the sandbox has no /run at all, while the host
/// has one.
#[test]
fn bubblewrap_hides_daemon_sockets_in_run() {
    let worktree = worktree();
    assert!(Path::new("/run").is_dir(), "the host has a /run");
    let outcome = run_ok(
        &bubblewrap(),
        worktree.path(),
        "ls -A /run 2>/dev/null && echo LISTED; test -e /run || echo NO-RUN",
    );
    let text = outcome.output.text();
    assert!(
        text.contains("NO-RUN") && !text.contains("LISTED"),
        "{text}"
    );
}

/// Privilege inside the sandbox: no capabilities, even when suture runs as
/// root, so the read-only root cannot be remounted read-write.
#[test]
fn bubblewrap_drops_capabilities() {
    let worktree = worktree();
    let outcome = run_ok(
        &bubblewrap(),
        worktree.path(),
        "grep CapEff /proc/self/status",
    );
    assert!(
        outcome.output.text().contains("0000000000000000"),
        "{outcome:#?}"
    );
    let outcome = run_ok(
        &bubblewrap(),
        worktree.path(),
        "mount -o remount,bind,rw / && touch /etc/suture-sandbox-remount",
    );
    assert!(!outcome.passed(), "{outcome:#?}");
    assert!(!Path::new("/etc/suture-sandbox-remount").exists());
}

/// Reading other jobs' temp files: the host's /tmp is not visible (a file
/// planted there is absent), and the private /tmp and HOME are writable.
#[test]
fn bubblewrap_tmp_is_private() {
    let worktree = worktree();
    let planted = tempfile::Builder::new()
        .prefix("suture-planted-")
        .tempfile()
        .expect("planting a file in /tmp");
    let planted_name = planted
        .path()
        .file_name()
        .expect("file name")
        .to_string_lossy()
        .into_owned();
    let scratch = format!("/tmp/suture-scratch-{}", unique_sleep_seconds());
    // The planted file is looked for with `ls`, not by its path: a path the
    // command names is exposed (see the next test).
    let outcome = run_ok(
        &bubblewrap(),
        worktree.path(),
        &format!("ls -a /tmp && touch {scratch} \"$HOME/.cache-test\" && echo WROTE"),
    );
    assert!(outcome.passed(), "{outcome:#?}");
    let text = outcome.output.text();
    assert!(!text.contains(&planted_name), "{text}");
    assert!(text.contains("WROTE"), "{text}");
    assert!(
        !Path::new(&scratch).exists(),
        "the private /tmp leaked to the host"
    );
}

/// A test command naming an interpreter in a venv under /tmp (hidden by the
/// private /tmp): the venv root is exposed read-only, so the interpreter and
/// its `lib` are reachable, while the venv's siblings stay hidden and the
/// venv cannot be written.
#[test]
fn bubblewrap_exposes_absolute_paths_the_command_names() {
    let worktree = worktree();
    let scratch = tempfile::Builder::new()
        .prefix("suture-venvs-")
        .tempdir()
        .expect("creating a scratch dir in /tmp");
    let venv = scratch.path().join("venvs/p");
    std::fs::create_dir_all(venv.join("bin")).expect("creating bin");
    std::fs::create_dir_all(venv.join("lib")).expect("creating lib");
    std::fs::write(scratch.path().join("venvs/sibling.txt"), "hidden").expect("writing sibling");
    std::fs::write(venv.join("lib/data.txt"), "venv-data").expect("writing data");
    let tool = venv.join("bin/tool");
    std::fs::write(
        &tool,
        "#!/bin/sh\nroot=$(dirname \"$0\")/..\ncat \"$root/lib/data.txt\"\nls \"$root/..\"\ntouch \"$root/lib/new\" || echo READ-ONLY\n",
    )
    .expect("writing the tool");
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");

    let outcome = run_ok(&bubblewrap(), worktree.path(), &tool.display().to_string());
    assert!(outcome.passed(), "{outcome:#?}");
    let text = outcome.output.text();
    assert!(text.contains("venv-data"), "{text}");
    assert!(text.contains("READ-ONLY"), "{text}");
    assert!(!text.contains("sibling.txt"), "{text}");
    assert!(!venv.join("lib/new").exists());
}

/// Reaching a host daemon by naming its socket under /tmp (a tmux server or
/// an ssh agent would run anything or sign anything): the path rule exposes
/// the socket's directory but masks the socket, whether the command names
/// the socket or the directory. The process backend connects, as control.
#[test]
fn bubblewrap_masks_sockets_in_exposed_paths() {
    let worktree = worktree();
    let scratch = tempfile::Builder::new()
        .prefix("suture-sockets-")
        .tempdir()
        .expect("creating a scratch dir in /tmp");
    let socket_dir = scratch.path().join("tmux-0");
    std::fs::create_dir(&socket_dir).expect("creating the socket dir");
    std::fs::write(socket_dir.join("notes.txt"), "VISIBLE").expect("writing a file");
    let socket = socket_dir.join("default");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("binding a host socket");
    let connect = format!(
        "cat {dir}/notes.txt; {python} -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{socket}'); print('CONNECTED')\"",
        dir = socket_dir.display(),
        python = python(),
        socket = socket.display(),
    );

    let outcome = run_ok(&bubblewrap(), worktree.path(), &connect);
    let text = outcome.output.text();
    assert!(
        text.contains("VISIBLE") && !text.contains("CONNECTED"),
        "{text}"
    );
    assert!(!outcome.passed(), "{outcome:#?}");

    let control = run_ok(&process(), worktree.path(), &connect);
    assert!(
        control.passed() && control.output.text().contains("CONNECTED"),
        "{control:#?}"
    );
}

/// A worktree that borrows its objects from a repository under /tmp (as
/// suture's worktrees do, through `objects/info/alternates`): git inside the
/// sandbox still reads the history.
#[test]
fn bubblewrap_keeps_git_alternates_reachable() {
    let source_dir = tempfile::tempdir().expect("creating the source repo dir");
    let source = git2::Repository::init(source_dir.path()).expect("initialising the source");
    let signature =
        git2::Signature::new("t", "t@example.com", &git2::Time::new(0, 0)).expect("signature");
    let tree_id = {
        let mut builder = source.treebuilder(None).expect("tree builder");
        let blob = source.blob(b"print('hi')\n").expect("blob");
        builder.insert("app.py", blob, 0o100644).expect("insert");
        builder.write().expect("tree")
    };
    let tree = source.find_tree(tree_id).expect("tree");
    let commit = source
        .commit(None, &signature, &signature, "borrowed history", &tree, &[])
        .expect("commit");

    let worktree = worktree();
    let borrowed = git2::Repository::init(worktree.path()).expect("initialising the worktree");
    let alternates = borrowed.path().join("objects/info/alternates");
    std::fs::write(
        &alternates,
        format!("{}\n", source.path().join("objects").display()),
    )
    .expect("alternates");
    let borrowed = git2::Repository::open(worktree.path()).expect("reopening");
    borrowed.set_head_detached(commit).expect("detaching HEAD");

    let outcome = run_ok(
        &bubblewrap(),
        worktree.path(),
        "git log --format=%s && git show HEAD:app.py",
    );
    assert!(outcome.passed(), "{outcome:#?}");
    assert_eq!(outcome.output.text(), "borrowed history\nprint('hi')\n");
}

/// Credential theft from a toolchain the command names inside the home
/// (`~/.cargo/bin/…` exposes `~/.cargo`): its credentials are masked while
/// the tool itself runs and reads its own files.
#[test]
fn bubblewrap_masks_secret_files_in_exposed_toolchains() {
    let worktree = worktree();
    let home = outside_tmp();
    let write = |relative: &str, contents: &str| {
        let path = home.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("creating dirs");
        std::fs::write(path, contents).expect("planting a file");
    };
    write(".cargo/credentials.toml", "SECRET-CARGO");
    write(".cargo/registry/notes.txt", "VISIBLE-NOTES");
    let tool = home.path().join(".cargo/bin/tool");
    write(
        ".cargo/bin/tool",
        "#!/bin/sh\nroot=$(dirname \"$0\")/..\ncat \"$root/registry/notes.txt\" \"$root/credentials.toml\"\n",
    );
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let host = Host {
        homes: vec![home.path().to_path_buf()],
        cargo_home: None,
        is_root: Host::current().is_root,
    };
    let outcome = run_with_host(
        &bubblewrap(),
        worktree.path(),
        &tool.display().to_string(),
        &host,
    )
    .expect("running");
    let text = outcome.output.text();
    assert!(text.contains("VISIBLE-NOTES"), "{text}");
    assert!(!text.contains("SECRET"), "{text}");
}

// ---- exposures of the host -------------------------------------------------
//
// Each test plants a secret where suture or the host keeps one, has code in
// the worktree (not the command, whose named paths are exposed on purpose)
// read it, and shows a normal system file is readable in the same run while
// the process backend, as control, reads the secret.

/// Runs code in `worktree` that prints each of `paths` (named in a file of
/// the worktree, as a test would) and a normal system file.
fn read_from_worktree(
    config: &SandboxConfig,
    worktree: &Path,
    host: &Host,
    paths: &[&Path],
) -> String {
    let list: String = paths
        .iter()
        .map(|path| format!("{}\n", path.display()))
        .collect();
    std::fs::write(worktree.join("targets.txt"), list).expect("writing the targets");
    let command = "while read -r path; do cat \"$path\"; ls \"$(dirname \"$path\")\"; done < targets.txt; grep -h '^ID=' /etc/os-release /usr/lib/os-release | head -n 1";
    run_with_host(config, worktree, command, host)
        .expect("running")
        .output
        .text()
}

/// A stand-in for the host's layout: suture's data dir, its config file and
/// key file, the invoking user's home, and a repository beside the worktree,
/// each holding a secret, all under one private directory.
struct PlantedHost {
    _base: tempfile::TempDir,
    data_file: PathBuf,
    config_file: PathBuf,
    key_file: PathBuf,
    home_file: PathBuf,
    neighbour_file: PathBuf,
    worktree: PathBuf,
    host: Host,
}

fn planted_host() -> PlantedHost {
    let base = outside_tmp();
    let plant = |relative: &str, contents: &str| {
        let path = base.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("creating dirs");
        std::fs::write(&path, contents).expect("planting a secret");
        path
    };
    let data_file = plant("var/lib/suture/suture.db", "SECRET-EVENTS");
    let config_file = plant("etc/suture/suture.toml", "SECRET-CONFIG");
    let key_file = plant("etc/suture/github-app.pem", "SECRET-KEY");
    let home_file = plant("home/app/notes.txt", "SECRET-HOME");
    let neighbour_file = plant("repos/other/app.py", "SECRET-OTHER-REPO");
    let worktree = base.path().join("repos/worktree");
    std::fs::create_dir_all(&worktree).expect("creating the worktree");
    let host = Host {
        homes: vec![base.path().join("home/app")],
        cargo_home: None,
        is_root: Host::current().is_root,
    };
    PlantedHost {
        _base: base,
        data_file,
        config_file,
        key_file,
        home_file,
        neighbour_file,
        worktree,
        host,
    }
}

/// Shows `secret` (planted, holding `marker`) cannot be read from the
/// worktree under bubblewrap, while a system file can and the process
/// backend reads the secret.
fn check_hidden(planted: &PlantedHost, secret: &Path, marker: &str) {
    let text = read_from_worktree(&bubblewrap(), &planted.worktree, &planted.host, &[secret]);
    assert!(
        text.contains("ID="),
        "a system file must be readable: {text}"
    );
    assert!(
        !text.contains(marker),
        "{} was readable: {text}",
        secret.display()
    );
    let control = read_from_worktree(&process(), &planted.worktree, &planted.host, &[secret]);
    assert!(control.contains(marker), "control: {control}");
}

/// Reading every project's events from suture's data dir.
#[test]
fn bubblewrap_hides_the_data_dir() {
    let planted = planted_host();
    check_hidden(&planted, &planted.data_file, "SECRET-EVENTS");
}

/// Reading suture's configuration file.
#[test]
fn bubblewrap_hides_the_config_file() {
    let planted = planted_host();
    check_hidden(&planted, &planted.config_file, "SECRET-CONFIG");
}

/// Reading a key file (a GitHub App private key beside the config).
#[test]
fn bubblewrap_hides_key_files() {
    let planted = planted_host();
    check_hidden(&planted, &planted.key_file, "SECRET-KEY");
}

/// Reading the invoking user's home (`$HOME` and the passwd entry's).
#[test]
fn bubblewrap_hides_the_home() {
    let planted = planted_host();
    check_hidden(&planted, &planted.home_file, "SECRET-HOME");
}

/// Reading another repository next to the worktree.
#[test]
fn bubblewrap_hides_repositories_beside_the_worktree() {
    let planted = planted_host();
    check_hidden(&planted, &planted.neighbour_file, "SECRET-OTHER-REPO");
}

/// Reading the host's password hashes and sudo or ssh configuration, even
/// when suture runs as root and the command names the paths: /etc holds
/// only the listed entries and generated passwd, group and hosts files.
#[test]
fn bubblewrap_hides_etc_secrets() {
    let worktree = worktree();
    let outcome = run_ok(
        &bubblewrap(),
        worktree.path(),
        "cat /etc/shadow /etc/gshadow /etc/sudoers /etc/ssh/ssh_host_ed25519_key; ls -A /etc; echo; cat /etc/passwd",
    );
    let text = outcome.output.text();
    for hidden in ["shadow", "gshadow", "sudoers", "ssh\n", "pip.conf", "npmrc"] {
        assert!(
            !text.contains(&format!("\n{hidden}")),
            "{hidden} listed: {text}"
        );
    }
    assert!(text.contains("sandbox:x:65534:65534"), "{text}");
    assert!(text.contains("ld.so.cache"), "{text}");
    if let Ok(shadow) = std::fs::read_to_string("/etc/shadow")
        && let Some(first) = shadow.lines().next()
    {
        assert!(!text.contains(first), "{text}");
    }
}

/// Reading suture's environment (tokens, the database password) through
/// /proc/1/environ, or seeing any host process: the sandbox's /proc shows
/// its own PID namespace, whose first process is bwrap's, with an empty
/// environment.
#[test]
fn bubblewrap_hides_host_processes() {
    let worktree = worktree();
    let outcome = run_ok(
        &bubblewrap(),
        worktree.path(),
        "set -- /proc/[0-9]*; echo COUNT $#; tr '\\0' '\\n' < /proc/1/environ; echo END",
    );
    let text = outcome.output.text();
    let count: usize = text
        .lines()
        .find_map(|line| line.strip_prefix("COUNT "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count: {text}"));
    assert!(count <= 4, "{text}");
    assert!(!text.contains("PATH="), "pid 1 has an environment: {text}");
    let host_processes = std::fs::read_dir("/proc")
        .expect("listing /proc")
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .count();
    assert!(
        host_processes > count,
        "control: {host_processes} host processes"
    );
}

/// Host root is not root in the sandbox: the command runs as uid 65534, and
/// when suture runs as root a root-only file in a tree the command exposes
/// stays unreadable (the sandbox's host uid is `nobody`), while what the run
/// writes in the worktree is the invoker's afterwards.
#[test]
fn bubblewrap_runs_as_an_unprivileged_uid() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let worktree = worktree();
    let tools = outside_tmp();
    let root_only = tools.path().join("share/root-only.txt");
    std::fs::create_dir_all(root_only.parent().expect("parent")).expect("creating dirs");
    std::fs::write(&root_only, "SECRET-ROOT-ONLY").expect("planting");
    std::fs::set_permissions(&root_only, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let share = root_only.parent().expect("share");
    let outcome = run_ok(
        &bubblewrap(),
        worktree.path(),
        &format!(
            "id -u; id -g; ls {share}; cat {share}/root-only.txt; echo made > made.txt",
            share = share.display()
        ),
    );
    let text = outcome.output.text();
    assert!(text.starts_with("65534\n65534\n"), "{text}");
    assert!(
        text.contains("root-only.txt"),
        "the tree is exposed: {text}"
    );
    let invoker = std::fs::metadata(worktree.path()).expect("stat").uid();
    let made = std::fs::metadata(worktree.path().join("made.txt")).expect("the run wrote made.txt");
    assert_eq!(made.uid(), invoker);
    if Host::current().is_root {
        assert!(!text.contains("SECRET-ROOT-ONLY"), "{text}");
        assert_eq!(std::fs::metadata(worktree.path()).expect("stat").uid(), 0);
    }
}

/// A parent process holding secrets in its environment (suture's own
/// tokens): the test command sees only the allow-list plus HOME and TMPDIR,
/// under both local backends. The secrets are set in a child test process
/// (setting them here would race with other tests reading the environment).
#[test]
fn secrets_in_the_environment_are_not_passed() {
    let mut env: Vec<(String, OsString)> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value)))
        .collect();
    env.push((
        "SUTURE_FAKE_SECRET".to_string(),
        "sk-fake-0123456789".into(),
    ));
    env.push(("GITHUB_TOKEN".to_string(), "ghs_fakefakefake".into()));
    env.push((ENV_PROBE.to_string(), "1".into()));
    let test_binary = std::env::current_exe().expect("locating the test binary");
    let args = [
        "--exact",
        "sandbox::tests::env_probe_child",
        "--nocapture",
        "--test-threads=1",
    ]
    .map(OsString::from);
    let finished = exec::execute(
        &Launch {
            program: &test_binary,
            args: &args,
            cwd: Path::new("/"),
            env: Some(&env),
            timeout: Duration::from_secs(120),
            memory_bytes: 0,
            output_cap_bytes: 1 << 20,
            keep_fds: &[],
            max_processes: 0,
            run_as: None,
            cgroup_procs: None,
            private_binds: &[],
        },
        &mut || {},
    )
    .expect("running the child test");
    let text = finished.output.text();
    assert_eq!(finished.exit, Some(0), "{text}");
    for backend in ["bubblewrap", "process"] {
        assert!(text.contains(&format!("ENV-OF {backend}")), "{text}");
    }
    assert!(text.contains("HOME="), "{text}");
    assert!(!text.contains("sk-fake-0123456789"), "{text}");
    assert!(!text.contains("ghs_fakefakefake"), "{text}");
    assert!(
        !text.contains("SUTURE_FAKE_SECRET") && !text.contains("GITHUB_TOKEN"),
        "{text}"
    );
}

const ENV_PROBE: &str = "SUTURE_SANDBOX_ENV_PROBE";

/// The child half of `secrets_in_the_environment_are_not_passed`: with the
/// secrets in its environment, prints what `env` shows inside each backend.
/// Without the marker variable it does nothing.
#[test]
fn env_probe_child() {
    if std::env::var_os(ENV_PROBE).is_none() {
        return;
    }
    assert!(std::env::var_os("SUTURE_FAKE_SECRET").is_some());
    let worktree = worktree();
    for config in [bubblewrap(), process()] {
        let outcome = run_ok(&config, worktree.path(), "env");
        assert!(outcome.passed(), "{outcome:#?}");
        println!("ENV-OF {}\n{}", config.backend, outcome.output.text());
    }
}

// ---- limits ----------------------------------------------------------------

/// A hanging test that also started a background child, under the process
/// backend: the timeout fires and both the shell and its child are gone.
#[test]
fn timeout_kills_the_process_tree() {
    let worktree = worktree();
    let config = SandboxConfig {
        timeout: Duration::from_secs(1),
        ..process()
    };
    let outcome = run_ok(
        &config,
        worktree.path(),
        "sleep 1000 & echo $! > child.pid; echo $$ > shell.pid; sleep 1000",
    );
    assert!(outcome.timed_out && !outcome.passed(), "{outcome:#?}");
    assert_eq!(outcome.signal, Some(libc::SIGKILL));
    for file in ["child.pid", "shell.pid"] {
        let pid: u32 = std::fs::read_to_string(worktree.path().join(file))
            .expect("reading a pid file")
            .trim()
            .parse()
            .expect("a pid");
        assert!(all_gone(Some(pid), None), "{file}: process {pid} survived");
    }
}

/// The same hanging test under bubblewrap: the whole PID namespace dies.
/// (Pids inside the namespace mean nothing on the host, so the processes are
/// found by a unique argument.)
#[test]
fn timeout_kills_the_bubblewrap_sandbox() {
    let worktree = worktree();
    let config = SandboxConfig {
        timeout: Duration::from_secs(1),
        ..bubblewrap()
    };
    let seconds = unique_sleep_seconds();
    let outcome = run_ok(
        &config,
        worktree.path(),
        &format!("sleep {seconds} & sleep {seconds}"),
    );
    assert!(outcome.timed_out && !outcome.passed(), "{outcome:#?}");
    assert!(
        all_gone(None, Some(&format!("sleep {seconds}"))),
        "a sleep {seconds} survived"
    );
}

/// A command that exits while a background child lives on (a server a test
/// forgot to stop) finishes without waiting for the timeout, and the child
/// is killed, under both local backends.
#[test]
fn finished_commands_leave_no_processes_behind() {
    let worktree = worktree();
    for config in [bubblewrap(), process()] {
        let seconds = unique_sleep_seconds();
        let outcome = run_ok(
            &config,
            worktree.path(),
            &format!("sleep {seconds} & echo started"),
        );
        assert!(outcome.passed() && !outcome.timed_out, "{outcome:#?}");
        assert!(
            all_gone(None, Some(&format!("sleep {seconds}"))),
            "{}: a sleep survived",
            config.backend
        );
    }
}

/// A test suite printing far more than the cap: the start and the end are
/// kept, the middle is counted, and the chatty child is not blocked by a full
/// pipe.
#[test]
fn output_is_capped_to_head_and_tail() {
    let worktree = worktree();
    let config = SandboxConfig {
        output_cap_bytes: 1000,
        ..bubblewrap()
    };
    let outcome = run_ok(&config, worktree.path(), "seq 1 200000");
    assert!(outcome.passed(), "{outcome:#?}");
    let output = &outcome.output;
    let expected_total: u64 = (1..=200_000u64)
        .map(|n| n.to_string().len() as u64 + 1)
        .sum();
    assert_eq!(output.total_bytes, expected_total);
    assert!(output.head.starts_with("1\n2\n3\n"), "{:?}", output.head);
    assert!(
        output.tail.ends_with("199999\n200000\n"),
        "{:?}",
        output.tail
    );
    assert_eq!(output.head.len() + output.tail.len(), 1000);
    assert_eq!(output.dropped_bytes, expected_total - 1000);
    assert!(outcome.output_tail(14).ends_with("200000\n"));
}

/// stdout and stderr share one pipe, so their interleaving is kept.
#[test]
fn stdout_and_stderr_are_interleaved_in_order() {
    let worktree = worktree();
    for config in [bubblewrap(), process()] {
        let outcome = run_ok(
            &config,
            worktree.path(),
            "echo one; echo two >&2; echo three; echo four >&2",
        );
        assert_eq!(
            outcome.output.text(),
            "one\ntwo\nthree\nfour\n",
            "{}",
            config.backend
        );
    }
}

/// Exit statuses come through as they are; a signal death shows as the
/// signal under the process backend and as 128 + n under bubblewrap.
#[test]
fn exit_codes_and_signals_are_reported() {
    let worktree = worktree();
    for config in [bubblewrap(), process()] {
        let passed = run_ok(&config, worktree.path(), "true");
        assert!(passed.passed() && passed.exit == Some(0) && passed.signal.is_none());
        let failed = run_ok(&config, worktree.path(), "exit 3");
        assert!(!failed.passed() && failed.exit == Some(3) && !failed.timed_out);
    }
    let killed = run_ok(&process(), worktree.path(), "kill -TERM $$");
    assert_eq!((killed.exit, killed.signal), (None, Some(libc::SIGTERM)));
    let killed = run_ok(&bubblewrap(), worktree.path(), "kill -TERM $$");
    assert_eq!(
        (killed.exit, killed.signal),
        (Some(128 + libc::SIGTERM), None)
    );
    assert!(!killed.passed());
}

/// A test allocating far beyond the memory limit fails instead of taking the
/// host's memory, under both local backends.
#[test]
fn memory_limit_stops_large_allocations() {
    let worktree = worktree();
    let command = format!(
        "{} -c \"x = bytearray(4 << 30); print('ALLOCATED')\"",
        python()
    );
    for backend in [super::Backend::Bubblewrap, super::Backend::Process] {
        let config = SandboxConfig {
            backend,
            memory_bytes: 512 << 20,
            ..bubblewrap()
        };
        let outcome = run_ok(&config, worktree.path(), &command);
        assert!(!outcome.passed(), "{outcome:#?}");
        assert!(
            outcome.output.text().contains("MemoryError"),
            "{outcome:#?}"
        );
    }
}

/// Filling the host's memory through tmpfs (which `RLIMIT_AS` does not
/// see): /tmp takes the configured size and no more, /dev/shm no more than
/// it either, and the root and /dev are read-only; a write within the size
/// succeeds.
#[test]
fn bubblewrap_tmp_is_sized() {
    let worktree = worktree();
    let config = SandboxConfig {
        tmp_bytes: 8 << 20,
        ..bubblewrap()
    };
    let outcome = run_ok(
        &config,
        worktree.path(),
        "head -c 4M /dev/zero > /tmp/small && echo SMALL-OK; \
         head -c 32M /dev/zero > /tmp/big && echo BIG-WRITTEN; \
         head -c 32M /dev/zero > /dev/shm/big && echo SHM-WRITTEN; \
         echo x > /elsewhere && echo ROOT-WRITTEN; echo x > /dev/elsewhere && echo DEV-WRITTEN; \
         df -k /tmp | tail -n 1",
    );
    let text = outcome.output.text();
    assert!(text.contains("SMALL-OK"), "{text}");
    for written in ["BIG-WRITTEN", "SHM-WRITTEN", "ROOT-WRITTEN", "DEV-WRITTEN"] {
        assert!(!text.contains(written), "{written}: {text}");
    }
    assert!(text.contains(" 8192 "), "/tmp is 8 MiB: {text}");
}

/// A fork bomb, bounded so the test ends by itself even if the limit were
/// missing: the command tries to start 300 sleeping children with a limit
/// of 64 processes, counts the forks that worked and exits; fewer than the
/// limit worked, and no child survives the run.
#[test]
fn bubblewrap_limits_processes() {
    let worktree = worktree();
    let config = SandboxConfig {
        max_processes: 64,
        ..bubblewrap()
    };
    let marker = unique_sleep_seconds();
    let script = "import os, sys, time\n\
                  forked = 0\n\
                  for _ in range(300):\n\
                  \x20   try:\n\
                  \x20       pid = os.fork()\n\
                  \x20   except OSError:\n\
                  \x20       break\n\
                  \x20   if pid == 0:\n\
                  \x20       time.sleep(600)\n\
                  \x20       os._exit(0)\n\
                  \x20   forked += 1\n\
                  print('FORKED', forked)\n";
    std::fs::write(worktree.path().join("bomb.py"), script).expect("writing the bomb");
    let outcome = run_ok(
        &config,
        worktree.path(),
        &format!("{} bomb.py {marker}", python()),
    );
    let text = outcome.output.text();
    let forked: usize = text
        .lines()
        .find_map(|line| line.strip_prefix("FORKED "))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count: {outcome:#?}"));
    assert!(forked < 64, "{forked} processes started: {text}");
    assert!(
        all_gone(None, Some(&format!("bomb.py {marker}"))),
        "a child of bomb.py {marker} survived"
    );
}

/// Allocating past the memory limit under bubblewrap and touching the pages
/// (what a cgroup's memory.max, where there is one, counts): the command is
/// stopped, by `MemoryError` or by the kernel, and never reports success.
#[test]
fn bubblewrap_memory_limit_stops_touched_allocations() {
    let worktree = worktree();
    let config = SandboxConfig {
        memory_bytes: 256 << 20,
        ..bubblewrap()
    };
    let command = format!(
        "{} -c \"x = bytearray(1 << 30); x[::4096] = b'x' * len(x[::4096]); print('ALLOCATED')\"",
        python()
    );
    let outcome = run_ok(&config, worktree.path(), &command);
    assert!(!outcome.passed(), "{outcome:#?}");
    assert!(!outcome.output.text().contains("ALLOCATED"), "{outcome:#?}");
}

// ---- errors, probes, serialisation ---------------------------------------

/// A worktree that does not exist is refused before anything runs.
#[test]
fn missing_worktree_is_an_error() {
    let error =
        run(&bubblewrap(), Path::new("/nonexistent/suture-wt"), "true").expect_err("must fail");
    assert!(
        matches!(error, SandboxError::InvalidPath { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("sandbox path /nonexistent/suture-wt: worktree cannot be resolved")
    );
}

/// A configured extra read-only path that does not exist is a config error,
/// not a test failure.
#[test]
fn missing_extra_path_is_an_error() {
    let worktree = worktree();
    let config = SandboxConfig {
        extra_ro_paths: vec![PathBuf::from("/nonexistent/suture-extra")],
        ..bubblewrap()
    };
    let error = run(&config, worktree.path(), "true").expect_err("must fail");
    expect_test::expect![
        "sandbox path /nonexistent/suture-extra: extra read-only path does not exist"
    ]
    .assert_eq(&error.to_string());
}

/// A sandbox bubblewrap cannot build (here: an extra path whose mount point
/// cannot exist inside, our own /proc entry) is a setup error carrying
/// bubblewrap's words, never a failing test run.
#[test]
fn bubblewrap_setup_failure_is_an_error() {
    let worktree = worktree();
    let config = SandboxConfig {
        extra_ro_paths: vec![PathBuf::from(format!(
            "/proc/{}/fdinfo",
            std::process::id()
        ))],
        ..bubblewrap()
    };
    let error = run(&config, worktree.path(), "true").expect_err("must fail");
    let SandboxError::Setup { backend, message } = &error else {
        panic!("expected a setup error, got {error:?}");
    };
    assert_eq!(backend, "bubblewrap");
    assert!(message.starts_with("bwrap: "), "{message}");
}

/// bubblewrap works on this machine (CI installs it); the process backend
/// always does.
#[test]
fn probe_local_backends() {
    probe(&Backend::Bubblewrap).expect("bubblewrap usable");
    probe(&Backend::Process).expect("process always usable");
}

/// No docker engine runs here: the probe says why, in one line, whether the
/// CLI is missing or the engine unreachable.
#[test]
fn probe_docker_explains_why_it_is_unavailable() {
    let error = probe(&Backend::Docker {
        image: "alpine".to_string(),
    })
    .expect_err("no docker engine on the test machine");
    let text = error.to_string();
    assert!(
        text == "sandbox backend docker is unavailable: docker cli not found on PATH"
            || text
                .starts_with("sandbox backend docker is unavailable: docker engine unreachable: "),
        "{text}"
    );
}

/// Configs read as the docs say: backends by name, docker with its image,
/// durations in milliseconds, defaults for what is missing.
#[test]
fn config_and_outcome_serialisation() {
    let config: SandboxConfig = serde_json::from_str(
        r#"{"backend": {"docker": {"image": "python:3.12"}}, "timeout_ms": 1500}"#,
    )
    .expect("parsing a config");
    assert_eq!(
        config.backend,
        Backend::Docker {
            image: "python:3.12".to_string()
        }
    );
    assert_eq!(config.timeout, Duration::from_millis(1500));
    assert_eq!(config.memory_bytes, 4 << 30);
    let process: SandboxConfig =
        serde_json::from_str(r#"{"backend": "process"}"#).expect("parsing");
    assert_eq!(process.backend, Backend::Process);
    assert_eq!(process.backend.to_string(), "process");

    let outcome = RunOutcome {
        command: "pytest".to_string(),
        backend: "bubblewrap".to_string(),
        exit: Some(1),
        signal: None,
        timed_out: false,
        duration: Duration::from_millis(2500),
        output: super::CappedOutput {
            head: "F\n".to_string(),
            tail: String::new(),
            total_bytes: 2,
            dropped_bytes: 0,
        },
    };
    expect_test::expect![[r#"{"command":"pytest","backend":"bubblewrap","exit":1,"signal":null,"timed_out":false,"duration_ms":2500,"output":{"head":"F\n","tail":"","total_bytes":2,"dropped_bytes":0}}"#]]
        .assert_eq(&serde_json::to_string(&outcome).expect("serialising"));
}
