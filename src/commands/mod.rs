//! The subcommands: each one wires settings, database and server together. `serve` runs the
//! service; `schema` changes or saves the database's schema and data (migrate, revert, index
//! switches, backup, restore); `data` fills or measures it (import, views, bench).

mod data;
mod schema;
mod serve;

use anyhow::Context;
use secrecy::SecretString;
use sqlx::ConnectOptions;

use crate::config::Settings;
use crate::db::{self, embedded::EmbeddedCluster};

pub use data::{bench, import, refresh_views};
pub use schema::{backup, index, migrate, migrate_revert, migrate_status, restore};
pub use serve::serve;

/// The database a command runs against: `DATABASE_URL`, or the embedded cluster.
struct Database {
    url: SecretString,
    embedded: Option<EmbeddedCluster>,
}

impl Database {
    async fn open(settings: &Settings) -> anyhow::Result<Self> {
        match &settings.database.url {
            Some(url) => Ok(Self { url: url.clone(), embedded: None }),
            None => {
                tracing::warn!(
                    dir = %settings.database.embedded_dir.display(),
                    "DATABASE_URL is unset: running on the embedded development database (set DATABASE_URL, and \
                     database.require_url=true, for a deployment)"
                );
                let cluster = EmbeddedCluster::start(&settings.database.embedded_dir, &[]).await?;
                Ok(Self { url: cluster.url(), embedded: Some(cluster) })
            }
        }
    }

    async fn close(self) {
        if let Some(cluster) = self.embedded {
            if let Err(error) = cluster.stop().await {
                tracing::error!(error = %format!("{error:#}"), "the embedded PostgreSQL did not stop cleanly");
            }
        }
    }
}

/// A connection for schema work, without the pool's statement timeout: a down step or an
/// index build on a large table may take longer than any request should.
pub(crate) async fn schema_connection(settings: &Settings, url: &SecretString) -> anyhow::Result<sqlx::PgConnection> {
    let connect = db::connect_options(&settings.database, url)?.options([("statement_timeout", "0")]);
    connect.connect().await.context("cannot connect to the database")
}
