use std::future::Future;
use std::sync::Arc;

use auth_service::{
    AuditEntry, AuditQuery, AuditStore, AuthEvent, AuthEventKind, LoginFailureReason,
    RequestContext, SecretString, SessionMeta, UserId,
};
use time::{Duration, OffsetDateTime};

use crate::unique;

/// Runs the [`AuditStore`] suite: entries come back whole (context, detail) and newest first;
/// an account's list holds its own entries and the attempts on its email, never another
/// account's; paging by `before`, filtering by kind, the limit; retention by time; 40
/// concurrent appends all kept; and no secret from an event reaches the store.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// auth_testkit::conformance::audit_store(|| async { auth_service::MemoryAuditStore::new() }).await;
/// # });
/// ```
///
/// # Panics
///
/// When the store breaks a promise of the trait.
pub async fn audit_store<S, F, Fut>(make: F)
where
    S: AuditStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    round_trip_and_order(&make().await).await;
    concurrent_appends(Arc::new(make().await)).await;
}

fn at(secs: i64) -> OffsetDateTime {
    // Microsecond precision, as stores keep it.
    OffsetDateTime::from_unix_timestamp(crate::conformance::START + secs).expect("instant")
        + Duration::microseconds(123)
}

async fn round_trip_and_order<S: AuditStore>(store: &S) {
    let me = UserId::new(unique("u"));
    let other = UserId::new(unique("u"));
    let email = format!("{}@example.com", unique("audit"));
    let ctx = RequestContext::new(
        SessionMeta::new()
            .with_ip("203.0.113.5".parse().expect("ip"))
            .with_user_agent("Browser/1.0"),
    )
    .with_actor("user:1");
    let secret = "secret-reset-token-value";
    let events = [
        AuthEvent::UserRegistered {
            user_id: me.clone(),
            email: email.clone(),
        },
        AuthEvent::UserLoginFailed {
            identifier: email.clone(),
            reason: LoginFailureReason::BadPassword,
        },
        AuthEvent::AccountLocked {
            identifier: format!("login:203.0.113.5|{email}"),
            retry_after: std::time::Duration::from_secs(900),
        },
        AuthEvent::PasswordResetRequested {
            user_id: me.clone(),
            email: email.clone(),
            token: SecretString::from(secret),
        },
        AuthEvent::UserLogin {
            user_id: me.clone(),
            email: email.clone(),
        },
        AuthEvent::UserLogin {
            user_id: other.clone(),
            email: "someone-else@example.com".into(),
        },
    ];
    for (i, event) in events.iter().enumerate() {
        let entry = AuditEntry::from_event(event, Some(&ctx), at(i64::try_from(i).expect("i")));
        store.append(&entry).await.expect("append");
    }
    let all = store
        .list(&AuditQuery::for_user(me.clone()).with_email(&email))
        .await
        .expect("list");
    let kinds: Vec<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "user_login",
            "password_reset_requested",
            "account_locked",
            "user_login_failed",
            "user_registered"
        ],
        "the account's entries and the attempts on its address, newest first, nobody else's"
    );
    let login = &all[0];
    assert_eq!(login.at, at(4), "time kept to the microsecond");
    assert_eq!(login.ip.as_deref(), Some("203.0.113.5"));
    assert_eq!(login.user_agent.as_deref(), Some("Browser/1.0"));
    assert_eq!(login.actor.as_deref(), Some("user:1"));
    assert_eq!(login.detail["email"], email.as_str());
    assert_eq!(all[2].detail["client"], "203.0.113.5");
    assert_eq!(all[3].detail["reason"], "bad_password");
    for entry in &all {
        let text = serde_json::to_string(entry).expect("json");
        assert!(
            !text.contains(secret),
            "a secret reached the audit log: {text}"
        );
    }

    // An attempt on a look-alike address (accent, case) is not this account's: stores
    // compare identifiers exactly whatever the database's collation does.
    let tag = unique("look");
    let plain = format!("jose-{tag}@example.com");
    let accented = format!("jos\u{e9}-{tag}@example.com");
    for identifier in [plain.clone(), plain.to_uppercase()] {
        let event = AuthEvent::UserLoginFailed {
            identifier,
            reason: LoginFailureReason::NotFound,
        };
        store
            .append(&AuditEntry::from_event(&event, None, at(1)))
            .await
            .expect("append");
    }
    let lookalike = store
        .list(&AuditQuery::for_user(UserId::new(unique("u"))).with_email(&accented))
        .await
        .expect("list");
    assert!(
        lookalike.is_empty(),
        "attempts on {plain} listed for {accented}: {lookalike:?}"
    );

    let without_email = store
        .list(&AuditQuery::for_user(me.clone()))
        .await
        .expect("list");
    assert_eq!(
        without_email.len(),
        3,
        "without the email: the account's own entries"
    );
    let page = store
        .list(
            &AuditQuery::for_user(me.clone())
                .with_email(&email)
                .before(at(3))
                .limit(2),
        )
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["account_locked", "user_login_failed"]
    );
    let logins = store
        .list(&AuditQuery::for_user(me.clone()).kinds([AuthEventKind::UserLogin]))
        .await
        .expect("kinds");
    assert_eq!(logins.len(), 1);
    let theirs = store
        .list(&AuditQuery::for_user(other.clone()))
        .await
        .expect("other");
    assert_eq!(theirs.len(), 1);

    let removed = store.delete_before(at(2)).await.expect("retention");
    assert!(removed >= 2, "the two oldest entries go, removed {removed}");
    let left = store
        .list(&AuditQuery::for_user(me).with_email(&email))
        .await
        .expect("list");
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|e| e.at >= at(2)));
}

async fn concurrent_appends<S: AuditStore>(store: Arc<S>) {
    let me = UserId::new(unique("u"));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = Arc::clone(&store);
        let me = me.clone();
        tasks.push(tokio::spawn(async move {
            let event = AuthEvent::UserLogout {
                user_id: me,
                all: false,
            };
            store
                .append(&AuditEntry::from_event(&event, None, at(i)))
                .await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("append");
    }
    let all = store
        .list(&AuditQuery::for_user(me).limit(100))
        .await
        .expect("list");
    assert_eq!(all.len(), 40, "40 concurrent appends, 40 entries");
}
