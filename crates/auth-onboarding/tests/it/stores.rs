//! The SessionStore suite, and concurrent `advance` calls, on memory and every database.

use std::sync::Arc;

use auth_onboarding::{MemorySessionStore, OnboardingError, SessionStore};
use serde_json::json;

use crate::common::{data, register_data};

pub(crate) async fn suite(store: Arc<dyn SessionStore>, user: auth_service::UserId) {
    auth_testkit::conformance::session_store(store, user).await;
}

/// 20 concurrent submissions of the right code to one session: exactly one applies; the
/// others are told the session is busy (409) and changed nothing.
async fn concurrent_advances(kit: &crate::common::Kit, store: impl SessionStore, email: &str) {
    let flow = kit.full_on(store);
    let token = flow.start(email).await.unwrap().session_token.unwrap();
    let token = token.expose_secret().to_owned();
    flow.advance(&token, register_data(email), false)
        .await
        .unwrap();
    let code = kit.code(email);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (flow, token, code) = (flow.clone(), token.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            flow.advance(&token, data(json!({"code": code})), false)
                .await
        }));
    }
    let (mut ok, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                assert_eq!(r.current_step.as_deref(), Some("setup_totp"));
                ok += 1;
            }
            Err(OnboardingError::Conflict) => conflicts += 1,
            Err(OnboardingError::Auth(e)) => panic!("{e}"),
            Err(e) => panic!("{e}"),
        }
    }
    // Winners after the first see the session already on setup_totp and submit a code to it:
    // still at most one step transition happened.
    let r = flow.resume(&token).await.unwrap();
    assert_eq!(r.current_step.as_deref(), Some("setup_totp"));
    assert!(
        ok >= 1 && ok + conflicts == 20,
        "{ok} ok, {conflicts} conflicts"
    );
    let verified = kit
        .events
        .events()
        .iter()
        .filter(|e| matches!(e, auth_service::AuthEvent::EmailVerified { .. }))
        .count();
    assert_eq!(verified, 1, "the email was verified exactly once");
    println!(
        "20 concurrent advances: {ok} applied in turn, {conflicts} refused with 409; one verification"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory() {
    suite(
        Arc::new(MemorySessionStore::new()),
        auth_service::UserId::new("1"),
    )
    .await;
    let kit = crate::common::kit();
    concurrent_advances(&kit, MemorySessionStore::new(), "race@example.com").await;
}

#[cfg(feature = "db")]
mod sql {
    use std::sync::Arc;

    use auth_onboarding::db::DbSessionStore;
    use auth_service::{NewUser, UserStore};
    use auth_testkit::db::{Target, fresh};
    use auth_users_db::DbUserStore;
    use sea_orm_migration::MigrationTrait;

    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = auth_users_db::migrations();
        all.extend(auth_onboarding::db::migrations());
        all
    }

    async fn run(target: Target) {
        let Some(db) = fresh(target, migrations).await else {
            return;
        };
        let users = DbUserStore::new(db.clone());
        let user = users
            .create(NewUser::new("s@example.com"))
            .await
            .unwrap()
            .id;
        super::suite(Arc::new(DbSessionStore::new(db.clone())), user).await;
        let kit = crate::common::kit_with(users);
        super::concurrent_advances(&kit, DbSessionStore::new(db), "race@example.com").await;
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
