//! Prometheus metrics, kept in process and rendered as text on `/metrics`.
//!
//! Counters and histograms live here; gauges that the store knows better
//! (incidents by state, queued jobs) are read from it at scrape time by the
//! handler. Every label has a bounded set of values: routes are the matched
//! route templates, sources and reasons are fixed strings.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

/// Buckets of the job step duration histogram, in seconds.
const STEP_BUCKETS: [f64; 10] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0];
/// Buckets of the incident milestone histogram, in seconds (a second to a
/// week: a pull request comes in minutes, a resolution after a quiet window).
const MILESTONE_BUCKETS: [f64; 10] = [
    1.0, 10.0, 60.0, 300.0, 900.0, 3600.0, 14_400.0, 86_400.0, 259_200.0, 604_800.0,
];
/// Buckets of the request latency histogram, in seconds.
const REQUEST_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// The process's metrics; shared behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    request_seconds: Mutex<BTreeMap<String, Histogram>>,
    signals: Mutex<BTreeMap<(&'static str, &'static str, &'static str), u64>>,
    job_steps: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    jobs: Mutex<BTreeMap<&'static str, u64>>,
    milestones: Mutex<BTreeMap<&'static str, Histogram>>,
    actions: Mutex<BTreeMap<(String, &'static str), u64>>,
    reproductions: Mutex<BTreeMap<&'static str, u64>>,
    heal_outcomes: Mutex<BTreeMap<&'static str, u64>>,
    observed: Mutex<BTreeMap<&'static str, u64>>,
    deferred: Mutex<BTreeMap<&'static str, u64>>,
    llm_tokens: Mutex<BTreeMap<String, u64>>,
    /// Deliveries waiting in the ingest queue right now.
    pub ingest_queue_depth: AtomicI64,
}

/// What became of a delivery, for `suture_signals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalResult {
    /// Stored.
    Accepted,
    /// A repeat of a stored delivery: nothing written.
    Deduplicated,
    /// Refused, with the reason label.
    Rejected(&'static str),
    /// Refused by the project's rate limit (429).
    RateLimited,
    /// Received and acknowledged but not a signal (sessions, transactions,
    /// client reports in an envelope without an event).
    Ignored,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.buckets.is_empty() {
            self.buckets = vec![0; bounds.len()];
        }
        for (bucket, bound) in self.buckets.iter_mut().zip(bounds) {
            if value <= *bound {
                *bucket += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64]) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bucket, bound) in self.buckets.iter().zip(bounds) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {bucket}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// Gauges read from the store at scrape time.
#[derive(Debug, Clone, Default)]
pub struct StoreGauges {
    /// Incidents by state name.
    pub incidents_by_state: Vec<(&'static str, i64)>,
    /// Jobs waiting in the durable queue.
    pub queued_jobs: i64,
    /// Fix attempts by (strategy, state): what was proposed and what held.
    pub fix_attempts: Vec<(String, &'static str, i64)>,
    /// Whether each configured repository is paused (`*`: everything), by
    /// the kill switch.
    pub paused: Vec<(String, bool)>,
}

impl Metrics {
    /// Counts one answered request on `route` (the matched route template).
    pub fn request(&self, route: &str, status: u16, elapsed: Duration) {
        *lock(&self.requests)
            .entry((route.to_owned(), status))
            .or_default() += 1;
        lock(&self.request_seconds)
            .entry(route.to_owned())
            .or_default()
            .observe(&REQUEST_BUCKETS, elapsed.as_secs_f64());
    }

    /// Counts one delivery from `source` by what became of it.
    pub fn signal(&self, source: &'static str, result: SignalResult) {
        let key = match result {
            SignalResult::Accepted => ("accepted", source, ""),
            SignalResult::Deduplicated => ("deduplicated", source, ""),
            SignalResult::Rejected(reason) => ("rejected", source, reason),
            SignalResult::RateLimited => ("rate_limited", source, ""),
            SignalResult::Ignored => ("ignored", source, ""),
        };
        *lock(&self.signals).entry(key).or_default() += 1;
    }

    /// Records how long pipeline step `step` took and how it ended
    /// (`finished`, `failed`, `interrupted`).
    pub fn job_step(&self, step: &str, outcome: &'static str, elapsed: Duration) {
        lock(&self.job_steps)
            .entry((step.to_owned(), outcome))
            .or_default()
            .observe(&STEP_BUCKETS, elapsed.as_secs_f64());
    }

    /// Counts a job that ended (`done`, `failed`, `retried`, `released`).
    pub fn job(&self, outcome: &'static str) {
        *lock(&self.jobs).entry(outcome).or_default() += 1;
    }

    /// Records that an incident reached `milestone` (`diagnosed`,
    /// `pull_request`, `resolved`) `since_first_seen` after its first signal.
    pub fn milestone(&self, milestone: &'static str, since_first_seen: Duration) {
        lock(&self.milestones)
            .entry(milestone)
            .or_default()
            .observe(&MILESTONE_BUCKETS, since_first_seen.as_secs_f64());
    }

    /// Counts a reproduction step by what it found (`existing`, `replay`,
    /// `llm`; `none` when the error was not reproduced).
    pub fn reproduction(&self, kind: Option<&'static str>) {
        *lock(&self.reproductions)
            .entry(kind.unwrap_or("none"))
            .or_default() += 1;
    }

    /// Counts a run of recovery action `action` (a configured name) by its
    /// result (`ok`, `failed`, `check_failed`, `skipped_limit`, `dry_run`,
    /// `awaiting_approval`, `not_needed`).
    pub fn action(&self, action: &str, result: &'static str) {
        *lock(&self.actions)
            .entry((action.to_owned(), result))
            .or_default() += 1;
    }

    /// Counts a heal step by its outcome (`proven`, `plausible`,
    /// `unproven`, `escalated`).
    pub fn heal_outcome(&self, outcome: &'static str) {
        *lock(&self.heal_outcomes).entry(outcome).or_default() += 1;
    }

    /// Counts an incident held back as `observed`, by reason (`learning`,
    /// `old_release`, `min_events`, `heal_on`).
    pub fn incident_observed(&self, reason: &'static str) {
        *lock(&self.observed).entry(reason).or_default() += 1;
    }

    /// Counts a round held back as `deferred`, by the limit's key.
    pub fn round_deferred(&self, limit: &'static str) {
        *lock(&self.deferred).entry(limit).or_default() += 1;
    }

    /// Adds LLM tokens spent for repository `repo`.
    pub fn llm_tokens(&self, repo: &str, tokens: u64) {
        *lock(&self.llm_tokens).entry(repo.to_owned()).or_default() += tokens;
    }

    /// Accepted deliveries so far, all sources: for tests and the benchmark.
    pub fn accepted_total(&self) -> u64 {
        lock(&self.signals)
            .iter()
            .filter(|((result, _, _), _)| *result == "accepted")
            .map(|(_, n)| n)
            .sum()
    }

    /// The Prometheus text exposition of everything, with `gauges` from the store.
    pub fn render(&self, gauges: &StoreGauges) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP suture_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE suture_http_requests_total counter\n");
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "suture_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP suture_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE suture_http_request_duration_seconds histogram\n");
        for (route, histogram) in lock(&self.request_seconds).iter() {
            histogram.render(
                &mut out,
                "suture_http_request_duration_seconds",
                &format!("route=\"{route}\""),
                &REQUEST_BUCKETS,
            );
        }
        out.push_str(
            "# HELP suture_signals_total Deliveries by source and result (accepted, deduplicated, rejected with a reason, rate_limited, ignored).\n",
        );
        out.push_str("# TYPE suture_signals_total counter\n");
        for ((result, source, reason), n) in lock(&self.signals).iter() {
            let _ = writeln!(
                out,
                "suture_signals_total{{result=\"{result}\",source=\"{source}\",reason=\"{reason}\"}} {n}"
            );
        }
        out.push_str("# HELP suture_ingest_queue_depth Deliveries waiting to be committed.\n");
        out.push_str("# TYPE suture_ingest_queue_depth gauge\n");
        let _ = writeln!(
            out,
            "suture_ingest_queue_depth {}",
            self.ingest_queue_depth.load(Ordering::Relaxed)
        );
        out.push_str("# HELP suture_jobs_queued Pipeline jobs waiting in the durable queue.\n");
        out.push_str("# TYPE suture_jobs_queued gauge\n");
        let _ = writeln!(out, "suture_jobs_queued {}", gauges.queued_jobs);
        out.push_str("# HELP suture_jobs_total Pipeline job attempts that ended, by outcome.\n");
        out.push_str("# TYPE suture_jobs_total counter\n");
        for (outcome, n) in lock(&self.jobs).iter() {
            let _ = writeln!(out, "suture_jobs_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP suture_reproductions_total Reproduction steps, by what reproduced the error (none: nothing did).\n");
        out.push_str("# TYPE suture_reproductions_total counter\n");
        for (kind, n) in lock(&self.reproductions).iter() {
            let _ = writeln!(out, "suture_reproductions_total{{kind=\"{kind}\"}} {n}");
        }
        out.push_str(
            "# HELP suture_actions_total Runs of recovery actions, by action and result.\n",
        );
        out.push_str("# TYPE suture_actions_total counter\n");
        for ((action, result), n) in lock(&self.actions).iter() {
            let _ = writeln!(
                out,
                "suture_actions_total{{action=\"{action}\",result=\"{result}\"}} {n}"
            );
        }
        out.push_str("# HELP suture_heal_outcomes_total Heal steps, by outcome.\n");
        out.push_str("# TYPE suture_heal_outcomes_total counter\n");
        for (outcome, n) in lock(&self.heal_outcomes).iter() {
            let _ = writeln!(
                out,
                "suture_heal_outcomes_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP suture_incidents_observed_total Incidents held back as observed (not worth a round on their own), by reason.\n");
        out.push_str("# TYPE suture_incidents_observed_total counter\n");
        for (reason, n) in lock(&self.observed).iter() {
            let _ = writeln!(
                out,
                "suture_incidents_observed_total{{reason=\"{reason}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP suture_rounds_deferred_total Rounds held back by a limit, by the limit.\n",
        );
        out.push_str("# TYPE suture_rounds_deferred_total counter\n");
        for (limit, n) in lock(&self.deferred).iter() {
            let _ = writeln!(out, "suture_rounds_deferred_total{{limit=\"{limit}\"}} {n}");
        }
        out.push_str("# HELP suture_llm_tokens_total LLM tokens spent, by repository.\n");
        out.push_str("# TYPE suture_llm_tokens_total counter\n");
        for (repo, n) in lock(&self.llm_tokens).iter() {
            let _ = writeln!(
                out,
                "suture_llm_tokens_total{{repo=\"{}\"}} {n}",
                label(repo)
            );
        }
        out.push_str("# HELP suture_job_step_duration_seconds Time spent in a pipeline step, by step and outcome.\n");
        out.push_str("# TYPE suture_job_step_duration_seconds histogram\n");
        for ((step, outcome), histogram) in lock(&self.job_steps).iter() {
            histogram.render(
                &mut out,
                "suture_job_step_duration_seconds",
                &format!("step=\"{step}\",outcome=\"{outcome}\""),
                &STEP_BUCKETS,
            );
        }
        out.push_str("# HELP suture_incident_milestone_seconds Time from an incident's first signal to its diagnosis, pull request and resolution.\n");
        out.push_str("# TYPE suture_incident_milestone_seconds histogram\n");
        for (milestone, histogram) in lock(&self.milestones).iter() {
            histogram.render(
                &mut out,
                "suture_incident_milestone_seconds",
                &format!("milestone=\"{milestone}\""),
                &MILESTONE_BUCKETS,
            );
        }
        out.push_str(
            "# HELP suture_paused Whether suture is paused (suture pause), by repository; repo=\"*\" is the global pause.\n",
        );
        out.push_str("# TYPE suture_paused gauge\n");
        for (repo, paused) in &gauges.paused {
            let _ = writeln!(
                out,
                "suture_paused{{repo=\"{}\"}} {}",
                label(repo),
                u8::from(*paused)
            );
        }
        out.push_str("# HELP suture_incidents Incidents by state.\n");
        out.push_str("# TYPE suture_incidents gauge\n");
        for (state, n) in &gauges.incidents_by_state {
            let _ = writeln!(out, "suture_incidents{{state=\"{state}\"}} {n}");
        }
        out.push_str(
            "# HELP suture_fix_attempts Fix attempts by strategy and state (held, failed, rejected, ...).\n",
        );
        out.push_str("# TYPE suture_fix_attempts gauge\n");
        for (strategy, state, n) in &gauges.fix_attempts {
            let _ = writeln!(
                out,
                "suture_fix_attempts{{strategy=\"{strategy}\",state=\"{state}\"}} {n}"
            );
        }
        out
    }
}

/// `value` escaped for a Prometheus label value (a repository's name is the
/// operator's text).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Locks `mutex`, ignoring poisoning: a panic mid-increment leaves a count
/// that is still worth reporting.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exposition has every family, with bounded labels.
    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.request("/api/{project_id}/envelope/", 200, Duration::from_millis(3));
        metrics.signal("sentry_sdk", SignalResult::Accepted);
        metrics.signal("github", SignalResult::Rejected("bad_signature"));
        metrics.job_step("diagnose", "finished", Duration::from_millis(700));
        metrics.job("done");
        metrics.reproduction(Some("replay"));
        metrics.reproduction(None);
        metrics.heal_outcome("plausible");
        let text = metrics.render(&StoreGauges {
            incidents_by_state: vec![("new", 2)],
            queued_jobs: 1,
            fix_attempts: vec![("revert".into(), "held", 3)],
            paused: vec![("*".into(), false), ("app\"x".into(), true)],
        });
        for line in [
            "suture_http_requests_total{route=\"/api/{project_id}/envelope/\",status=\"200\"} 1",
            "suture_signals_total{result=\"accepted\",source=\"sentry_sdk\",reason=\"\"} 1",
            "suture_signals_total{result=\"rejected\",source=\"github\",reason=\"bad_signature\"} 1",
            "suture_job_step_duration_seconds_bucket{step=\"diagnose\",outcome=\"finished\",le=\"1\"} 1",
            "suture_job_step_duration_seconds_count{step=\"diagnose\",outcome=\"finished\"} 1",
            "suture_jobs_total{outcome=\"done\"} 1",
            "suture_reproductions_total{kind=\"replay\"} 1",
            "suture_reproductions_total{kind=\"none\"} 1",
            "suture_heal_outcomes_total{outcome=\"plausible\"} 1",
            "suture_incidents{state=\"new\"} 2",
            "suture_fix_attempts{strategy=\"revert\",state=\"held\"} 3",
            "suture_jobs_queued 1",
            "suture_paused{repo=\"*\"} 0",
            "suture_paused{repo=\"app\\\"x\"} 1",
            "suture_ingest_queue_depth 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert_eq!(metrics.accepted_total(), 1);
    }
}
