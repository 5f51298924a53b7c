//! The seed report's before/after rows, measured side by side. "Before" runs the query
//! patterns of the earlier implementation on the Phase-2 schema; "after" calls the very
//! functions the API uses, on the migrated schema.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_distr::Distribution;
use serde::Serialize;
use sqlx::{Connection, PgConnection};

use super::measure::{self, interleaved, Latency};
use crate::cache::{Cache, Kind, Scope};
use crate::config::Settings;
use crate::db::discovery::{self, DiscoveryQuery};
use crate::db::files::{self, PreparedUpsert};
use crate::db::messages;
use crate::db::projects;
use crate::db::usage;
use crate::db::Pool;
use crate::domain::discovery::{Position, Sort};
use crate::domain::{Direction, GroupBy};
use crate::validate;

/// One row of the report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScenarioResult {
    pub name: String,
    /// The seed report's row this measures.
    pub seed_row: &'static str,
    pub before: Option<Latency>,
    pub after: Latency,
    /// What exactly ran on each side, and anything the figures need to be read with.
    pub note: String,
}

impl ScenarioResult {
    /// before p50 / after p50.
    pub fn factor(&self) -> Option<f64> {
        self.before.as_ref().map(|before| before.p50_ms / self.after.p50_ms.max(0.001))
    }

    /// "% faster", the way the seed prints it: 1 - after / before.
    pub fn percent_faster(&self) -> Option<f64> {
        self.before.as_ref().map(|before| (1.0 - self.after.p50_ms / before.p50_ms.max(0.001)) * 100.0)
    }
}

/// Cache scenario figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheResult {
    pub reads: usize,
    pub distinct_projects: usize,
    pub zipf_exponent: f64,
    pub hit_rate: f64,
    /// The best any cache could do on this sequence: reads of a project read before (in either
    /// pass), over all reads. The rest are first reads, which must load.
    pub reachable_hit_rate: f64,
    pub mode: &'static str,
    pub without_cache: Latency,
    pub with_cache: Latency,
    /// The cached reads that were first reads: every one a miss in both tiers.
    pub misses: Latency,
}

/// Pool scenario figures.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolResult {
    pub clients: usize,
    pub seconds_each: f64,
    pub pooled_per_second: f64,
    pub new_connection_per_second: f64,
    pub throughput_ratio: f64,
    pub pooled: Latency,
    pub new_connection: Latency,
}

pub struct ScenarioContext<'a> {
    pub before: &'a Pool,
    pub after: &'a Pool,
    pub after_url: &'a str,
    pub settings: &'a Settings,
    pub warmup: usize,
    pub iterations: usize,
}

/// The fixtures every scenario reads: the same ids in both databases (same seed).
pub struct Fixtures {
    pub heavy_owner: String,
    pub heavy_project: String,
    pub writable_project: String,
    pub heavy_usage_user: String,
    pub common_type: String,
}

pub async fn fixtures(after: &Pool) -> anyhow::Result<Fixtures> {
    let heavy_owner: String =
        sqlx::query_scalar(r#"SELECT "userId" FROM "Project" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"#)
            .fetch_one(after)
            .await?;
    let heavy_project: String =
        sqlx::query_scalar(r#"SELECT "projectId" FROM "Message" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"#)
            .fetch_one(after)
            .await?;
    let writable_project: String =
        sqlx::query_scalar(r#"SELECT "id" FROM "Project" WHERE "userId" = $1 ORDER BY "id" LIMIT 1"#)
            .bind(&heavy_owner)
            .fetch_one(after)
            .await?;
    let heavy_usage_user: String =
        sqlx::query_scalar(r#"SELECT "userId" FROM "TokenUsage" GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"#)
            .fetch_one(after)
            .await?;
    let common_type: String = sqlx::query_scalar(
        r#"SELECT "projectType" FROM "Project" WHERE "visibility" = 'PUBLIC' GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"#,
    )
    .fetch_one(after)
    .await?;
    Ok(Fixtures { heavy_owner, heavy_project, writable_project, heavy_usage_user, common_type })
}

/// 1. A user's projects with message counts, first page.
pub async fn project_list(cx: &ScenarioContext<'_>, f: &Fixtures) -> anyhow::Result<ScenarioResult> {
    let (before_pool, after_pool, user) = (cx.before.clone(), cx.after.clone(), f.heavy_owner.clone());
    let user_before = user.clone();
    let (before, after) = interleaved(
        cx.warmup,
        cx.iterations,
        Box::new(move |_| {
            let (pool, user) = (before_pool.clone(), user_before.clone());
            Box::pin(async move {
                // The ORM's "include _count": each child table aggregated whole, then joined.
                sqlx::query(
                    r#"SELECT p."id", p."name", p."updatedAt", COALESCE(m.n, 0) AS "messageCount", COALESCE(f.n, 0) AS "fileCount"
                       FROM "Project" p
                       LEFT JOIN (SELECT "projectId", count(*) AS n FROM "Message" GROUP BY 1) m ON m."projectId" = p."id"
                       LEFT JOIN (SELECT "projectId", count(*) AS n FROM "ProjectFile" GROUP BY 1) f ON f."projectId" = p."id"
                       WHERE p."userId" = $1 ORDER BY p."updatedAt" DESC LIMIT 20"#,
                )
                .bind(user)
                .fetch_all(&pool)
                .await?;
                Ok(())
            })
        }),
        Box::new(move |_| {
            let (pool, user) = (after_pool.clone(), user.clone());
            Box::pin(async move {
                projects::list_for_member(&pool, &user, None, 21).await?;
                Ok(())
            })
        }),
    )
    .await?;
    Ok(ScenarioResult {
        name: "Project list query".into(),
        seed_row: "Project List Query",
        before: Some(before),
        after,
        note: format!(
            "first page (20) of the user with the most projects ({}); before: ORM-style count join over whole \
             Message and ProjectFile tables; after: projects::list_for_member (own + shared, counts for the page only)",
            f.heavy_owner
        ),
    })
}

/// 2. Save 100 files to a project: 50 changed, 50 new.
pub async fn file_save(cx: &ScenarioContext<'_>, f: &Fixtures) -> anyhow::Result<ScenarioResult> {
    let batch = |round: usize| -> Vec<(String, String)> {
        (0..100)
            .map(|k| {
                let path = if k < 50 { format!("bench/shared{k}.js") } else { format!("bench/round{round}/new{k}.js") };
                (path, format!("// round {round}, file {k}\nexport const value = {};\n", round * 1000 + k))
            })
            .collect()
    };
    let (before_pool, after_pool, project) = (cx.before.clone(), cx.after.clone(), f.writable_project.clone());
    let project_before = project.clone();
    let (before, after) = interleaved(
        cx.warmup,
        cx.iterations,
        Box::new(move |round| {
            let (pool, project, files) = (before_pool.clone(), project_before.clone(), batch(round));
            Box::pin(async move {
                // One statement (and one implicit transaction) per file.
                for (path, content) in files {
                    sqlx::query(
                        r#"INSERT INTO "ProjectFile" ("id", "projectId", "path", "content", "language", "updatedAt")
                           VALUES (gen_random_uuid()::text, $1, $2, $3, 'javascript', now())
                           ON CONFLICT ("projectId", "path") DO UPDATE SET "content" = EXCLUDED."content", "updatedAt" = now()"#,
                    )
                    .bind(&project)
                    .bind(path)
                    .bind(content)
                    .execute(&pool)
                    .await?;
                }
                Ok(())
            })
        }),
        Box::new(move |round| {
            let (pool, project, files) = (after_pool.clone(), project.clone(), batch(round));
            Box::pin(async move {
                let upserts: Vec<PreparedUpsert> = files
                    .into_iter()
                    .map(|(path, content)| PreparedUpsert {
                        id: crate::auth::token::new_id(),
                        language: validate::language_of(&path).to_owned(),
                        size: content.len() as i32,
                        checksum: validate::checksum(&content),
                        path,
                        content,
                    })
                    .collect();
                let mut tx = pool.begin().await?;
                files::apply_batch(&mut tx, &project, &upserts, &[]).await?;
                projects::touch(&mut *tx, &project).await?;
                tx.commit().await?;
                Ok(())
            })
        }),
    )
    .await?;
    Ok(ScenarioResult {
        name: "File operations".into(),
        seed_row: "File Operations",
        before: Some(before),
        after,
        note: "100 files per save (50 changed, 50 new) to one project; before: one upsert statement per file; \
               after: files::apply_batch in one transaction (one UNNEST upsert) with server-side checksums"
            .into(),
    })
}

/// 3. The 50th page (50 per page) of the project with the most messages.
pub async fn message_page(cx: &ScenarioContext<'_>, f: &Fixtures) -> anyhow::Result<ScenarioResult> {
    const PAGE: i64 = 50;
    // Page 50, or the deepest full page a small scale has.
    let messages: i64 = sqlx::query_scalar(r#"SELECT count(*) FROM "Message" WHERE "projectId" = $1"#)
        .bind(&f.heavy_project)
        .fetch_one(cx.after)
        .await?;
    let depth = (49 * PAGE).min((messages - 1).max(0) / PAGE * PAGE);
    let cursor: Option<i64> = if depth == 0 {
        None
    } else {
        Some(
            sqlx::query_scalar(
                r#"SELECT "cursor" FROM "Message" WHERE "projectId" = $1 ORDER BY "cursor" DESC OFFSET $2 LIMIT 1"#,
            )
            .bind(&f.heavy_project)
            .bind(depth - 1)
            .fetch_one(cx.after)
            .await?,
        )
    };
    let (before_pool, after_pool, project) = (cx.before.clone(), cx.after.clone(), f.heavy_project.clone());
    let project_before = project.clone();
    let (before, after) = interleaved(
        cx.warmup,
        cx.iterations,
        Box::new(move |_| {
            let (pool, project) = (before_pool.clone(), project_before.clone());
            Box::pin(async move {
                sqlx::query(
                    r#"SELECT "id", "role", "content", "createdAt" FROM "Message" WHERE "projectId" = $1
                       ORDER BY "createdAt" DESC LIMIT $2 OFFSET $3"#,
                )
                .bind(project)
                .bind(PAGE)
                .bind(depth)
                .fetch_all(&pool)
                .await?;
                Ok(())
            })
        }),
        Box::new(move |_| {
            let (pool, project) = (after_pool.clone(), project.clone());
            Box::pin(async move {
                messages::page(&pool, &project, None, Direction::Older, cursor, PAGE + 1).await?;
                Ok(())
            })
        }),
    )
    .await?;
    Ok(ScenarioResult {
        name: format!("Message pagination (page {})", depth / PAGE + 1),
        seed_row: "Message Pagination",
        before: Some(before),
        after,
        note: format!(
            "page {} of 50 messages in project {} ({messages} messages); before: ORDER BY createdAt OFFSET {depth}; \
             after: messages::page keyset on cursor",
            depth / PAGE + 1,
            f.heavy_project
        ),
    })
}

/// The SQL the earlier implementation ran for a discovery page (Phase-2 schema).
fn before_discovery_sql(order: &str, filter: &str) -> String {
    format!(
        r#"SELECT p."id", p."name", left(p."description", 200), p."likes", p."forks", u."id", u."name", u."image"
           FROM "Project" p JOIN "User" u ON u."id" = p."userId"
           WHERE p."visibility" = 'PUBLIC' {filter} ORDER BY {order} LIMIT 20 OFFSET $1"#
    )
}

/// The after-side position of page 50, found by walking the pages once.
async fn position_of_page(
    pool: &Pool,
    sort: Sort,
    kind: Option<&str>,
    search: Option<&str>,
    page: usize,
) -> anyhow::Result<Option<Position>> {
    let mut after = None;
    for _ in 1..page {
        let query = DiscoveryQuery { sort, project_type: kind, search, after: after.clone(), limit: 20 };
        let rows = discovery::discover(pool, &query).await?;
        match rows.last() {
            Some(last) if rows.len() == 20 => after = Some(last.position(sort)),
            _ => return Ok(None),
        }
    }
    Ok(after)
}

/// (label, sort, type filter, search term, the before side's ORDER BY and extra filter if it
/// has one).
type DiscoveryCase<'a> = (&'a str, Sort, Option<&'a str>, Option<&'a str>, Option<(&'a str, &'a str)>);

/// 4. Public discovery: popular, trending, recent, type filter and search; first and deep pages.
pub async fn discovery(cx: &ScenarioContext<'_>, f: &Fixtures) -> anyhow::Result<Vec<ScenarioResult>> {
    const DEEP_PAGE: usize = 50;
    let mut results = Vec::new();
    let cases: [DiscoveryCase; 6] = [
        ("popular", Sort::Popular, None, None, Some((r#"p."likes" DESC, p."id" DESC"#, ""))),
        ("trending", Sort::Trending, None, None, None),
        ("recent", Sort::Recent, None, None, Some((r#"p."createdAt" DESC, p."id" DESC"#, ""))),
        (
            "type filter",
            Sort::Recent,
            Some(f.common_type.as_str()),
            None,
            Some((r#"p."createdAt" DESC, p."id" DESC"#, r#"AND p."projectType" = $2"#)),
        ),
        (
            "search",
            Sort::Recent,
            None,
            Some("dashboard"),
            Some((r#"p."createdAt" DESC, p."id" DESC"#, r#"AND (p."name" ILIKE $2 OR p."description" ILIKE $2)"#)),
        ),
        ("search ranked by relevance", Sort::Relevance, None, Some("dashboard"), None),
    ];
    for (label, sort, kind, search, before_shape) in cases {
        for deep in [false, true] {
            let position = if deep { position_of_page(cx.after, sort, kind, search, DEEP_PAGE).await? } else { None };
            if deep && position.is_none() {
                continue;
            }
            let after_pool = cx.after.clone();
            let kind_owned = kind.map(str::to_owned);
            let search_owned = search.map(str::to_owned);
            let after_step: measure::Step<'_> = Box::new(move |_| {
                let (pool, kind, search, after) =
                    (after_pool.clone(), kind_owned.clone(), search_owned.clone(), position.clone());
                Box::pin(async move {
                    let query = DiscoveryQuery {
                        sort,
                        project_type: kind.as_deref(),
                        search: search.as_deref(),
                        after,
                        limit: 21,
                    };
                    discovery::discover(&pool, &query).await?;
                    Ok(())
                })
            });
            let page_label = if deep { format!("page {DEEP_PAGE}") } else { "first page".into() };
            let name = format!("Public discovery: {label}, {page_label}");
            let offset = if deep { ((DEEP_PAGE - 1) * 20) as i64 } else { 0 };
            let result = match before_shape {
                Some((order, filter)) => {
                    let before_pool = cx.before.clone();
                    let sql = before_discovery_sql(order, filter);
                    let argument = kind.map(str::to_owned).or(search.map(|term| format!("%{term}%")));
                    let before_step: measure::Step<'_> = Box::new(move |_| {
                        let (pool, sql, argument) = (before_pool.clone(), sql.clone(), argument.clone());
                        Box::pin(async move {
                            let mut query = sqlx::query(&sql).bind(offset);
                            if let Some(argument) = argument {
                                query = query.bind(argument);
                            }
                            query.fetch_all(&pool).await?;
                            Ok(())
                        })
                    });
                    let (before, after) = interleaved(cx.warmup, cx.iterations, before_step, after_step).await?;
                    ScenarioResult {
                        name,
                        seed_row: "Public Discovery",
                        before: Some(before),
                        after,
                        note: format!(
                            "before: ORDER BY {order} OFFSET {offset} on the Phase-2 indexes; after: discovery::discover, keyset"
                        ),
                    }
                }
                None => ScenarioResult {
                    name,
                    seed_row: "Public Discovery",
                    before: None,
                    after: measure::alone(cx.warmup, cx.iterations, after_step).await?,
                    note: if sort == Sort::Relevance {
                        "after only: the earlier implementation never ranked matches; ranking scores every match".into()
                    } else {
                        "after only: the Phase-2 schema has no view counter to sort by".into()
                    },
                },
            };
            results.push(result);
        }
    }
    Ok(results)
}

/// 5. The 30-day usage summary of the heaviest user.
pub async fn token_analytics(cx: &ScenarioContext<'_>, f: &Fixtures) -> anyhow::Result<ScenarioResult> {
    let (before_pool, after_pool, user) = (cx.before.clone(), cx.after.clone(), f.heavy_usage_user.clone());
    let user_before = user.clone();
    let (before, after) = interleaved(
        cx.warmup,
        cx.iterations,
        Box::new(move |_| {
            let (pool, user) = (before_pool.clone(), user_before.clone());
            Box::pin(async move {
                sqlx::query(
                    r#"SELECT date_trunc('day', "timestamp") AS day, count(*), sum("tokensUsed"), sum("contextUsed"),
                              sum("savedTokens")
                       FROM "TokenUsage"
                       WHERE "userId" = $1 AND "timestamp" >= date_trunc('day', now() AT TIME ZONE 'UTC') - interval '29 days'
                       GROUP BY 1 ORDER BY 1"#,
                )
                .bind(user)
                .fetch_all(&pool)
                .await?;
                Ok(())
            })
        }),
        Box::new(move |_| {
            let (pool, user) = (after_pool.clone(), user.clone());
            Box::pin(async move {
                usage::summary(&pool, &user, 30, GroupBy::Day).await?;
                Ok(())
            })
        }),
    )
    .await?;
    Ok(ScenarioResult {
        name: "Token analytics (30 days)".into(),
        seed_row: "Token Analytics",
        before: Some(before),
        after,
        note: format!(
            "30-day daily summary of the heaviest user ({}); before: live aggregate on Prisma's (userId, timestamp) \
             index; after: usage::summary (user_token_summary for past days + live rows since the refresh)",
            f.heavy_usage_user
        ),
    })
}

/// 6. A Zipf(1.1) read mix of projects, through the cache and straight from the database.
pub async fn cache_hit_rate(cx: &ScenarioContext<'_>, reads: usize) -> anyhow::Result<CacheResult> {
    const ZIPF: f64 = 1.1;
    let ids: Vec<String> =
        sqlx::query_scalar(r#"SELECT "id" FROM "Project" ORDER BY "id" LIMIT 10000"#).fetch_all(cx.after).await?;
    anyhow::ensure!(!ids.is_empty(), "no projects to read");
    let redis = match &cx.settings.redis.url {
        Some(url) => {
            use secrecy::ExposeSecret;
            Some((redis::Client::open(url.expose_secret())?, Duration::from_millis(cx.settings.redis.timeout_ms)))
        }
        None => None,
    };
    let mut settings = cx.settings.cache.clone();
    settings.namespace = format!("{}-bench{}", settings.namespace, std::process::id());
    let cache = Cache::new(settings, redis);
    let zipf = rand_distr::Zipf::new(ids.len() as u64, ZIPF)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let (mut direct, mut cached) = (measure::new_histogram(), measure::new_histogram());
    let read_through = |id: String| {
        let cache = cache.clone();
        async move {
            let scope = Scope::Project(id.clone());
            cache
                .get_or_load(Kind::Project, &scope, "", || async {
                    projects::get(cx.after, &id).await?.ok_or(crate::error::Error::NotFound("project"))
                })
                .await
        }
    };
    // A first pass of the same mix warms the cache; the figures are the second pass's.
    let mut read_before = std::collections::HashSet::new();
    for _ in 0..reads {
        let rank = zipf.sample(&mut rng) as usize - 1;
        read_before.insert(rank);
        read_through(ids[rank].clone()).await?;
    }
    let (mut misses, mut first_reads) = (measure::new_histogram(), 0);
    let warm = cache.status().await.kinds.into_iter().find(|k| k.kind == "project").expect("the project kind");
    for _ in 0..reads {
        let rank = zipf.sample(&mut rng) as usize - 1;
        let id = &ids[rank];
        let started = Instant::now();
        projects::get(cx.after, id).await?;
        measure::record(&mut direct, started);
        let first_read = read_before.insert(rank);
        let started = Instant::now();
        read_through(id.clone()).await?;
        measure::record(&mut cached, started);
        if first_read {
            first_reads += 1;
            measure::record(&mut misses, started);
        }
    }
    let status = cache.status().await;
    let project = status.kinds.iter().find(|k| k.kind == "project").expect("the project kind");
    let (requests, loads) = (project.requests - warm.requests, project.loads - warm.loads);
    let result = CacheResult {
        reads,
        distinct_projects: ids.len(),
        zipf_exponent: ZIPF,
        hit_rate: (requests - loads) as f64 / requests.max(1) as f64,
        reachable_hit_rate: (reads - first_reads) as f64 / reads.max(1) as f64,
        mode: status.mode,
        without_cache: measure::summarize(&direct),
        with_cache: measure::summarize(&cached),
        misses: measure::summarize(&misses),
    };
    let _ = cache.clear().await;
    Ok(result)
}

/// 7. N clients for a while through the pool, then each request on a new connection.
pub async fn pool_throughput(cx: &ScenarioContext<'_>, clients: usize, seconds: f64) -> anyhow::Result<PoolResult> {
    let id: String = sqlx::query_scalar(r#"SELECT "id" FROM "Project" LIMIT 1"#).fetch_one(cx.after).await?;
    let rounds = 3;
    let slice = Duration::from_secs_f64(seconds / rounds as f64);
    let (mut pooled, mut fresh) = (measure::new_histogram(), measure::new_histogram());
    let (mut pooled_ops, mut fresh_ops) = (0u64, 0u64);
    for _ in 0..rounds {
        for use_pool in [true, false] {
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..clients {
                let (pool, url, id) = (cx.after.clone(), cx.after_url.to_owned(), id.clone());
                tasks.spawn(async move {
                    let mut histogram = measure::new_histogram();
                    let deadline = Instant::now() + slice;
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        let query = sqlx::query(r#"SELECT "id", "name" FROM "Project" WHERE "id" = $1"#).bind(&id);
                        if use_pool {
                            query.fetch_one(&pool).await?;
                        } else {
                            let mut conn = PgConnection::connect(&url).await?;
                            query.fetch_one(&mut conn).await?;
                            conn.close().await?;
                        }
                        measure::record(&mut histogram, started);
                    }
                    anyhow::Ok(histogram)
                });
            }
            while let Some(histogram) = tasks.join_next().await {
                let histogram = histogram??;
                if use_pool {
                    pooled_ops += histogram.len();
                    pooled.add(&histogram)?;
                } else {
                    fresh_ops += histogram.len();
                    fresh.add(&histogram)?;
                }
            }
        }
    }
    let seconds_each = slice.as_secs_f64() * rounds as f64;
    let pooled_per_second = pooled_ops as f64 / seconds_each;
    let new_connection_per_second = fresh_ops as f64 / seconds_each;
    Ok(PoolResult {
        clients,
        seconds_each,
        pooled_per_second,
        new_connection_per_second,
        throughput_ratio: pooled_per_second / new_connection_per_second.max(0.001),
        pooled: measure::summarize(&pooled),
        new_connection: measure::summarize(&fresh),
    })
}
