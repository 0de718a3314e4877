//! Provider sign-in under concurrency, for any user and identity store.

use auth_service::{AuthService, AuthUser, LoginOptions, LoginOutcome, ProviderIdentity, UserId};

/// 30 simultaneous first sign-ins of one person (`provider`, `subject`, a verified `email`
/// that no account has yet): every one signs the same new account in, and exactly one link is
/// written. Returns the account's id.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// use auth_service::*;
/// let auth = AuthService::new(AuthConfig::default(), MemoryUserStore::new(),
///     auth_testkit::TestHasher::fast(), MemoryTokenBackend::new()).unwrap()
///     .with_identities(MemoryIdentityStore::new());
/// auth_testkit::conformance::first_provider_sign_ins(&auth, "google", "s", "race@example.com").await;
/// # });
/// ```
pub async fn first_provider_sign_ins<U: AuthUser>(
    auth: &AuthService<U>,
    provider: &str,
    subject: &str,
    email: &str,
) -> UserId {
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let auth = auth.clone();
            let id = ProviderIdentity::new(provider, subject).with_email(email, true);
            tokio::spawn(async move { auth.sign_in_with_provider(id, LoginOptions::new()).await })
        })
        .collect();
    let mut users = std::collections::BTreeSet::new();
    for t in tasks {
        match t.await.expect("the task finishes") {
            Ok(LoginOutcome::Session(s)) => {
                users.insert(s.user.id().clone());
            }
            other => panic!("every one of them signs the same person in: {other:?}"),
        }
    }
    assert_eq!(users.len(), 1, "one account for one person: {users:?}");
    let user = users.into_iter().next().expect("one account");
    let links = auth.list_identities(&user).await.expect("list the links");
    assert_eq!(links.len(), 1, "one link");
    user
}
