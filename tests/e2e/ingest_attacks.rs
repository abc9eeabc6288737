//! Attacks on the public ingest surface, against the real binary on
//! 127.0.0.1: a DSN's public key is public and webhooks come from the
//! internet, so each attack runs while valid traffic (an SDK event, a signed
//! webhook, `/healthz`) must keep being answered, and the server's memory
//! high-water mark (VmHWM) must stay bounded. Every attack is bounded in
//! count and ends by itself.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use serde_json::json;
use tests::serve_support::{Db, Serve, ServeHome, block_on, event_envelope, http, sentry_auth};

/// The bound on the server's peak resident memory under every attack: the
/// old server reached 851 MB to 5.6 GB.
const MAX_HWM_KB: u64 = 300 * 1024;

const GITHUB_SECRET: &str = "attack-test-github-secret";
const SENTRY_SECRET: &str = "attack-test-sentry-secret";

/// The server's peak resident set, in KiB.
fn vm_hwm_kb(serve: &Serve) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", serve.child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

fn assert_memory_bounded(serve: &Serve) {
    let hwm = vm_hwm_kb(serve);
    eprintln!("server peak memory (VmHWM): {} MB", hwm / 1024);
    assert!(
        hwm < MAX_HWM_KB,
        "the server's peak memory is {} MB, over {} MB",
        hwm / 1024,
        MAX_HWM_KB / 1024
    );
}

/// A valid SDK event is stored (200) and `/healthz` answers.
fn assert_serving(serve: &Serve, event_id: &str) {
    let (status, body) = http(serve.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200, "/healthz: {}", String::from_utf8_lossy(&body));
    let event = json!({
        "event_id": event_id,
        "exception": {"values": [{"type": "ValueError", "value": "valid traffic"}]},
    });
    let (status, body) = http(
        serve.addr,
        "POST",
        "/api/1/envelope/",
        &[("X-Sentry-Auth", &sentry_auth(&serve.key()))],
        &event_envelope(event_id, &event),
    );
    assert_eq!(
        status,
        200,
        "valid event: {}\nstderr:\n{}",
        String::from_utf8_lossy(&body),
        serve.stderr()
    );
}

/// Sends `head` and `body` on a fresh connection and reads whatever comes
/// back; the server may answer and close before the body is all sent.
fn send_raw(addr: SocketAddr, head: &str, body: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    stream.write_all(head.as_bytes()).ok()?;
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn envelope_head(addr: SocketAddr, auth: Option<&str>, length: usize) -> String {
    let auth = auth.map_or(String::new(), |auth| format!("X-Sentry-Auth: {auth}\r\n"));
    format!(
        "POST /api/1/envelope/ HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{auth}Content-Length: {length}\r\n\r\n"
    )
}

/// 20 MiB envelopes of empty items and of nested arrays, two at a time,
/// with a wrong key in their `dsn` header and with the right (public) key:
/// the wrong ones are refused after their first line, the right ones at the
/// item and depth caps; valid traffic is answered throughout and memory
/// stays bounded.
#[test]
fn huge_envelopes_are_refused_at_their_caps() {
    let home = ServeHome::new(Db::Sqlite, "");
    let serve = home.start(&[]);
    let key = serve.key();
    let size = 20 << 20;
    let bodies: Vec<(Option<String>, Vec<u8>)> = {
        let wrong = "{\"dsn\":\"http://0000@127.0.0.1/1\"}\n";
        let items = "{\"type\":\"a\"}\n\n".repeat(size / 14);
        let nested = format!("{}{}", "[".repeat(size / 2), "]".repeat(size / 2));
        vec![
            (None, format!("{wrong}{items}").into_bytes()),
            (
                None,
                format!("{wrong}{{\"type\":\"event\"}}\n{nested}").into_bytes(),
            ),
            (
                Some(sentry_auth(&key)),
                format!("{{}}\n{items}").into_bytes(),
            ),
            (Some(sentry_auth(&key)), format!("{nested}\n").into_bytes()),
        ]
    };
    let bodies = std::sync::Arc::new(bodies);
    let attackers: Vec<_> = (0..2)
        .map(|worker| {
            let bodies = bodies.clone();
            let addr = serve.addr;
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for round in 0..2 {
                    for (index, (auth, body)) in bodies.iter().enumerate() {
                        if (index + round + worker) % 2 == 0 {
                            let head = envelope_head(addr, auth.as_deref(), body.len());
                            statuses.push(send_raw(addr, &head, body));
                        }
                    }
                }
                statuses
            })
        })
        .collect();
    let mut served: i64 = 0;
    while !attackers.iter().all(|attacker| attacker.is_finished()) {
        assert_serving(&serve, &format!("{:032x}", 0xa000 + served));
        served += 1;
    }
    for attacker in attackers {
        for status in attacker.join().unwrap() {
            // Refused: 403 (wrong key), 413 (items), 400 (depth); or the
            // connection closed on the rest of the unread body.
            assert!(
                matches!(status, None | Some(400 | 403 | 413)),
                "an attack envelope got {status:?}"
            );
        }
    }
    assert_serving(&serve, &"b".repeat(32));
    assert_memory_bounded(&serve);
    let rows = block_on(home.store().count_signals()).unwrap();
    assert_eq!(rows, served + 1, "only the valid events are stored");
}

/// Connections whose declared bodies add up to the whole in-flight budget
/// (`limits.max_inflight_bytes`, 256 MiB: twelve of 20 MiB and one of 16
/// MiB), with and without a key, send nothing: they hold nothing, so a
/// valid event and a signed webhook are accepted while they wait.
#[test]
fn declared_but_unsent_bodies_hold_no_budget() {
    let mut home = ServeHome::new(Db::Sqlite, "");
    home.env
        .push(("SUTURE_GITHUB_WEBHOOK_SECRET".into(), GITHUB_SECRET.into()));
    let serve = home.start(&[]);
    let key = serve.key();
    let budget: usize = 256 << 20;
    let mut declared = 0;
    let mut stalled = Vec::new();
    for index in 0.. {
        let length = (budget - declared).min(20 << 20);
        if length == 0 {
            break;
        }
        declared += length;
        let mut stream = TcpStream::connect(serve.addr).unwrap();
        let auth = sentry_auth(&key);
        let auth = if index % 2 == 0 {
            Some(auth.as_str())
        } else {
            None
        };
        stream
            .write_all(envelope_head(serve.addr, auth, length).as_bytes())
            .unwrap();
        stalled.push(stream);
    }
    assert_eq!(stalled.len(), 13);
    // Every stalled request has reached its handler once healthz answers
    // after them on the same runtime; then valid traffic must get through.
    assert_serving(&serve, &"c".repeat(32));
    let body = serde_json::to_vec(&json!({
        "action": "created",
        "comment": {"id": 99, "updated_at": "2026-01-01T00:00:00Z", "body": "/suture retry"},
        "issue": {"id": 5, "number": 5},
        "repository": {"full_name": "acme/shop"},
    }))
    .unwrap();
    let signature = format!("sha256={}", ingest_sign(GITHUB_SECRET.as_bytes(), &body));
    let (status, reply) = http(
        serve.addr,
        "POST",
        "/webhooks/github",
        &[
            ("X-GitHub-Event", "issue_comment"),
            ("X-GitHub-Delivery", "d-1"),
            ("X-Hub-Signature-256", &signature),
        ],
        &body,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
    assert_serving(&serve, &"d".repeat(32));
    drop(stalled);
    assert_memory_bounded(&serve);
}

/// Idle sockets and half-sent requests, far past the connection cap: the
/// server closes them (idle and header read timeouts) and keeps answering.
#[test]
fn idle_and_half_sent_connections_are_closed() {
    let home = ServeHome::new(
        Db::Sqlite,
        "[server]\nmax_connections = 64\nheader_read_timeout_seconds = 2\nidle_timeout_seconds = 1\n",
    );
    let serve = home.start(&[]);
    let sockets = open_idle_sockets(serve.addr, 300);
    assert_serving(&serve, &"e".repeat(32));
    // A half-sent request is closed by the server, not left open.
    let mut half = TcpStream::connect(serve.addr).unwrap();
    half.write_all(b"POST /api/1/envelope/ HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    assert_closed_by_server(&mut half);
    drop(sockets);
    assert_serving(&serve, &"f".repeat(32));
    assert_memory_bounded(&serve);
}

/// With its file descriptor limit lowered below the sockets thrown at it,
/// the server runs out of descriptors on accept, backs off, and recovers
/// as the idle ones are closed.
#[test]
fn running_out_of_file_descriptors_is_recovered() {
    let home = ServeHome::new(
        Db::Sqlite,
        "[server]\nheader_read_timeout_seconds = 2\nidle_timeout_seconds = 1\n",
    );
    let serve = home.start(&[]);
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", serve.child.id()))
        .arg("--nofile=128:128")
        .status()
        .expect("running prlimit");
    assert!(status.success(), "prlimit failed");
    let sockets = open_idle_sockets(serve.addr, 300);
    assert_serving(&serve, &"1".repeat(32));
    drop(sockets);
    assert_serving(&serve, &"2".repeat(32));
    assert!(
        serve.stderr().contains("accepting a connection failed"),
        "the descriptor limit was never reached; stderr:\n{}",
        serve.stderr()
    );
    assert_memory_bounded(&serve);
}

/// A signed GitHub delivery sent again under a new X-GitHub-Delivery, and a
/// signed Sentry body sent again with a fresh timestamp, are duplicates.
#[test]
fn replayed_webhooks_are_deduplicated() {
    let mut home = ServeHome::new(Db::Sqlite, "");
    home.env
        .push(("SUTURE_GITHUB_WEBHOOK_SECRET".into(), GITHUB_SECRET.into()));
    home.env
        .push(("SUTURE_SENTRY_CLIENT_SECRET".into(), SENTRY_SECRET.into()));
    let serve = home.start(&[]);
    let github = serde_json::to_vec(&json!({
        "action": "closed",
        "pull_request": {"id": 77, "number": 3, "merged": true, "head": {"sha": "abc"}, "updated_at": "2026-01-01T00:00:00Z"},
        "repository": {"full_name": "acme/shop"},
    }))
    .unwrap();
    let signature = format!("sha256={}", ingest_sign(GITHUB_SECRET.as_bytes(), &github));
    let mut replies = Vec::new();
    for delivery in ["d-1", "d-2", "d-3"] {
        let (status, body) = http(
            serve.addr,
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", "pull_request"),
                ("X-GitHub-Delivery", delivery),
                ("X-Hub-Signature-256", &signature),
            ],
            &github,
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        replies.push(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"].clone());
    }
    assert_eq!(replies, ["accepted", "duplicate", "duplicate"]);

    let sentry = serde_json::to_vec(&json!({
        "action": "resolved",
        "installation": {"uuid": "i-1"},
        "data": {"issue": {"id": "4711", "title": "E", "lastSeen": "2026-01-01T00:00:00Z", "project": {"id": "1"}}},
    }))
    .unwrap();
    let signature = ingest_sign(SENTRY_SECRET.as_bytes(), &sentry);
    let mut replies = Vec::new();
    for offset in [0, 1] {
        let timestamp = (now_seconds() + offset).to_string();
        let request_id = format!("r-{offset}");
        let (status, body) = http(
            serve.addr,
            "POST",
            "/webhooks/sentry",
            &[
                ("Sentry-Hook-Resource", "issue"),
                ("Sentry-Hook-Timestamp", &timestamp),
                ("Sentry-Hook-Signature", &signature),
                ("Request-ID", &request_id),
            ],
            &sentry,
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        replies.push(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["status"].clone());
    }
    assert_eq!(replies, ["accepted", "duplicate"]);
    assert_eq!(block_on(home.store().count_signals()).unwrap(), 2);
}

fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Hex HMAC-SHA256 of `body` under `secret`, as the senders sign it.
fn ingest_sign(secret: &[u8], body: &[u8]) -> String {
    let secret = String::from_utf8_lossy(secret);
    fakes::github::sign_github_webhook(&secret, body)
        .trim_start_matches("sha256=")
        .to_owned()
}

/// Opens `count` connections that send nothing, half of them after a
/// partial request head.
fn open_idle_sockets(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    (0..count)
        .filter_map(|index| {
            let mut stream = TcpStream::connect(addr).ok()?;
            if index % 2 == 1 {
                let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n");
            }
            Some(stream)
        })
        .collect()
}

/// Reads until the server closes `stream` (EOF or a reset); the read
/// timeout is only a liveness bound.
fn assert_closed_by_server(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return;
            }
            Err(error) => panic!("the server left a half-sent request open: {error}"),
        }
    }
}
