//! One suite for every `MfaStore` (and its login challenges, a `ChallengeStore`): memory, and
//! SQL on each configured database.

use std::sync::Arc;

use auth_mfa::{ChallengeStore, MemoryMfaStore, MfaStore};
use auth_service::UserId;

pub(crate) async fn suite<S: MfaStore + ChallengeStore>(store: Arc<S>, a: UserId, b: UserId) {
    auth_testkit::conformance::challenge_store(store.clone(), a.clone(), b.clone()).await;
    auth_testkit::conformance::mfa_store(store, a, b).await;
    println!(
        "20 concurrent callers: one TOTP step accepted 1x, one recovery code spent 1x, a 5-attempt challenge attempted 5x, consumed 1x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory() {
    suite(
        Arc::new(MemoryMfaStore::new()),
        UserId::new("1"),
        UserId::new("2"),
    )
    .await;
}

#[cfg(feature = "db")]
mod sql {
    use std::sync::Arc;

    use auth_mfa::db::DbMfaStore;
    use auth_service::{NewUser, UserStore};
    use auth_testkit::db::{Target, fresh};
    use auth_users_db::DbUserStore;
    use sea_orm_migration::MigrationTrait;

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = auth_users_db::migrations();
        all.extend(auth_mfa::db::migrations());
        all
    }

    async fn run(target: Target) {
        let Some(db) = fresh(target, migrations).await else {
            return;
        };
        let users = DbUserStore::new(db.clone());
        let a = users
            .create(NewUser::new("a@example.com"))
            .await
            .unwrap()
            .id;
        let b = users
            .create(NewUser::new("b@example.com"))
            .await
            .unwrap()
            .id;
        super::suite(Arc::new(DbMfaStore::new(db)), a, b).await;
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
}
