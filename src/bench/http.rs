//! `vibing2 bench http`: closed-loop load over real HTTP against a running service, with a
//! mix of the API's reads and writes by signed-in users (connections share them when there are
//! more connections than users), plus `pgbench -S` on the same machine as the database's own
//! ceiling for single-row reads. Reads pick their project by the cache scenario's Zipf(1.1)
//! choice over the public projects the users made; writes go to the writer's own project.
//! Latency is reported in all and per route class; given the server's pid, so is its peak RSS.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use serde_json::{json, Value};

mod seeded;

use super::measure::{self, Latency};
use super::replay::{self, ReplayFigures, Statement};
use crate::auth::token;
use crate::domain::discovery::Sort;
use crate::domain::page::PageSize;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpReport {
    pub url: String,
    pub concurrency: usize,
    pub seconds: f64,
    pub requests: u64,
    pub requests_per_second: f64,
    pub latency: Latency,
    /// Reads and writes apart.
    pub latency_by_class: BTreeMap<&'static str, Latency>,
    /// Where the users and projects came from.
    pub data: Data,
    pub users: usize,
    /// Public projects the reads choose from, and the exponent of their Zipf choice.
    pub read_projects: usize,
    pub zipf_exponent: f64,
    /// The server's peak RSS (`VmHWM`), when its pid was given.
    pub server_peak_rss_mb: Option<f64>,
    /// Non-2xx answers and transport errors, by status (0 = transport).
    pub errors: BTreeMap<u16, u64>,
    /// Requests per operation.
    pub mix: BTreeMap<&'static str, u64>,
    /// What the HTTP stack alone serves on this machine at the same concurrency.
    pub floor: FloorReference,
    pub pgbench: Option<PgbenchReference>,
    /// Each scenario alone, with the cache on and (given the admin token) off.
    pub scenarios: Vec<ScenarioFigures>,
    /// What the scenarios read (each the same in every request).
    pub targets: TargetsReport,
}

/// One scenario run alone, under the same clients, next to the references.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioFigures {
    pub scenario: &'static str,
    /// The cache switch during the run: `on` or `off`.
    pub cache: &'static str,
    pub requests: u64,
    pub requests_per_second: f64,
    pub latency: Latency,
    pub errors: BTreeMap<u16, u64>,
    /// Its req/s over the HTTP floor's.
    pub floor_ratio: f64,
    /// Its req/s over `pgbench -S`'s tps, when pgbench ran.
    pub pgbench_ratio: Option<f64>,
    /// The service's database calls during the run, by the query monitor's name (from
    /// `/metrics`, given the admin token): with the cache off, what its requests ran.
    pub database_calls: Option<BTreeMap<String, u64>>,
    /// The statements one uncached request of the scenario runs, replayed by `pgbench -f`
    /// with its parameters at the same concurrency, after its last run (not for the mix).
    pub own_sql: Option<ReplayFigures>,
    /// Its req/s over that replay's tps, for the run with the cache off.
    pub own_sql_ratio: Option<f64>,
}

/// The scenarios, each a route the web app calls on every visit.
#[derive(Debug, Clone, Copy)]
enum Scenario {
    ProjectList,
    OneProject,
    MessagePage,
    Discovery,
    Search,
    UsageSummary,
    Mixed,
}

impl Scenario {
    const ALL: [Scenario; 7] = [
        Scenario::ProjectList,
        Scenario::OneProject,
        Scenario::MessagePage,
        Scenario::Discovery,
        Scenario::Search,
        Scenario::UsageSummary,
        Scenario::Mixed,
    ];

    fn name(self, targets: &Targets) -> &'static str {
        match self {
            Scenario::ProjectList => "project list",
            Scenario::OneProject => "one project (metadata and first file page)",
            Scenario::MessagePage if targets.deep_page.is_some() => "deep message page",
            Scenario::MessagePage => "newest message page",
            Scenario::Discovery => "discovery, popular",
            Scenario::Search => "discovery, search",
            Scenario::UsageSummary => "usage summary",
            Scenario::Mixed => "mixed rotation",
        }
    }

    /// Who sends the scenario's requests.
    fn reader(self, targets: &Targets) -> &Reader {
        match self {
            Scenario::OneProject | Scenario::MessagePage => &targets.project_reader,
            Scenario::UsageSummary => &targets.usage_reader,
            _ => &targets.list_reader,
        }
    }

    /// The one route the scenario reads, always the same; None for the mixed rotation, which
    /// is the mix.
    fn path(self, targets: &Targets) -> Option<String> {
        let project = &targets.project;
        Some(match self {
            Scenario::ProjectList => "/api/projects".to_owned(),
            Scenario::OneProject => format!("/api/projects/{project}"),
            Scenario::MessagePage => match &targets.deep_page {
                Some(deep) => format!("/api/projects/{project}/messages?cursor={}", deep.cursor),
                None => format!("/api/projects/{project}/messages"),
            },
            Scenario::Discovery => "/api/discover?sort=popular".to_owned(),
            Scenario::Search => format!("/api/discover?search={}&sort=relevance", targets.search),
            Scenario::UsageSummary => format!("/api/usage/summary?days={SUMMARY_DAYS}"),
            Scenario::Mixed => return None,
        })
    }

    /// The statements one request of the scenario runs with the cache off, with the values
    /// it binds (see `service::accounts::session`, `service::access::project_read` and each
    /// route's service call), as of now in `database_url` (the project list's second statement
    /// binds the ids its first one finds); None for the mix.
    async fn own_sql(self, targets: &Targets, database_url: &str) -> anyhow::Result<Option<Vec<Statement>>> {
        let reader = self.reader(targets);
        let (user, project) = (reader.client.user_id.as_str(), targets.project.as_str());
        let session = Statement::session(&reader.token_hash, user);
        let standard = i64::from(PageSize::STANDARD.default);
        let position = targets.deep_page.as_ref().map(|deep| deep.position);
        Ok(Some(match self {
            Scenario::ProjectList => {
                let page = Statement::member_projects(user, standard);
                let listed = replay::first_column(database_url, &page).await?;
                vec![session, page, Statement::summaries(&listed)]
            }
            Scenario::OneProject => vec![
                session,
                Statement::facts(project, user),
                Statement::project(project),
                Statement::first_files(project, i64::from(PageSize::FILES.default)),
            ],
            Scenario::MessagePage => vec![
                session,
                Statement::facts(project, user),
                Statement::message_page(project, position, i64::from(PageSize::MESSAGES.default)),
            ],
            // Discovery reads no session: it is the same for everyone.
            Scenario::Discovery => vec![Statement::discovery(Sort::Popular, None, standard)],
            Scenario::Search => vec![Statement::discovery(Sort::Relevance, Some(targets.search), standard)],
            Scenario::UsageSummary => vec![session, Statement::usage_summary(user, SUMMARY_DAYS)],
            Scenario::Mixed => return Ok(None),
        }))
    }
}

/// The usage summary's days.
const SUMMARY_DAYS: i32 = 30;

/// Where the load's users and projects come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Data {
    /// Users the command signs up, each with projects it makes (`users`, `projects_per_user`).
    Own,
    /// What `vibing2 bench seed` wrote to the server's database (DATABASE_URL).
    Seeded,
}

/// A signed-in user who sends a scenario's requests, and its session's hash.
struct Reader {
    client: Client,
    token_hash: String,
}

impl Reader {
    fn new(client: &Client) -> Self {
        Reader { client: client.clone(), token_hash: token::hash_token(&client.token) }
    }
}

/// A message page deep in the project: its number, and the cursor that opens it, as the API
/// issued it and as the position it holds.
struct DeepPage {
    page: usize,
    cursor: String,
    position: i64,
}

/// What every scenario but the mix reads, the same in every request, so that its replay binds
/// the same values.
struct Targets {
    /// The project list's user (the discovery scenarios send its token too, unread).
    list_reader: Reader,
    usage_reader: Reader,
    /// The one-project and message-page scenarios' project, and who reads it.
    project: String,
    project_reader: Reader,
    deep_page: Option<DeepPage>,
    search: &'static str,
}

/// What the scenarios read, for the report.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetsReport {
    pub list_user: String,
    pub usage_user: String,
    pub project: String,
    pub project_reader: String,
    /// The message page read: 1 is the newest.
    pub message_page: usize,
    pub search: &'static str,
}

impl Targets {
    fn report(&self) -> TargetsReport {
        TargetsReport {
            list_user: self.list_reader.client.user_id.clone(),
            usage_user: self.usage_reader.client.user_id.clone(),
            project: self.project.clone(),
            project_reader: self.project_reader.client.user_id.clone(),
            message_page: self.deep_page.as_ref().map_or(1, |deep| deep.page),
            search: self.search,
        }
    }
}

/// `GET /api/health` (no database, no cache) under the same clients, before the mix: the
/// ceiling of any route on this machine, and the mix's share of it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FloorReference {
    pub requests: u64,
    pub requests_per_second: f64,
    pub latency: Latency,
    pub errors: BTreeMap<u16, u64>,
    /// The mix's req/s over the floor's.
    pub mix_ratio: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PgbenchReference {
    pub command: String,
    pub tps: f64,
}

/// The file the mix reads in the projects the command makes (own data).
const OWN_FILE: &str = "src/file3.js";

/// The cache scenario's skew (`bench::scenarios::cache_hit_rate`).
const ZIPF_EXPONENT: f64 = 1.1;

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    user_id: String,
    /// The user's own project, which its writes go to.
    project: String,
    /// The public projects the reads choose from.
    readable: Arc<ReadableProjects>,
}

/// Public projects, each with the path of a file of it for the file reads, in a shuffled
/// order, so that the most read ones belong to no one user in particular, drawn by Zipf rank.
struct ReadableProjects {
    projects: Vec<(String, String)>,
    zipf: Zipf<f64>,
}

impl ReadableProjects {
    fn new(mut projects: Vec<(String, String)>) -> anyhow::Result<Self> {
        ensure!(!projects.is_empty(), "no public project to read");
        projects.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(11));
        let zipf = Zipf::new(projects.len() as u64, ZIPF_EXPONENT)?;
        Ok(ReadableProjects { projects, zipf })
    }

    /// A project and a file path of it.
    fn pick(&self) -> (&str, &str) {
        let rank = self.zipf.sample(&mut rand::thread_rng()) as usize;
        let (project, file) = &self.projects[rank - 1];
        (project, file)
    }
}

/// A signed-in user of the load, before the readable projects are known.
struct PreparedUser {
    token: String,
    user_id: String,
    /// Its own project, which its writes go to.
    project: String,
    public_projects: Vec<String>,
}

/// Logs in over HTTP: the session's token and the user's id.
async fn login(http: &reqwest::Client, base: &str, email: &str, password: &str) -> anyhow::Result<(String, String)> {
    let answer =
        http.post(format!("{base}/api/auth/login")).json(&json!({"email": email, "password": password})).send().await?;
    ensure!(answer.status().is_success(), "logging in as {email} failed: {}", answer.status());
    let login: Value = answer.json().await?;
    let token = login["token"].as_str().context("login answered no token")?.to_owned();
    let user_id = login["user"]["id"].as_str().context("login answered no user id")?.to_owned();
    Ok((token, user_id))
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<reqwest::StatusCode, reqwest::Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        response.bytes().await?;
        Ok(status)
    }
}

/// Signs up a user, logs in, and creates `projects` projects with a few files and messages
/// each: the first is the user's own (private for odd users), which its writes go to; the
/// others are public, for everyone's reads. Records one usage call, for the usage summary.
async fn prepare_user(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    run: u32,
    projects: usize,
) -> anyhow::Result<PreparedUser> {
    let email = format!("load{run}-{n}@bench.example");
    let password = format!("load-password-{run}");
    let signup = json!({"name": format!("Load {n}"), "email": email, "password": password});
    let response = http.post(format!("{base}/api/auth/signup")).json(&signup).send().await?;
    ensure!(response.status().is_success(), "signup failed: {}", response.status());
    let (token, user_id) = login(http, base, &email, &password).await?;
    let mut ids = Vec::new();
    for k in 0..projects.max(1) {
        let visibility = if k > 0 || n % 2 == 0 { "PUBLIC" } else { "PRIVATE" };
        let body = json!({"name": format!("Load project {n}.{k}"), "projectType": "website", "visibility": visibility});
        let project: Value =
            http.post(format!("{base}/api/projects")).bearer_auth(&token).json(&body).send().await?.json().await?;
        let id = project["id"].as_str().context("no project id")?.to_owned();
        fill_project(http, base, &token, &id).await?;
        ids.push((id, visibility == "PUBLIC"));
    }
    // One recorded call, so that the usage summary has a day to show.
    let usage = json!({"tokensUsed": 1, "contextUsed": 0.1, "endpoint": "/bench", "model": "gpt-4o-mini"});
    let recorded = http.post(format!("{base}/api/usage")).bearer_auth(&token).json(&usage).send().await?;
    ensure!(recorded.status().is_success(), "recording usage failed: {}", recorded.status());
    let project = ids[0].0.clone();
    let public_projects = ids.into_iter().filter(|(_, public)| *public).map(|(id, _)| id).collect();
    Ok(PreparedUser { token, user_id, project, public_projects })
}

/// Ten files in one batch and ten messages, so that file reads and message pages find rows.
async fn fill_project(http: &reqwest::Client, base: &str, token: &str, project: &str) -> anyhow::Result<()> {
    let files: Vec<Value> = (0..10)
        .map(
            |k| json!({"op": "upsert", "path": format!("src/file{k}.js"), "content": format!("export const n = {k};")}),
        )
        .collect();
    let saved = http
        .put(format!("{base}/api/projects/{project}/files"))
        .bearer_auth(token)
        .json(&json!({"operations": files}))
        .send()
        .await?;
    ensure!(saved.status().is_success(), "saving files failed: {}", saved.status());
    for k in 0..10 {
        let message = json!({"role": "user", "content": format!("message {k}")});
        let sent = http
            .post(format!("{base}/api/projects/{project}/messages"))
            .bearer_auth(token)
            .json(&message)
            .send()
            .await?;
        ensure!(sent.status().is_success(), "appending a message failed: {}", sent.status());
    }
    Ok(())
}

/// The route class of an operation of the mix.
fn class(operation: &str) -> &'static str {
    match operation {
        "append message" | "save file" | "record usage" => "write",
        _ => "read",
    }
}

/// What the clients send: the mix, the floor's liveness check, or one scenario.
#[derive(Clone)]
enum Load {
    Mix,
    Floor,
    /// One scenario's route, the same every time, by the scenario's name.
    Get(&'static str, Arc<str>),
}

/// One request of `load`. The mix: mostly reads of Zipf-chosen public projects, some writes
/// to the user's own.
async fn one_request(
    client: &Client,
    round: u64,
    load: &Load,
) -> (&'static str, Result<reqwest::StatusCode, reqwest::Error>) {
    use reqwest::Method;
    match load {
        Load::Floor => return ("health", client.send(Method::GET, "/api/health", None).await),
        Load::Get(name, path) => return (name, client.send(Method::GET, path, None).await),
        Load::Mix => {}
    }
    let (read, file) = client.readable.pick();
    let project = &client.project;
    let pick = rand::thread_rng().gen_range(0..100);
    match pick {
        0..=24 => ("get project", client.send(Method::GET, &format!("/api/projects/{read}"), None).await),
        25..=39 => ("list projects", client.send(Method::GET, "/api/projects", None).await),
        40..=54 => ("discover", client.send(Method::GET, "/api/discover?sort=popular", None).await),
        55..=66 => ("messages page", client.send(Method::GET, &format!("/api/projects/{read}/messages"), None).await),
        67..=76 => ("read file", client.send(Method::GET, &format!("/api/projects/{read}/files/{file}"), None).await),
        77..=86 => {
            let body = json!({"role": "assistant", "content": format!("reply {round}"), "tokens": 12});
            (
                "append message",
                client.send(Method::POST, &format!("/api/projects/{project}/messages"), Some(body)).await,
            )
        }
        87..=93 => {
            let files =
                json!({"operations": [{"op": "upsert", "path": "src/live.js", "content": format!("// {round}")}]});
            ("save file", client.send(Method::PUT, &format!("/api/projects/{project}/files"), Some(files)).await)
        }
        _ => {
            let usage = json!({"tokensUsed": 1, "contextUsed": 0.1, "endpoint": "/bench", "model": "gpt-4o-mini"});
            ("record usage", client.send(Method::POST, "/api/usage", Some(usage)).await)
        }
    }
}

/// What `vibing2 bench http` runs.
pub struct HttpOptions<'a> {
    pub url: &'a str,
    pub concurrency: usize,
    pub data: Data,
    /// Signed-in users the connections share.
    pub users: usize,
    /// Projects each user makes (own data only): its own, and the rest public for everyone's
    /// reads.
    pub projects_per_user: usize,
    pub seconds: f64,
    pub server_pid: Option<u32>,
    /// The service's own database (DATABASE_URL), for pgbench: the scenarios' replays run on
    /// it, and `pgbench -S` on a scratch database beside it.
    pub pgbench_database: Option<&'a str>,
    /// Whether to run the `pgbench -S` reference (its scratch database is scale 10).
    pub select_only_reference: bool,
    /// Seconds of each scenario alone, after the mix; none when zero.
    pub scenario_seconds: f64,
    /// The service's admin token, to switch its cache off for the scenarios' second runs.
    pub admin_token: Option<&'a str>,
}

/// The most clients `pgbench` runs with: the server's default `max_connections` is 100.
const PGBENCH_MAX_CLIENTS: usize = 64;

pub async fn run(options: HttpOptions<'_>) -> anyhow::Result<HttpReport> {
    let HttpOptions {
        url,
        concurrency,
        data,
        users,
        projects_per_user,
        seconds,
        server_pid,
        pgbench_database,
        select_only_reference,
        scenario_seconds,
        admin_token,
    } = options;
    let base = url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;
    let run_id: u32 = rand::random();
    let users = users.clamp(1, concurrency.max(1));
    let (prepared, readable, seeded) = match data {
        Data::Own => {
            let mut prepared = Vec::new();
            for n in 0..users {
                prepared.push(
                    prepare_user(&http, &base, n, run_id, projects_per_user)
                        .await
                        .with_context(|| format!("preparing user {n} at {base}"))?,
                );
            }
            let readable = prepared
                .iter()
                .flat_map(|user| user.public_projects.iter().map(|id| (id.clone(), OWN_FILE.to_owned())))
                .collect();
            (prepared, readable, None)
        }
        Data::Seeded => {
            let database_url =
                pgbench_database.context("--data seeded reads the server's seeded database: set DATABASE_URL")?;
            let mut seeded = seeded::prepare(&http, &base, database_url, users).await?;
            let (prepared, readable) = (std::mem::take(&mut seeded.users), std::mem::take(&mut seeded.readable));
            (prepared, readable, Some(seeded))
        }
    };
    let readable = Arc::new(ReadableProjects::new(readable)?);
    let read_projects = readable.projects.len();
    let users = prepared.len();
    let clients: Vec<Client> = prepared
        .into_iter()
        .map(|user| Client {
            http: http.clone(),
            base: base.clone(),
            token: user.token,
            user_id: user.user_id,
            project: user.project,
            readable: readable.clone(),
        })
        .collect();
    // The scenarios read as the first user the mix's most read project (own data), or as the
    // seed report's scenarios do.
    let targets = match seeded {
        None => Targets {
            list_reader: Reader::new(&clients[0]),
            usage_reader: Reader::new(&clients[0]),
            project: readable.projects[0].0.clone(),
            project_reader: Reader::new(&clients[0]),
            deep_page: None,
            search: "project",
        },
        Some(seeded) => {
            let project_reader = Reader::new(&clients[seeded.project_owner]);
            let deep_page = seeded::deep_page(&project_reader.client, &seeded.project, seeded.page).await?;
            Targets {
                list_reader: Reader::new(&clients[seeded.list_user]),
                usage_reader: Reader::new(&clients[seeded.usage_user]),
                project: seeded.project,
                project_reader,
                deep_page,
                search: seeded::SEARCH,
            }
        }
    };

    let floor = drive(&clients, concurrency, seconds, Load::Floor).await?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let peak_rss = server_pid.map(|pid| tokio::spawn(measure::peak_rss_until(pid, deadline)));
    let driven = drive(&clients, concurrency, seconds, Load::Mix).await?;
    let server_peak_rss_mb = match peak_rss {
        Some(task) => task.await?.map(|kb| kb as f64 / 1024.0),
        None => None,
    };
    let requests_per_second = driven.histogram.len() as f64 / driven.elapsed;
    let floor_per_second = floor.histogram.len() as f64 / floor.elapsed;
    let pgbench = match pgbench_database.filter(|_| select_only_reference) {
        Some(database_url) => pgbench_reference(database_url, concurrency.min(PGBENCH_MAX_CLIENTS), seconds).await?,
        None => None,
    };
    let mut scenarios = Vec::new();
    if scenario_seconds > 0.0 {
        let admin = admin_token.map(|token| AdminApi { http: &http, base: &base, token });
        let before = match &admin {
            Some(admin) => Some(admin.cache_mode().await?),
            None => None,
        };
        let modes: &[&'static str] = if admin.is_some() { &["on", "off"] } else { &["on"] };
        let replay = match pgbench_database {
            Some(database_url) => find_pgbench().map(|pgbench| (pgbench, database_url)),
            None => None,
        };
        let measured = async {
            for scenario in Scenario::ALL {
                for &cache in modes {
                    if let Some(admin) = &admin {
                        admin.set_cache(cache).await?;
                    }
                    let load = match scenario.path(&targets) {
                        Some(path) => Load::Get(scenario.name(&targets), path.into()),
                        None => Load::Mix,
                    };
                    // A fixed route is sent by its one reader; the mix by every user.
                    let senders = match load {
                        Load::Get(..) => std::slice::from_ref(&scenario.reader(&targets).client),
                        _ => &clients[..],
                    };
                    let calls_before = match &admin {
                        Some(admin) => Some(admin.database_calls().await?),
                        None => None,
                    };
                    let run = drive(senders, concurrency, scenario_seconds, load).await?;
                    let database_calls = match (&admin, calls_before) {
                        (Some(admin), Some(before)) => Some(since(&before, admin.database_calls().await?)),
                        _ => None,
                    };
                    scenarios.push(ScenarioFigures {
                        scenario: scenario.name(&targets),
                        cache,
                        requests: run.histogram.len(),
                        requests_per_second: run.histogram.len() as f64 / run.elapsed,
                        latency: measure::summarize(&run.histogram),
                        errors: run.errors,
                        floor_ratio: 0.0,
                        pgbench_ratio: None,
                        database_calls,
                        own_sql: None,
                        own_sql_ratio: None,
                    });
                }
                let own_sql = match &replay {
                    Some((_, database_url)) => scenario.own_sql(&targets, database_url).await?,
                    None => None,
                };
                if let (Some((pgbench, database_url)), Some(statements)) = (&replay, own_sql) {
                    let clients = concurrency.min(PGBENCH_MAX_CLIENTS);
                    let figures = replay::run(pgbench, database_url, statements, clients, scenario_seconds).await?;
                    if let Some(last) = scenarios.last_mut() {
                        last.own_sql = Some(figures);
                    }
                }
            }
            anyhow::Ok(())
        }
        .await;
        // The switch lives in the server's memory: put it back whatever happened.
        if let (Some(admin), Some(before)) = (&admin, &before) {
            admin.set_cache(before).await?;
        }
        measured?;
        if replay.is_none() {
            eprintln!("no DATABASE_URL or no pgbench: the scenarios' own SQL is not replayed");
        }
        for figures in &mut scenarios {
            figures.floor_ratio = figures.requests_per_second / floor_per_second;
            figures.pgbench_ratio = pgbench.as_ref().map(|pgbench| figures.requests_per_second / pgbench.tps);
            figures.own_sql_ratio = match &figures.own_sql {
                Some(own) if figures.cache == "off" => Some(figures.requests_per_second / own.tps),
                _ => None,
            };
        }
    }
    Ok(HttpReport {
        url: base,
        concurrency,
        seconds: driven.elapsed,
        requests: driven.histogram.len(),
        requests_per_second,
        latency: measure::summarize(&driven.histogram),
        latency_by_class: driven.by_class.iter().map(|(class, h)| (*class, measure::summarize(h))).collect(),
        data,
        users,
        read_projects,
        zipf_exponent: ZIPF_EXPONENT,
        server_peak_rss_mb,
        errors: driven.errors,
        mix: driven.mix,
        floor: FloorReference {
            requests: floor.histogram.len(),
            requests_per_second: floor_per_second,
            latency: measure::summarize(&floor.histogram),
            errors: floor.errors,
            mix_ratio: requests_per_second / floor_per_second,
        },
        pgbench,
        scenarios,
        targets: targets.report(),
    })
}

/// The service's admin API: its cache switch, and its query monitor's counts.
struct AdminApi<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    token: &'a str,
}

impl AdminApi<'_> {
    fn switches(&self) -> String {
        format!("{}/api/admin/switches", self.base)
    }

    async fn cache_mode(&self) -> anyhow::Result<String> {
        let answer = self.http.get(self.switches()).bearer_auth(self.token).send().await?.error_for_status()?;
        let switches: Value = answer.json().await?;
        Ok(switches["cache"].as_str().context("the switches name no cache mode")?.to_owned())
    }

    async fn set_cache(&self, mode: &str) -> anyhow::Result<()> {
        let switched =
            self.http.patch(self.switches()).bearer_auth(self.token).json(&json!({"cache": mode})).send().await?;
        ensure!(switched.status().is_success(), "switching the cache {mode} failed: {}", switched.status());
        Ok(())
    }

    /// The database calls the service has made since it started, by the query monitor's
    /// name: the counts of `vibing2_db_query_duration_seconds` in `/metrics`.
    async fn database_calls(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let url = format!("{}/metrics", self.base);
        let text = self.http.get(url).bearer_auth(self.token).send().await?.error_for_status()?.text().await?;
        Ok(query_counts(&text))
    }
}

/// The per-name call counts of a Prometheus exposition's query histogram.
fn query_counts(exposition: &str) -> BTreeMap<String, u64> {
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix("vibing2_db_query_duration_seconds_count{"))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once("} ")?;
            let name = labels.split(',').find_map(|label| label.strip_prefix("query=\"")?.strip_suffix('"'))?;
            Some((name.to_owned(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

/// The calls of `after` not yet made at `before`, by name; names with none left out.
fn since(before: &BTreeMap<String, u64>, after: BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .into_iter()
        .map(|(name, count)| {
            let earlier = before.get(&name).copied().unwrap_or(0);
            (name, count.saturating_sub(earlier))
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// What one closed-loop phase saw.
struct Driven {
    histogram: hdrhistogram::Histogram<u64>,
    by_class: BTreeMap<&'static str, hdrhistogram::Histogram<u64>>,
    errors: BTreeMap<u16, u64>,
    mix: BTreeMap<&'static str, u64>,
    elapsed: f64,
}

/// `concurrency` connections, each sending `load` one request after the other for `seconds`
/// (the clients share the signed-in users).
async fn drive(clients: &[Client], concurrency: usize, seconds: f64, load: Load) -> anyhow::Result<Driven> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..concurrency {
        let client = clients[n % clients.len()].clone();
        let load = load.clone();
        workers.spawn(async move {
            let mut histograms: BTreeMap<&'static str, hdrhistogram::Histogram<u64>> = BTreeMap::new();
            let mut errors: BTreeMap<u16, u64> = BTreeMap::new();
            let mut mix: BTreeMap<&'static str, u64> = BTreeMap::new();
            let mut round = 0u64;
            while Instant::now() < deadline {
                round += 1;
                let sent = Instant::now();
                let (operation, outcome) = one_request(&client, round, &load).await;
                measure::record(histograms.entry(class(operation)).or_insert_with(measure::new_histogram), sent);
                *mix.entry(operation).or_default() += 1;
                match outcome {
                    Ok(status) if status.is_success() => {}
                    Ok(status) => *errors.entry(status.as_u16()).or_default() += 1,
                    Err(_) => *errors.entry(0).or_default() += 1,
                }
            }
            (histograms, errors, mix)
        });
    }
    let mut driven = Driven {
        histogram: measure::new_histogram(),
        by_class: BTreeMap::new(),
        errors: BTreeMap::new(),
        mix: BTreeMap::new(),
        elapsed: 0.0,
    };
    while let Some(worker) = workers.join_next().await {
        let (histograms, errors, mix) = worker?;
        for (class, h) in histograms {
            driven.histogram.add(&h)?;
            driven.by_class.entry(class).or_insert_with(measure::new_histogram).add(&h)?;
        }
        errors.into_iter().for_each(|(k, v)| *driven.errors.entry(k).or_default() += v);
        mix.into_iter().for_each(|(k, v)| *driven.mix.entry(k).or_default() += v);
    }
    driven.elapsed = started.elapsed().as_secs_f64();
    Ok(driven)
}

/// `pgbench -S -M prepared` on a scratch database beside `database_url`, when pgbench is
/// installed; None otherwise.
async fn pgbench_reference(
    database_url: &str,
    clients: usize,
    seconds: f64,
) -> anyhow::Result<Option<PgbenchReference>> {
    let Some(pgbench) = find_pgbench() else {
        eprintln!("pgbench is not installed: no reference line");
        return Ok(None);
    };
    let mut url = url::Url::parse(database_url)?;
    let scratch = format!("{}_pgbench", url.path().trim_start_matches('/'));
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(database_url).await?;
    sqlx::Executor::execute(&mut admin, format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)").as_str()).await?;
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {scratch}").as_str()).await?;
    url.set_path(&format!("/{scratch}"));
    let init = tokio::process::Command::new(&pgbench).args(["-i", "-s", "10", "-q", url.as_str()]).output().await?;
    ensure!(init.status.success(), "pgbench -i failed: {}", String::from_utf8_lossy(&init.stderr));
    let args =
        ["-S", "-M", "prepared", "-c", &clients.to_string(), "-j", "2", "-T", &format!("{}", seconds.ceil() as u64)];
    let output = tokio::process::Command::new(&pgbench).args(args).arg(url.as_str()).output().await?;
    sqlx::Executor::execute(&mut admin, format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)").as_str()).await?;
    let text = String::from_utf8_lossy(&output.stdout);
    let tps = replay::figure(&text, "tps = ").context("pgbench printed no tps")?;
    Ok(Some(PgbenchReference { command: format!("pgbench {} <scratch database>", args.join(" ")), tps }))
}

fn find_pgbench() -> Option<std::path::PathBuf> {
    let on_path =
        std::env::var_os("PATH").into_iter().flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>());
    let debian =
        std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten().map(|entry| entry.path().join("bin"));
    on_path.chain(debian).map(|dir| dir.join("pgbench")).find(|candidate| candidate.is_file())
}

impl HttpReport {
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "# HTTP load: {} concurrent clients for {:.1} s against {}\n\n| requests | req/s | p50 | p95 | p99 | errors |\n|---:|---:|---:|---:|---:|---|\n| {} | {:.0} | {:.2}ms | {:.2}ms | {:.2}ms | {:?} |\n",
            self.concurrency,
            self.seconds,
            self.url,
            self.requests,
            self.requests_per_second,
            self.latency.p50_ms,
            self.latency.p95_ms,
            self.latency.p99_ms,
            self.errors
        );
        md.push_str(&format!(
            "\n{} users share the connections ({} data); reads choose among {} public projects by Zipf({}).\n\n| class | requests | p50 | p95 | p99 |\n|---|---:|---:|---:|---:|\n",
            self.users,
            match self.data {
                Data::Own => "the command's own",
                Data::Seeded => "`vibing2 bench seed`'s",
            },
            self.read_projects,
            self.zipf_exponent
        ));
        for (class, latency) in &self.latency_by_class {
            md.push_str(&format!(
                "| {class} | {} | {:.2}ms | {:.2}ms | {:.2}ms |\n",
                latency.samples, latency.p50_ms, latency.p95_ms, latency.p99_ms
            ));
        }
        if let Some(rss) = self.server_peak_rss_mb {
            md.push_str(&format!("\nThe server's peak RSS: {rss:.0} MB\n"));
        }
        md.push_str(&format!(
            "\nThe HTTP floor, `GET /api/health` from the same clients just before: {:.0} req/s (p50 {:.2}ms, p99 {:.2}ms, errors {:?}); the mix ran at {:.2}x of it\n",
            self.floor.requests_per_second,
            self.floor.latency.p50_ms,
            self.floor.latency.p99_ms,
            self.floor.errors,
            self.floor.mix_ratio
        ));
        if let Some(pgbench) = &self.pgbench {
            md.push_str(&format!(
                "\nReference, the database's own limit for single-row reads: `{}`: {:.0} tps\n",
                pgbench.command, pgbench.tps
            ));
        }
        if !self.scenarios.is_empty() {
            let t = &self.targets;
            md.push_str(&format!(
                "\nEach scenario alone, the same request every time: the project list of user {}, project {} read by user {} (message page {} of 50 messages), discovery popular and searched for \"{}\", the 30-day usage summary of user {}; the mix from all users.\n",
                t.list_user, t.project, t.project_reader, t.message_page, t.search, t.usage_user
            ));
            md.push_str("\nFrom the same clients:\n\n| scenario | cache | req/s | p50 | p99 | errors | x floor | x pgbench -S | own SQL tps | own SQL latency | x own SQL |\n|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n");
            let ratio = |ratio: Option<f64>| ratio.map_or("-".to_owned(), |ratio| format!("{ratio:.2}"));
            for s in &self.scenarios {
                let (own_tps, own_latency) = s.own_sql.as_ref().map_or(("-".to_owned(), "-".to_owned()), |own| {
                    (format!("{:.0}", own.tps), format!("{:.2}ms", own.latency_ms))
                });
                md.push_str(&format!(
                    "| {} | {} | {:.0} | {:.2}ms | {:.2}ms | {:?} | {:.2} | {} | {own_tps} | {own_latency} | {} |\n",
                    s.scenario,
                    s.cache,
                    s.requests_per_second,
                    s.latency.p50_ms,
                    s.latency.p99_ms,
                    s.errors,
                    s.floor_ratio,
                    ratio(s.pgbench_ratio),
                    ratio(s.own_sql_ratio)
                ));
            }
            md.push_str("\nEach scenario's own SQL (the statements of one uncached request, replayed by pgbench) and, with the cache off, the service's database calls per request by the query monitor's name:\n\n");
            for s in &self.scenarios {
                let Some(own) = &s.own_sql else { continue };
                let names: Vec<&str> = own.statements.iter().map(|statement| statement.name).collect();
                md.push_str(&format!("- {}: {} (`{}`)", s.scenario, names.join(", "), own.command));
                if let (Some(calls), true) = (&s.database_calls, s.requests > 0) {
                    // Fewer than one call in a hundred requests is not theirs (the scrapes of
                    // /metrics read the job runs).
                    let per_request: Vec<String> = calls
                        .iter()
                        .map(|(name, count)| (name, *count as f64 / s.requests as f64))
                        .filter(|(_, per_request)| *per_request >= 0.01)
                        .map(|(name, per_request)| format!("{name} {per_request:.2}"))
                        .collect();
                    md.push_str(&format!("; the service ran {}", per_request.join(", ")));
                }
                md.push('\n');
            }
        }
        md.push_str("\nMix: ");
        md.push_str(&self.mix.iter().map(|(op, n)| format!("{op} {n}")).collect::<Vec<_>>().join(", "));
        md.push('\n');
        md
    }
}
