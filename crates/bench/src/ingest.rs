//! `suture bench ingest`: load the real `suture serve` over HTTP and print
//! what it sustains.
//!
//! The benchmark starts this binary's `serve` as a child process (its own
//! data dir, SQLite unless `--database-url`, no workers), then drives it
//! from keep-alive connections: SDK envelopes for `--seconds`, signed
//! PagerDuty webhooks for `--seconds`, then a storm of `--storm` identical
//! errors. It prints accepted events per second and p50/p99/max latency per
//! phase, checks that the storm is one incident counting every event, reads
//! the server's memory high-water mark (VmHWM), stops it with SIGTERM, and
//! checks in the store that every 2xx answer is a stored row. The load
//! generator shares the machine with the server, so the figures are a floor.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use ingest::signature::sign_hex;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::BenchError;

/// Flags of `suture bench ingest`.
#[derive(Debug, Args)]
pub struct BenchIngestArgs {
    /// Seconds of load per phase (envelopes, then webhooks).
    #[arg(long, value_name = "N", default_value_t = 10)]
    seconds: u64,
    /// Concurrent keep-alive connections.
    #[arg(long, value_name = "N", default_value_t = 64)]
    connections: usize,
    /// Identical events in the storm phase (0 skips it).
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    storm: u64,
    /// Benchmark PostgreSQL at this URL instead of the embedded SQLite.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

const PAGERDUTY_SECRET: &str = "bench-pagerduty-secret";

/// One phase's figures.
struct Phase {
    name: &'static str,
    accepted: u64,
    refused: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

/// Runs the ingest benchmark and prints its figures.
pub fn run(args: &BenchIngestArgs) -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .map_err(BenchError::Failed)?;
    runtime.block_on(bench(args)).map_err(BenchError::Failed)
}

async fn bench(args: &BenchIngestArgs) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("suture-bench-ingest-")
        .tempdir()?;
    let config = dir.path().join("suture.toml");
    std::fs::write(
        &config,
        "[queue]\ningest_capacity = 65536\nbatch_max = 1024\n",
    )?;
    #[allow(clippy::disallowed_methods)] // the benchmark loads a real suture serve
    let mut command = Command::new(std::env::current_exe()?);
    command
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
        .arg(dir.path().join("data"))
        .env("SUTURE_PAGERDUTY_WEBHOOK_SECRETS", PAGERDUTY_SECRET)
        .env("SUTURE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match &args.database_url {
        Some(url) => command.env("SUTURE_DATABASE_URL", url),
        None => command.env_remove("SUTURE_DATABASE_URL"),
    };
    let mut child = command.spawn().context("starting suture serve")?;
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(
        child.stdout.take().expect("piped stdout"),
    ));
    let first = lines.next().context("suture serve printed nothing")??;
    let addr: std::net::SocketAddr = first
        .strip_prefix("suture listening on http://")
        .context("unexpected first line of suture serve")?
        .parse()?;
    let dsn = lines.next().context("suture serve printed no dsn")??;
    let key = dsn
        .rsplit("://")
        .next()
        .and_then(|rest| rest.split('@').next())
        .context("no key in the dsn")?
        .to_owned();
    std::thread::spawn(move || for _ in lines {});

    let result = phases(args, addr, &key).await;
    let high_water = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .map(|line| line.trim_start_matches("VmHWM:").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    #[allow(clippy::disallowed_methods)] // SIGTERM through kill(1)
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait()?;
    let (phases, storm_incidents) = result?;
    if !status.success() {
        bail!("suture serve exited with {status} after SIGTERM");
    }

    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite:{}", dir.path().join("data/suture.db").display()));
    let store = store::Store::open(&database_url, &store::StoreOptions::default()).await?;
    let stored = store.count_signals().await?;
    let accepted: u64 = phases.iter().map(|phase| phase.accepted).sum();

    println!(
        "suture bench ingest: {} connections, {} s per phase, {}",
        args.connections,
        args.seconds,
        store::redact_url(&database_url)
    );
    println!(
        "{:<10} {:>10} {:>9} {:>11} {:>9} {:>9} {:>9}",
        "phase", "accepted", "refused", "events/s", "p50 ms", "p99 ms", "max ms"
    );
    for phase in &phases {
        let mut latencies = phase.latencies_us.clone();
        latencies.sort_unstable();
        let quantile = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .map_or(0.0, |us| f64::from(*us) / 1000.0)
        };
        println!(
            "{:<10} {:>10} {:>9} {:>11.0} {:>9.2} {:>9.2} {:>9.2}",
            phase.name,
            phase.accepted,
            phase.refused,
            phase.accepted as f64 / phase.elapsed.as_secs_f64(),
            quantile(0.5),
            quantile(0.99),
            quantile(1.0),
        );
    }
    println!("server memory high-water mark (VmHWM): {high_water}");
    if args.storm > 0 {
        println!(
            "storm of {} identical errors: {storm_incidents} incident(s)",
            args.storm
        );
    }
    println!("2xx answers: {accepted}, rows in the store after SIGTERM: {stored}");
    if stored as u64 != accepted {
        bail!("{accepted} deliveries were answered 2xx but {stored} are stored");
    }
    if args.storm > 0 && storm_incidents != 1 {
        bail!("the storm made {storm_incidents} incidents, not 1");
    }
    Ok(())
}

async fn phases(
    args: &BenchIngestArgs,
    addr: std::net::SocketAddr,
    key: &str,
) -> anyhow::Result<(Vec<Phase>, usize)> {
    let duration = Duration::from_secs(args.seconds);
    let auth = format!("Sentry sentry_version=7, sentry_client=bench/1.0, sentry_key={key}");
    let envelope_auth = auth.clone();
    let envelopes = load(
        "envelope",
        addr,
        args.connections,
        duration,
        u64::MAX,
        move |n| {
            let id = format!("{:032x}", 0x1000_0000_0000_0000_u128 + u128::from(n));
            let body = envelope(
                &id,
                ["ValueError", "KeyError", "TypeError", "OSError"][(n % 4) as usize],
            );
            request(
                "/api/1/envelope/",
                &[("X-Sentry-Auth", &envelope_auth)],
                &body,
            )
        },
    )
    .await?;
    let webhooks = load("webhook", addr, args.connections, duration, u64::MAX, |n| {
        let body = format!(
            r#"{{"event":{{"id":"{n}","event_type":"incident.triggered","resource_type":"incident","data":{{"id":"P{}","type":"incident","title":"checkout latency","service":{{"id":"PSVC"}}}}}}}}"#,
            n % 50
        );
        let signature = format!("v1={}", sign_hex(PAGERDUTY_SECRET.as_bytes(), body.as_bytes()));
        let webhook_id = format!("bench-{n}");
        request(
            "/webhooks/pagerduty",
            &[("X-PagerDuty-Signature", &signature), ("X-Webhook-Id", &webhook_id)],
            body.as_bytes(),
        )
    })
    .await?;
    let mut phases = vec![envelopes, webhooks];
    let mut storm_incidents = 0;
    if args.storm > 0 {
        let storm = load(
            "storm",
            addr,
            args.connections,
            Duration::from_secs(3600),
            args.storm,
            move |n| {
                let id = format!("{:032x}", 0x2000_0000_0000_0000_u128 + u128::from(n));
                request(
                    "/api/1/envelope/",
                    &[("X-Sentry-Auth", &auth)],
                    &envelope(&id, "StormError"),
                )
            },
        )
        .await?;
        phases.push(storm);
        let (status, body) = send_once(
            addr,
            &request("/api/incidents?limit=1000", &[], b"").replacen("POST", "GET", 1),
        )
        .await?;
        if status != 200 {
            bail!("GET /api/incidents answered {status}");
        }
        let list: serde_json::Value = serde_json::from_slice(&body)?;
        storm_incidents = list["incidents"].as_array().map_or(0, |incidents| {
            incidents
                .iter()
                .filter(|incident| {
                    incident["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("StormError"))
                })
                .inspect(|incident| {
                    if incident["count"].as_u64() != Some(args.storm) {
                        eprintln!(
                            "storm incident counts {} of {}",
                            incident["count"], args.storm
                        );
                    }
                })
                .count()
        });
    }
    Ok((phases, storm_incidents))
}

fn envelope(event_id: &str, error_type: &str) -> Vec<u8> {
    let event = format!(
        r#"{{"event_id":"{event_id}","platform":"python","level":"error","exception":{{"values":[{{"type":"{error_type}","value":"bench","stacktrace":{{"frames":[{{"module":"shop.cart","function":"total","filename":"shop/cart.py","lineno":12,"in_app":true}},{{"module":"shop.views","function":"checkout","filename":"shop/views.py","lineno":40,"in_app":true}}]}}}}]}}}}"#
    );
    format!(
        "{{\"event_id\":\"{event_id}\"}}\n{{\"type\":\"event\",\"length\":{}}}\n{event}\n",
        event.len()
    )
    .into_bytes()
}

/// A keep-alive POST request's bytes (as a string of raw bytes).
fn request(path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let mut text = format!(
        "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(&String::from_utf8_lossy(body));
    text
}

/// Drives `connections` keep-alive connections for `duration` or until
/// `total` requests were sent, request `n` built by `make(n)`.
async fn load(
    name: &'static str,
    addr: std::net::SocketAddr,
    connections: usize,
    duration: Duration,
    total: u64,
    make: impl Fn(u64) -> String + Send + Sync + 'static,
) -> anyhow::Result<Phase> {
    let make = Arc::new(make);
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (make, next, accepted, refused, stop) = (
            make.clone(),
            next.clone(),
            accepted.clone(),
            refused.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut stream = BufReader::new(stream);
            loop {
                if stop.load(Ordering::Relaxed) || started.elapsed() >= duration {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                let request = make(n);
                let sent = Instant::now();
                stream.get_mut().write_all(request.as_bytes()).await?;
                let (status, _) = read_response(&mut stream).await?;
                latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                if (200..300).contains(&status) {
                    accepted.fetch_add(1, Ordering::Relaxed);
                } else {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await??);
    }
    stop.store(true, Ordering::Relaxed);
    Ok(Phase {
        name,
        accepted: accepted.load(Ordering::Relaxed),
        refused: refused.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latencies_us,
    })
}

/// One request on a fresh connection.
async fn send_once(addr: std::net::SocketAddr, request: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = BufReader::new(TcpStream::connect(addr).await?);
    stream.get_mut().write_all(request.as_bytes()).await?;
    read_response(&mut stream).await
}

/// Reads one HTTP/1.1 response with a Content-Length body.
async fn read_response(stream: &mut BufReader<TcpStream>) -> anyhow::Result<(u16, Vec<u8>)> {
    use tokio::io::AsyncBufReadExt;
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            bail!("connection closed mid-response");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await?;
    Ok((status, body))
}
