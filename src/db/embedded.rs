//! The embedded default: with `DATABASE_URL` unset, `serve` runs a private PostgreSQL cluster
//! from the server binaries installed on the machine. Its data lives in a project-local
//! directory and is reused across runs. PostgreSQL refuses to run as root, so when we are root
//! the cluster runs as an unprivileged system user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use anyhow::{bail, Context};
use nix::fcntl::{Flock, FlockArg};
use nix::unistd::{Gid, Uid, User};
use secrecy::SecretString;
use sqlx::{Connection, PgConnection};
use tokio::process::Command;

/// The database the service uses inside the embedded cluster.
pub const DATABASE_NAME: &str = "vibing2";
/// The system user the cluster runs as when we are root, if no `postgres` user exists.
const FALLBACK_SYSTEM_USER: &str = "vibing2-postgres";

pub struct EmbeddedCluster {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    run_as: Option<User>,
    /// False when another process already ran this cluster: we use it, but leave it running.
    started_here: bool,
    /// The `-o` options the server was started with, for a start after [`Self::halt`].
    server_options: String,
}

impl EmbeddedCluster {
    /// Starts (initialising on first use) the cluster kept under `dir`, or joins it if another
    /// process of ours already runs it.
    pub async fn start(dir: &Path, server_settings: &[(&str, &str)]) -> anyhow::Result<Self> {
        let bin_dir = find_server_binaries(&search_path(), Path::new("/usr/lib/postgresql"))?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        // Two processes starting on one directory (two `serve`s, parallel test binaries) take
        // turns: the second one finds the cluster running and joins it.
        let lock_file = std::fs::File::create(dir.join("start.lock"))?;
        let _start_lock = tokio::task::spawn_blocking(move || Flock::lock(lock_file, FlockArg::LockExclusive))
            .await?
            .map_err(|(_, errno)| anyhow::anyhow!("cannot lock {}: {errno}", dir.display()))?;
        let data_dir = dir.join("data");
        let run_as = unprivileged_user().await?;
        if let Some(user) = &run_as {
            chown_recursive(&dir, user).await?;
        }

        let mut cluster =
            Self { bin_dir, data_dir, port: 0, run_as, started_here: false, server_options: String::new() };
        // The monitor's statement statistics, where the server has the module.
        let statement_stats = cluster.has_module("pg_stat_statements");
        if !cluster.data_dir.join("PG_VERSION").exists() {
            cluster.initdb().await?;
        }
        if let Some(port) = cluster.running_port().await? {
            tracing::info!(port, dir = %dir.display(), "joining the embedded PostgreSQL already running");
            cluster.port = port;
        } else {
            cluster.port = free_loopback_port()?;
            let mut server_options =
                format!("-c port={} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''", cluster.port);
            if statement_stats {
                server_options.push_str(" -c shared_preload_libraries=pg_stat_statements");
            }
            for (name, value) in server_settings {
                server_options.push_str(&format!(" -c {name}={value}"));
            }
            cluster.server_options = server_options;
            cluster.launch().await?;
            cluster.started_here = true;
            tracing::info!(port = cluster.port, dir = %dir.display(), "embedded PostgreSQL started");
        }
        cluster.ensure_database(statement_stats).await?;
        Ok(cluster)
    }

    pub fn url(&self) -> SecretString {
        self.url_for(DATABASE_NAME).into()
    }

    async fn launch(&self) -> anyhow::Result<()> {
        let log = self.data_dir.parent().unwrap_or(&self.data_dir).join("server.log");
        let output = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &self.server_options, "start"])
            .output()
            .await?;
        ensure_success("pg_ctl start", &output, Some(&log))
    }

    /// Stops the server this process started (a fast shutdown: sessions are cut, committed
    /// work is kept), keeping the cluster to [`Self::resume`] on the same port: an outage,
    /// for the fault tests.
    pub async fn halt(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.started_here, "only the process that started the cluster may halt it");
        let output =
            self.pg_command("pg_ctl").arg("-D").arg(&self.data_dir).args(["-m", "fast", "-w", "stop"]).output().await?;
        ensure_success("pg_ctl stop", &output, None)
    }

    /// Starts the server again after [`Self::halt`], with the options and port it had.
    pub async fn resume(&self) -> anyhow::Result<()> {
        self.launch().await
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A streaming standby of this cluster in `dir` (a fresh directory): a base backup taken
    /// with `pg_basebackup -R` (which writes the connection to this cluster and
    /// `standby.signal`), started on a free loopback port with `server_settings`. For trying
    /// and testing read replicas on one machine.
    pub async fn standby(&self, dir: &Path, server_settings: &[(&str, &str)]) -> anyhow::Result<EmbeddedCluster> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        if let Some(user) = &self.run_as {
            chown_recursive(dir, user).await?;
        }
        let data_dir = dir.canonicalize()?.join("data");
        // PATH may link initdb and pg_ctl alone: pg_basebackup is found beside the real pg_ctl.
        let output = self
            .pg_command(&self.real_bin_dir().join("pg_basebackup").to_string_lossy())
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-D"])
            .arg(&data_dir)
            .args(["-R", "-X", "stream", "--checkpoint=fast"])
            .output()
            .await?;
        ensure_success("pg_basebackup", &output, None)?;
        let port = free_loopback_port()?;
        let mut server_options =
            format!("-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c hot_standby=on");
        for (name, value) in server_settings {
            server_options.push_str(&format!(" -c {name}={value}"));
        }
        let standby = EmbeddedCluster {
            bin_dir: self.bin_dir.clone(),
            data_dir,
            port,
            run_as: self.run_as.clone(),
            started_here: true,
            server_options,
        };
        standby.launch().await?;
        Ok(standby)
    }

    /// Stops the server this process started at once (`pg_ctl -m immediate`, a crash: no
    /// checkpoint, sessions cut), for the fault tests.
    pub async fn crash(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.started_here, "only the process that started the cluster may stop it");
        let output = self
            .pg_command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .await?;
        ensure_success("pg_ctl stop", &output, None)
    }

    /// Stops the cluster with a fast shutdown, if this process started it.
    pub async fn stop(self) -> anyhow::Result<()> {
        if !self.started_here {
            return Ok(());
        }
        self.halt().await?;
        tracing::info!("embedded PostgreSQL stopped");
        Ok(())
    }

    /// Whether the server's library directory (`lib` beside its real `bin`, wherever a
    /// symlink on PATH points from) holds the loadable module `name`.
    fn has_module(&self, name: &str) -> bool {
        let root = self.real_bin_dir().parent().map(Path::to_owned);
        root.is_some_and(|root| root.join("lib").join(format!("{name}.so")).exists())
    }

    /// The directory of the real `pg_ctl`, wherever a symlink on PATH points from.
    fn real_bin_dir(&self) -> PathBuf {
        let real_bin =
            self.bin_dir.join("pg_ctl").canonicalize().ok().and_then(|pg_ctl| pg_ctl.parent().map(Path::to_owned));
        real_bin.unwrap_or_else(|| self.bin_dir.clone())
    }

    fn url_for(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn pg_command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        command.env_remove("PGDATA").kill_on_drop(false);
        if let Some(parent) = self.data_dir.parent() {
            command.current_dir(parent);
        }
        if let Some(user) = &self.run_as {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw()).env("HOME", &user.dir);
        }
        command
    }

    async fn initdb(&self) -> anyhow::Result<()> {
        tracing::info!(dir = %self.data_dir.display(), "initialising the embedded PostgreSQL cluster");
        let output = self
            .pg_command("initdb")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"])
            .output()
            .await?;
        ensure_success("initdb", &output, None)
    }

    /// The port of a postmaster already running on our data directory, from `postmaster.pid`.
    async fn running_port(&self) -> anyhow::Result<Option<u16>> {
        let status = self.pg_command("pg_ctl").arg("-D").arg(&self.data_dir).arg("status").output().await?;
        if !status.status.success() {
            return Ok(None);
        }
        let pid_file = std::fs::read_to_string(self.data_dir.join("postmaster.pid"))?;
        let port = pid_file.lines().nth(3).and_then(|line| line.trim().parse().ok());
        Ok(port)
    }

    /// Creates the service's database if it is missing, with `pg_stat_statements` installed
    /// when `statement_stats`.
    async fn ensure_database(&self, statement_stats: bool) -> anyhow::Result<()> {
        let mut conn = PgConnection::connect(&self.url_for("postgres")).await?;
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
            DATABASE_NAME
        )
        .fetch_one(&mut conn)
        .await?;
        if !exists {
            sqlx::query(&format!("CREATE DATABASE {DATABASE_NAME}")).execute(&mut conn).await?;
        }
        if statement_stats {
            // The monitor's `type=slow` reads it; this cluster is ours, so we may install it.
            let mut conn = PgConnection::connect(&self.url_for(DATABASE_NAME)).await?;
            sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").execute(&mut conn).await?;
        }
        Ok(())
    }
}

pub(super) fn search_path() -> Vec<PathBuf> {
    std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect()).unwrap_or_default()
}

/// `initdb` and `pg_ctl`, from the first directory of `path` that has both, or else from the
/// newest `<versions_root>/<version>/bin` (Debian's layout).
pub fn find_server_binaries(path: &[PathBuf], versions_root: &Path) -> anyhow::Result<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = path.iter().find(|dir| has_both(dir)) {
        return Ok(dir.clone());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(versions_root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no PostgreSQL server binaries (initdb, pg_ctl) found on PATH or under {}: \
             install them (Debian: apt-get install postgresql) or set DATABASE_URL",
            versions_root.display()
        ),
    }
}

/// None when we are not root. As root: the `postgres` system user if the machine has one,
/// otherwise a dedicated system user, created on first use.
async fn unprivileged_user() -> anyhow::Result<Option<User>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    for name in ["postgres", FALLBACK_SYSTEM_USER] {
        if let Some(user) = User::from_name(name)? {
            return Ok(Some(user));
        }
    }
    let output = Command::new("useradd")
        .args(["--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin"])
        .arg(FALLBACK_SYSTEM_USER)
        .output()
        .await
        .context("cannot run useradd to create the embedded cluster's system user")?;
    ensure_success("useradd", &output, None)?;
    User::from_name(FALLBACK_SYSTEM_USER)?.map(Some).context("useradd succeeded but the system user is missing")
}

async fn chown_recursive(dir: &Path, user: &User) -> anyhow::Result<()> {
    let owner = format!("{}:{}", user.uid, Gid::from_raw(user.gid.as_raw()));
    let output = Command::new("chown").arg("-R").arg(owner).arg(dir).output().await?;
    ensure_success("chown", &output, None)
}

fn free_loopback_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn ensure_success(what: &str, output: &Output, log: Option<&Path>) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    let mut detail = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if let Some(tail) = log.and_then(|log| std::fs::read_to_string(log).ok()) {
        let lines: Vec<&str> = tail.lines().collect();
        detail.push_str("\n--- server log ---\n");
        detail.push_str(&lines[lines.len().saturating_sub(15)..].join("\n"));
    }
    bail!("{what} failed ({}): {detail}", output.status)
}
