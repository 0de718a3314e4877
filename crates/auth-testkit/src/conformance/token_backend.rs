use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use auth_service::{
    AllowAll, Claims, Error, FixedClock, IssueRequest, MAX_TOKEN_LENGTH, RefreshGuard,
    RotateOutcome, RotateRequest, TokenBackend, TokenKind, TokenLifetimes, UserId, async_trait,
};

use super::START;

fn lifetimes() -> TokenLifetimes {
    // access 60 s, refresh 100 s, absolute 150 s: small numbers make the expiry cases clear.
    TokenLifetimes::new(
        Duration::from_secs(60),
        Duration::from_secs(100),
        Duration::from_secs(150),
    )
    .expect("valid lifetimes")
}

fn request(user: &str) -> IssueRequest {
    IssueRequest::new(UserId::new(user)).with_lifetimes(lifetimes())
}

/// Without a reuse window: the general suite checks that any second use is reuse
/// ([`refresh_reuse_window`] covers the window).
fn rotate_request() -> RotateRequest {
    RotateRequest::new()
        .with_lifetimes(lifetimes())
        .with_reuse_window(Duration::ZERO)
}

fn unsupported<T>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Unsupported(_)))
}

/// Runs the [`TokenBackend`] suite: kinds never mix, expiry by the clock, rotation with reuse
/// detection and absolute lifetime, extra claims surviving refresh, revocation of a session and
/// of all sessions, session listing (where supported), the guard, 100 concurrent rotations with
/// exactly one winner, bounded input, and cleanup.
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().build().unwrap().block_on(async {
/// auth_testkit::conformance::token_backend(|clock| async move {
///     auth_service::MemoryTokenBackend::new().with_clock(clock)
/// }).await;
/// # });
/// ```
///
/// # Panics
///
/// When the backend breaks a promise of the trait.
pub async fn token_backend<B, F, Fut>(make: F)
where
    B: TokenBackend,
    F: Fn(FixedClock) -> Fut,
    Fut: Future<Output = B>,
{
    let fresh = || async {
        let clock = FixedClock::from_unix(START);
        let backend = make(clock.clone()).await;
        (clock, backend)
    };
    let (_, b) = fresh().await;
    issue_and_verify(&b).await;
    let (clock, b) = fresh().await;
    expiry(&clock, &b).await;
    let (_, b) = fresh().await;
    rotation_and_reuse(&b).await;
    let (_, b) = fresh().await;
    extra_claims_survive(&b).await;
    let (clock, b) = fresh().await;
    absolute_lifetime(&clock, &b).await;
    let (_, b) = fresh().await;
    revoke_session(&b).await;
    let (_, b) = fresh().await;
    revoke_all(&b).await;
    let (_, b) = fresh().await;
    guard_refusal(&b).await;
    let (_, b) = fresh().await;
    concurrent_rotation(Arc::new(b)).await;
    let (clock, b) = fresh().await;
    cleanup(&clock, &b).await;
}

async fn issue_and_verify<B: TokenBackend>(b: &B) {
    let pair = b.issue(&request("7")).await.expect("issue");
    let access = pair.access_token.expose_secret();
    let refresh = pair.refresh_token.expose_secret();
    assert_ne!(access, refresh, "the two tokens differ");

    let claims = b
        .verify(access, TokenKind::Access)
        .await
        .expect("verify access");
    assert_eq!(claims.sub, "7", "sub is the user id");
    assert_eq!(claims.kind, TokenKind::Access);
    assert_eq!(claims.iat, START, "iat comes from the clock");
    assert_eq!(claims.exp, START + 60, "exp is iat + access lifetime");
    assert!(!claims.jti.is_empty(), "every token has a jti");
    assert_eq!(pair.access_expires_at.unix_timestamp(), START + 60);
    assert_eq!(pair.refresh_expires_at.unix_timestamp(), START + 100);

    let rclaims = b
        .verify(refresh, TokenKind::Refresh)
        .await
        .expect("verify refresh");
    assert_eq!(rclaims.kind, TokenKind::Refresh);
    assert_ne!(rclaims.jti, claims.jti, "jtis are unique");
    assert!(
        rclaims.family.is_some(),
        "refresh tokens carry their family"
    );

    for (token, kind, what) in [
        (
            access,
            TokenKind::Refresh,
            "an access token used as refresh",
        ),
        (refresh, TokenKind::Access, "a refresh token used as access"),
        ("garbage", TokenKind::Access, "garbage"),
        ("", TokenKind::Access, "an empty token"),
    ] {
        let r = b.verify(token, kind).await;
        assert!(
            matches!(r, Err(Error::TokenInvalid)),
            "{what} is TokenInvalid, got {r:?}"
        );
    }
    let huge = "a".repeat(MAX_TOKEN_LENGTH + 1);
    let r = b.verify(&huge, TokenKind::Access).await;
    assert!(
        matches!(r, Err(Error::TokenInvalid)),
        "an over-long token is TokenInvalid"
    );
    let mut tampered = access.to_owned();
    let last = tampered.pop().expect("non-empty");
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let r = b.verify(&tampered, TokenKind::Access).await;
    assert!(
        matches!(r, Err(Error::TokenInvalid)),
        "a tampered token is TokenInvalid, got {r:?}"
    );

    let other = b.issue(&request("8")).await.expect("issue");
    assert_ne!(
        other.access_token.expose_secret(),
        access,
        "tokens are unique across issues"
    );
}

async fn expiry<B: TokenBackend>(clock: &FixedClock, b: &B) {
    let pair = b.issue(&request("7")).await.expect("issue");
    clock.advance(Duration::from_secs(59));
    b.verify(pair.access_token.expose_secret(), TokenKind::Access)
        .await
        .expect("valid just before expiry");
    clock.advance(Duration::from_secs(2));
    let r = b
        .verify(pair.access_token.expose_secret(), TokenKind::Access)
        .await;
    assert!(
        matches!(r, Err(Error::TokenExpired)),
        "an expired access token is TokenExpired, got {r:?}"
    );
    b.verify(pair.refresh_token.expose_secret(), TokenKind::Refresh)
        .await
        .expect("the refresh token outlives the access token");
    clock.advance(Duration::from_secs(40));
    let r = b
        .verify(pair.refresh_token.expose_secret(), TokenKind::Refresh)
        .await;
    assert!(
        matches!(r, Err(Error::TokenExpired)),
        "an expired refresh token is TokenExpired, got {r:?}"
    );
    let r = b
        .rotate(
            pair.refresh_token.expose_secret(),
            &rotate_request(),
            &AllowAll,
        )
        .await;
    assert!(
        matches!(r, Err(Error::TokenExpired)),
        "an expired refresh token cannot rotate, got {r:?}"
    );
}

async fn rotated<B: TokenBackend>(b: &B, refresh: &str) -> (Claims, auth_service::TokenPair) {
    match b.rotate(refresh, &rotate_request(), &AllowAll).await {
        Ok(RotateOutcome::Rotated { previous, pair }) => (previous, pair),
        other => panic!("a fresh refresh token rotates, got {other:?}"),
    }
}

async fn rotation_and_reuse<B: TokenBackend>(b: &B) {
    let first = b.issue(&request("7")).await.expect("issue");
    let (previous, second) = rotated(b, first.refresh_token.expose_secret()).await;
    assert_eq!(
        previous.sub, "7",
        "rotation reports the consumed token's claims"
    );
    let family = previous.family.clone().expect("family");
    let new_claims = b
        .verify(second.access_token.expose_secret(), TokenKind::Access)
        .await
        .expect("the new access token works");
    assert_eq!(
        new_claims.family.as_deref(),
        Some(family.as_str()),
        "rotation stays in the family"
    );

    let r = b
        .verify(first.access_token.expose_secret(), TokenKind::Access)
        .await;
    assert!(
        matches!(r, Err(Error::TokenRevoked)),
        "the access token issued with a rotated refresh token is revoked, got {r:?}"
    );
    let r = b
        .verify(first.refresh_token.expose_secret(), TokenKind::Refresh)
        .await;
    assert!(
        matches!(r, Err(Error::TokenRevoked)),
        "a rotated refresh token is revoked, got {r:?}"
    );

    match b
        .rotate(
            first.refresh_token.expose_secret(),
            &rotate_request(),
            &AllowAll,
        )
        .await
    {
        Ok(RotateOutcome::Reused { user_id, family: f }) => {
            assert_eq!(user_id.as_str(), "7");
            assert_eq!(f, family, "reuse names the family");
        }
        other => panic!("presenting a rotated refresh token again is reuse, got {other:?}"),
    }
    for (token, kind) in [
        (second.access_token.expose_secret(), TokenKind::Access),
        (second.refresh_token.expose_secret(), TokenKind::Refresh),
    ] {
        let r = b.verify(token, kind).await;
        assert!(
            matches!(r, Err(Error::TokenRevoked)),
            "reuse revokes the whole family, including the newest {kind} token; got {r:?}"
        );
    }
    let r = b
        .rotate(
            second.refresh_token.expose_secret(),
            &rotate_request(),
            &AllowAll,
        )
        .await;
    assert!(
        matches!(
            r,
            Err(Error::TokenRevoked) | Ok(RotateOutcome::Reused { .. })
        ),
        "a revoked family cannot rotate, got {r:?}"
    );
    let r = b
        .rotate(
            first.access_token.expose_secret(),
            &rotate_request(),
            &AllowAll,
        )
        .await;
    assert!(
        matches!(r, Err(Error::TokenInvalid | Error::TokenRevoked)),
        "an access token cannot be used to rotate, got {r:?}"
    );
}

async fn extra_claims_survive<B: TokenBackend>(b: &B) {
    let mut extra = auth_service::ExtraClaims::new();
    extra.insert("tenant".into(), "acme".into());
    extra.insert("roles".into(), serde_json::json!(["admin", "ops"]));
    let pair = b
        .issue(&request("7").with_extra(extra.clone()))
        .await
        .expect("issue");
    let claims = b
        .verify(pair.access_token.expose_secret(), TokenKind::Access)
        .await
        .expect("verify");
    assert_eq!(
        claims.extra.as_ref(),
        Some(&extra),
        "extra claims are on the access token"
    );
    let (_, next) = rotated(b, pair.refresh_token.expose_secret()).await;
    let claims = b
        .verify(next.access_token.expose_secret(), TokenKind::Access)
        .await
        .expect("verify");
    assert_eq!(
        claims.extra.as_ref(),
        Some(&extra),
        "extra claims survive refresh"
    );
}

async fn absolute_lifetime<B: TokenBackend>(clock: &FixedClock, b: &B) {
    let pair = b.issue(&request("7")).await.expect("issue");
    clock.advance(Duration::from_secs(90));
    let (_, second) = rotated(b, pair.refresh_token.expose_secret()).await;
    assert_eq!(
        second.refresh_expires_at.unix_timestamp(),
        START + 150,
        "refresh never extends past the absolute lifetime (min(now + refresh, login + absolute))"
    );
    clock.advance(Duration::from_secs(61));
    let r = b
        .rotate(
            second.refresh_token.expose_secret(),
            &rotate_request(),
            &AllowAll,
        )
        .await;
    assert!(
        matches!(r, Err(Error::TokenExpired)),
        "past the absolute lifetime rotation fails, got {r:?}"
    );
}

async fn revoke_session<B: TokenBackend>(b: &B) {
    let a = b.issue(&request("7")).await.expect("issue");
    let other = b.issue(&request("7")).await.expect("issue");
    b.revoke(a.access_token.expose_secret())
        .await
        .expect("revoke");
    for (token, kind) in [
        (a.access_token.expose_secret(), TokenKind::Access),
        (a.refresh_token.expose_secret(), TokenKind::Refresh),
    ] {
        let r = b.verify(token, kind).await;
        assert!(
            matches!(r, Err(Error::TokenRevoked)),
            "revoking the access token ends its pair ({kind}), got {r:?}"
        );
    }
    b.verify(other.access_token.expose_secret(), TokenKind::Access)
        .await
        .expect("other sessions survive a logout");

    let c = b.issue(&request("7")).await.expect("issue");
    b.revoke(c.refresh_token.expose_secret())
        .await
        .expect("revoke by refresh token");
    let r = b
        .verify(c.access_token.expose_secret(), TokenKind::Access)
        .await;
    assert!(
        matches!(r, Err(Error::TokenRevoked)),
        "revoking the refresh token ends its pair, got {r:?}"
    );
    b.revoke("unknown-token")
        .await
        .expect("revoking an unknown token is a no-op");
    b.revoke(a.access_token.expose_secret())
        .await
        .expect("revoking twice is a no-op");
}

async fn revoke_all<B: TokenBackend>(b: &B) {
    let keep = b.issue(&request("7")).await.expect("issue");
    let lose = b.issue(&request("7")).await.expect("issue");
    let stranger = b.issue(&request("8")).await.expect("issue");
    let keep_id = b
        .verify(keep.access_token.expose_secret(), TokenKind::Access)
        .await
        .expect("verify")
        .family
        .expect("family");

    let listed = b.sessions(&UserId::new("7")).await;
    let has_sessions = !unsupported(&listed);
    if has_sessions {
        let sessions = listed.expect("sessions");
        assert_eq!(sessions.len(), 2, "two live sessions are listed");
        assert!(
            sessions.iter().any(|s| s.id == keep_id),
            "session ids are family ids"
        );
        assert!(
            !b.revoke_session(&UserId::new("8"), &keep_id)
                .await
                .expect("revoke_session"),
            "a user cannot end another user's session"
        );
    }

    let ended = b
        .revoke_all(&UserId::new("7"), Some(&keep_id))
        .await
        .expect("revoke_all");
    // Backends that know their sessions (a session table, or a revocation store tracking
    // them) report exactly how many ended; only a backend that cannot count answers 0.
    if has_sessions || ended != 0 {
        assert_eq!(ended, 1, "revoke_all reports how many sessions ended");
    }
    b.verify(keep.access_token.expose_secret(), TokenKind::Access)
        .await
        .expect("the kept session survives");
    let r = b
        .verify(lose.refresh_token.expose_secret(), TokenKind::Refresh)
        .await;
    assert!(
        matches!(r, Err(Error::TokenRevoked)),
        "the other sessions end, got {r:?}"
    );
    b.verify(stranger.access_token.expose_secret(), TokenKind::Access)
        .await
        .expect("other users are untouched");

    b.revoke_all(&UserId::new("7"), None)
        .await
        .expect("revoke_all");
    let r = b
        .verify(keep.access_token.expose_secret(), TokenKind::Access)
        .await;
    assert!(
        matches!(r, Err(Error::TokenRevoked)),
        "revoke_all without keep ends everything, got {r:?}"
    );
    if has_sessions {
        assert!(
            b.sessions(&UserId::new("7"))
                .await
                .expect("sessions")
                .is_empty(),
            "no session is listed after revoke_all"
        );
        let s = b.issue(&request("9")).await.expect("issue");
        let id = b
            .verify(s.access_token.expose_secret(), TokenKind::Access)
            .await
            .expect("verify")
            .family
            .expect("family");
        assert!(
            b.revoke_session(&UserId::new("9"), &id)
                .await
                .expect("revoke_session")
        );
        let r = b
            .verify(s.access_token.expose_secret(), TokenKind::Access)
            .await;
        assert!(
            matches!(r, Err(Error::TokenRevoked)),
            "revoke_session ends the session, got {r:?}"
        );
    }
}

struct Refuse(AtomicUsize);

#[async_trait]
impl RefreshGuard for Refuse {
    async fn allow(&self, claims: &Claims) -> Result<(), Error> {
        assert_eq!(
            claims.sub, "7",
            "the guard sees the consumed token's claims"
        );
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Error::InactiveUser)
    }
}

async fn guard_refusal<B: TokenBackend>(b: &B) {
    let pair = b.issue(&request("7")).await.expect("issue");
    let guard = Refuse(AtomicUsize::new(0));
    let r = b
        .rotate(
            pair.refresh_token.expose_secret(),
            &rotate_request(),
            &guard,
        )
        .await;
    assert!(
        matches!(r, Err(Error::InactiveUser)),
        "the guard's refusal is returned as is, got {r:?}"
    );
    assert_eq!(guard.0.load(Ordering::SeqCst), 1, "the guard runs once");
    b.verify(pair.refresh_token.expose_secret(), TokenKind::Refresh)
        .await
        .expect("a refused rotation changes nothing: the token is still valid");
    let r = b
        .rotate(
            pair.refresh_token.expose_secret(),
            &rotate_request(),
            &AllowAll,
        )
        .await;
    assert!(
        matches!(r, Ok(RotateOutcome::Rotated { .. })),
        "once allowed, the token rotates, got {r:?}"
    );
}

async fn concurrent_rotation<B: TokenBackend>(b: Arc<B>) {
    let pair = b.issue(&request("7")).await.expect("issue");
    let token = pair.refresh_token.expose_secret().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let b = Arc::clone(&b);
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            b.rotate(&token, &rotate_request(), &AllowAll).await
        }));
    }
    let mut rotated = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(RotateOutcome::Rotated { .. }) => rotated += 1,
            Ok(RotateOutcome::Reused { .. }) | Err(Error::TokenRevoked) => {}
            Err(other) => {
                panic!("a losing concurrent rotation is reuse or TokenRevoked, got {other:?}")
            }
        }
    }
    assert_eq!(
        rotated, 1,
        "of 100 concurrent rotations of one token exactly one succeeds"
    );
}

async fn cleanup<B: TokenBackend>(clock: &FixedClock, b: &B) {
    let live = b.issue(&request("7")).await.expect("issue");
    let logged_out = b.issue(&request("8")).await.expect("issue");
    // A revocation, so a stateless backend has state to clean up too.
    b.revoke(logged_out.access_token.expose_secret())
        .await
        .expect("revoke");
    clock.advance(Duration::from_secs(151));
    let fresh = b.issue(&request("9")).await.expect("issue");
    let removed = b.cleanup_expired().await.expect("cleanup");
    assert!(
        removed > 0,
        "cleanup removes expired records and counts them"
    );
    let r = b
        .verify(live.refresh_token.expose_secret(), TokenKind::Refresh)
        .await;
    assert!(r.is_err(), "expired tokens stay invalid after cleanup");
    b.verify(fresh.access_token.expose_secret(), TokenKind::Access)
        .await
        .expect("cleanup keeps live tokens");
    assert_eq!(
        b.cleanup_expired().await.expect("cleanup"),
        0,
        "a second cleanup finds nothing"
    );
}

/// Runs the reuse-window suite for a [`TokenBackend`] that tolerates its own racing client
/// ([`RotateRequest::reuse_window`]): 30 concurrent rotations of one refresh token within the
/// window all succeed with the same successor and leave one live session; presenting the
/// token again after the successor was used, after the window, with the window off, or after
/// a logout still counts as reuse and ends the session.
///
/// ```no_run
/// // In a backend's tests: `make` builds a fresh backend on the given clock (the JWT backend
/// // runs it over each revocation store, the SQL and Redis opaque backends with a successor key).
/// async fn run<B, F>(make: F)
/// where
///     B: auth_service::TokenBackend,
///     F: Fn(auth_service::FixedClock) -> std::future::Ready<B>,
/// {
///     auth_testkit::conformance::refresh_reuse_window(make).await;
/// }
/// # let _ = run::<auth_service::MemoryTokenBackend, fn(auth_service::FixedClock) -> std::future::Ready<auth_service::MemoryTokenBackend>>;
/// ```
///
/// # Panics
///
/// When the backend breaks a promise of the trait.
pub async fn refresh_reuse_window<B, F, Fut>(make: F)
where
    B: TokenBackend,
    F: Fn(FixedClock) -> Fut,
    Fut: Future<Output = B>,
{
    let window = |secs| rotate_request().with_reuse_window(Duration::from_secs(secs));
    let fresh = || async {
        let clock = FixedClock::from_unix(START);
        let backend = Arc::new(make(clock.clone()).await);
        (clock, backend)
    };
    let refresh_of = |r: Result<RotateOutcome, Error>, what: &str| match r {
        Ok(RotateOutcome::Rotated { pair, .. }) => pair,
        other => panic!("{what}: expected a rotation, got {other:?}"),
    };
    let reused = |r: &Result<RotateOutcome, Error>| {
        matches!(
            r,
            Ok(RotateOutcome::Reused { .. }) | Err(Error::TokenRevoked)
        )
    };

    // 30 racing rotations of one token: every one gets working tokens, all the same successor.
    let (clock, b) = fresh().await;
    let first = b.issue(&request("7")).await.expect("issue");
    let token = first.refresh_token.expose_secret().to_owned();
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let b = Arc::clone(&b);
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            b.rotate(&token, &window(10), &AllowAll).await
        }));
    }
    let mut successors = Vec::new();
    for task in tasks {
        let pair = refresh_of(
            task.await.expect("task"),
            "a racing rotation within the window",
        );
        let access = b
            .verify(pair.access_token.expose_secret(), TokenKind::Access)
            .await
            .expect("every racing client's access token works");
        let refresh = b
            .verify(pair.refresh_token.expose_secret(), TokenKind::Refresh)
            .await
            .expect("every racing client's refresh token works");
        successors.push((access.jti, refresh.jti, pair));
    }
    assert!(
        successors
            .iter()
            .all(|(a, r, _)| *a == successors[0].0 && *r == successors[0].1),
        "every racing client receives the same successor"
    );
    if let Ok(sessions) = b.sessions(&UserId::new("7")).await {
        assert_eq!(sessions.len(), 1, "racing rotations leave one live session");
    }
    // A moment later, still inside the window, the token comes again: the same successor.
    clock.advance(Duration::from_secs(3));
    let late = refresh_of(
        b.rotate(&token, &window(10), &AllowAll).await,
        "a second use within the window",
    );
    let late_claims = b
        .verify(late.refresh_token.expose_secret(), TokenKind::Refresh)
        .await
        .expect("the successor again");
    assert_eq!(late_claims.jti, successors[0].1, "the same successor");
    // The chain moves on: the successor is used. The first token again is a replay.
    let (_, _, successor) = &successors[0];
    let third = refresh_of(
        b.rotate(
            successor.refresh_token.expose_secret(),
            &window(10),
            &AllowAll,
        )
        .await,
        "the successor rotates",
    );
    let r = b.rotate(&token, &window(10), &AllowAll).await;
    assert!(
        reused(&r),
        "once its successor was used, the token again is reuse, got {r:?}"
    );
    let r = b
        .verify(third.access_token.expose_secret(), TokenKind::Access)
        .await;
    assert!(
        matches!(r, Err(Error::TokenRevoked)),
        "reuse after the successor was used ends the session, got {r:?}"
    );

    // After the window: reuse.
    let (clock, b) = fresh().await;
    let first = b.issue(&request("7")).await.expect("issue");
    let second = refresh_of(
        b.rotate(first.refresh_token.expose_secret(), &window(10), &AllowAll)
            .await,
        "a fresh token rotates",
    );
    clock.advance(Duration::from_secs(11));
    let r = b
        .rotate(first.refresh_token.expose_secret(), &window(10), &AllowAll)
        .await;
    assert!(
        reused(&r),
        "after the window a second use is reuse, got {r:?}"
    );
    let r = b
        .verify(second.refresh_token.expose_secret(), TokenKind::Refresh)
        .await;
    assert!(
        matches!(r, Err(Error::TokenRevoked)),
        "reuse after the window ends the session, got {r:?}"
    );

    // The window off: reuse at once.
    let (_, b) = fresh().await;
    let first = b.issue(&request("7")).await.expect("issue");
    refresh_of(
        b.rotate(first.refresh_token.expose_secret(), &window(0), &AllowAll)
            .await,
        "a fresh token rotates",
    );
    let r = b
        .rotate(first.refresh_token.expose_secret(), &window(0), &AllowAll)
        .await;
    assert!(
        reused(&r),
        "with no window a second use is reuse, got {r:?}"
    );

    // Logged out in between: nothing comes back.
    let (_, b) = fresh().await;
    let first = b.issue(&request("7")).await.expect("issue");
    let second = refresh_of(
        b.rotate(first.refresh_token.expose_secret(), &window(10), &AllowAll)
            .await,
        "a fresh token rotates",
    );
    b.revoke(second.refresh_token.expose_secret())
        .await
        .expect("logout");
    let r = b
        .rotate(first.refresh_token.expose_secret(), &window(10), &AllowAll)
        .await;
    assert!(
        !matches!(r, Ok(RotateOutcome::Rotated { .. })),
        "a logged-out session does not come back through the window, got {r:?}"
    );
}
