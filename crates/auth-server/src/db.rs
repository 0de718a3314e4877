//! The database: connection options, SQLite's file and its durability, migrations.

use std::time::Duration;

use crate::settings::Settings;
use auth::{ConfigError, Error};
use sea_orm::DatabaseConnection;

/// How an SQLite file commits (`AUTH_SQLITE_SYNCHRONOUS`), in WAL mode either way.
///
/// | value | a commit survives | costs |
/// |---|---|---|
/// | `full` (default) | a crash of the process **and** of the machine (power loss, kernel panic) | one fsync of the WAL per commit |
/// | `normal` | a crash of the process; a power loss may undo the last commits since the WAL was last synced (never corrupts) | no fsync per commit |
///
/// With `normal`, what a power loss can undo includes a logout, a password change or a
/// revocation made in its last moments: the default is `full` for that reason. Choose
/// `normal` when the machine's storage has its own power-loss protection, or when losing the
/// last second of sessions is acceptable.
///
/// ```
/// use auth_server::SqliteDurability;
/// assert_eq!(SqliteDurability::default(), SqliteDurability::Full);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqliteDurability {
    /// `PRAGMA synchronous = FULL`.
    #[default]
    Full,
    /// `PRAGMA synchronous = NORMAL`.
    Normal,
}

/// Connects to the database and runs every migration, with [`SqliteDurability::Full`].
///
/// # Errors
///
/// [`Error::Backend`] when the database cannot be reached or migrated.
pub async fn connect(url: &str) -> Result<DatabaseConnection, Error> {
    connect_with(url, SqliteDurability::default()).await
}

/// Connects and migrates (under a database lock, see `auth::migration::up`, so any number of
/// instances may start at once). An SQLite file runs in WAL mode (readers never wait for the writer)
/// with a 5 s busy timeout (concurrent writers queue instead of failing) and `durability`;
/// server databases get a pool sized from the core count. Statements are prepared once per
/// connection and cached (sqlx's statement cache).
///
/// # Errors
///
/// [`Error::Backend`] when the database cannot be reached or migrated.
pub async fn connect_with(
    url: &str,
    durability: SqliteDurability,
) -> Result<DatabaseConnection, Error> {
    open(url, durability, true, DEFAULT_DB_WAIT, Duration::ZERO).await
}

/// How long a request waits for a database connection (or a new connection to open) before
/// it is answered 503, unless `AUTH_DB_TIMEOUT_MS` says otherwise: during an outage every
/// request fails fast instead of hanging.
pub const DEFAULT_DB_WAIT: Duration = Duration::from_secs(2);

/// The longest one statement runs on PostgreSQL or MariaDB/MySQL before the database cancels
/// it, unless `AUTH_DB_STATEMENT_TIMEOUT_MS` says otherwise: a row or table lock held
/// elsewhere, or a query gone slow, then holds one connection for that long and the request
/// is answered 503, instead of every request queueing behind it.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) async fn open(
    url: &str,
    durability: SqliteDurability,
    migrate: bool,
    wait: Duration,
    statement_timeout: Duration,
) -> Result<DatabaseConnection, Error> {
    let separate = migrate && !url.starts_with("sqlite:") && !statement_timeout.is_zero();
    if separate {
        // Migrations (and the lock that lets one instance of many run them) may take longer
        // than a request's statement: they run on a pool of their own, without the limit.
        let db = connected(url, durability, wait, Duration::ZERO).await?;
        auth::migration::up(&db)
            .await
            .map_err(|e| Error::backend("migrating the database", e))?;
        db.close()
            .await
            .map_err(|e| Error::backend("closing the migration connections", e))?;
    }
    let db = connected(url, durability, wait, statement_timeout).await?;
    if separate {
        return Ok(db);
    }
    if migrate {
        // Under a database lock: instances starting together migrate once.
        auth::migration::up(&db)
            .await
            .map_err(|e| Error::backend("migrating the database", e))?;
    } else {
        let pending = auth::migration::pending(&db)
            .await
            .map_err(|e| Error::backend("reading the applied migrations", e))?;
        if !pending.is_empty() {
            return Err(Error::Configuration(ConfigError::invalid(
                "AUTH_MIGRATE",
                format!(
                    "is false and {} migrations are pending ({}): run `auth-server migrate` first",
                    pending.len(),
                    pending.join(", ")
                ),
            )));
        }
    }
    Ok(db)
}

pub(crate) async fn connected(
    url: &str,
    durability: SqliteDurability,
    wait: Duration,
    statement_timeout: Duration,
) -> Result<DatabaseConnection, Error> {
    let options = pool(url, durability, wait, statement_timeout)?;
    if url.starts_with("sqlite:") {
        writable_sqlite_file(url)?;
    }
    // Instances starting together on a new SQLite file race to set it up (WAL mode takes
    // the file's lock for a moment): a busy file is tried again for a few seconds.
    let mut tries = 0;
    loop {
        match sea_orm::Database::connect(options.clone()).await {
            Ok(db) => return Ok(db),
            Err(e) if url.starts_with("sqlite:") && tries < 20 && is_busy(&e) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(Error::backend(
                    "connecting to the database (check DATABASE_URL)",
                    e,
                ));
            }
        }
    }
}

/// Whether an SQLite error says the file is locked by another connection for now.
pub(crate) fn is_busy(e: &sea_orm::DbErr) -> bool {
    let text = e.to_string().to_lowercase();
    text.contains("database is locked") || text.contains("busy")
}

/// The pool's options: bounded waits, SQLite's journal and durability, a server database's
/// size and statement timeout.
#[allow(clippy::unnecessary_wraps)] // room for options that can be refused
pub(crate) fn pool(
    url: &str,
    durability: SqliteDurability,
    wait: Duration,
    statement_timeout: Duration,
) -> Result<sea_orm::ConnectOptions, Error> {
    use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

    let mut options = sea_orm::ConnectOptions::new(url.to_owned());
    // Statement logging would flood the service log; errors are reported where they happen.
    options.sqlx_logging(false);
    // Bounded waits: a server database that is away (stopped, unreachable) answers 503 within
    // `wait` instead of the pool's 30 s. An SQLite file is never away; its waits are writers
    // queueing, bounded by the busy timeout (5 s) instead.
    let wait = if url.starts_with("sqlite:") {
        wait.max(Duration::from_secs(5))
    } else {
        wait
    };
    options.acquire_timeout(wait).connect_timeout(wait);
    // sqlx pings every connection it hands out by default: one more round trip per statement.
    // A connection in steady use is alive; only one idle for a while (that a server, proxy or
    // firewall may have dropped) is checked first. An SQLite connection cannot drop.
    if url.starts_with("sqlite:") {
        options.test_before_acquire(false);
    } else {
        options.test_before_acquire_if_idle_for(Duration::from_secs(30));
    }
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    if url.starts_with("sqlite:") {
        let file = !url.contains(":memory:") && !url.contains("mode=memory");
        options.map_sqlx_sqlite_opts(move |o| {
            let o = o.busy_timeout(Duration::from_secs(5));
            if file {
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(match durability {
                        SqliteDurability::Full => SqliteSynchronous::Full,
                        SqliteDurability::Normal => SqliteSynchronous::Normal,
                    })
            } else {
                o
            }
        });
    } else {
        // Enough connections for the runtime's workers and the hash pool's callers to wait
        // on the network, not on each other.
        let pool = u32::try_from((cores * 4).max(8)).unwrap_or(32);
        options.max_connections(pool);
    }
    if !statement_timeout.is_zero() {
        if url.starts_with("postgres") {
            // Sent with the connection's start-up parameters: no extra round trip.
            options.statement_timeout(statement_timeout);
        } else if url.starts_with("mysql") || url.starts_with("mariadb") {
            let seconds = statement_timeout.as_secs_f64();
            let millis = statement_timeout.as_millis();
            options.map_sqlx_mysql_pool_opts(move |o| {
                o.after_connect(move |conn, _| {
                    Box::pin(async move {
                        use sea_orm::sqlx::{AssertSqlSafe, Executor, raw_sql};
                        // Numbers formatted here, nothing from outside. MariaDB bounds every
                        // statement; MySQL has only a bound for reads.
                        let mariadb = format!("SET SESSION max_statement_time = {seconds:.3}");
                        if conn.execute(raw_sql(AssertSqlSafe(mariadb))).await.is_err() {
                            let mysql = format!("SET SESSION max_execution_time = {millis}");
                            conn.execute(raw_sql(AssertSqlSafe(mysql))).await?;
                        }
                        Ok(())
                    })
                })
            });
        }
    }
    Ok(options)
}

/// An SQLite file the server cannot write is refused at start, naming it: SQLite would open
/// it read-only without a word, and every write would fail afterwards. The folder must be
/// writable too (the write-ahead log and its index live beside the file).
pub(crate) fn writable_sqlite_file(url: &str) -> Result<(), Error> {
    use std::str::FromStr;
    let Ok(options) = sea_orm::sqlx::sqlite::SqliteConnectOptions::from_str(url) else {
        return Ok(()); // sqlx says what is wrong with the URL when it connects
    };
    let path = options.get_filename();
    let text = path.to_string_lossy();
    if text.is_empty() || text.contains(":memory:") || url.contains("mode=memory") {
        return Ok(());
    }
    let refuse = |what: String| {
        Err(Error::Configuration(ConfigError::invalid(
            "DATABASE_URL",
            what,
        )))
    };
    if path.exists()
        && let Err(e) = std::fs::OpenOptions::new().write(true).open(path)
    {
        return refuse(format!(
            "names the SQLite file {}, which cannot be written: {e}",
            path.display()
        ));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let probe = folder.join(format!(".auth-write-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => refuse(format!(
            "names the SQLite file {} in the folder {}, which cannot be written (SQLite keeps its write-ahead log there): {e}",
            path.display(),
            folder.display()
        )),
    }
}

/// Connects as `settings` say: [`connect_with`] its durability, migrating unless
/// `AUTH_MIGRATE=false` (then a database with pending migrations is refused, naming them).
///
/// # Errors
///
/// As [`connect_with`]; [`Error::Configuration`] naming `AUTH_MIGRATE` when migrations are
/// pending and migrating on start is off.
pub async fn connect_from(settings: &Settings) -> Result<DatabaseConnection, Error> {
    open(
        &settings.database_url,
        settings.sqlite_durability,
        settings.migrate,
        settings.db_wait,
        settings.db_statement_timeout,
    )
    .await
}
