use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

/// Which databases to run on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    SqliteMemory,
    SqliteFile,
    Postgres,
    MySql,
}

/// A fresh, migrated database for one test, or `None` (with the reason printed) when the
/// server's URL is not configured.
pub(crate) async fn database(target: Target) -> Option<DatabaseConnection> {
    let url = match target {
        Target::SqliteMemory => "sqlite::memory:".to_owned(),
        Target::SqliteFile => {
            let dir =
                std::env::temp_dir().join(format!("auth-users-db-{}", auth_testkit::unique("t")));
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}?mode=rwc", dir.join("auth.db").display())
        }
        Target::Postgres => fresh_server_database("AUTH_TEST_POSTGRES_URL").await?,
        Target::MySql => fresh_server_database("AUTH_TEST_MYSQL_URL").await?,
    };
    let mut options = ConnectOptions::new(url);
    options.max_connections(
        if matches!(target, Target::SqliteMemory | Target::SqliteFile) {
            1
        } else {
            20
        },
    );
    options.sqlx_logging(false);
    let db = Database::connect(options).await.unwrap();
    auth_users_db::Migrator::up(&db, None).await.unwrap();
    Some(db)
}

/// Creates a database of its own on the server named by `var` (so concurrent tests never share
/// a schema) and returns its URL.
async fn fresh_server_database(var: &str) -> Option<String> {
    let Ok(base) = std::env::var(var) else {
        println!("skipped: {var} is not set");
        return None;
    };
    // Named after the run's database, so the run's cleanup (`.ci/run`) finds and drops it.
    let (prefix, base_name) = base.rsplit_once('/').unwrap();
    let base_name = base_name.split('?').next().unwrap_or_default();
    let name = format!(
        "{base_name}_{}",
        auth_testkit::unique("t").replace('-', "_")
    );
    let admin = Database::connect(base.as_str()).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some(format!("{prefix}/{name}"))
}
