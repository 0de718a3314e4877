//! The ceremony store suite on memory and SQL (SQLite memory and file; PostgreSQL and MariaDB
//! when their URLs are set).

use std::sync::Arc;

use auth_testkit::db::{Target, fresh};

async fn sql(target: Target) {
    let Some(db) = fresh(target, || {
        let mut all = auth_users_db::migrations();
        all.extend(auth_webauthn::db::migrations());
        all
    })
    .await
    else {
        return;
    };
    auth_testkit::conformance::ceremony_store(Arc::new(auth_webauthn::db::DbCeremonyStore::new(
        db,
    )))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory() {
    auth_testkit::conformance::ceremony_store(Arc::new(
        auth_service::ephemeral::MemoryCeremonyStore::new(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory() {
    sql(Target::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file() {
    sql(Target::SqliteFile).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    sql(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql() {
    sql(Target::MySql).await;
}
