//! Typed settings, layered: defaults, then an optional `vibing2.toml`, then the environment.
//!
//! The seed's flat variable names (`DATABASE_URL`, `DB_CONNECTION_LIMIT`, ...) are honoured as
//! they are; every other setting can be given as `VIBING2_<SECTION>__<KEY>`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub use crate::cache::CacheSettings;

/// The seed's variable names (and `DATABASE_REPLICA_URLS`, named as they are) and the setting
/// each one fills.
const SEED_VARIABLES: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("DATABASE_REPLICA_URLS", "database.replica_urls"),
    ("DB_CONNECTION_LIMIT", "database.connection_limit"),
    ("DB_POOL_TIMEOUT", "database.pool_timeout_secs"),
    ("DB_CONNECT_TIMEOUT", "database.connect_timeout_secs"),
    ("DB_STATEMENT_TIMEOUT", "database.statement_timeout_ms"),
    ("DB_IDLE_TIMEOUT", "database.idle_timeout_ms"),
    ("MIGRATE_ON_START", "database.migrate_on_start"),
    ("REDIS_URL", "redis.url"),
    ("CACHE_NAMESPACE", "cache.namespace"),
    ("HOST", "server.host"),
    ("PORT", "server.port"),
    ("ADMIN_TOKEN", "admin_token"),
];

/// Every section is optional in the file and the environment: a missing setting takes the
/// default written in the section's `Default`, and only there.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub redis: RedisSettings,
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub usage: UsageSettings,
    pub jobs: JobSettings,
    pub cache: CacheSettings,
    pub views: ViewSettings,
    pub collab: CollabSettings,
    pub monitor: MonitorSettings,
    pub rate_limits: RateLimitSettings,
    /// Bearer token for the operational endpoints; without one they are off.
    pub admin_token: Option<SecretString>,
    /// The key list cursors are signed with; the same on every instance. Unset: a key kept
    /// beside the embedded cluster, or a random one per process with `DATABASE_URL`.
    pub cursor_secret: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// Unset: run the embedded cluster (see `db::embedded`).
    pub url: Option<SecretString>,
    /// Streaming replicas of that database, one read pool each (`db::replicas`): a list, or
    /// one string of URLs separated by commas (`DATABASE_REPLICA_URLS`).
    #[serde(deserialize_with = "url_list")]
    pub replica_urls: Vec<SecretString>,
    /// A replica whose replay is further behind the primary than this is taken out of
    /// rotation until it catches up.
    pub replica_max_lag_ms: u64,
    /// How often each replica's lag and reachability are measured.
    pub replica_probe_ms: u64,
    /// A read waits this long at most for a replica's connection before it runs on the
    /// primary instead.
    pub replica_acquire_timeout_ms: u64,
    /// After a user's write, that user's reads go to the primary for this long (on every
    /// instance, through Redis).
    pub read_your_writes_ms: u64,
    pub connection_limit: u32,
    /// Connections checked out at once, at most `connection_limit` (unset: that many);
    /// switchable without a restart, where `connection_limit` is fixed at startup.
    pub pool_size: Option<u32>,
    pub pool_timeout_secs: u64,
    pub connect_timeout_secs: u64,
    pub statement_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub idle_in_transaction_timeout_ms: u64,
    pub health_check_timeout_ms: u64,
    /// How often the reachability probe pings PostgreSQL (`db::reachability`); an outage is
    /// noticed within about two intervals.
    pub probe_interval_ms: u64,
    /// The query of a dropped request is cancelled within about twice this: a connection
    /// given back with a query still running is closed after this long, and PostgreSQL
    /// checks this often (`client_connection_check_interval`) whether its client is gone.
    pub cancel_check_ms: u64,
    pub migrate_on_start: bool,
    /// Where the embedded cluster keeps its data, relative to the working directory.
    pub embedded_dir: PathBuf,
    /// Refuse to start without `DATABASE_URL` instead of running the embedded development
    /// database: for deployments.
    pub require_url: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            replica_urls: Vec::new(),
            replica_max_lag_ms: 1000,
            replica_probe_ms: 250,
            replica_acquire_timeout_ms: 1000,
            read_your_writes_ms: 5000,
            connection_limit: 25,
            pool_size: None,
            pool_timeout_secs: 30,
            connect_timeout_secs: 10,
            statement_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            idle_in_transaction_timeout_ms: 60_000,
            health_check_timeout_ms: 2_000,
            probe_interval_ms: 500,
            cancel_check_ms: 250,
            migrate_on_start: true,
            embedded_dir: PathBuf::from(".vibing2/postgres"),
            require_url: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RedisSettings {
    pub url: Option<SecretString>,
    pub timeout_ms: u64,
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self { url: None, timeout_ms: 50 }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    /// The body limit of every route but the file batch (`limits.file_batch_body_bytes`).
    pub body_limit_bytes: usize,
    /// A body that may be longer than this (or of unknown length) is read in one of
    /// `large_bodies_in_flight` slots, so large bodies cannot pile up in memory.
    pub large_body_bytes: usize,
    pub large_bodies_in_flight: usize,
    /// How long a large body waits for a slot before the request answers 503.
    pub large_body_wait_ms: u64,
    /// A connection must send a request's headers within this, and an idle keep-alive
    /// connection is closed after it.
    pub header_read_timeout_ms: u64,
    /// A request (its body included) must be answered within this, or it is 408: every
    /// request but those below. `database.statement_timeout_ms` may not be longer.
    pub request_timeout_secs: u64,
    /// The deadline of a request whose body may be larger than `large_body_bytes` (a file
    /// batch), whose body alone may take a while to arrive.
    pub upload_timeout_secs: u64,
    /// On SIGTERM, how long the requests in flight may take to finish.
    pub drain_timeout_secs: u64,
    /// A longer request target (path and query) is 414.
    pub max_uri_bytes: usize,
    /// Headers larger than this in all (names and values) are 431.
    pub max_header_bytes: usize,
    /// A JSON body nesting arrays and objects deeper than this is 400.
    pub max_json_depth: usize,
    /// Origins (`https://app.example.com`) whose browsers may call the API; empty: none,
    /// and no CORS headers at all.
    pub cors_origins: Vec<String>,
    /// Lets those origins send cookies; never with `*` among them.
    pub cors_credentials: bool,
}

impl ServerSettings {
    /// Each allowed origin is `*` or a scheme and host (and port), and `*` never comes with
    /// credentials: a browser would refuse it, and it would hand any site the session.
    fn validate_cors(&self) -> Result<(), String> {
        for origin in &self.cors_origins {
            if origin == "*" {
                if self.cors_credentials {
                    return Err(
                        "server.cors_origins holds \"*\" while server.cors_credentials is on: name the origins".into(),
                    );
                }
                continue;
            }
            let parsed =
                url::Url::parse(origin).map_err(|_| format!("server.cors_origins: {origin:?} is not an origin"))?;
            let bare = parsed.path() == "/" && parsed.query().is_none() && !origin.ends_with('/');
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() || !bare {
                return Err(format!("server.cors_origins: {origin:?} is not an origin (scheme://host[:port])"));
            }
        }
        Ok(())
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 3000,
            body_limit_bytes: 2 * 1024 * 1024,
            large_body_bytes: 64 * 1024,
            large_bodies_in_flight: 2,
            large_body_wait_ms: 2000,
            header_read_timeout_ms: 10_000,
            request_timeout_secs: 30,
            upload_timeout_secs: 120,
            drain_timeout_secs: 20,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_json_depth: 32,
            cors_origins: Vec::new(),
            cors_credentials: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    pub session_ttl_days: u32,
    /// Adds `Secure` to the session cookie. Unset: on, unless the service listens on a
    /// loopback address (local development over plain HTTP).
    pub secure_cookie: Option<bool>,
    /// Treat the TCP peer as a trusted proxy whatever its address, and so read the client
    /// address from `X-Forwarded-For`. Only where nothing but the proxy can reach the service.
    pub trust_forwarded_for: bool,
    /// Proxies (CIDRs) whose `X-Forwarded-For` is believed: the client is the right-most hop
    /// that is not one of them.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Password hashes (sign-up, login) waiting for a free core at most; past it, 503.
    pub hash_queue: usize,
    /// Accounts one client address may create per rate-limit window (15 minutes).
    pub signups_per_window: i64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_ttl_days: 30,
            secure_cookie: None,
            trust_forwarded_for: false,
            trusted_proxies: Vec::new(),
            hash_queue: 64,
            signups_per_window: 30,
        }
    }
}

/// Per-plan and per-request caps.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    pub file_bytes_free: usize,
    pub file_bytes_pro: usize,
    pub file_bytes_team: usize,
    pub file_bytes_enterprise: usize,
    pub batch_operations: usize,
    /// The body limit of `PUT /api/projects/{id}/files`, which carries file contents.
    pub file_batch_body_bytes: usize,
    /// Message content one page of a chat carries at most; longer messages are cut in it.
    pub message_page_bytes: usize,
    /// Files one project may hold, per its owner's plan.
    pub project_files_free: i64,
    pub project_files_pro: i64,
    pub project_files_team: i64,
    pub project_files_enterprise: i64,
    /// Bytes of file content one project may hold, per its owner's plan.
    pub project_bytes_free: i64,
    pub project_bytes_pro: i64,
    pub project_bytes_team: i64,
    pub project_bytes_enterprise: i64,
    /// Forks one user may make per hour, per their plan: each copies a whole project.
    pub forks_per_hour_free: i64,
    pub forks_per_hour_pro: i64,
    pub forks_per_hour_team: i64,
    pub forks_per_hour_enterprise: i64,
}

/// What a plan allows: what one project of an owner on it may hold, and how often they fork.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanQuota {
    /// The largest single file.
    pub file_bytes: usize,
    pub files: i64,
    pub bytes: i64,
    pub forks_per_hour: i64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            file_bytes_free: 50 * 1024,
            file_bytes_pro: 100 * 1024,
            file_bytes_team: 500 * 1024,
            file_bytes_enterprise: 500 * 1024,
            batch_operations: 1000,
            file_batch_body_bytes: 8 * 1024 * 1024,
            message_page_bytes: 1024 * 1024,
            // Twice a full batch (`batch_operations`) fits in any plan's project.
            project_files_free: 2000,
            project_files_pro: 10_000,
            project_files_team: 50_000,
            project_files_enterprise: 50_000,
            project_bytes_free: 10 * 1024 * 1024,
            project_bytes_pro: 100 * 1024 * 1024,
            project_bytes_team: 500 * 1024 * 1024,
            project_bytes_enterprise: 500 * 1024 * 1024,
            forks_per_hour_free: 10,
            forks_per_hour_pro: 60,
            forks_per_hour_team: 200,
            forks_per_hour_enterprise: 200,
        }
    }
}

impl LimitSettings {
    /// What `plan` allows; an unknown plan gets FREE's.
    pub fn plan_quota(&self, plan: &str) -> PlanQuota {
        let (file_bytes, files, bytes, forks_per_hour) = match plan {
            "PRO" => (self.file_bytes_pro, self.project_files_pro, self.project_bytes_pro, self.forks_per_hour_pro),
            "TEAM" => {
                (self.file_bytes_team, self.project_files_team, self.project_bytes_team, self.forks_per_hour_team)
            }
            "ENTERPRISE" => (
                self.file_bytes_enterprise,
                self.project_files_enterprise,
                self.project_bytes_enterprise,
                self.forks_per_hour_enterprise,
            ),
            _ => (self.file_bytes_free, self.project_files_free, self.project_bytes_free, self.forks_per_hour_free),
        };
        PlanQuota { file_bytes, files, bytes, forks_per_hour }
    }
}

/// The price of AI calls, in USD per 1000 tokens, by model.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UsageSettings {
    /// For models the table does not list.
    pub default_price_per_1k_tokens: f64,
    pub prices_per_1k_tokens: std::collections::BTreeMap<String, f64>,
}

impl Default for UsageSettings {
    fn default() -> Self {
        let prices =
            [("claude-3-5-sonnet", 0.003), ("claude-3-haiku", 0.00025), ("gpt-4o", 0.005), ("gpt-4o-mini", 0.00015)];
        Self {
            default_price_per_1k_tokens: 0.002,
            prices_per_1k_tokens: prices.into_iter().map(|(model, price)| (model.to_owned(), price)).collect(),
        }
    }
}

impl UsageSettings {
    /// The cost of `tokens` tokens of `model`, rounded to the column's 6 decimals.
    pub fn cost(&self, model: &str, tokens: i32) -> f64 {
        let price = self.prices_per_1k_tokens.get(model).copied().unwrap_or(self.default_price_per_1k_tokens);
        (f64::from(tokens) * price / 1000.0 * 1e6).round() / 1e6
    }
}

/// How often each background job runs, in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JobSettings {
    pub enabled: bool,
    /// How often the scheduler looks for due jobs.
    pub tick_secs: u64,
    pub refresh_project_stats_secs: u64,
    pub refresh_user_token_summary_secs: u64,
    pub cleanup_secs: u64,
    pub analyze_secs: u64,
    /// How often `maintain_partitions` runs (it also runs once at startup).
    pub partitions_secs: u64,
    /// TokenUsage partitions kept ready after this month's (1 to 36): writes of a month
    /// without a partition are refused, so the job must stay this far ahead.
    pub partition_months_ahead: u32,
    /// Usage retention: TokenUsage partitions older than this many full months before the
    /// current one are dropped. Unset (the default): usage is kept for ever. At least 13, so
    /// that the usage summary's longest window (366 days) stays complete.
    pub usage_retention_months: Option<u32>,
    /// A scheduled job's statements may run this long (far past a request's
    /// `statement_timeout`, but never for ever).
    pub statement_timeout_ms: u64,
    /// Pauses every job (switchable without a restart, as the intervals and `paused` are).
    pub pause_all: bool,
    /// Jobs paused by name.
    pub paused: Vec<String>,
}

impl JobSettings {
    /// Every job's name, in the order the scheduler runs them.
    pub const JOBS: [&'static str; 5] =
        ["refresh_project_stats", "refresh_user_token_summary", "cleanup_expired", "analyze", "maintain_partitions"];

    /// The fewest months `usage_retention_months` may keep: the usage summary reads up to 366
    /// days back.
    pub const MIN_RETENTION_MONTHS: u32 = 13;
    /// The most months `partition_months_ahead` may prepare.
    pub const MAX_MONTHS_AHEAD: u32 = 36;

    /// The interval of the job `name`, in seconds.
    pub fn interval_secs(&self, name: &str) -> Option<u64> {
        match name {
            "refresh_project_stats" => Some(self.refresh_project_stats_secs),
            "refresh_user_token_summary" => Some(self.refresh_user_token_summary_secs),
            "cleanup_expired" => Some(self.cleanup_secs),
            "analyze" => Some(self.analyze_secs),
            "maintain_partitions" => Some(self.partitions_secs),
            _ => None,
        }
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            tick_secs: 30,
            refresh_project_stats_secs: 15 * 60,
            refresh_user_token_summary_secs: 60 * 60,
            cleanup_secs: 24 * 60 * 60,
            analyze_secs: 7 * 24 * 60 * 60,
            partitions_secs: 24 * 60 * 60,
            partition_months_ahead: 3,
            usage_retention_months: None,
            statement_timeout_ms: 10 * 60 * 1000,
            pause_all: false,
            paused: Vec::new(),
        }
    }
}

/// Requests per client address and route class in a fixed window (`api::throttle`), counted
/// across instances through Redis. Sign-up and login have limits of their own (5 failures per
/// 15 minutes; `auth.signups_per_window`), and liveness has none.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub window_secs: u64,
    /// GET and HEAD of the API.
    pub reads: u64,
    /// Every other method, forks aside.
    pub writes: u64,
    pub forks: u64,
    /// The monitor, the cache, the detailed health, the metrics and the dashboard.
    pub operational: u64,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { enabled: true, window_secs: 60, reads: 1200, writes: 240, forks: 10, operational: 120 }
    }
}

/// Invites.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CollabSettings {
    /// How long an invite can be accepted.
    pub invite_ttl_days: u32,
    /// Invites one user may send per rate-limit window (15 minutes); inviting by e-mail tells
    /// whether an address has an account.
    pub invites_per_window: i64,
}

impl Default for CollabSettings {
    fn default() -> Self {
        Self { invite_ttl_days: 7, invites_per_window: 20 }
    }
}

/// The query monitor (`telemetry::queries`, `GET /api/monitor/queries`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MonitorSettings {
    /// A database call at least this long is slow: logged, and kept in `QueryPerformance`.
    pub slow_query_ms: u64,
    /// The newest slow calls `QueryPerformance` keeps.
    pub slow_history_rows: i64,
    /// The statement timeout of `POST /api/monitor/queries/explain`.
    pub explain_timeout_ms: u64,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self { slow_query_ms: 1000, slow_history_rows: 10_000, explain_timeout_ms: 5000 }
    }
}

/// Project views are counted in memory and written in batches (see `service::views`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ViewSettings {
    /// How often the counted views are written, in milliseconds.
    pub flush_ms: u64,
    /// A viewer (a user, or an anonymous client address) counts once per project in this
    /// window, in seconds.
    pub viewer_window_secs: u64,
    /// How many (project, viewer) pairs each instance remembers for that; the oldest go first.
    pub viewers_remembered: u64,
}

impl Default for ViewSettings {
    fn default() -> Self {
        Self { flush_ms: 2_000, viewer_window_secs: 3600, viewers_remembered: 200_000 }
    }
}

/// A setting that is present but wrong. Its message is one line naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads the settings from `vibing2.toml` (or `$VIBING2_CONFIG`) and the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = std::env::var("VIBING2_CONFIG").unwrap_or_else(|_| "vibing2.toml".into());
        Self::from_figment(
            Figment::new().merge(Toml::file(file)).merge(Env::prefixed("VIBING2_").split("__")).merge(seed_variables()),
        )
    }

    /// Loads the defaults overlaid with the given `(setting path, value)` pairs; for tests and
    /// tools that build a configuration in code.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            // Parsed as the environment's values are: "25" is a number, "true" a boolean.
            let value: figment::value::Value = value.parse().unwrap_or_else(|never| match never {});
            figment = figment.merge((key, value));
        }
        Self::from_figment(figment)
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(|errors| {
            let Some(error) = errors.into_iter().next() else {
                return ConfigError("unreadable settings".into());
            };
            let path = error.path.join(".").to_lowercase();
            let name = SEED_VARIABLES
                .iter()
                .find(|(_, setting)| *setting == path)
                .map_or_else(|| path.clone(), |(variable, _)| format!("{variable} ({path})"));
            ConfigError(format!("{name}: {}", error.kind))
        })?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let db = &self.database;
        let positive = [
            ("DB_CONNECTION_LIMIT", u64::from(db.connection_limit)),
            ("DB_POOL_TIMEOUT", db.pool_timeout_secs),
            ("DB_CONNECT_TIMEOUT", db.connect_timeout_secs),
            ("DB_STATEMENT_TIMEOUT", db.statement_timeout_ms),
            ("DB_IDLE_TIMEOUT", db.idle_timeout_ms),
            ("database.health_check_timeout_ms", db.health_check_timeout_ms),
            ("database.cancel_check_ms", db.cancel_check_ms),
            ("database.replica_max_lag_ms", db.replica_max_lag_ms),
            ("database.replica_probe_ms", db.replica_probe_ms),
            ("database.replica_acquire_timeout_ms", db.replica_acquire_timeout_ms),
            ("database.read_your_writes_ms", db.read_your_writes_ms),
            ("server.request_timeout_secs", self.server.request_timeout_secs),
            ("server.upload_timeout_secs", self.server.upload_timeout_secs),
            ("server.max_uri_bytes", self.server.max_uri_bytes as u64),
            ("server.max_header_bytes", self.server.max_header_bytes as u64),
            ("server.max_json_depth", self.server.max_json_depth as u64),
            ("redis.timeout_ms", self.redis.timeout_ms),
            ("auth.session_ttl_days", u64::from(self.auth.session_ttl_days)),
            ("limits.batch_operations", self.limits.batch_operations as u64),
            ("auth.signups_per_window", self.auth.signups_per_window.max(0) as u64),
            ("collab.invite_ttl_days", u64::from(self.collab.invite_ttl_days)),
            ("collab.invites_per_window", self.collab.invites_per_window.max(0) as u64),
            ("monitor.slow_history_rows", self.monitor.slow_history_rows.max(0) as u64),
            ("monitor.explain_timeout_ms", self.monitor.explain_timeout_ms),
            ("rate_limits.window_secs", self.rate_limits.window_secs),
            ("rate_limits.reads", self.rate_limits.reads),
            ("rate_limits.writes", self.rate_limits.writes),
            ("rate_limits.forks", self.rate_limits.forks),
            ("rate_limits.operational", self.rate_limits.operational),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ConfigError(format!("{name} must be greater than zero")));
        }

        if db.pool_size.is_some_and(|size| size == 0 || size > db.connection_limit) {
            return Err(ConfigError(format!(
                "database.pool_size must be 1 to DB_CONNECTION_LIMIT ({})",
                db.connection_limit
            )));
        }
        if let Some(unknown) = self.jobs.paused.iter().find(|name| !JobSettings::JOBS.contains(&name.as_str())) {
            return Err(ConfigError(format!(
                "jobs.paused: no job is named {unknown:?} (the jobs: {})",
                JobSettings::JOBS.join(", ")
            )));
        }
        let ahead = self.jobs.partition_months_ahead;
        if !(1..=JobSettings::MAX_MONTHS_AHEAD).contains(&ahead) {
            return Err(ConfigError(format!(
                "jobs.partition_months_ahead must be 1 to {}, not {ahead}",
                JobSettings::MAX_MONTHS_AHEAD
            )));
        }
        if let Some(kept) = self.jobs.usage_retention_months.filter(|kept| *kept < JobSettings::MIN_RETENTION_MONTHS) {
            return Err(ConfigError(format!(
                "jobs.usage_retention_months must be at least {} (the usage summary reads up to 366 days back), not {kept}",
                JobSettings::MIN_RETENTION_MONTHS
            )));
        }
        if db.statement_timeout_ms > self.server.request_timeout_secs.saturating_mul(1000) {
            return Err(ConfigError(format!(
                "DB_STATEMENT_TIMEOUT ({} ms) is longer than server.request_timeout_secs ({} s): a statement would outlive its request",
                db.statement_timeout_ms, self.server.request_timeout_secs
            )));
        }
        if db.require_url && db.url.is_none() {
            return Err(ConfigError(
                "DATABASE_URL is unset and database.require_url is on: set DATABASE_URL to the deployment's database"
                    .into(),
            ));
        }
        if let Some(url) = &db.url {
            if !is_postgres_url(url.expose_secret()) {
                return Err(ConfigError("DATABASE_URL must start with postgres:// or postgresql://".into()));
            }
        }
        if let Some(at) = db.replica_urls.iter().position(|url| !is_postgres_url(url.expose_secret())) {
            return Err(ConfigError(format!(
                "DATABASE_REPLICA_URLS: URL {} of {} must start with postgres:// or postgresql://",
                at + 1,
                db.replica_urls.len()
            )));
        }
        if !db.replica_urls.is_empty() && db.url.is_none() {
            return Err(ConfigError(
                "DATABASE_REPLICA_URLS is set without DATABASE_URL: replicas need the primary they follow".into(),
            ));
        }
        if let Some(url) = &self.redis.url {
            let url = url.expose_secret();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(ConfigError("REDIS_URL must start with redis:// or rediss://".into()));
            }
        }
        self.cache.validate().map_err(ConfigError)?;
        self.server.validate_cors().map_err(ConfigError)?;
        if self.views.flush_ms == 0 || self.views.viewer_window_secs == 0 || self.views.viewers_remembered == 0 {
            return Err(ConfigError(
                "views.flush_ms, views.viewer_window_secs and views.viewers_remembered must be greater than zero"
                    .into(),
            ));
        }
        if self.cursor_secret.as_ref().is_some_and(|t| t.expose_secret().len() < 32) {
            return Err(ConfigError("cursor_secret must be at least 32 characters".into()));
        }
        if self.admin_token.as_ref().is_some_and(|t| t.expose_secret().len() < 16) {
            return Err(ConfigError("ADMIN_TOKEN must be at least 16 characters".into()));
        }
        Ok(())
    }
}

impl Settings {
    /// Whether the session cookie carries `Secure`.
    pub fn secure_cookie(&self) -> bool {
        self.auth.secure_cookie.unwrap_or(!self.server.host.is_loopback())
    }
}

impl DatabaseSettings {
    pub fn pool_timeout(&self) -> Duration {
        Duration::from_secs(self.pool_timeout_secs)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    pub fn cancel_check(&self) -> Duration {
        Duration::from_millis(self.cancel_check_ms)
    }
    pub fn health_check_timeout(&self) -> Duration {
        Duration::from_millis(self.health_check_timeout_ms)
    }
    pub fn replica_max_lag(&self) -> Duration {
        Duration::from_millis(self.replica_max_lag_ms)
    }
    pub fn replica_probe_interval(&self) -> Duration {
        Duration::from_millis(self.replica_probe_ms)
    }
    pub fn replica_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.replica_acquire_timeout_ms)
    }
    pub fn read_your_writes(&self) -> Duration {
        Duration::from_millis(self.read_your_writes_ms)
    }

    /// The read-your-writes window, when replicas are set and it is not longer than the lag
    /// limit plus a probe: a replica stays in rotation that long behind the primary, so a
    /// writer's reads past the window could miss their own change. `serve` warns of it.
    pub fn read_your_writes_gap(&self) -> Option<Duration> {
        let covered = self.replica_max_lag_ms + self.replica_probe_ms;
        (!self.replica_urls.is_empty() && self.read_your_writes_ms <= covered).then(|| self.read_your_writes())
    }
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A list of URLs: a sequence, or one string of them separated by commas (as an environment
/// variable carries them). Blanks between commas are skipped.
fn url_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Urls {
        Joined(String),
        Listed(Vec<String>),
    }
    let urls = match Urls::deserialize(deserializer)? {
        Urls::Joined(joined) => joined.split(',').map(str::to_owned).collect(),
        Urls::Listed(urls) => urls,
    };
    Ok(urls
        .into_iter()
        .map(|url| url.trim().to_owned())
        .filter(|url| !url.is_empty())
        .map(SecretString::from)
        .collect())
}

/// The seed's flat environment variables, each mapped onto its setting path. An empty value
/// counts as unset, as it does in most deploy tooling.
fn seed_variables() -> Env {
    Env::raw().only(&SEED_VARIABLES.iter().map(|(var, _)| *var).collect::<Vec<_>>()).filter_map(|var| {
        let value_is_set = std::env::var(var.as_str()).is_ok_and(|v| !v.is_empty());
        let path =
            SEED_VARIABLES.iter().find(|(name, _)| var.as_str().eq_ignore_ascii_case(name)).map(|(_, path)| *path)?;
        value_is_set.then(|| path.into())
    })
}

/// A connection URL with its password replaced, safe for logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable url>".into(),
    }
}

#[cfg(test)]
// figment::Jail's closures return its own large error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use figment::Jail;

    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        Jail::expect_with(|_jail| {
            let settings = Settings::load().unwrap();
            let db = &settings.database;
            assert!(db.url.is_none());
            assert_eq!(db.connection_limit, 25);
            assert_eq!(db.pool_timeout_secs, 30);
            assert_eq!(db.connect_timeout_secs, 10);
            assert_eq!(db.statement_timeout_ms, 30_000);
            assert_eq!(db.idle_timeout_ms, 60_000);
            assert_eq!(settings.server.port, 3000);
            assert!(settings.redis.url.is_none() && settings.admin_token.is_none());
            assert_eq!(settings.jobs.partition_months_ahead, 3);
            assert_eq!(settings.jobs.usage_retention_months, None, "retention is off unless configured");
            Ok(())
        });
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_the_defaults() {
        Jail::expect_with(|jail| {
            jail.create_file("vibing2.toml", "[database]\nconnection_limit = 40\nstatement_timeout_ms = 5000\n")?;
            jail.set_env("DB_CONNECTION_LIMIT", "12");
            jail.set_env("VIBING2_SERVER__BODY_LIMIT_BYTES", "4096");
            jail.set_env("PORT", "8080");
            let settings = Settings::load().unwrap();
            assert_eq!(settings.database.connection_limit, 12);
            assert_eq!(settings.database.statement_timeout_ms, 5000);
            assert_eq!(settings.server.body_limit_bytes, 4096);
            assert_eq!(settings.server.port, 8080);
            Ok(())
        });
    }

    #[test]
    fn a_wrong_value_fails_with_one_line_naming_the_setting() {
        let cases = [
            ("DB_CONNECTION_LIMIT", "many", "DB_CONNECTION_LIMIT"),
            ("DB_POOL_TIMEOUT", "-1", "DB_POOL_TIMEOUT"),
            ("DB_STATEMENT_TIMEOUT", "0", "DB_STATEMENT_TIMEOUT"),
            ("PORT", "70000", "PORT"),
            ("DATABASE_URL", "mysql://localhost/db", "DATABASE_URL"),
            ("REDIS_URL", "localhost:6379", "REDIS_URL"),
            ("ADMIN_TOKEN", "short", "ADMIN_TOKEN"),
            ("VIBING2_DATABASE__POOL_SIZE", "0", "database.pool_size"),
            ("VIBING2_DATABASE__POOL_SIZE", "26", "database.pool_size"),
            ("VIBING2_JOBS__PAUSED", r#"["nightly"]"#, "jobs.paused"),
            ("VIBING2_JOBS__PARTITION_MONTHS_AHEAD", "0", "jobs.partition_months_ahead"),
            ("VIBING2_JOBS__USAGE_RETENTION_MONTHS", "6", "jobs.usage_retention_months"),
            ("VIBING2_CACHE__MODE", "sometimes", "cache.mode"),
        ];
        for (variable, value, named) in cases {
            Jail::expect_with(|jail| {
                jail.set_env(variable, value);
                let message = Settings::load().unwrap_err().to_string();
                assert!(message.contains(named), "{variable}={value}: {message}");
                assert_eq!(message.lines().count(), 1, "{message}");
                Ok(())
            });
        }
    }

    #[test]
    fn cors_names_its_origins_and_never_pairs_a_wildcard_with_credentials() {
        Jail::expect_with(|jail| {
            jail.set_env("VIBING2_SERVER__CORS_ORIGINS", r#"["https://app.example.com", "http://localhost:5173"]"#);
            jail.set_env("VIBING2_SERVER__CORS_CREDENTIALS", "true");
            let settings = Settings::load().unwrap();
            assert_eq!(settings.server.cors_origins, ["https://app.example.com", "http://localhost:5173"]);
            jail.set_env("VIBING2_SERVER__CORS_ORIGINS", r#"["*"]"#);
            let message = Settings::load().unwrap_err().to_string();
            assert!(message.contains("\"*\" while server.cors_credentials is on"), "{message}");
            jail.set_env("VIBING2_SERVER__CORS_CREDENTIALS", "false");
            assert!(Settings::load().is_ok(), "a wildcard without credentials is allowed");
            for not_an_origin in
                ["app.example.com", "https://app.example.com/path", "ftp://x.example", "https://a.example/"]
            {
                jail.set_env("VIBING2_SERVER__CORS_ORIGINS", format!(r#"["{not_an_origin}"]"#));
                let message = Settings::load().unwrap_err().to_string();
                assert!(message.contains("is not an origin"), "{not_an_origin}: {message}");
            }
            Ok(())
        });
    }

    #[test]
    fn a_deployment_can_refuse_to_start_without_a_database_url() {
        Jail::expect_with(|jail| {
            jail.set_env("VIBING2_DATABASE__REQUIRE_URL", "true");
            let message = Settings::load().unwrap_err().to_string();
            assert!(message.contains("DATABASE_URL is unset") && message.contains("require_url"), "{message}");
            assert_eq!(message.lines().count(), 1);
            jail.set_env("DATABASE_URL", "postgres://db.internal/vibing2");
            assert!(Settings::load().is_ok());
            Ok(())
        });
    }

    #[test]
    fn replica_urls_come_as_one_comma_separated_variable_or_as_a_list() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://db.internal/vibing2");
            jail.set_env(
                "DATABASE_REPLICA_URLS",
                "postgres://r1.internal/vibing2, postgres://app:pw@r2.internal/vibing2,",
            );
            let urls: Vec<String> =
                Settings::load().unwrap().database.replica_urls.iter().map(|u| u.expose_secret().to_owned()).collect();
            assert_eq!(urls, ["postgres://r1.internal/vibing2", "postgres://app:pw@r2.internal/vibing2"]);
            jail.set_env("DATABASE_REPLICA_URLS", "");
            jail.set_env("VIBING2_DATABASE__REPLICA_URLS", r#"["postgres://r3.internal/vibing2"]"#);
            assert_eq!(Settings::load().unwrap().database.replica_urls.len(), 1);
            jail.set_env("VIBING2_DATABASE__REPLICA_URLS", "postgres://r1.internal/v,mysql://r2.internal/v");
            let message = Settings::load().unwrap_err().to_string();
            assert!(message.contains("DATABASE_REPLICA_URLS: URL 2 of 2"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn a_read_your_writes_window_within_the_lag_limit_and_a_probe_is_named() {
        let mut database = DatabaseSettings::default();
        assert!(database.read_your_writes_gap().is_none(), "no replica, no gap");
        database.replica_urls = vec![SecretString::from("postgres://r1.internal/vibing2")];
        assert!(database.read_your_writes_gap().is_none(), "5 s against 1 s of lag and a 250 ms probe");
        database.read_your_writes_ms = 1250;
        assert_eq!(database.read_your_writes_gap(), Some(Duration::from_millis(1250)));
    }

    #[test]
    fn an_empty_seed_variable_counts_as_unset() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "");
            assert!(Settings::load().unwrap().database.url.is_none());
            Ok(())
        });
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgres://app:db-password-123@db.internal/vibing2");
            jail.set_env("DATABASE_REPLICA_URLS", "postgres://app:replica-password-789@r1.internal/vibing2");
            jail.set_env("REDIS_URL", "redis://:redis-password-456@cache.internal");
            jail.set_env("ADMIN_TOKEN", "admin-token-0123456789");
            let debug = format!("{:?}", Settings::load().unwrap());
            for secret in ["db-password-123", "replica-password-789", "redis-password-456", "admin-token-0123456789"] {
                assert!(!debug.contains(secret), "{secret} leaked into {debug}");
            }
            Ok(())
        });
    }

    #[test]
    fn logged_urls_have_their_password_redacted() {
        assert_eq!(redact_url("postgres://app:secret@db:5432/v"), "postgres://app:***@db:5432/v");
        assert_eq!(redact_url("postgres://app@db/v"), "postgres://app@db/v");
        assert_eq!(redact_url("not a url"), "<unparseable url>");
    }
}
