//! Support for the `suture serve` scenarios: the real binary started on a
//! free port over SQLite or a fresh PostgreSQL database, a plain HTTP/1.1
//! client, signals, and direct reads of the store it wrote.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Which database a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// The embedded default: a SQLite file in the data dir.
    Sqlite,
    /// A fresh database on the test PostgreSQL server (scripts/test starts it).
    Postgres,
}

/// Where one scenario's service keeps its state, across restarts.
pub struct ServeHome {
    /// The data dir (`--data-dir`) and config file live here.
    pub dir: TempDir,
    /// `SUTURE_DATABASE_URL` for PostgreSQL; `None` for SQLite.
    pub database_url: Option<String>,
    /// Extra lines of `suture.toml`.
    pub config: String,
    /// Extra environment for the process.
    pub env: Vec<(String, String)>,
}

/// A running `suture serve`.
pub struct Serve {
    /// The process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The DSN it printed for project 1.
    pub dsn: String,
    /// Everything it printed on stdout after the address line.
    stdout: std::sync::mpsc::Receiver<String>,
    /// Its stderr, captured to a file for failure messages.
    stderr_path: PathBuf,
}

impl ServeHome {
    /// A fresh home on `db`, with `config` as extra `suture.toml` text.
    pub fn new(db: Db, config: &str) -> ServeHome {
        let dir = tempfile::Builder::new()
            .prefix("suture-serve-")
            .tempdir()
            .unwrap();
        let database_url = match db {
            Db::Sqlite => None,
            Db::Postgres => Some(block_on(store::testing::fresh_postgres_url())),
        };
        ServeHome {
            dir,
            database_url,
            config: config.to_owned(),
            env: Vec::new(),
        }
    }

    /// The data dir.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts `suture serve` on a free port with `extra_env`, and waits for
    /// it to print its address.
    pub fn start(&self, extra_env: &[(&str, &str)]) -> Serve {
        let config_path = self.dir.path().join("suture.toml");
        std::fs::write(&config_path, &self.config).unwrap();
        let stderr_path = self.dir.path().join(format!("stderr-{}.log", unique()));
        let mut command = Command::new(crate::suture_bin());
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config_path)
            .arg("--data-dir")
            .arg(self.data_dir())
            .env_remove("SUTURE_DATABASE_URL")
            .env("SUTURE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        if let Some(url) = &self.database_url {
            command.env("SUTURE_DATABASE_URL", url);
        }
        for (name, value) in self
            .env
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .chain(extra_env.iter().copied())
        {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting suture serve");
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "suture serve printed no address; stderr:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            });
        let addr = first
            .strip_prefix("suture listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .parse()
            .unwrap();
        let dsn_line = lines.recv_timeout(Duration::from_secs(10)).unwrap();
        let dsn = dsn_line.rsplit(": ").next().unwrap().to_owned();
        Serve {
            child,
            addr,
            dsn,
            stdout: lines,
            stderr_path,
        }
    }

    /// Opens the store once every service process has stopped. On
    /// PostgreSQL it first waits for their sessions to end: a backend whose
    /// client was SIGKILLed may still commit a transaction whose COMMIT it
    /// had already received.
    pub fn store_after_stop(&self) -> store::Store {
        if let Some(url) = &self.database_url {
            block_on(store::testing::wait_for_other_sessions(
                url,
                Duration::from_secs(60),
            ));
        }
        self.store()
    }

    /// Opens the store the service writes, while it runs.
    pub fn store(&self) -> store::Store {
        let url = self
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite:{}", self.data_dir().join("suture.db").display()));
        block_on(store::Store::open(&url, &store::StoreOptions::default()))
            .expect("opening the service's store")
    }
}

impl Serve {
    /// The DSN's public key.
    pub fn key(&self) -> String {
        self.dsn
            .split("://")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_owned()
    }

    /// SIGKILL: the process dies where it stands.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then waits (at most `limit`) for it to exit.
    pub fn terminate(mut self, limit: Duration) -> (ExitStatus, String) {
        signal(self.child.id(), "TERM");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.stderr());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "suture serve did not exit within {limit:?} of SIGTERM; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// The rest of the announcement printed on stdout after the DSN, up to
    /// its last line (`workers:`).
    pub fn announcement(&self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.stdout.recv_timeout(Duration::from_secs(60)) {
            let last = line.trim_start().starts_with("workers:");
            lines.push(line);
            if last {
                break;
            }
        }
        lines
    }

    /// `GET path` as JSON, expecting 200.
    pub fn get_json(&self, path: &str) -> serde_json::Value {
        let (status, body) = http(self.addr, "GET", path, &[], b"");
        assert_eq!(
            status,
            200,
            "GET {path}: {}\nstderr:\n{}",
            String::from_utf8_lossy(&body),
            self.stderr()
        );
        serde_json::from_slice(&body).unwrap()
    }

    /// Polls `GET path` until `done` holds of its JSON, for at most
    /// `limit` (a liveness bound, generous so it never flakes).
    pub fn wait_json(
        &self,
        path: &str,
        limit: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.get_json(path);
            if done(&value) {
                return value;
            }
            if Instant::now() > deadline {
                panic!(
                    "GET {path} never got there: {value:#}\nstderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `kill -<name> pid`.
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// One HTTP/1.1 request on a fresh connection; `(status, body)`. Status 0
/// means the connection failed or broke before an answer.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let attempt = || -> std::io::Result<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        stream.write_all(body)?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let head_end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no response head"))?;
        let head = String::from_utf8_lossy(&response[..head_end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other("no status"))?;
        let mut body = response[head_end + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body = dechunk(&body);
        }
        Ok((status, body))
    };
    attempt().unwrap_or((0, Vec::new()))
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..line_end]).trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// An SDK envelope with one event item.
pub fn event_envelope(event_id: &str, event: &serde_json::Value) -> Vec<u8> {
    let payload = event.to_string();
    format!(
        "{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
    .into_bytes()
}

/// The `X-Sentry-Auth` header for `key`.
pub fn sentry_auth(key: &str) -> String {
    format!("Sentry sentry_version=7, sentry_client=e2e/1.0, sentry_key={key}")
}

/// Runs a future to completion on the tests' shared runtime: one runtime
/// for every call, so a store opened in one call (its PostgreSQL sockets
/// belong to the runtime) still works in the next.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test runtime")
        })
        .block_on(future)
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The path of a support script under `tests/support/`.
pub fn support_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("support")
        .join(name)
}

/// An incident's timeline from the API, as `(kind, message)` pairs in
/// order.
pub fn timeline(incident: &serde_json::Value) -> Vec<(String, String)> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            (
                entry["kind"].as_str().unwrap_or_default().to_owned(),
                entry["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}
