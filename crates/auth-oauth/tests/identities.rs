//! Linked identities in SQL (`DbIdentityStore`) under the service's rules, on SQLite (memory
//! and file), and on PostgreSQL and MariaDB when their URLs are set: sign-in by a linked
//! subject, linking only with proven addresses, 30 concurrent first sign-ins making one
//! account and one link, subjects compared case-sensitively, unlink, deletion.

use auth_core::{
    AuthConfig, AuthService, Error, LoginOptions, LoginOutcome, MemoryTokenBackend,
    ProviderIdentity,
};
use auth_oauth::db::DbIdentityStore;
use auth_testkit::db::{Target, fresh};
use auth_users_db::DbUserStore;

async fn run(target: Target) {
    let Some(db) = fresh(target, || {
        let mut all = auth_users_db::migrations();
        all.extend(auth_oauth::db::migrations());
        all
    })
    .await
    else {
        return;
    };
    let auth = AuthService::new(
        AuthConfig::default(),
        DbUserStore::new(db.clone()),
        auth_testkit::TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_identities(DbIdentityStore::new(db));

    // 30 first sign-ins of one person at once: one account, one link.
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let auth = auth.clone();
            tokio::spawn(async move {
                let id =
                    ProviderIdentity::new("google", "Sub-1").with_email("race@example.com", true);
                auth.sign_in_with_provider(id, LoginOptions::new()).await
            })
        })
        .collect();
    let mut users = std::collections::BTreeSet::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(LoginOutcome::Session(s)) => {
                users.insert(s.user.id.to_string());
            }
            other => panic!("every one of them signs the same person in: {other:?}"),
        }
    }
    assert_eq!(users.len(), 1, "{users:?}");
    let user = auth
        .parts()
        .users
        .find_by_email("race@example.com")
        .await
        .unwrap()
        .unwrap();
    let again = ProviderIdentity::new("google", "Sub-1").with_email("race@example.com", true);
    auth.sign_in_with_provider(again, LoginOptions::new())
        .await
        .unwrap();
    let links = auth.list_identities(&user.id).await.unwrap();
    assert_eq!(links.len(), 1);
    assert!(
        links[0].last_used_at.is_some(),
        "later sign-ins are recorded"
    );

    // Subjects are case-sensitive: "sub-1" is someone else (and its email is taken, unproven
    // by the provider).
    let other = ProviderIdentity::new("google", "sub-1").with_email("race@example.com", false);
    assert!(matches!(
        auth.sign_in_with_provider(other, LoginOptions::new()).await,
        Err(Error::EmailTaken)
    ));

    // Unlink: the only way in stays until a password exists.
    assert!(matches!(
        auth.unlink_identity(&user.id, &links[0].id).await,
        Err(Error::Validation(_))
    ));
    auth.set_password(&user.id, "amber-heron-dances-7")
        .await
        .unwrap();
    assert!(auth.unlink_identity(&user.id, &links[0].id).await.unwrap());

    // Deleting the account deletes its links.
    let gh = ProviderIdentity::new("github", "9").with_email("race@example.com", true);
    auth.link_identity(&user.id, gh.clone()).await.unwrap();
    assert!(auth.delete_user(&user.id).await.unwrap());
    assert!(auth.list_identities(&user.id).await.unwrap().is_empty());
    // The identity is free again: a new account for it.
    let LoginOutcome::Session(s) = auth
        .sign_in_with_provider(gh, LoginOptions::new())
        .await
        .unwrap()
    else {
        panic!("a session")
    };
    assert_ne!(s.user.id, user.id);
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
