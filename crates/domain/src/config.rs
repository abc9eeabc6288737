//! The service's configuration: one [`Config`] read from `suture.toml`, with
//! secrets from the environment, validated before anything starts.
//!
//! Layers, later wins: serde defaults → `suture.toml` (absent = defaults) →
//! `SUTURE_*` variables ([`Config::apply_env`]; secrets live only there) →
//! the command's flags. Every field is declared once, through
//! `config_section!`, with its doc comment and default: the same declaration
//! yields the struct, its `Default`, and the rows of the documentation's
//! configuration table ([`Config::docs_table`]), which a test keeps fresh.
//!
//! Reading files and checking paths on disk is the binary's business; this
//! module only parses text and checks values ([`Config::validate`]), so it
//! stays free of I/O like the rest of the crate.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

mod choices;

pub use choices::{ActionMode, ActionSource, ForgeKind, Mode, SandboxKind, SignalSource, Trigger};

/// One documented configuration key, a row of the documented table (docs/configuration.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDoc {
    /// Dotted key, e.g. `server.listen` or `repos[].path`.
    pub key: String,
    /// The value's type in TOML terms.
    pub ty: &'static str,
    /// The default, rendered as TOML would show it (`none` when unset).
    pub default: String,
    /// What it means, from the field's doc comment.
    pub doc: String,
}

/// Declares a config table: the struct (serde defaults, unknown keys
/// rejected), its `Default`, and its [`FieldDoc`]s.
macro_rules! config_section {
    (
        $(#[doc = $section_doc:literal])*
        $name:ident => $key:literal {
            $(
                $(#[doc = $doc:literal])*
                $field:ident : $ty:ty = $default:expr,
            )*
        }
    ) => {
        $(#[doc = $section_doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> $name {
                $name { $($field: $default,)* }
            }
        }

        impl $name {
            /// The documentation of every field, in declaration order.
            pub fn field_docs() -> Vec<FieldDoc> {
                let defaults = $name::default();
                vec![$(
                    FieldDoc {
                        key: format!("{}.{}", $key, stringify!($field).trim_start_matches("r#")),
                        ty: toml_type(stringify!($ty)),
                        default: render_default(&defaults.$field),
                        doc: [$($doc),*]
                            .iter()
                            .map(|line| line.trim())
                            .collect::<Vec<_>>()
                            .join(" "),
                    },
                )*]
            }
        }
    };
}

mod actions;

pub use actions::{
    ActionConfig, ActionMatch, BODY_FIELDS, HttpRequestConfig, expand_secrets, secret_variables,
};

config_section! {
    /// The HTTP listener.
    ServerConfig => "server" {
        /// Address and port the HTTP server listens on.
        listen: String = "127.0.0.1:7878".to_owned(),
        /// The URL senders reach suture at, used in the printed DSN and
        /// webhook URLs; `http://<listen>` when unset.
        public_url: Option<String> = None,
        /// Most requests handled at once; further connections wait.
        max_concurrent_requests: usize = 1024,
        /// A request that takes longer is answered 503.
        request_timeout_seconds: u64 = 30,
        /// Time a client has to send a request's head (line and headers),
        /// counted from the connection's start or the end of its previous
        /// answer; past it the connection is closed.
        header_read_timeout_seconds: u64 = 10,
        /// A kept-alive connection with no request in progress for this
        /// long is closed (at most `header_read_timeout_seconds` applies).
        idle_timeout_seconds: u64 = 5,
        /// Most open connections; past it new connections wait in the
        /// listen backlog until one closes. Keep it below the process's
        /// file descriptor limit.
        max_connections: usize = 512,
        /// On SIGTERM, how long running jobs get to finish their step before
        /// their leases are released.
        drain_seconds: u64 = 30,
        /// Lets `suture serve` listen on a non-loopback address without
        /// `SUTURE_API_TOKEN`, leaving the read API (incidents, events'
        /// text, fixes) open to whoever reaches the port; without it, such
        /// a server refuses to start.
        allow_open_api: bool = false,
    }
}

config_section! {
    /// Where signals, incidents and jobs are kept.
    StoreConfig => "store" {
        /// Directory for the embedded SQLite database and generated keys.
        data_dir: String = ".suture".to_owned(),
        /// `postgres://…` to use PostgreSQL (SUTURE_DATABASE_URL overrides;
        /// put passwords there); unset means SQLite in `data_dir`.
        database_url: Option<String> = None,
        /// Most database connections.
        max_connections: u32 = 8,
    }
}

config_section! {
    /// Size limits of request bodies, after decompression; larger is 413.
    LimitsConfig => "limits" {
        /// Largest SDK envelope.
        max_envelope_bytes: usize = 20 << 20,
        /// Largest single event (a `/store/` body or an envelope event item).
        max_event_bytes: usize = 1 << 20,
        /// Largest webhook body (GitHub sends up to 25 MB).
        max_webhook_bytes: usize = 25 << 20,
        /// Bytes of request bodies held at once (read, decompressed, waiting
        /// for their commit); past that, 503 with Retry-After.
        max_inflight_bytes: usize = 256 << 20,
        /// Most items in one SDK envelope; more is 413.
        max_envelope_items: usize = 1000,
        /// Longest header line of an envelope or of one of its items; longer
        /// is 413.
        max_envelope_header_bytes: usize = 64 << 10,
        /// Deepest nesting of arrays and objects in any JSON read from a
        /// request (headers, events, webhook bodies); deeper is 400. At most
        /// 128, the JSON reader's own limit.
        max_json_depth: usize = 64,
        /// Error events accepted per SDK project per minute; past it the SDK
        /// gets 429 with `Retry-After` and `X-Sentry-Rate-Limits` and nothing
        /// is stored. 0 means no limit.
        events_per_minute_per_project: u64 = 0,
    }
}

config_section! {
    /// The ingest queue and the durable job queue.
    QueueConfig => "queue" {
        /// Deliveries waiting to be committed; when full, senders get 503
        /// with Retry-After.
        ingest_capacity: usize = 8192,
        /// Most deliveries committed in one transaction.
        batch_max: usize = 512,
        /// Pipeline workers (diagnose → heal) in this process.
        workers: usize = 2,
        /// How long a leased job is a worker's before another may take it.
        lease_seconds: u64 = 60,
        /// How often a worker renews its lease.
        heartbeat_seconds: u64 = 15,
        /// Leases of one job before it fails for good.
        max_attempts: i64 = 5,
        /// Wait before the first retry; doubles per attempt, at most an hour.
        backoff_seconds: u64 = 10,
        /// How often idle workers look for jobs.
        poll_millis: u64 = 500,
    }
}

config_section! {
    /// The Sentry side: SDK projects (DSN keys) and integration webhooks.
    SentryConfig => "sentry" {
        /// SDK projects: `{ id = "1", public_key = "…" }`; the DSN is
        /// `http://<public_key>@<host>/<id>`. When empty, project `1` with a
        /// key generated into `data_dir` on first start.
        projects: Vec<SentryProject> = Vec::new(),
        /// Integration webhooks whose Sentry-Hook-Timestamp is further than
        /// this from now are rejected as stale.
        webhook_tolerance_seconds: u64 = 300,
        /// Sentry's Web API, where fixed issues are resolved:
        /// `https://sentry.io`, a region host, or a self-hosted base.
        api_url: String = "https://sentry.io".to_owned(),
        /// The organisation slug issues are resolved in; unset (or no
        /// SUTURE_SENTRY_API_TOKEN) leaves Sentry issues alone.
        organization: Option<String> = None,
    }
}

config_section! {
    /// PagerDuty's REST API, where incidents of fixed errors are resolved
    /// (with SUTURE_PAGERDUTY_API_KEY).
    PagerDutyConfig => "pagerduty" {
        /// The REST API base.
        api_url: String = "https://api.pagerduty.com".to_owned(),
        /// The email of a PagerDuty user, the `From` of suture's changes;
        /// unset leaves PagerDuty incidents alone.
        from_email: Option<String> = None,
        /// A PagerDuty incident on a repository's service
        /// (`repos[].pagerduty_services`) is linked to the open
        /// Sentry-sourced incidents of that repository seen within this
        /// many seconds of it: one failure, two sources.
        correlate_seconds: u64 = 900,
    }
}

config_section! {
    /// Recovery actions as a whole (each is an `[[actions]]` entry).
    RecoveryConfig => "recovery" {
        /// Holds every recovery action: matches are recorded as
        /// `skipped_limit` (limit `paused`), nothing runs. `suture pause`
        /// (everything, or the incident's repository) holds them too.
        actions_paused: bool = false,
    }
}

config_section! {
    /// GitHub, for repositories with `forge = "github"`: a GitHub App
    /// (recommended) or a token.
    GitHubSection => "github" {
        /// The REST API base: `https://api.github.com`, or
        /// `https://<host>/api/v3` for GitHub Enterprise Server.
        api_url: String = "https://api.github.com".to_owned(),
        /// Fix branches are pushed to `<git_url>/<owner>/<name>.git`.
        git_url: String = "https://github.com".to_owned(),
        /// The GitHub App's id (its private key comes from
        /// SUTURE_GITHUB_APP_PRIVATE_KEY or _FILE); unset means
        /// SUTURE_GITHUB_TOKEN.
        app_id: Option<u64> = None,
        /// Seconds one API request may take before it is retried.
        request_timeout_seconds: u64 = 30,
    }
}

config_section! {
    /// After a fix is merged: watch, then close or reopen.
    VerifyConfig => "verify" {
        /// The quiet window: seconds after the merge in which the error must
        /// not recur (on a release other than those it broke) for the fix to
        /// count as held and the incident to be closed.
        quiet_seconds: u64 = 3600,
        /// Whether an event that names no release fails a fix during the
        /// quiet window. Off, such events are counted and shown but do not
        /// count: they cannot tell old code from new, and anyone holding
        /// the DSN's public key could send one.
        count_unreleased: bool = false,
    }
}

config_section! {
    /// An OpenAI-compatible endpoint for the LLM rung of the fix ladder (and
    /// nothing else); unset, the deterministic rungs work alone. The key
    /// comes from SUTURE_LLM_API_KEY (or OPENAI_API_KEY) only.
    LlmSection => "llm" {
        /// The base URL up to the version, e.g. `https://api.openai.com/v1`
        /// (SUTURE_LLM_BASE_URL overrides).
        base_url: Option<String> = None,
        /// The model name the endpoint knows (SUTURE_LLM_MODEL overrides).
        model: Option<String> = None,
        /// Chat completion requests per fix attempt.
        max_rounds: u32 = LLM_DEFAULT_MAX_ROUNDS,
        /// Tokens per fix attempt, after which no new request is made.
        max_tokens: u64 = LLM_DEFAULT_MAX_TOKENS,
        /// Wall time of one fix attempt.
        wall_time_seconds: u64 = LLM_DEFAULT_WALL_TIME_SECONDS,
        /// Longest wait for one request, retries included.
        request_timeout_seconds: u64 = LLM_DEFAULT_REQUEST_TIMEOUT_SECONDS,
    }
}

/// Default of `llm.max_rounds`, for every caller that builds an LLM budget.
pub const LLM_DEFAULT_MAX_ROUNDS: u32 = 12;
/// Default of `llm.max_tokens`.
pub const LLM_DEFAULT_MAX_TOKENS: u64 = 200_000;
/// Default of `llm.wall_time_seconds`.
pub const LLM_DEFAULT_WALL_TIME_SECONDS: u64 = 600;
/// Default of `llm.request_timeout_seconds`.
pub const LLM_DEFAULT_REQUEST_TIMEOUT_SECONDS: u64 = 120;

config_section! {
    /// One application repository the pipeline diagnoses and heals.
    RepoConfig => "repos[]" {
        /// A name for logs and the timeline.
        name: String = String::new(),
        /// A local clone of the repository; it is only read.
        path: String = String::new(),
        /// Sentry project ids whose events are about this repository.
        sentry_projects: Vec<String> = Vec::new(),
        /// PagerDuty service ids whose incidents are about this repository.
        pagerduty_services: Vec<String> = Vec::new(),
        /// `STACK_ROOT=SOURCE_ROOT` frame path mappings, as Sentry's code mappings.
        code_mappings: Vec<String> = Vec::new(),
        /// The test command, run with `sh -c` at the repository root;
        /// detected from the tree when unset.
        test_command: Option<String> = None,
        /// `observe` (diagnose only), `suggest` (heal, then a tracking issue
        /// with the proposed diff) or `pr` (heal, then a pull request for a
        /// human to review; suture never merges).
        mode: Mode = Mode::Pr,
        /// Put a model-written fix on a branch (`pr` mode) even when the
        /// error was not reproduced, so the fix is only plausible. By
        /// default such a fix goes into the tracking issue as a suggestion;
        /// a plausible revert is proposed either way, labelled
        /// `suture:unreproduced`.
        propose_unreproduced: bool = false,
        /// Where fixes are proposed: `local` (a bare repository and records
        /// in the store; `suture pr …`) or `github`.
        forge: ForgeKind = ForgeKind::Local,
        /// The GitHub repository, `owner/name` (with `forge = "github"`).
        github_repo: Option<String> = None,
        /// The GitHub App's installation id on that repository's owner.
        github_installation_id: Option<u64> = None,
        /// The branch fixes target; unset means the branch checked out in
        /// `path`.
        base_branch: Option<String> = None,
        /// The local forge's bare repository; unset means
        /// `<data_dir>/forge/<name>.git`, created on first use.
        local_remote: Option<String> = None,
        /// The diagnosis window in days [default: 14].
        days: Option<u32> = None,
        /// Read at most this many commits.
        max_commits: usize = 1000,
        /// Where tests run: `bubblewrap`, `docker` or `process` (no isolation;
        /// refused unless `unsafe_allow_process_sandbox` is set).
        sandbox: SandboxKind = SandboxKind::Bubblewrap,
        /// Allows `sandbox = "process"`: the tests (and any patch a model
        /// wrote) then run as suture itself and can read its data dir,
        /// configuration, keys and environment. Only for a throwaway machine.
        unsafe_allow_process_sandbox: bool = false,
        /// The image for `sandbox = "docker"`.
        docker_image: Option<String> = None,
        /// Wall-clock limit of one test run.
        test_timeout_seconds: u64 = 600,
        /// Memory limit of one test run.
        test_memory_mib: u64 = 4096,
        /// Extra path globs a patch may not touch.
        deny: Vec<String> = Vec::new(),
        /// What starts a healing round on its own: `new_release` (first
        /// seen on the project's newest release), `regression` (back after
        /// its fix held), `spike` (a burst over its own baseline). Other
        /// incidents are only `observed`; a human can start a round for any.
        heal_on: Vec<Trigger> = vec![Trigger::NewRelease, Trigger::Regression, Trigger::Spike],
        /// Seconds after suture first sees a project during which its new
        /// incidents are only observed (reason `learning`) unless they
        /// spike: errors that predate suture are not news. 0 turns it off.
        learning_seconds: u64 = 3600,
        /// Events an incident needs before its round starts.
        min_events: u64 = 1,
        /// The window a spike is measured over, in seconds.
        spike_window_seconds: u64 = 300,
        /// A spike is an event count over the last window above this many
        /// times the incident's own baseline (an EWMA of its earlier
        /// windows)…
        spike_factor: f64 = 5.0,
        /// …and at least this many events in the window.
        spike_min_events: u64 = 20,
        /// Most rounds started per hour; more are `deferred` until the
        /// hour allows.
        max_rounds_per_hour: u32 = 6,
        /// Most rounds running at once; more are `deferred`.
        max_concurrent_rounds: u32 = 1,
        /// Most of suture's pull requests open at once; a round that would
        /// open another is `deferred` until one is merged or closed.
        max_open_pull_requests: u32 = 5,
        /// LLM tokens the repository's rounds may spend per UTC day; the
        /// LLM rung gets what is left, and none when nothing is.
        llm_tokens_per_day: u64 = 2_000_000,
        /// After a fix was rejected or did not hold, its fingerprint gets
        /// no automatic round for this many seconds.
        cooldown_seconds: u64 = 86_400,
        /// After this many consecutive fixes rejected or not held, the
        /// repository pauses itself (`suture resume` lifts it).
        breaker_failures: u32 = 3,
    }
}

/// One Sentry SDK project: the id in the DSN path and its public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentryProject {
    /// The project id, the last segment of the DSN.
    pub id: String,
    /// The DSN's public key (the user part).
    pub public_key: String,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[store]`.
    pub store: StoreConfig,
    /// `[limits]`.
    pub limits: LimitsConfig,
    /// `[queue]`.
    pub queue: QueueConfig,
    /// `[sentry]`.
    pub sentry: SentryConfig,
    /// `[pagerduty]`.
    pub pagerduty: PagerDutyConfig,
    /// `[github]`.
    pub github: GitHubSection,
    /// `[verify]`.
    pub verify: VerifyConfig,
    /// `[llm]`.
    pub llm: LlmSection,
    /// `[[repos]]`.
    pub repos: Vec<RepoConfig>,
    /// `[recovery]`.
    pub recovery: RecoveryConfig,
    /// `[[actions]]`: recovery actions.
    pub actions: Vec<ActionConfig>,
    /// From the environment only; never read from or written to the file.
    #[serde(skip)]
    pub secrets: Secrets,
    /// Names that are none of their setting's (a `mode = "auto"`), found
    /// while parsing and reported by [`Config::validate`] in place, so that
    /// every problem is listed at once instead of the parser stopping at
    /// the first.
    #[serde(skip)]
    invalid_choices: Vec<ConfigProblem>,
}

/// Secrets, read from `SUTURE_*` variables only.
#[derive(Clone, PartialEq, Default)]
pub struct Secrets {
    /// `SUTURE_SENTRY_CLIENT_SECRET`: the integration's Client Secret, the
    /// key of `Sentry-Hook-Signature`.
    pub sentry_client_secret: Option<String>,
    /// `SUTURE_PAGERDUTY_WEBHOOK_SECRETS`: the v3 subscription secrets,
    /// comma-separated (more than one while rotating).
    pub pagerduty_webhook_secrets: Vec<String>,
    /// `SUTURE_GITHUB_WEBHOOK_SECRET`: the GitHub App's webhook secret.
    pub github_webhook_secret: Option<String>,
    /// `SUTURE_API_TOKEN`: when set, `/api/incidents` requires
    /// `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// `SUTURE_GITHUB_TOKEN`: a token for `forge = "github"` without an App.
    pub github_token: Option<String>,
    /// `SUTURE_GITHUB_APP_PRIVATE_KEY`: the App's private key, PEM (the
    /// binary also reads `SUTURE_GITHUB_APP_PRIVATE_KEY_FILE` into it).
    pub github_app_private_key: Option<String>,
    /// `SUTURE_SENTRY_API_TOKEN`: resolves fixed issues through Sentry's API.
    pub sentry_api_token: Option<String>,
    /// `SUTURE_PAGERDUTY_API_KEY`: resolves fixed incidents through
    /// PagerDuty's API.
    pub pagerduty_api_key: Option<String>,
    /// `SUTURE_LLM_API_KEY` (else `OPENAI_API_KEY`): the LLM endpoint's key.
    pub llm_api_key: Option<String>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |value: bool| if value { "<set>" } else { "<unset>" };
        f.debug_struct("Secrets")
            .field(
                "sentry_client_secret",
                &set(self.sentry_client_secret.is_some()),
            )
            .field(
                "pagerduty_webhook_secrets",
                &format!("<{} set>", self.pagerduty_webhook_secrets.len()),
            )
            .field(
                "github_webhook_secret",
                &set(self.github_webhook_secret.is_some()),
            )
            .field("api_token", &set(self.api_token.is_some()))
            .field("github_token", &set(self.github_token.is_some()))
            .field(
                "github_app_private_key",
                &set(self.github_app_private_key.is_some()),
            )
            .field("sentry_api_token", &set(self.sentry_api_token.is_some()))
            .field("pagerduty_api_key", &set(self.pagerduty_api_key.is_some()))
            .field("llm_api_key", &set(self.llm_api_key.is_some()))
            .finish()
    }
}

/// The environment variables [`Config::apply_env`] reads, with what they set.
pub const ENV_VARS: &[(&str, &str)] = &[
    (
        "SUTURE_DATABASE_URL",
        "overrides `store.database_url` (keep passwords here)",
    ),
    (
        "SUTURE_SENTRY_CLIENT_SECRET",
        "Sentry integration Client Secret: verifies `Sentry-Hook-Signature`",
    ),
    (
        "SUTURE_PAGERDUTY_WEBHOOK_SECRETS",
        "PagerDuty v3 webhook secrets, comma-separated: verify `X-PagerDuty-Signature`",
    ),
    (
        "SUTURE_GITHUB_WEBHOOK_SECRET",
        "GitHub webhook secret: verifies `X-Hub-Signature-256`",
    ),
    (
        "SUTURE_API_TOKEN",
        "when set, the read API requires `Authorization: Bearer <token>`",
    ),
    (
        "SUTURE_GITHUB_TOKEN",
        "a GitHub token for `forge = \"github\"` when no App is configured",
    ),
    (
        "SUTURE_GITHUB_APP_PRIVATE_KEY",
        "the GitHub App's private key (PEM); or `SUTURE_GITHUB_APP_PRIVATE_KEY_FILE`, a path to it",
    ),
    (
        "SUTURE_SENTRY_API_TOKEN",
        "a Sentry auth token (`event:write`): fixed issues are resolved",
    ),
    (
        "SUTURE_PAGERDUTY_API_KEY",
        "a PagerDuty REST API key: fixed incidents are resolved",
    ),
    ("SUTURE_LLM_BASE_URL", "overrides `llm.base_url`"),
    ("SUTURE_LLM_MODEL", "overrides `llm.model`"),
    (
        "SUTURE_LLM_API_KEY",
        "the LLM endpoint's key (else `OPENAI_API_KEY`); sent only as `Authorization: Bearer`",
    ),
];

/// Why a configuration text could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration")]
pub struct ConfigError(#[source] pub toml::de::Error);

/// A value that parsed but cannot work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The dotted key, e.g. `repos[0].sandbox`.
    pub key: String,
    /// What is wrong and what would do, lowercase.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl Config {
    /// Parses a `suture.toml` text. Unknown keys are errors, so a typo never
    /// silently falls back to a default.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(ConfigError)?;
        let mut invalid_choices = take_invalid_choices(&mut table);
        invalid_choices.extend(actions::take_invalid_choices(&mut table));
        let mut config: Config = if invalid_choices.is_empty() {
            // Parsed from the text, errors keep their line and column.
            toml::from_str(text).map_err(ConfigError)?
        } else {
            table.try_into().map_err(ConfigError)?
        };
        config.invalid_choices = invalid_choices;
        Ok(config)
    }

    /// The problem recorded while parsing for `key`, if any.
    fn invalid_choice(&self, key: &str) -> Option<&ConfigProblem> {
        self.invalid_choices
            .iter()
            .find(|problem| problem.key == key)
    }

    /// Applies the `SUTURE_*` variables ([`ENV_VARS`]) that `env` knows.
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) {
        let non_empty = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        if let Some(url) = non_empty("SUTURE_DATABASE_URL") {
            self.store.database_url = Some(url);
        }
        if let Some(secret) = non_empty("SUTURE_SENTRY_CLIENT_SECRET") {
            self.secrets.sentry_client_secret = Some(secret);
        }
        if let Some(secrets) = non_empty("SUTURE_PAGERDUTY_WEBHOOK_SECRETS") {
            self.secrets.pagerduty_webhook_secrets = secrets
                .split(',')
                .map(str::trim)
                .filter(|secret| !secret.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(secret) = non_empty("SUTURE_GITHUB_WEBHOOK_SECRET") {
            self.secrets.github_webhook_secret = Some(secret);
        }
        if let Some(token) = non_empty("SUTURE_API_TOKEN") {
            self.secrets.api_token = Some(token);
        }
        if let Some(token) = non_empty("SUTURE_GITHUB_TOKEN") {
            self.secrets.github_token = Some(token);
        }
        if let Some(key) = non_empty("SUTURE_GITHUB_APP_PRIVATE_KEY") {
            self.secrets.github_app_private_key = Some(key);
        }
        if let Some(token) = non_empty("SUTURE_SENTRY_API_TOKEN") {
            self.secrets.sentry_api_token = Some(token);
        }
        if let Some(key) = non_empty("SUTURE_PAGERDUTY_API_KEY") {
            self.secrets.pagerduty_api_key = Some(key);
        }
        if let Some(url) = non_empty("SUTURE_LLM_BASE_URL") {
            self.llm.base_url = Some(url);
        }
        if let Some(model) = non_empty("SUTURE_LLM_MODEL") {
            self.llm.model = Some(model);
        }
        if let Some(key) = non_empty("SUTURE_LLM_API_KEY").or_else(|| non_empty("OPENAI_API_KEY")) {
            self.secrets.llm_api_key = Some(key);
        }
    }

    /// Every value that parsed but cannot work; empty means valid.
    pub fn validate(&self) -> Vec<ConfigProblem> {
        let mut problems = Vec::new();
        let mut problem =
            |key: String, message: String| problems.push(ConfigProblem { key, message });
        if self.server.listen.parse::<SocketAddr>().is_err() {
            problem(
                "server.listen".into(),
                format!(
                    "{:?} is not an address and port, e.g. 127.0.0.1:7878",
                    self.server.listen
                ),
            );
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            problem(
                "server.public_url".into(),
                format!("{url:?} is not an http(s) url"),
            );
        }
        if let Some(url) = &self.store.database_url
            && !(url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:"))
        {
            problem(
                "store.database_url".into(),
                "expected postgres://…, postgresql://… or sqlite:PATH".into(),
            );
        }
        for (key, value) in [
            (
                "server.max_concurrent_requests",
                self.server.max_concurrent_requests as u64,
            ),
            (
                "server.request_timeout_seconds",
                self.server.request_timeout_seconds,
            ),
            (
                "store.max_connections",
                u64::from(self.store.max_connections),
            ),
            (
                "limits.max_envelope_bytes",
                self.limits.max_envelope_bytes as u64,
            ),
            ("limits.max_event_bytes", self.limits.max_event_bytes as u64),
            (
                "server.header_read_timeout_seconds",
                self.server.header_read_timeout_seconds,
            ),
            (
                "server.idle_timeout_seconds",
                self.server.idle_timeout_seconds,
            ),
            ("server.max_connections", self.server.max_connections as u64),
            (
                "limits.max_envelope_items",
                self.limits.max_envelope_items as u64,
            ),
            (
                "limits.max_envelope_header_bytes",
                self.limits.max_envelope_header_bytes as u64,
            ),
            ("limits.max_json_depth", self.limits.max_json_depth as u64),
            (
                "limits.max_webhook_bytes",
                self.limits.max_webhook_bytes as u64,
            ),
            ("queue.ingest_capacity", self.queue.ingest_capacity as u64),
            ("queue.batch_max", self.queue.batch_max as u64),
            ("queue.lease_seconds", self.queue.lease_seconds),
            ("queue.heartbeat_seconds", self.queue.heartbeat_seconds),
            ("queue.max_attempts", self.queue.max_attempts.max(0) as u64),
            ("queue.poll_millis", self.queue.poll_millis),
        ] {
            if value == 0 {
                problem(key.into(), "must be greater than 0".into());
            }
        }
        if self.limits.max_json_depth > 128 {
            problem(
                "limits.max_json_depth".into(),
                "must be at most 128, the JSON reader's own nesting limit".into(),
            );
        }
        let largest = self
            .limits
            .max_envelope_bytes
            .max(self.limits.max_webhook_bytes);
        if self.limits.max_inflight_bytes < largest {
            problem(
                "limits.max_inflight_bytes".into(),
                format!(
                    "must be at least the largest body limit ({largest}), or such a body can never be read"
                ),
            );
        }
        if self.queue.heartbeat_seconds >= self.queue.lease_seconds {
            problem(
                "queue.heartbeat_seconds".into(),
                format!(
                    "must be shorter than queue.lease_seconds ({}), or leases expire between heartbeats",
                    self.queue.lease_seconds
                ),
            );
        }
        let mut project_ids = std::collections::HashSet::new();
        for (idx, project) in self.sentry.projects.iter().enumerate() {
            if project.id.is_empty() || !project.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                problem(
                    format!("sentry.projects[{idx}].id"),
                    format!("{:?} is not a project id", project.id),
                );
            }
            if !project_ids.insert(&project.id) {
                problem(
                    format!("sentry.projects[{idx}].id"),
                    format!("project {:?} is listed twice", project.id),
                );
            }
            if project.public_key.len() < 16
                || !project
                    .public_key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric())
            {
                problem(
                    format!("sentry.projects[{idx}].public_key"),
                    "expected at least 16 letters and digits, like Sentry's 32 hex chars".into(),
                );
            }
        }
        let mut names = std::collections::HashSet::new();
        for (idx, repo) in self.repos.iter().enumerate() {
            let key = |field: &str| format!("repos[{idx}].{field}");
            if repo.name.trim().is_empty() {
                problem(key("name"), "is required".into());
            } else if !names.insert(&repo.name) {
                problem(
                    key("name"),
                    format!("{:?} is used by another repo", repo.name),
                );
            }
            if repo.path.trim().is_empty() {
                problem(
                    key("path"),
                    "is required: a local clone of the repository".into(),
                );
            }
            for mapping in &repo.code_mappings {
                if !mapping.contains('=') {
                    problem(
                        key("code_mappings"),
                        format!("{mapping:?} is not STACK_ROOT=SOURCE_ROOT"),
                    );
                }
            }
            if let Some(invalid) = self.invalid_choice(&key("mode")) {
                problem(invalid.key.clone(), invalid.message.clone());
            }
            if let Some(invalid) = self.invalid_choice(&key("forge")) {
                problem(invalid.key.clone(), invalid.message.clone());
            }
            match repo.forge {
                ForgeKind::Local => {}
                ForgeKind::Github => {
                    let valid_repo = repo.github_repo.as_deref().is_some_and(|name| {
                        name.split_once('/').is_some_and(|(owner, name)| {
                            !owner.is_empty() && !name.is_empty() && !name.contains('/')
                        })
                    });
                    if !valid_repo {
                        problem(
                            key("github_repo"),
                            "is required with forge = \"github\": owner/name".into(),
                        );
                    }
                    if self.github.app_id.is_some() {
                        if repo.github_installation_id.is_none() {
                            problem(
                                key("github_installation_id"),
                                "is required with github.app_id: the App's installation on the repository's owner".into(),
                            );
                        }
                    } else if self.secrets.github_token.is_none() {
                        problem(
                            key("forge"),
                            "\"github\" needs github.app_id (a GitHub App) or SUTURE_GITHUB_TOKEN"
                                .into(),
                        );
                    }
                }
            }
            for (field, value) in [
                ("min_events", repo.min_events),
                ("spike_window_seconds", repo.spike_window_seconds),
                ("max_rounds_per_hour", u64::from(repo.max_rounds_per_hour)),
                (
                    "max_concurrent_rounds",
                    u64::from(repo.max_concurrent_rounds),
                ),
                (
                    "max_open_pull_requests",
                    u64::from(repo.max_open_pull_requests),
                ),
                ("breaker_failures", u64::from(repo.breaker_failures)),
            ] {
                if value == 0 {
                    problem(key(field), "must be greater than 0".into());
                }
            }
            if !(repo.spike_factor.is_finite() && repo.spike_factor > 1.0) {
                problem(
                    key("spike_factor"),
                    "must be a number above 1: a spike is a rate above its own baseline".into(),
                );
            }
            for invalid in self
                .invalid_choices
                .iter()
                .filter(|p| p.key == key("heal_on"))
            {
                problem(invalid.key.clone(), invalid.message.clone());
            }
            if let Some(invalid) = self.invalid_choice(&key("sandbox")) {
                problem(invalid.key.clone(), invalid.message.clone());
            }
            if repo.sandbox == SandboxKind::Docker && repo.docker_image.is_none() {
                problem(
                    key("docker_image"),
                    "is required with sandbox = \"docker\"".into(),
                );
            }
            if repo.sandbox == SandboxKind::Process && !repo.unsafe_allow_process_sandbox {
                problem(
                    key("sandbox"),
                    format!(
                        "\"process\" runs tests unisolated, able to read suture's data, configuration, keys and environment: use \"bubblewrap\" or \"docker\", or set {} = true on a throwaway machine",
                        key("unsafe_allow_process_sandbox")
                    ),
                );
            }
        }
        match (&self.llm.base_url, &self.llm.model) {
            (Some(url), _) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                problem(
                    "llm.base_url".into(),
                    format!("{url:?} is not an http:// or https:// URL"),
                );
            }
            (Some(_), None) => problem(
                "llm.model".into(),
                "is required with llm.base_url (or SUTURE_LLM_MODEL)".into(),
            ),
            (None, Some(_)) => problem(
                "llm.base_url".into(),
                "is required with llm.model (or SUTURE_LLM_BASE_URL)".into(),
            ),
            _ => {}
        }
        actions::validate(&self.actions, &self.invalid_choices, &mut problems);
        let github_app_in_use = self.github.app_id.is_some()
            && self
                .repos
                .iter()
                .any(|repo| repo.forge == ForgeKind::Github);
        if github_app_in_use && self.secrets.github_app_private_key.is_none() {
            problems.push(ConfigProblem {
                key: "github.app_id".into(),
                message: "needs the App's private key in SUTURE_GITHUB_APP_PRIVATE_KEY or SUTURE_GITHUB_APP_PRIVATE_KEY_FILE".into(),
            });
        }
        problems
    }

    /// The repository that serves signals from `source` about `project`: a
    /// Sentry project id (`sentry_*` sources) or a PagerDuty service id.
    /// With a single repository and no routing at all, it serves everything.
    pub fn repo_for(&self, source: &str, project: Option<&str>) -> Option<&RepoConfig> {
        fn routes<'a>(repo: &'a RepoConfig, source: &str) -> &'a [String] {
            if source == SignalSource::Pagerduty.as_str() {
                &repo.pagerduty_services
            } else {
                &repo.sentry_projects
            }
        }
        if let Some(project) = project
            && let Some(repo) = self
                .repos
                .iter()
                .find(|repo| routes(repo, source).iter().any(|p| p == project))
        {
            return Some(repo);
        }
        match self.repos.as_slice() {
            [only] if only.sentry_projects.is_empty() && only.pagerduty_services.is_empty() => {
                Some(only)
            }
            _ => None,
        }
    }

    /// The configuration table of docs/configuration.md, generated from the declarations.
    pub fn docs_table() -> String {
        let mut rows = Vec::new();
        rows.extend(ServerConfig::field_docs());
        rows.extend(StoreConfig::field_docs());
        rows.extend(LimitsConfig::field_docs());
        rows.extend(QueueConfig::field_docs());
        rows.extend(SentryConfig::field_docs());
        rows.extend(PagerDutyConfig::field_docs());
        rows.extend(GitHubSection::field_docs());
        rows.extend(VerifyConfig::field_docs());
        rows.extend(LlmSection::field_docs());
        rows.extend(RepoConfig::field_docs());
        rows.extend(RecoveryConfig::field_docs());
        rows.extend(ActionConfig::field_docs());
        rows.extend(ActionMatch::field_docs());
        rows.extend(HttpRequestConfig::field_docs());
        let mut out = String::from("| key | type | default | meaning |\n|---|---|---|---|\n");
        for row in rows {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                row.key,
                row.ty,
                if row.default == "none" {
                    "none".to_owned()
                } else {
                    format!("`{}`", row.default)
                },
                row.doc.replace('|', "\\|")
            ));
        }
        out.push_str("\n| environment variable | meaning |\n|---|---|\n");
        for (name, meaning) in ENV_VARS {
            out.push_str(&format!("| `{name}` | {meaning} |\n"));
        }
        out
    }
}

/// Takes out of `table` every `[[repos]]` choice whose value is not one of
/// its names (the default then applies) and returns what is wrong with each,
/// keyed like [`Config::validate`]'s problems.
fn take_invalid_choices(table: &mut toml::Table) -> Vec<ConfigProblem> {
    let mut problems = Vec::new();
    let Some(toml::Value::Array(repos)) = table.get_mut("repos") else {
        return problems;
    };
    for (idx, repo) in repos.iter_mut().enumerate() {
        let Some(repo) = repo.as_table_mut() else {
            continue;
        };
        for (field, names) in [
            ("mode", Mode::NAMES),
            ("forge", ForgeKind::NAMES),
            ("sandbox", SandboxKind::NAMES),
        ] {
            let Some(toml::Value::String(value)) = repo.get(field) else {
                continue;
            };
            if names.contains(&value.as_str()) {
                continue;
            }
            problems.push(ConfigProblem {
                key: format!("repos[{idx}].{field}"),
                message: format!("{value:?} is not one of {}", names.join(", ")),
            });
            repo.remove(field);
        }
        if let Some(toml::Value::Array(triggers)) = repo.get_mut("heal_on") {
            triggers.retain(|trigger| {
                let name = trigger.as_str().unwrap_or_default();
                let known = Trigger::NAMES.contains(&name);
                if !known {
                    problems.push(ConfigProblem {
                        key: format!("repos[{idx}].heal_on"),
                        message: format!("{trigger} is not one of {}", Trigger::NAMES.join(", ")),
                    });
                }
                known
            });
        }
    }
    problems
}

/// A Rust type as the documentation names it in TOML terms.
fn toml_type(rust: &str) -> &'static str {
    match rust.replace(' ', "").as_str() {
        "String" => "string",
        "Option<String>" => "string, optional",
        "Vec<String>" => "array of strings",
        "Vec<SentryProject>" => "array of tables",
        "Option<u32>" | "Option<u64>" => "integer, optional",
        "bool" => "bool",
        "Mode" | "ForgeKind" | "SandboxKind" => "string",
        "Vec<Trigger>" => "array of strings",
        "ActionMode" => "string",
        "Option<ActionSource>" => "string, optional",
        "ActionMatch" => "table",
        "Option<HttpRequestConfig>" => "table, optional",
        "BTreeMap<String,String>" => "table of strings",
        "f64" => "float",
        _ => "integer",
    }
}

/// A default value as TOML shows it; `none` for an unset option, `[]` for an
/// empty list.
fn render_default<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Null) => "none".to_owned(),
        Ok(serde_json::Value::String(text)) => format!("{text:?}"),
        // A table whose fields all default to nothing (`actions[].match`).
        Ok(serde_json::Value::Object(fields))
            if fields
                .values()
                .all(|value| value.is_null() || value.as_array().is_some_and(Vec::is_empty)) =>
        {
            "{}".to_owned()
        }
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No file at all is a valid configuration.
    #[test]
    fn defaults_are_valid() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.validate(), []);
    }

    /// A full file parses, and the environment fills the secrets.
    #[test]
    fn file_and_env() {
        let mut config = Config::from_toml(
            r#"
            [server]
            listen = "0.0.0.0:9000"
            [sentry]
            projects = [{ id = "42", public_key = "0123456789abcdef0123456789abcdef" }]
            [[repos]]
            name = "shop"
            path = "/srv/shop"
            sentry_projects = ["42"]
            code_mappings = ["/app=src"]
            "#,
        )
        .unwrap();
        config.apply_env(|name| match name {
            "SUTURE_PAGERDUTY_WEBHOOK_SECRETS" => Some("old, new".into()),
            "SUTURE_DATABASE_URL" => Some("postgres://u:p@db/suture".into()),
            _ => None,
        });
        assert_eq!(config.validate(), []);
        assert_eq!(config.secrets.pagerduty_webhook_secrets, ["old", "new"]);
        assert_eq!(
            config.store.database_url.as_deref(),
            Some("postgres://u:p@db/suture")
        );
        assert_eq!(
            config.repo_for("sentry_sdk", Some("42")).unwrap().name,
            "shop"
        );
        assert!(config.repo_for("sentry_sdk", Some("7")).is_none());
        assert!(!format!("{:?}", config.secrets).contains("new"));
    }

    /// The unisolated process sandbox is refused, naming the key and the
    /// remedy, unless the repository opts in explicitly.
    #[test]
    fn process_sandbox_needs_the_unsafe_opt_in() {
        let repo = |extra: &str| {
            Config::from_toml(&format!(
                "[[repos]]\nname = \"shop\"\npath = \"/srv/shop\"\nsandbox = \"process\"\n{extra}"
            ))
            .unwrap()
        };
        let problems: Vec<String> = repo("")
            .validate()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "repos[0].sandbox: \"process\" runs tests unisolated, able to read suture's data, configuration, keys and environment: use \"bubblewrap\" or \"docker\", or set repos[0].unsafe_allow_process_sandbox = true on a throwaway machine"
            ]
        );
        assert_eq!(repo("unsafe_allow_process_sandbox = true").validate(), []);
    }

    /// A typo is an error that names the key, not a silent default.
    #[test]
    fn unknown_keys_are_errors() {
        let error = Config::from_toml("[server]\nlisten_addr = \"x\"\n").unwrap_err();
        let text = error.0.to_string();
        assert!(text.contains("listen_addr"), "{text}");
    }

    /// Values that parse but cannot work are explained, each with its key.
    #[test]
    fn problems_are_explained() {
        let config = Config::from_toml(
            r#"
            [server]
            listen = "localhost"
            [queue]
            heartbeat_seconds = 90
            [[repos]]
            name = ""
            path = "/x"
            sandbox = "docker"
            code_mappings = ["nope"]
            "#,
        )
        .unwrap();
        let problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "server.listen: \"localhost\" is not an address and port, e.g. 127.0.0.1:7878",
                "queue.heartbeat_seconds: must be shorter than queue.lease_seconds (60), or leases expire between heartbeats",
                "repos[0].name: is required",
                "repos[0].code_mappings: \"nope\" is not STACK_ROOT=SOURCE_ROOT",
                "repos[0].docker_image: is required with sandbox = \"docker\"",
            ]
        );
    }

    /// A GitHub repository needs its name and credentials; modes and forges
    /// are checked by name.
    #[test]
    fn forge_settings_are_checked() {
        let text = r#"
            [github]
            app_id = 42
            [[repos]]
            name = "a"
            path = "/a"
            forge = "github"
            github_repo = "acme"
            mode = "auto"
            [[repos]]
            name = "b"
            path = "/b"
            forge = "gitlab"
            "#;
        let config = Config::from_toml(text).unwrap();
        let problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "repos[0].mode: \"auto\" is not one of observe, suggest, pr",
                "repos[0].github_repo: is required with forge = \"github\": owner/name",
                "repos[0].github_installation_id: is required with github.app_id: the App's installation on the repository's owner",
                "repos[1].forge: \"gitlab\" is not one of local, github",
                "github.app_id: needs the App's private key in SUTURE_GITHUB_APP_PRIVATE_KEY or SUTURE_GITHUB_APP_PRIVATE_KEY_FILE",
            ]
        );
        let mut config = Config::from_toml(
            "[[repos]]\nname = \"a\"\npath = \"/a\"\nforge = \"github\"\ngithub_repo = \"acme/shop\"\nmode = \"suggest\"\n",
        )
        .unwrap();
        assert_eq!(config.validate().len(), 1, "a token is needed");
        config.apply_env(|name| (name == "SUTURE_GITHUB_TOKEN").then(|| "ghp_x".to_owned()));
        assert_eq!(config.validate(), []);
        assert!(!format!("{:?}", config.secrets).contains("ghp_x"));
    }

    /// One repository without routing serves every project.
    #[test]
    fn single_unrouted_repo_serves_everything() {
        let config = Config::from_toml("[[repos]]\nname = \"a\"\npath = \"/a\"\n").unwrap();
        assert_eq!(config.repo_for("pagerduty", Some("PX")).unwrap().name, "a");
        assert_eq!(config.repo_for("sentry_sdk", None).unwrap().name, "a");
    }

    #[test]
    fn triggers_and_limits_are_checked() {
        let config = Config::from_toml(
            "[[repos]]\nname = \"a\"\npath = \"/a\"\nheal_on = [\"spike\", \"sometimes\"]\n\
             spike_factor = 0.5\nmax_concurrent_rounds = 0\n",
        )
        .unwrap();
        assert_eq!(config.repos[0].heal_on, vec![Trigger::Spike]);
        let problems: Vec<String> = config.validate().iter().map(ToString::to_string).collect();
        assert!(
            problems.contains(
                &"repos[0].heal_on: \"sometimes\" is not one of new_release, regression, spike"
                    .to_owned()
            ),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("repos[0].spike_factor: must be a number above 1"))
        );
        assert!(
            problems.contains(&"repos[0].max_concurrent_rounds: must be greater than 0".to_owned())
        );
        let defaults = Config::from_toml("[[repos]]\nname = \"a\"\npath = \"/a\"\n").unwrap();
        assert_eq!(
            defaults.repos[0].heal_on,
            vec![Trigger::NewRelease, Trigger::Regression, Trigger::Spike]
        );
        assert!(defaults.validate().is_empty());
    }

    /// The configuration table of docs/configuration.md is generated from
    /// the declarations above; this test rewrites it when they change (and
    /// fails, so the change is committed).
    #[test]
    fn readme_config_table_is_fresh() {
        const START: &str = "<!-- config-table:start (generated by domain::config tests) -->\n";
        const END: &str = "<!-- config-table:end -->";
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
            panic!("docs/configuration.md lacks the config table markers {START:?} … {END:?}");
        };
        let fresh = format!(
            "{}{START}{}{}",
            &readme[..start],
            Config::docs_table(),
            &readme[end..]
        );
        if fresh != readme {
            std::fs::write(&path, &fresh).unwrap();
            panic!(
                "docs/configuration.md's configuration table was stale; it has been regenerated: commit it"
            );
        }
    }
}
