//! `DbApiKeyStore` passes the API key suite (through `AuthService`) and the cleanup suite on
//! SQLite (memory and file), and on PostgreSQL and MariaDB when their URLs are set.

use auth_service::{NewUser, UserStore};
use auth_testkit::db::{Target, fresh};
use auth_users_db::DbUserStore;
use sea_orm_migration::MigrationTrait;

fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    let mut all = auth_users_db::migrations();
    all.extend(auth_apikeys::migrations());
    all
}

async fn run(target: Target) {
    let Some(db) = fresh(target, migrations).await else {
        return;
    };
    let cleanup_db = db.clone();
    auth_testkit::conformance::api_key_store(|_clock| async move {
        (
            auth_apikeys::DbApiKeyStore::new(db.clone()),
            DbUserStore::new(db),
        )
    })
    .await;
    let user = DbUserStore::new(cleanup_db.clone())
        .create(NewUser::new("cleanup@example.com"))
        .await
        .unwrap();
    auth_testkit::conformance::api_key_cleanup(
        auth_apikeys::DbApiKeyStore::new(cleanup_db),
        user.id.as_str(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory() {
    run(Target::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file() {
    run(Target::SqliteFile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    run(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql() {
    run(Target::MySql).await;
}
