//! Recovery actions (`[[actions]]`): what suture may do at runtime while a
//! code fix is on its way (restart a worker, turn a flag off), when it may,
//! and how it knows it helped.
//!
//! The configuration is the whole contract with the operator, so it is
//! checked here, all at once, before anything runs: a title regex that does
//! not compile, a body template that would not be JSON, a header that
//! names a variable other than a `SUTURE_*` secret are problems listed with
//! their key. The body template's rule lives here too
//! ([`HttpRequestConfig::body_json`]), so validation and the runner fill a
//! template the same way: every `{{field}}` becomes a JSON string literal
//! (escaped), never raw text, so an incident title full of quotes stays
//! one string.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ActionMode, ActionSource, ConfigProblem, FieldDoc, render_default, toml_type};

config_section! {
    /// A recovery action: run a command or send an HTTP request when an
    /// incident matches, with checks before and after and limits.
    ActionConfig => "actions[]" {
        /// A name for the timeline, the API and the metrics: letters,
        /// digits, `-`, `_` and `.`.
        name: String = String::new(),
        /// Which incidents it answers (every field given must hold).
        r#match: ActionMatch = ActionMatch::default(),
        /// A command, run with `sh -c` on suture's host; incident fields
        /// reach it only as `SUTURE_ACTION`, `SUTURE_INCIDENT_ID`,
        /// `SUTURE_INCIDENT_TITLE`, `SUTURE_INCIDENT_SOURCE`,
        /// `SUTURE_INCIDENT_URL` and `SUTURE_INCIDENT_PROJECT` in its
        /// environment. One of `run` and
        /// `http` is required.
        run: Option<String> = None,
        /// An HTTP request instead of a command (see `actions[].http.*`).
        http: Option<HttpRequestConfig> = None,
        /// A command that exits 0 when the system is healthy: run before
        /// (a healthy system needs no action) and after, until it passes or
        /// `check_timeout_seconds` end.
        check: Option<String> = None,
        /// The check as an HTTP request (a 2xx is healthy), the shape of
        /// `actions[].http`.
        check_http: Option<HttpRequestConfig> = None,
        /// `auto` (at once), `approve` (after `/suture approve` from a user
        /// with write access on the tracking issue, or `suture action
        /// approve ID`) or `dry_run` (records what it would do).
        mode: ActionMode = ActionMode::Approve,
        /// Most runs of this action per hour; more are `skipped_limit`.
        max_runs_per_hour: u32 = 2,
        /// After a run, the action does not run again for this long
        /// (`skipped_limit`); a failed post-check is not retried within it.
        cooldown_seconds: u64 = 1800,
        /// How long the post-check may take to pass after the run.
        check_timeout_seconds: u64 = 120,
        /// Wall-clock limit of the command or request itself.
        timeout_seconds: u64 = 300,
    }
}

config_section! {
    /// The incidents an action answers.
    ActionMatch => "actions[].match" {
        /// `pagerduty` or `sentry`; unset matches both.
        source: Option<ActionSource> = None,
        /// PagerDuty service ids; empty matches any.
        services: Vec<String> = Vec::new(),
        /// Sentry project ids; empty matches any.
        projects: Vec<String> = Vec::new(),
        /// A regex the incident's title must match (anywhere).
        title: Option<String> = None,
        /// Incident states it answers (e.g. `new`); empty matches any.
        states: Vec<String> = Vec::new(),
    }
}

config_section! {
    /// An HTTP request of an action (`http`, `check_http`).
    HttpRequestConfig => "actions[].http" {
        /// `GET`, `POST`, `PUT`, `PATCH` or `DELETE`.
        method: String = "POST".to_owned(),
        /// The absolute `http(s)://` URL, fixed: no incident text goes in it.
        url: String = String::new(),
        /// Header values; `${SUTURE_NAME}` is replaced by that variable
        /// of suture's environment (a secret, redacted in every record).
        headers: BTreeMap<String, String> = BTreeMap::new(),
        /// A JSON body template: `{{action}}`, `{{incident_id}}`,
        /// `{{title}}`, `{{source}}`, `{{url}}` and `{{project}}` become
        /// JSON strings, escaped (write `{{title}}`, not `"{{title}}"`).
        body: Option<String> = None,
    }
}

/// The placeholders a body template may use.
pub const BODY_FIELDS: &[&str] = &["action", "incident_id", "title", "source", "url", "project"];

/// The methods an action's request may use.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Most bytes a compiled title regex may take: a pathological pattern is a
/// configuration problem, not a slow matcher.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl ActionMatch {
    /// The compiled title regex, when there is one and it compiles
    /// ([`Config::validate`](super::Config::validate) reports one that does not).
    pub fn title_regex(&self) -> Option<regex::Regex> {
        let pattern = self.title.as_deref()?;
        regex::RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
            .ok()
    }
}

impl HttpRequestConfig {
    /// The body with every `{{field}}` replaced by `values[field]` as a
    /// JSON string literal (a missing value is `""`), parsed: `Ok(None)`
    /// without a template, `Err` when a placeholder is unknown or the
    /// result is not JSON.
    pub fn body_json(
        &self,
        values: &BTreeMap<&str, String>,
    ) -> Result<Option<serde_json::Value>, String> {
        let Some(template) = &self.body else {
            return Ok(None);
        };
        let mut filled = String::with_capacity(template.len());
        let mut rest = template.as_str();
        while let Some(start) = rest.find("{{") {
            filled.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| "a {{ without its }}".to_owned())?;
            let field = after[..end].trim();
            if !BODY_FIELDS.contains(&field) {
                return Err(format!(
                    "{{{{{field}}}}} is not one of {}",
                    BODY_FIELDS
                        .iter()
                        .map(|name| format!("{{{{{name}}}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let value = values.get(field).map(String::as_str).unwrap_or_default();
            filled.push_str(&serde_json::Value::from(value).to_string());
            rest = &after[end + 2..];
        }
        filled.push_str(rest);
        serde_json::from_str(&filled)
            .map(Some)
            .map_err(|error| format!("is not JSON once filled: {error}"))
    }

    /// The `SUTURE_*` variables the header values name, in order.
    pub fn header_variables(&self) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for value in self.headers.values() {
            names.extend(secret_variables(value)?);
        }
        Ok(names)
    }
}

/// The `${NAME}` references of `value`; each must be a `SUTURE_*` name.
pub fn secret_variables(value: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "a ${ without its }".to_owned())?;
        let name = &after[..end];
        let valid = name.starts_with("SUTURE_")
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(format!(
                "${{{name}}} is not a SUTURE_* variable: only suture's own secrets may be named"
            ));
        }
        names.push(name.to_owned());
        rest = &after[end + 1..];
    }
    Ok(names)
}

/// Replaces every `${NAME}` of `value` with `lookup(NAME)` (empty when
/// unset); callers check the names with [`secret_variables`] first.
pub fn expand_secrets(value: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        out.push_str(&lookup(&after[..end]).unwrap_or_default());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Takes out of `table` every `[[actions]]` choice (`mode`,
/// `match.source`) whose value is not one of its names, and says what is
/// wrong with each, keyed like the problems of [`validate`].
pub(super) fn take_invalid_choices(table: &mut toml::Table) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let Some(toml::Value::Array(actions)) = table.get_mut("actions") else {
        return problems;
    };
    let mut take = |table: &mut toml::Table, key: String, field: &str, names: &[&str]| {
        if let Some(toml::Value::String(value)) = table.get(field)
            && !names.contains(&value.as_str())
        {
            problems.push(ConfigProblem {
                key,
                message: format!("{value:?} is not one of {}", names.join(", ")),
            });
            table.remove(field);
        }
    };
    for (idx, action) in actions.iter_mut().enumerate() {
        let Some(action) = action.as_table_mut() else {
            continue;
        };
        take(
            action,
            format!("actions[{idx}].mode"),
            "mode",
            ActionMode::NAMES,
        );
        if let Some(toml::Value::Table(matching)) = action.get_mut("match") {
            take(
                matching,
                format!("actions[{idx}].match.source"),
                "source",
                ActionSource::NAMES,
            );
        }
    }
    problems
}

/// Every problem of the `[[actions]]`, with its key.
pub(super) fn validate(
    actions: &[ActionConfig],
    invalid_choices: &[ConfigProblem],
    problems: &mut Vec<ConfigProblem>,
) {
    let mut problem = |key: String, message: String| problems.push(ConfigProblem { key, message });
    for invalid in invalid_choices
        .iter()
        .filter(|p| p.key.starts_with("actions["))
    {
        problem(invalid.key.clone(), invalid.message.clone());
    }
    let mut names = std::collections::HashSet::new();
    for (idx, action) in actions.iter().enumerate() {
        let key = |field: &str| format!("actions[{idx}].{field}");
        let valid_name = !action.name.is_empty()
            && action.name.len() <= 64
            && action
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !valid_name {
            problem(
                key("name"),
                format!(
                    "{:?} is not a name: 1 to 64 letters, digits, '-', '_' or '.'",
                    action.name
                ),
            );
        } else if !names.insert(&action.name) {
            problem(
                key("name"),
                format!("{:?} is used by another action", action.name),
            );
        }
        match (&action.run, &action.http) {
            (None, None) => problem(
                key("run"),
                "one of run (a command) and http (a request) is required".into(),
            ),
            (Some(_), Some(_)) => problem(
                key("run"),
                "give run (a command) or http (a request), not both".into(),
            ),
            (Some(command), None) if command.trim().is_empty() => {
                problem(key("run"), "is empty".into());
            }
            _ => {}
        }
        if action.check.is_some() && action.check_http.is_some() {
            problem(
                key("check"),
                "give check (a command) or check_http (a request), not both".into(),
            );
        }
        if action.check.as_deref().is_some_and(|c| c.trim().is_empty()) {
            problem(key("check"), "is empty".into());
        }
        for (field, request) in [("http", &action.http), ("check_http", &action.check_http)] {
            if let Some(request) = request {
                validate_request(request, &key(field), &mut problem);
            }
        }
        let matching = &action.r#match;
        if let Some(pattern) = &matching.title
            && let Err(error) = regex::RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
        {
            let first = error.to_string();
            let first = first.lines().last().unwrap_or_default().trim().to_owned();
            problem(
                key("match.title"),
                format!("{pattern:?} is not a regex: {first}"),
            );
        }
        if matching.source == Some(ActionSource::Sentry) && !matching.services.is_empty() {
            problem(
                key("match.services"),
                "PagerDuty services never match source = \"sentry\"".into(),
            );
        }
        if matching.source == Some(ActionSource::Pagerduty) && !matching.projects.is_empty() {
            problem(
                key("match.projects"),
                "Sentry projects never match source = \"pagerduty\"".into(),
            );
        }
        for state in &matching.states {
            if state.is_empty() || !state.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                problem(
                    key("match.states"),
                    format!("{state:?} is not an incident state"),
                );
            }
        }
        for (field, value) in [
            ("max_runs_per_hour", u64::from(action.max_runs_per_hour)),
            ("check_timeout_seconds", action.check_timeout_seconds),
            ("timeout_seconds", action.timeout_seconds),
        ] {
            if value == 0 {
                problem(key(field), "must be greater than 0".into());
            }
        }
    }
}

/// The problems of one request, keyed under `key`.
fn validate_request(
    request: &HttpRequestConfig,
    key: &str,
    problem: &mut impl FnMut(String, String),
) {
    if !METHODS.contains(&request.method.as_str()) {
        problem(
            format!("{key}.method"),
            format!("{:?} is not one of {}", request.method, METHODS.join(", ")),
        );
    }
    let url_ok = (request.url.starts_with("http://") || request.url.starts_with("https://"))
        && !request.url.contains(char::is_whitespace);
    if !url_ok {
        problem(
            format!("{key}.url"),
            format!("{:?} is not an absolute http(s) URL", request.url),
        );
    }
    for name in request.headers.keys() {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            problem(
                format!("{key}.headers"),
                format!("{name:?} is not a header name"),
            );
        }
    }
    if let Err(message) = request.header_variables() {
        problem(format!("{key}.headers"), message);
    }
    if let Err(message) = request.body_json(&BTreeMap::new()) {
        problem(format!("{key}.body"), message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: &str) -> HttpRequestConfig {
        HttpRequestConfig {
            body: Some(body.to_owned()),
            url: "http://127.0.0.1:1/flags".into(),
            ..HttpRequestConfig::default()
        }
    }

    /// A title full of quotes, newlines and shell syntax becomes one JSON
    /// string: the structure of the body is the template's, never the
    /// title's.
    #[test]
    fn templates_fill_with_escaped_strings() {
        let title = "boom \"},\"admin\":true,{\"x\":\"\n$(touch /tmp/x) `id`";
        let values = BTreeMap::from([("title", title.to_owned()), ("incident_id", "7".into())]);
        let body = request(
            r#"{"flag": "checkout", "on": false, "incident": {{title}}, "id": {{ incident_id }}}"#,
        )
        .body_json(&values)
        .unwrap()
        .unwrap();
        assert_eq!(body["incident"], title);
        assert_eq!(body["id"], "7");
        assert_eq!(body.as_object().unwrap().len(), 4, "{body}");
        assert_eq!(body.get("admin"), None);
    }

    /// Unknown placeholders and templates that are not JSON are refused.
    #[test]
    fn bad_templates_are_refused() {
        let empty = BTreeMap::new();
        assert!(
            request("{\"a\": {{secret}}}")
                .body_json(&empty)
                .unwrap_err()
                .contains("{{secret}}")
        );
        assert!(request("{\"a\": \"{{title}}\"}").body_json(&empty).is_err());
        assert!(request("{\"a\": {{title}").body_json(&empty).is_err());
        assert_eq!(HttpRequestConfig::default().body_json(&empty), Ok(None));
    }

    /// Headers name only SUTURE_* variables, expanded from the lookup.
    #[test]
    fn header_variables() {
        assert_eq!(
            secret_variables("Bearer ${SUTURE_FLAGS_TOKEN}").unwrap(),
            ["SUTURE_FLAGS_TOKEN"]
        );
        assert!(secret_variables("${HOME}").is_err());
        assert!(secret_variables("${SUTURE_x}").is_err());
        let lookup = |name: &str| (name == "SUTURE_T").then(|| "s3cret".to_owned());
        assert_eq!(
            expand_secrets("Bearer ${SUTURE_T}!", lookup),
            "Bearer s3cret!"
        );
        assert_eq!(expand_secrets("${SUTURE_U}", lookup), "");
    }

    /// The issue's example parses; every bad value is listed with its key,
    /// all at once.
    #[test]
    fn actions_are_validated() {
        let config = super::super::Config::from_toml(
            r#"
[[actions]]
name = "restart-worker"
match = { source = "pagerduty", services = ["PABC123"], title = "worker.*down" }
run = "systemctl restart worker"
check = "curl -fsS http://127.0.0.1:8080/health"
mode = "auto"
max_runs_per_hour = 2
cooldown_seconds = 1800
check_timeout_seconds = 120

[[actions]]
name = "flag off"
match = { source = "sentry", services = ["P1"], title = "([a-z" }
http = { method = "YEET", url = "ftp://x", headers = { Authorization = "Bearer ${HOME}" }, body = '{"incident": {{password}}}' }
run = "true"
mode = "sometimes"
max_runs_per_hour = 0
"#,
        )
        .unwrap();
        assert_eq!(config.actions[0].mode, ActionMode::Auto);
        assert!(
            config.actions[0]
                .r#match
                .title_regex()
                .unwrap()
                .is_match("worker 3 down")
        );
        let problems: Vec<String> = config.validate().iter().map(|p| p.key.clone()).collect();
        assert_eq!(
            problems,
            [
                "actions[1].mode",
                "actions[1].name",
                "actions[1].run",
                "actions[1].http.method",
                "actions[1].http.url",
                "actions[1].http.headers",
                "actions[1].http.body",
                "actions[1].match.title",
                "actions[1].match.services",
                "actions[1].max_runs_per_hour",
            ]
        );
    }
}
