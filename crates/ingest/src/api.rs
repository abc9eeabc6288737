//! The read side: health, readiness, metrics and the incidents API.
//!
//! `GET /api/incidents` lists incidents newest first; `GET
//! /api/incidents/{id}` adds the latest round's diagnosis, heal report and
//! proposal (the persisted outputs of those steps), the fix memory of its
//! fingerprint (`fixes`), the jobs with their steps, and the timeline.
//! `GET /api/releases?project=ID` lists the project's releases as its
//! events name them, each with the commit it names in the project's
//! repository (resolved by the service: ingest knows no git).
//! Incidents also show `linked` (the ids of the incidents that are the same
//! failure seen by another source) and `actions` (the runs of recovery
//! actions on them); `GET /api/actions?limit=N` lists the latest runs.
//! `GET /api/status` says what the kill switch holds (`suture pause`): the
//! global pause and each paused repository, with reason and since.
//! When `SUTURE_API_TOKEN` is set these require `Authorization: Bearer`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{Incident, IncidentState};

use crate::IngestError;
use crate::app::AppState;
use crate::metrics::StoreGauges;

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers.
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, IngestError> {
    state
        .store
        .ping()
        .await
        .map_err(|error| IngestError::Store(std::sync::Arc::new(error)))?;
    Ok(Json(json!({"status": "ready"})))
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut gauges = StoreGauges::default();
    match state.store.incident_counts().await {
        Ok(counts) => {
            gauges.incidents_by_state = IncidentState::ALL
                .iter()
                .map(|state| {
                    let n = counts
                        .iter()
                        .find(|(s, _)| s == state)
                        .map_or(0, |(_, n)| *n);
                    (state.as_str(), n)
                })
                .collect();
        }
        Err(error) => {
            tracing::warn!(error = %crate::error::DisplayChain(&error), "reading incident counts for metrics")
        }
    }
    match state.store.attempt_counts().await {
        Ok(counts) => {
            gauges.fix_attempts = counts
                .into_iter()
                .map(|(strategy, attempt_state, n)| (strategy, attempt_state.as_str(), n))
                .collect();
        }
        Err(error) => {
            tracing::warn!(error = %crate::error::DisplayChain(&error), "reading fix attempt counts for metrics")
        }
    }
    match state.store.queued_jobs().await {
        Ok(queued) => gauges.queued_jobs = queued,
        Err(error) => {
            tracing::warn!(error = %crate::error::DisplayChain(&error), "reading queue depth for metrics")
        }
    }
    match state.store.pauses().await {
        Ok(pauses) => {
            gauges.paused = std::iter::once(("*".to_owned(), pauses.global.is_some()))
                .chain(
                    state
                        .config
                        .repos
                        .iter()
                        .map(|repo| (repo.clone(), pauses.repos.contains_key(repo))),
                )
                .collect();
        }
        Err(error) => {
            tracing::warn!(error = %crate::error::DisplayChain(&error), "reading the pauses for metrics")
        }
    }
    let mut response = state.metrics.render(&gauges).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `GET /api/status`: what is paused, why and since when (`paused.global`
/// is `null` unless everything is paused; `paused.repos` names each
/// repository paused on its own), and the configured repositories with
/// whether each is held, by its own pause or the global one.
pub(crate) async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, IngestError> {
    authorize(&state, &headers)?;
    let pauses = state.store.pauses().await.map_err(store_error)?;
    let repos: Vec<Value> = state
        .config
        .repos
        .iter()
        .map(|repo| json!({"name": repo, "paused": pauses.for_repo(repo).is_some()}))
        .collect();
    Ok(Json(json!({
        "paused": {"global": pauses.global, "repos": pauses.repos},
        "repos": repos,
    })))
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), IngestError> {
    let Some(token) = &state.config.secrets.api_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    // Compared through HMAC so the comparison takes the same time whatever
    // prefix matches.
    let matches = given.is_some_and(|given| {
        crate::signature::sign_hex(b"api-token", given.as_bytes())
            == crate::signature::sign_hex(b"api-token", token.as_bytes())
    });
    if matches {
        Ok(())
    } else {
        Err(IngestError::Unauthorized)
    }
}

fn summary(incident: &Incident) -> Value {
    json!({
        "id": incident.id,
        "state": incident.state,
        "title": incident.title,
        "fingerprint": incident.fingerprint,
        "source": incident.source,
        "project": incident.project,
        "upstream_id": incident.upstream_id,
        "count": incident.count,
        "round": incident.round,
        "first_seen": incident.first_seen,
        "last_seen": incident.last_seen,
        "trigger": incident.trigger,
        "held_back": held_back(incident),
    })
}

/// Why the incident waits, while it is observed (`{"reason": …}`) or
/// deferred (`{"limit": …}`); null otherwise.
fn held_back(incident: &Incident) -> Value {
    let waiting = matches!(
        incident.state,
        IncidentState::Observed | IncidentState::Deferred
    );
    let why = incident.held_back.as_ref().filter(|_| waiting);
    match why {
        Some(why) => {
            let mut shown = serde_json::Map::new();
            for key in ["reason", "limit"] {
                if let Some(value) = why.get(key) {
                    shown.insert(key.to_owned(), value.clone());
                }
            }
            Value::Object(shown)
        }
        None => Value::Null,
    }
}

/// Query of `GET /api/incidents`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<i64>,
}

/// How many rows a list answers for `?limit=`: 100 by default, 1 to 1000.
fn list_limit(limit: Option<i64>) -> i64 {
    limit.unwrap_or(100).clamp(1, 1000)
}

fn store_error(error: store::StoreError) -> IngestError {
    IngestError::Store(std::sync::Arc::new(error))
}

/// `GET /api/incidents?limit=N` (default 100, at most 1000).
pub(crate) async fn incidents(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, IngestError> {
    authorize(&state, &headers)?;
    let limit = list_limit(query.limit);
    let incidents = state
        .store
        .list_incidents(limit)
        .await
        .map_err(store_error)?;
    Ok(Json(
        json!({"incidents": incidents.iter().map(summary).collect::<Vec<_>>()}),
    ))
}

/// `GET /api/incidents/{id}`.
pub(crate) async fn incident(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, IngestError> {
    authorize(&state, &headers)?;
    let id: i64 = id.parse().map_err(|_| IngestError::NotFound)?;
    let incident = state
        .store
        .incident(id)
        .await
        .map_err(store_error)?
        .ok_or(IngestError::NotFound)?;
    let jobs = state.store.incident_jobs(id).await.map_err(store_error)?;
    let timeline = state.store.timeline(id).await.map_err(store_error)?;
    let fixes = state
        .store
        .attempts_for_fingerprint(&incident.fingerprint)
        .await
        .map_err(store_error)?;
    // The latest round's output of a step: later jobs come later.
    let step_output = |name: &str| -> Value {
        jobs.iter()
            .rev()
            .flat_map(|job| &job.steps)
            .find(|step| step.step == name)
            .and_then(|step| step.output.as_deref())
            .and_then(|output| serde_json::from_str(output).ok())
            .unwrap_or(Value::Null)
    };
    let mut body = summary(&incident);
    body["diagnosis"] = step_output("diagnose");
    body["heal"] = step_output("heal");
    body["proposal"] = step_output("propose");
    body["fixes"] = json!(fixes);
    body["attempts"] = json!(jobs.iter().map(|job| job.attempts).sum::<i64>());
    body["jobs"] = json!(jobs);
    body["timeline"] = json!(timeline);
    body["linked"] = json!(
        state
            .store
            .linked_incidents(id)
            .await
            .map_err(store_error)?
    );
    body["actions"] = json!(
        state
            .store
            .incident_action_runs(id)
            .await
            .map_err(store_error)?
    );
    Ok(Json(body))
}

/// `GET /api/actions?limit=N`: the latest runs of recovery actions, newest
/// first (default 100, at most 1000), each with its record.
pub(crate) async fn actions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, IngestError> {
    authorize(&state, &headers)?;
    let limit = list_limit(query.limit);
    let runs = state
        .store
        .recent_action_runs(limit)
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"actions": runs})))
}

/// Query of `GET /api/releases`.
#[derive(Debug, Deserialize)]
pub(crate) struct ReleasesQuery {
    project: Option<String>,
    limit: Option<i64>,
}

/// The longest project id taken: Sentry's are numbers, PagerDuty's short.
const MAX_PROJECT_LEN: usize = 128;

/// `GET /api/releases?project=ID&limit=N`: the project's latest N
/// releases (default 100, at most 1000), oldest first, each with its
/// first and last event, its count and the commit it names (`null` when
/// it names none or no repository routes the project).
pub(crate) async fn releases(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ReleasesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, IngestError> {
    authorize(&state, &headers)?;
    let Query(query) = query.map_err(|rejection| IngestError::BadQuery(rejection.body_text()))?;
    let project = match query.project {
        None => {
            return Err(IngestError::BadQuery(
                "missing project: GET /api/releases?project=ID".to_owned(),
            ));
        }
        Some(project) if project.is_empty() || project.len() > MAX_PROJECT_LEN => {
            return Err(IngestError::BadQuery(format!(
                "project must be 1 to {MAX_PROJECT_LEN} characters"
            )));
        }
        Some(project)
            if !project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            return Err(IngestError::BadQuery(
                "project may hold only letters, digits, '.', '_' and '-'".to_owned(),
            ));
        }
        Some(project) => project,
    };
    let limit = list_limit(query.limit);
    let releases = state
        .store
        .releases(&project, limit)
        .await
        .map_err(store_error)?;
    let names: Vec<String> = releases.iter().map(|r| r.release.clone()).collect();
    let commits = match state.release_commits.clone() {
        // Opening the repository and reading tags is blocking work.
        Some(resolver) => {
            let project = project.clone();
            tokio::task::spawn_blocking(move || resolver.commits(&project, &names))
                .await
                .map_err(IngestError::Internal)?
        }
        None => Vec::new(),
    };
    let listed: Vec<Value> = releases
        .iter()
        .enumerate()
        .map(|(n, release)| {
            json!({
                "release": release.release,
                "first_seen": release.first_seen,
                "last_seen": release.last_seen,
                "events": release.events,
                "commit": commits.get(n).cloned().flatten(),
            })
        })
        .collect();
    Ok(Json(json!({"project": project, "releases": listed})))
}
