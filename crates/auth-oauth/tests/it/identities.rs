//! Linked identities in SQL (`DbIdentityStore`) under the service's rules, on SQLite (memory
//! and file), and on PostgreSQL and MariaDB when their URLs are set: sign-in by a linked
//! subject, linking only with proven addresses, 30 concurrent first sign-ins making one
//! account and one link, subjects compared case-sensitively, unlink, deletion.

use auth_oauth::db::DbIdentityStore;
use auth_service::{
    AuthConfig, AuthService, Error, LoginOptions, LoginOutcome, MemoryTokenBackend,
    ProviderIdentity,
};
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
    let user_id = auth_testkit::conformance::first_provider_sign_ins(
        &auth,
        "google",
        "Sub-1",
        "race@example.com",
    )
    .await;
    let again = ProviderIdentity::new("google", "Sub-1").with_email("race@example.com", true);
    auth.sign_in_with_provider(again, LoginOptions::new())
        .await
        .unwrap();
    let links = auth.list_identities(&user_id).await.unwrap();
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
        auth.unlink_identity(&user_id, &links[0].id).await,
        Err(Error::Validation(_))
    ));
    auth.set_password(&user_id, "amber-heron-dances-7")
        .await
        .unwrap();
    assert!(auth.unlink_identity(&user_id, &links[0].id).await.unwrap());

    // Deleting the account deletes its links.
    let gh = ProviderIdentity::new("github", "9").with_email("race@example.com", true);
    auth.link_identity(&user_id, gh.clone()).await.unwrap();
    assert!(auth.delete_user(&user_id).await.unwrap());
    assert!(auth.list_identities(&user_id).await.unwrap().is_empty());
    // The identity is free again: a new account for it.
    let LoginOutcome::Session(s) = auth
        .sign_in_with_provider(gh, LoginOptions::new())
        .await
        .unwrap()
    else {
        panic!("a session")
    };
    assert_ne!(s.user.id, user_id);
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
