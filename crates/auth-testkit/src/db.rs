//! Fresh, migrated databases for tests (feature `db`).
//!
//! SQLite always; PostgreSQL and MySQL/MariaDB when `AUTH_TEST_POSTGRES_URL` /
//! `AUTH_TEST_MYSQL_URL` are set, each test getting a database of its own (named after the
//! configured one, so a CI run's cleanup finds it), so concurrent tests never share a schema.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigrationTrait;

/// Where a test runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// `sqlite::memory:` (one connection).
    SqliteMemory,
    /// An SQLite file in a temporary folder (one connection).
    SqliteFile,
    /// A fresh database on the server in `AUTH_TEST_POSTGRES_URL`.
    Postgres,
    /// A fresh database on the server in `AUTH_TEST_MYSQL_URL`.
    MySql,
}

impl Target {
    /// Every target.
    pub const ALL: [Self; 4] = [
        Self::SqliteMemory,
        Self::SqliteFile,
        Self::Postgres,
        Self::MySql,
    ];
}

/// A fresh database for `target`, migrated with `migrations` in order, or `None` with the reason
/// printed when the server's variable is unset.
///
/// # Panics
///
/// When a configured server cannot be reached or migrated: a test environment problem.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let db = auth_testkit::db::fresh(auth_testkit::db::Target::SqliteMemory, Vec::new).await;
/// assert!(db.is_some());
/// # });
/// ```
pub async fn fresh(
    target: Target,
    migrations: fn() -> Vec<Box<dyn MigrationTrait>>,
) -> Option<DatabaseConnection> {
    let url = fresh_url(target).await?;
    let mut options = ConnectOptions::new(url);
    let sqlite = matches!(target, Target::SqliteMemory | Target::SqliteFile);
    options.max_connections(if sqlite { 1 } else { 24 });
    options.sqlx_logging(false);
    let db = Database::connect(options)
        .await
        .expect("connect to the test database");
    Migrations::run(&db, migrations).await;
    Some(db)
}

/// The URL of a fresh, empty database for `target` (an SQLite file in a temporary folder, or
/// a new database on the configured server), for tests that start a whole server which
/// migrates on its own; `None` with the reason printed when the server's variable is unset.
///
/// # Panics
///
/// When a configured server cannot be reached: a test environment problem.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let url = auth_testkit::db::fresh_url(auth_testkit::db::Target::SqliteFile).await.unwrap();
/// assert!(url.starts_with("sqlite://"));
/// # });
/// ```
pub async fn fresh_url(target: Target) -> Option<String> {
    match target {
        Target::SqliteMemory => Some("sqlite::memory:".to_owned()),
        Target::SqliteFile => {
            let dir = std::env::temp_dir().join(crate::unique("auth-test-db"));
            std::fs::create_dir_all(&dir).expect("create a temporary folder");
            Some(format!(
                "sqlite://{}?mode=rwc",
                dir.join("auth.db").display()
            ))
        }
        Target::Postgres => server_database("AUTH_TEST_POSTGRES_URL").await,
        Target::MySql => server_database("AUTH_TEST_MYSQL_URL").await,
    }
}

struct Migrations;

impl Migrations {
    async fn run(db: &DatabaseConnection, migrations: fn() -> Vec<Box<dyn MigrationTrait>>) {
        // A migrator type per call is not possible, so apply each migration's `up` directly:
        // the database is fresh, so there is nothing to track.
        let manager = sea_orm_migration::SchemaManager::new(db);
        for m in migrations() {
            m.up(&manager).await.expect("migrate the test database");
        }
    }
}

async fn server_database(var: &str) -> Option<String> {
    let Ok(base) = std::env::var(var) else {
        let service = if var.contains("POSTGRES") {
            "postgres"
        } else {
            "mysql"
        };
        crate::skip(service, &format!("{var} is not set"));
        return None;
    };
    let (prefix, base_name) = base.rsplit_once('/').expect("a database URL with a path");
    let base_name = base_name.split('?').next().unwrap_or_default();
    let name = format!("{base_name}_{}", crate::unique("t").replace('-', "_")).to_lowercase();
    let admin = Database::connect(base.as_str())
        .await
        .expect("connect to the test server");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    Some(format!("{prefix}/{name}"))
}
