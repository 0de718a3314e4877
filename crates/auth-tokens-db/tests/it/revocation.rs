//! The SQL revocation store passes the shared suite, alone and under the JWT backend.

use auth_testkit::conformance;
use auth_testkit::db::{Target, fresh};
use auth_tokens_db::DbRevocationStore;
use auth_tokens_jwt::{Algorithm, JwtBackend};

const SECRET: &str = "jwt-secret-0123456789abcdef0123456789abcdef";

fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
    // The token tables reference the users table, so it comes first.
    let mut all = auth_users_db::migrations();
    all.extend(auth_tokens_db::migrations());
    all
}

async fn suite(target: Target) {
    if fresh(target, migrations).await.is_none() {
        return;
    }
    conformance::revocation_store(|clock| async move {
        DbRevocationStore::new(fresh(target, migrations).await.unwrap()).with_clock(clock)
    })
    .await;
    conformance::token_backend(|clock| async move {
        let store = DbRevocationStore::new(fresh(target, migrations).await.unwrap())
            .with_clock(clock.clone());
        JwtBackend::try_hmac(Algorithm::HS256, SECRET)
            .unwrap()
            .with_revocation_store(store)
            .with_clock(clock)
    })
    .await;
    conformance::refresh_reuse_window(|clock| async move {
        let store = DbRevocationStore::new(fresh(target, migrations).await.unwrap())
            .with_clock(clock.clone());
        JwtBackend::try_hmac(Algorithm::HS256, SECRET)
            .unwrap()
            .with_revocation_store(store)
            .with_clock(clock)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory() {
    suite(Target::SqliteMemory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    suite(Target::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql() {
    suite(Target::MySql).await;
}
