use std::future::Future;
use std::sync::Arc;

use auth_service::{AuthUser, Error, NewUser, UserId, UserStore};
use time::OffsetDateTime;

use crate::unique;

/// Runs the [`UserStore`] suite: create and find, unique emails (also under 20 concurrent
/// creates), every setter, the conditional password update (also under 20 concurrent callers),
/// `UserNotFound` for unknown ids, listing (prefix, state, pages; `_` and `%` are not
/// wildcards), deletion (ids never reused), and the email compare-and-set (also 30 accounts
/// racing for one address).
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// auth_testkit::conformance::user_store(|| async { auth_service::MemoryUserStore::new() }).await;
/// # });
/// ```
///
/// # Panics
///
/// When the store breaks a promise of the trait.
pub async fn user_store<S, F, Fut>(make: F)
where
    S: UserStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    create_and_find(&make().await).await;
    unique_email(&make().await).await;
    setters(&make().await).await;
    unknown_ids(&make().await).await;
    concurrent_registration(Arc::new(make().await)).await;
    conditional_password_update(Arc::new(make().await)).await;
    list_and_delete(&make().await).await;
    replace_email(&make().await).await;
    concurrent_email_change(Arc::new(make().await)).await;
}

async fn list_and_delete<S: UserStore>(store: &S) {
    let tag = unique("list");
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut new = NewUser::new(format!("{tag}{i}@example.com"));
        new.is_active = i != 3;
        new.is_verified = i % 2 == 0;
        ids.push(store.create(new).await.expect("create").id().clone());
    }
    // Another user whose email has the tag inside, not as a prefix; and one whose prefix
    // only matches if `_` were a wildcard.
    store
        .create(NewUser::new(format!("x{tag}@example.com")))
        .await
        .expect("create");
    let wildcard = tag.replacen('-', "_", 1);
    if wildcard != tag {
        store
            .create(NewUser::new(format!(
                "{}9@example.com",
                tag.replacen('-', "x", 1)
            )))
            .await
            .expect("create");
    }
    let page = |q: auth_service::UserQuery| async move {
        store
            .list(&q)
            .await
            .expect("list")
            .iter()
            .map(|u| u.id().clone())
            .collect::<Vec<_>>()
    };
    let q = auth_service::UserQuery::new().email_prefix(&tag);
    assert_eq!(page(q.clone()).await, ids, "prefix filter, in id order");
    assert_eq!(
        page(q.clone().page(2, 2)).await,
        ids[2..4].to_vec(),
        "second page of two"
    );
    assert_eq!(
        page(q.clone().active(false)).await,
        vec![ids[3].clone()],
        "inactive only"
    );
    assert_eq!(
        page(q.clone().verified(true)).await,
        vec![ids[0].clone(), ids[2].clone(), ids[4].clone()],
        "verified only"
    );
    if wildcard != tag {
        assert!(
            page(auth_service::UserQuery::new().email_prefix(&wildcard))
                .await
                .is_empty(),
            "`_` in a prefix is a character, not a wildcard"
        );
    }
    assert!(store.delete(&ids[1]).await.expect("delete"));
    assert!(!store.delete(&ids[1]).await.expect("delete again"), "gone");
    assert!(store.find_by_id(&ids[1]).await.expect("find").is_none());
    assert!(
        store
            .find_by_email(&format!("{tag}1@example.com"))
            .await
            .expect("find")
            .is_none()
    );
    assert_eq!(page(q).await.len(), 4);
    // The address is free again, under a new id.
    let again = store
        .create(NewUser::new(format!("{tag}1@example.com")))
        .await
        .expect("the deleted address registers again");
    assert_ne!(again.id(), &ids[1], "ids are not reused");
    // Not even the newest id: a token issued to a deleted account must never name another.
    let last = again.id().clone();
    assert!(store.delete(&last).await.expect("delete newest"));
    let next = store
        .create(NewUser::new(format!("{tag}1@example.com")))
        .await
        .expect("create");
    assert_ne!(next.id(), &last, "the newest id is not reused either");
    assert!(
        !store
            .delete(&UserId::new("no-such-id"))
            .await
            .expect("unknown")
    );
}

async fn replace_email<S: UserStore>(store: &S) {
    let a = format!("{}@example.com", unique("mail-a"));
    let b = format!("{}@example.com", unique("mail-b"));
    let c = format!("{}@example.com", unique("mail-c"));
    let user = store.create(NewUser::new(a.clone())).await.expect("create");
    let other = store.create(NewUser::new(b.clone())).await.expect("create");
    let id = user.id().clone();
    assert!(
        matches!(
            store.replace_email(&id, &a, &b).await,
            Err(Error::EmailTaken)
        ),
        "another account's address is refused"
    );
    assert!(
        !store.replace_email(&id, &b, &c).await.expect("stale"),
        "a stale expectation changes nothing"
    );
    assert!(store.replace_email(&id, &a, &c).await.expect("change"));
    assert!(store.find_by_email(&a).await.expect("find").is_none());
    assert_eq!(
        store
            .find_by_email(&c)
            .await
            .expect("find")
            .expect("moved")
            .id(),
        &id
    );
    assert_eq!(
        store
            .find_by_id(&id)
            .await
            .expect("find")
            .expect("kept")
            .email(),
        c
    );
    assert!(
        !store.replace_email(&id, &a, &c).await.expect("again"),
        "the old address no longer applies"
    );
    assert!(
        matches!(
            store
                .replace_email(&UserId::new("424242424242"), &a, &c)
                .await,
            Err(Error::UserNotFound)
        ),
        "unknown id"
    );
    // The freed address can be taken by someone else.
    assert!(
        store
            .replace_email(other.id(), &b, &a)
            .await
            .expect("freed")
    );
}

async fn concurrent_email_change<S: UserStore>(store: Arc<S>) {
    let target = format!("{}@example.com", unique("wanted"));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let store = Arc::clone(&store);
        let target = target.clone();
        let from = format!("{}-{i}@example.com", unique("mover"));
        let user = store
            .create(NewUser::new(from.clone()))
            .await
            .expect("create");
        tasks.push(tokio::spawn(async move {
            store.replace_email(user.id(), &from, &target).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(true) => won += 1,
            Err(Error::EmailTaken) => {}
            other => panic!("a losing email change must be EmailTaken, got {other:?}"),
        }
    }
    assert_eq!(
        won, 1,
        "30 accounts racing for one address: exactly one gets it"
    );
}

async fn conditional_password_update<S: UserStore>(store: Arc<S>) {
    let email = format!("{}@example.com", unique("cas"));
    let user = store.create(NewUser::new(email)).await.expect("create");
    let id = user.id().clone();
    assert!(
        store
            .replace_password_hash(&id, None, "h1")
            .await
            .expect("cas"),
        "replacing an absent hash when None is expected succeeds"
    );
    assert!(
        !store
            .replace_password_hash(&id, None, "h2")
            .await
            .expect("cas"),
        "a stale expectation fails"
    );
    assert!(
        !store
            .replace_password_hash(&id, Some("other"), "h2")
            .await
            .expect("cas"),
        "a wrong expectation fails"
    );
    let stored = store.find_by_id(&id).await.expect("find").expect("exists");
    assert_eq!(
        stored.password_hash(),
        Some("h1"),
        "a failed replace writes nothing"
    );
    let r = store
        .replace_password_hash(&UserId::new("999999999"), None, "x")
        .await;
    assert!(
        matches!(r, Err(Error::UserNotFound)),
        "unknown id is UserNotFound, got {r:?}"
    );

    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            store
                .replace_password_hash(&id, Some("h1"), &format!("race-{i}"))
                .await
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.expect("task").expect("cas") {
            won += 1;
        }
    }
    assert_eq!(
        won, 1,
        "of 20 concurrent conditional updates exactly one wins"
    );
}

async fn create_and_find<S: UserStore>(store: &S) {
    let email = format!("{}@example.com", unique("create"));
    let user = store
        .create(NewUser::new(email.clone()).with_password_hash("hash-1"))
        .await
        .expect("create a user");
    assert_eq!(user.email(), email, "create returns the email given");
    assert_eq!(
        user.password_hash(),
        Some("hash-1"),
        "create stores the hash"
    );
    assert!(user.is_active(), "new users are active by default");
    assert!(!user.is_verified(), "new users are unverified by default");
    assert!(user.last_login().is_none(), "new users have no last login");

    let by_email = store
        .find_by_email(&email)
        .await
        .expect("find by email")
        .expect("the user exists");
    assert_eq!(
        by_email.id(),
        user.id(),
        "find_by_email finds the created user"
    );
    let by_id = store
        .find_by_id(user.id())
        .await
        .expect("find by id")
        .expect("the user exists");
    assert_eq!(by_id.email(), email, "find_by_id finds the created user");

    let missing = format!("{}@example.com", unique("missing"));
    assert!(
        store
            .find_by_email(&missing)
            .await
            .expect("lookup")
            .is_none(),
        "an unknown email finds nobody"
    );
    let inactive = store
        .create(
            NewUser::new(format!("{}@example.com", unique("inactive")))
                .active(false)
                .verified(true),
        )
        .await
        .expect("create an inactive user");
    assert!(!inactive.is_active(), "create honours is_active");
    assert!(inactive.is_verified(), "create honours is_verified");
    assert!(inactive.password_hash().is_none(), "no hash was given");
}

async fn unique_email<S: UserStore>(store: &S) {
    let email = format!("{}@example.com", unique("dup"));
    store
        .create(NewUser::new(email.clone()))
        .await
        .expect("first create");
    let second = store.create(NewUser::new(email)).await;
    assert!(
        matches!(second, Err(Error::EmailTaken)),
        "a second user with the same email is EmailTaken, got {second:?}"
    );
}

async fn setters<S: UserStore>(store: &S) {
    let email = format!("{}@example.com", unique("setters"));
    let user = store.create(NewUser::new(email)).await.expect("create");
    let id = user.id().clone();

    store
        .set_password_hash(&id, "hash-2")
        .await
        .expect("set hash");
    let at = OffsetDateTime::from_unix_timestamp(super::START).expect("valid instant");
    store.record_login(&id, at).await.expect("record login");
    store.set_active(&id, false).await.expect("deactivate");
    store.set_verified(&id, true).await.expect("verify");

    let user = store.find_by_id(&id).await.expect("find").expect("exists");
    assert_eq!(
        user.password_hash(),
        Some("hash-2"),
        "set_password_hash persists"
    );
    assert_eq!(
        user.last_login().map(OffsetDateTime::unix_timestamp),
        Some(super::START),
        "record_login persists the instant (to the second at least)"
    );
    assert!(!user.is_active(), "set_active(false) persists");
    assert!(user.is_verified(), "set_verified(true) persists");

    store.set_active(&id, true).await.expect("reactivate");
    assert!(
        store
            .find_by_id(&id)
            .await
            .expect("find")
            .expect("exists")
            .is_active(),
        "set_active(true) persists"
    );
}

async fn unknown_ids<S: UserStore>(store: &S) {
    let ghost = UserId::new("999999999");
    assert!(
        store.find_by_id(&ghost).await.expect("lookup").is_none(),
        "an unknown id finds nobody"
    );
    for (name, result) in [
        (
            "set_password_hash",
            store.set_password_hash(&ghost, "h").await,
        ),
        (
            "record_login",
            store.record_login(&ghost, OffsetDateTime::UNIX_EPOCH).await,
        ),
        ("set_active", store.set_active(&ghost, false).await),
        ("set_verified", store.set_verified(&ghost, true).await),
    ] {
        assert!(
            matches!(result, Err(Error::UserNotFound)),
            "{name} on an unknown id is UserNotFound, got {result:?}"
        );
    }
}

async fn concurrent_registration<S: UserStore>(store: Arc<S>) {
    let email = format!("{}@example.com", unique("race"));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = Arc::clone(&store);
        let email = email.clone();
        tasks.push(tokio::spawn(async move {
            store.create(NewUser::new(email)).await
        }));
    }
    let mut created = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => created += 1,
            Err(Error::EmailTaken) => {}
            Err(other) => panic!("a losing concurrent create must be EmailTaken, got {other:?}"),
        }
    }
    assert_eq!(
        created, 1,
        "20 concurrent creates of one email make exactly one user"
    );
}
