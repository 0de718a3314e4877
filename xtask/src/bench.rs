//! `cargo xtask bench`: the in-memory stack, each operation against the raw work it wraps.
//!
//! Figures are medians of several rounds; ratios (operation / raw) show the overhead the library
//! adds. It re-runs itself in release mode so the numbers mean something.

use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use auth_hash::{Argon2Hasher, Argon2Params};
use auth_service::{
    AuthConfig, AuthService, EventBus, MemoryTokenBackend, MemoryUserStore, NewUser,
    PasswordHasher, PasswordHashing, S2SService, UserStore,
};

const PASSWORD: &str = "violet-otter-sings-42";

pub(crate) fn run() -> Result<(), String> {
    // `cargo xtask bench stack` runs only the default-stack HTTP figures, `bench redis` only
    // the Redis ones, `bench db` only the SQL ones (tokens and API keys).
    let only = std::env::args().nth(2);
    if cfg!(debug_assertions) {
        // The server benches run the release binary as a user would.
        super::run(
            "build the release auth-server",
            super::cargo().args(["build", "--quiet", "--release", "--package", "auth-server"]),
        )?;
        // Re-run in release: debug timings are meaningless.
        let mut args = vec![
            "run",
            "--quiet",
            "--release",
            "--package",
            "xtask",
            "--",
            "bench",
        ];
        if let Some(only) = only.as_deref() {
            args.push(only);
        }
        if std::env::args().any(|a| a == "--chart") {
            args.push("--chart");
        }
        return super::run("bench (release)", super::cargo().args(args));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    if only.as_deref() == Some("redis") {
        return rt
            .block_on(crate::bench_redis::run())
            .map_err(|e| e.to_string());
    }
    if only.as_deref() == Some("peer") {
        return rt
            .block_on(crate::bench_peer::run())
            .map_err(|e| e.to_string());
    }
    if only.as_deref() == Some("db") {
        return rt
            .block_on(crate::bench_db::run())
            .map_err(|e| e.to_string());
    }
    if only.as_deref() == Some("scale") {
        return rt
            .block_on(crate::bench_scale::run())
            .map_err(|e| e.to_string());
    }
    if only.as_deref() == Some("soak") {
        return rt
            .block_on(crate::bench_soak::run())
            .map_err(|e| e.to_string());
    }
    if only.as_deref() == Some("flood") {
        return rt
            .block_on(crate::bench_http::login_under_flood())
            .map_err(|e| e.to_string());
    }
    if only.as_deref() == Some("stack") {
        return rt
            .block_on(crate::bench_server::run())
            .map_err(|e| e.to_string());
    }
    rt.block_on(async {
        crate::bench_http::run()
            .await
            .map_err(|e| auth_service::Error::Unsupported(e.into()))?;
        crate::bench_db::run().await?;
        crate::bench_redis::run()
            .await
            .map_err(|e| auth_service::Error::Unsupported(e.into()))?;
        jwt().await?;
        mfa().await?;
        signing().await?;
        hashers().await?;
        stack().await
    })
    .map_err(|e| e.to_string())
}

/// Median time per call of `f`, over `rounds` rounds of `n` calls.
async fn per_call<F, Fut, T>(n: u32, rounds: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            black_box(f().await);
        }
        samples.push(t.elapsed() / n);
    }
    samples.sort();
    samples[rounds / 2]
}

/// Fastest rounds of `op` and `raw` per call, measured in alternating rounds so that drift in
/// the machine's speed affects both alike. The minimum estimates the intrinsic cost of CPU-bound
/// work; medians on a shared two-core machine swing by 15% from run to run.
pub(crate) async fn paired<R, RF, O, OF, A, B>(
    n: u32,
    rounds: usize,
    mut raw: R,
    mut op: O,
) -> (Duration, Duration)
where
    R: FnMut() -> RF,
    RF: Future<Output = A>,
    O: FnMut() -> OF,
    OF: Future<Output = B>,
{
    let (mut raws, mut ops) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..n {
            black_box(raw().await);
        }
        raws.push(t.elapsed() / n);
        let t = Instant::now();
        for _ in 0..n {
            black_box(op().await);
        }
        ops.push(t.elapsed() / n);
    }
    raws.sort();
    ops.sort();
    (ops[0], raws[0])
}

pub(crate) fn row(name: &str, op: Duration, raw_name: &str, raw: Duration) {
    println!(
        "{name:<34} {:>11.2?}   {raw_name:<34} {:>11.2?}   ratio {:>7.3}",
        op,
        raw,
        op.as_secs_f64() / raw.as_secs_f64()
    );
}

/// JWT verification against its floor: ring HMAC-SHA256 over the signing input, base64url
/// decode and a JSON parse of the payload.
async fn jwt() -> auth_service::Result<()> {
    use auth_service::{IssueRequest, TokenBackend, TokenKind, UserId};
    use auth_tokens_jwt::{Algorithm, JwtBackend};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    println!("auth-tokens-jwt (HS256) against raw ring HMAC + base64url decode + JSON parse\n");
    let secret = "bench-jwt-secret-0123456789abcdef0123";
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let stateless = JwtBackend::try_hmac(Algorithm::HS256, secret)?.insecure_without_revocation();
    let revocable = JwtBackend::try_hmac(Algorithm::HS256, secret)?;
    let pair = revocable
        .issue(&IssueRequest::new(UserId::new("42")))
        .await?;
    let token = pair.access_token.expose_secret().to_owned();
    let (input, signature) = token.rsplit_once('.').unwrap_or_default();
    let (input, signature) = (input.to_owned(), signature.to_owned());
    let payload = input.split('.').nth(1).unwrap_or_default().to_owned();
    let raw = || async {
        let sig = URL_SAFE_NO_PAD
            .decode(black_box(&signature))
            .unwrap_or_default();
        let ok = ring::hmac::verify(&key, black_box(input.as_bytes()), &sig).is_ok();
        let json = URL_SAFE_NO_PAD.decode(&payload).unwrap_or_default();
        (
            ok,
            serde_json::from_slice::<serde_json::Value>(&json).is_ok(),
        )
    };
    // First use of each token: signature and claims verified (distinct tokens, so the
    // verified-token cache never answers).
    let fresh = JwtBackend::try_hmac(Algorithm::HS256, secret)?.insecure_without_revocation();
    let mut tokens = Vec::with_capacity(40_000);
    for _ in 0..40_000 {
        let pair = fresh.issue(&IssueRequest::new(UserId::new("42"))).await?;
        tokens.push(pair.access_token.expose_secret().to_owned());
    }
    let next = std::cell::Cell::new(0usize);
    let (op, base) = paired(2_000, 15, raw, || {
        let i = next.get();
        next.set((i + 1) % tokens.len());
        fresh.verify(black_box(&tokens[i]), TokenKind::Access)
    })
    .await;
    row(
        "JwtBackend::verify (first use)",
        op,
        "HMAC + b64 + JSON parse",
        base,
    );
    let (op, base) = paired(20_000, 15, raw, || {
        stateless.verify(black_box(&token), TokenKind::Access)
    })
    .await;
    row(
        "JwtBackend::verify (repeat, no revocation)",
        op,
        "HMAC + b64 + JSON parse",
        base,
    );
    let (op, base) = paired(20_000, 15, raw, || {
        revocable.verify(black_box(&token), TokenKind::Access)
    })
    .await;
    row(
        "JwtBackend::verify (repeat, memory revocation)",
        op,
        "HMAC + b64 + JSON parse",
        base,
    );
    let t = Instant::now();
    let n = 20_000u32;
    for _ in 0..n {
        black_box(
            revocable
                .issue(&IssueRequest::new(UserId::new("42")))
                .await?,
        );
    }
    let per = t.elapsed() / n;
    println!(
        "JwtBackend::issue (pair)              {per:>11.2?}   {:>9.0} pairs/s",
        1.0 / per.as_secs_f64()
    );
    println!();
    Ok(())
}

/// auth-sign against ring's HMAC-SHA256 over the same bytes (plus the base64url both need).
async fn signing() -> auth_service::Result<()> {
    use auth_sign::{OneTimeTokens, Signer, TimestampSigner};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    println!("auth-sign against raw ring HMAC-SHA256 + base64url of the same bytes\n");
    let secret = "bench-signing-secret-0123456789abcdef";
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let signer = Signer::new(secret).map_err(auth_service::Error::from)?;
    let value = "user:42";
    let raw_sign = || async {
        let tag = ring::hmac::sign(&key, black_box(value).as_bytes());
        format!("{value}:{}", URL_SAFE_NO_PAD.encode(tag))
    };
    let (op, raw) = paired(20_000, 15, raw_sign, || async {
        signer.sign(black_box(value))
    })
    .await;
    row("Signer::sign", op, "ring HMAC + base64url", raw);
    let signed = signer.sign(value);
    let (op, raw) = paired(20_000, 15, raw_sign, || async {
        signer.unsign(black_box(&signed))
    })
    .await;
    row("Signer::unsign", op, "ring HMAC + base64url", raw);

    let ts = TimestampSigner::new(secret).map_err(auth_service::Error::from)?;
    let stamped = ts.sign(value);
    let (body, _) = stamped.rsplit_once(':').unwrap_or_default();
    let body = body.to_owned();
    let raw_ts = || async {
        let tag = ring::hmac::sign(&key, black_box(body.as_str()).as_bytes());
        format!("{body}:{}", URL_SAFE_NO_PAD.encode(tag))
    };
    let (op, raw) = paired(20_000, 15, raw_ts, || async { ts.sign(black_box(value)) }).await;
    row("TimestampSigner::sign", op, "ring HMAC + base64url", raw);
    let max_age = Some(Duration::from_secs(3600));
    let (op, raw) = paired(20_000, 15, raw_ts, || async {
        ts.unsign(black_box(&stamped), max_age)
    })
    .await;
    row(
        "TimestampSigner::unsign (max_age)",
        op,
        "ring HMAC + base64url",
        raw,
    );

    let tokens = OneTimeTokens::new(secret, "password-reset", Duration::from_secs(3600))
        .map_err(auth_service::Error::from)?;
    let user = auth_service::User::new(auth_service::UserId::new("42"), "alice@example.com")
        .with_password_hash("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA");
    let token = tokens.make(&user);
    let (op, raw) = paired(20_000, 15, raw_ts, || async {
        tokens.check(black_box(&token), &user)
    })
    .await;
    row(
        "OneTimeTokens::check (reset link)",
        op,
        "ring HMAC + base64url",
        raw,
    );
    println!();
    Ok(())
}

/// Argon2Hasher against the argon2 crate called directly, at our default and tortoise-auth's
/// parameters: the wrapper's overhead.
async fn hashers() -> auth_service::Result<()> {
    println!(
        "auth-hash: Argon2Hasher against the argon2 crate directly (fastest of alternating rounds)\n"
    );
    for (name, params, rounds) in [
        ("default m=19456 t=2 p=1", Argon2Params::DEFAULT, 15),
        ("tortoise m=65536 t=3 p=4", Argon2Params::TORTOISE_AUTH, 7),
    ] {
        let ours = Argon2Hasher::new(params);
        let raw = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(
                params.memory_kib(),
                params.iterations(),
                params.parallelism(),
                Some(32),
            )
            .map_err(|e| auth_service::Error::backend("argon2 params", e))?,
        );
        let (op, base) = paired(
            2,
            rounds,
            || async {
                raw.hash_password(PASSWORD.as_bytes())
                    .map(|h| h.to_string())
            },
            || async { ours.hash(PASSWORD) },
        )
        .await;
        row(
            &format!("hash   {name}"),
            op,
            "argon2 crate hash_password",
            base,
        );
        let stored = ours.hash(PASSWORD)?;
        let parsed = argon2::PasswordHash::new(&stored)
            .map_err(|e| auth_service::Error::backend("argon2 parse", e))?;
        let (op, base) = paired(
            2,
            rounds,
            || async { raw.verify_password(PASSWORD.as_bytes(), &parsed).is_ok() },
            || async { ours.verify(PASSWORD, &stored) },
        )
        .await;
        row(
            &format!("verify {name}"),
            op,
            "argon2 crate verify_password",
            base,
        );
    }
    println!();
    Ok(())
}

async fn stack() -> auth_service::Result<()> {
    println!(
        "in-memory stack with Argon2id (m=19456 t=2 p=1), 2 worker threads; fastest of alternating rounds\n"
    );
    let hasher = Argon2Hasher::default();
    let config = AuthConfig::builder()
        .rate_limit_max_attempts(u32::MAX)
        .build()?;
    let users = MemoryUserStore::new();
    let tokens = MemoryTokenBackend::new();
    let auth = AuthService::new(config, users.clone(), hasher.clone(), tokens)?;
    auth.register("bench@example.com", PASSWORD).await?;
    let stored = users
        .find_by_email("bench@example.com")
        .await?
        .and_then(|u| u.password_hash)
        .unwrap_or_default();

    // Raw primitives against the operations wrapping them.
    let hashing = PasswordHashing::new(hasher.clone())?;
    let (op, raw) = paired(
        2,
        15,
        || async { hasher.verify(PASSWORD, &stored) },
        || hashing.verify(PASSWORD, Some(&stored)),
    )
    .await;
    row("PasswordHashing::verify", op, "Argon2Hasher::verify", raw);
    let (op, raw) = paired(
        2,
        15,
        || async { hasher.verify(PASSWORD, &stored) },
        || auth.login("bench@example.com", PASSWORD),
    )
    .await;
    row("AuthService::login", op, "Argon2Hasher::verify", raw);

    let session = auth.login("bench@example.com", PASSWORD).await?;
    let access = session.access_token().to_owned();
    let digest = || async { auth_service::random::sha256_hex(black_box(&access)) };
    let (op, raw) = paired(5_000, 25, digest, || auth.verify_access(&access)).await;
    row(
        "AuthService::verify_access",
        op,
        "SHA-256 of the token",
        raw,
    );
    let (op, raw) = paired(5_000, 25, digest, || auth.authenticate(&access)).await;
    row("AuthService::authenticate", op, "SHA-256 of the token", raw);

    // A refresh does: one digest of the presented token, two new 256-bit tokens, two digests.
    let raw_refresh = per_call(5_000, 7, || async {
        let a = auth_service::random::token(32);
        let b = auth_service::random::token(32);
        (
            auth_service::random::sha256_hex(&access),
            auth_service::random::sha256_hex(&a),
            auth_service::random::sha256_hex(&b),
        )
    })
    .await;
    // Each rotation consumes the token it is given, so thread the new one through.
    let mut current = session.refresh_token().to_owned();
    let mut samples = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..2_000 {
            let pair = auth.refresh(&current).await?;
            current = pair.refresh_token.expose_secret().to_owned();
        }
        samples.push(t.elapsed() / 2_000);
    }
    samples.sort();
    row(
        "AuthService::refresh",
        samples[3],
        "2 random tokens + 3 SHA-256",
        raw_refresh,
    );

    let s2s_token = "bench-service-token-0123456789abcdef0123";
    let s2s = S2SService::new([s2s_token], EventBus::new());
    let (op, raw) = paired(
        5_000,
        25,
        || async {
            (
                auth_service::random::sha256_hex(black_box(s2s_token)),
                auth_service::random::sha256_hex(black_box(s2s_token)),
            )
        },
        || s2s.authenticate(s2s_token, Some("svc")),
    )
    .await;
    row("S2SService::authenticate", op, "2 x SHA-256", raw);
    failure_timing(&auth, &users, &stored).await?;
    login_throughput(&auth).await;
    Ok(())
}

/// Every kind of login failure against a wrong password: they must take the same time.
async fn failure_timing(
    auth: &AuthService,
    users: &MemoryUserStore,
    stored: &str,
) -> auth_service::Result<()> {
    println!("\nlogin failure timing (median of 21, ratio against a wrong password)");
    let inactive = users
        .create(NewUser::new("inactive@example.com").active(false))
        .await?;
    users.set_password_hash(&inactive.id, stored).await?;
    users
        .create(NewUser::new("unusable@example.com").with_password_hash("!unusable"))
        .await?;
    let long = "x".repeat(5000);
    let cases = [
        ("wrong password", "bench@example.com", "wrong"),
        ("missing user", "missing@example.com", PASSWORD),
        ("inactive user", "inactive@example.com", PASSWORD),
        ("unusable password", "unusable@example.com", PASSWORD),
        ("over-long password", "bench@example.com", long.as_str()),
    ];
    let mut base = None;
    for (name, email, password) in cases {
        let d = per_call(1, 21, || auth.login(email, password)).await;
        let b = *base.get_or_insert(d);
        println!(
            "  {name:<22} {d:>10.2?}   ratio {:.3}",
            d.as_secs_f64() / b.as_secs_f64()
        );
    }
    Ok(())
}

/// Logins from 1, 2 and 16 callers, and an unrelated task's latency meanwhile: hashing must
/// not block the runtime.
async fn login_throughput(auth: &AuthService) {
    println!(
        "\nlogin throughput (hashes bounded at {} in flight)",
        auth.parts().hashing.concurrency()
    );
    for callers in [1usize, 2, 16] {
        let per_caller = (48 / callers).max(3);
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..callers {
            let auth = auth.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..per_caller {
                    let _ = auth.login("bench@example.com", PASSWORD).await;
                }
            }));
        }
        // An unrelated task's latency while the flood runs: hashing must not block the runtime.
        let probe = tokio::spawn(async {
            let mut extra = Vec::new();
            for _ in 0..100 {
                let t = Instant::now();
                tokio::time::sleep(Duration::from_millis(1)).await;
                extra.push(t.elapsed().saturating_sub(Duration::from_millis(1)));
            }
            extra.sort();
            extra
        });
        for task in tasks {
            let _ = task.await;
        }
        let extra = probe.await.unwrap_or_default();
        let pct = |p: usize| {
            extra
                .get(extra.len().saturating_sub(1) * p / 100)
                .copied()
                .unwrap_or_default()
        };
        let total = u32::try_from(callers * per_caller).unwrap_or(u32::MAX);
        let elapsed = t.elapsed();
        println!(
            "  {callers:>2} callers: {:>7.1} logins/s   unrelated task extra latency p50 {:>8.2?} p99 {:>8.2?} max {:>8.2?}",
            f64::from(total) / elapsed.as_secs_f64(),
            pct(50),
            pct(99),
            pct(100)
        );
    }
}

/// TOTP against its floor: the HMAC-SHA1 computations a ±1-step check needs (three).
async fn mfa() -> auth_service::Result<()> {
    use auth_mfa::{MemoryMfaStore, Mfa, MfaConfig, SecretCipher, TotpCode, TotpSettings};

    println!("auth-mfa (TOTP SHA1, 6 digits, skew 1) against raw ring HMAC-SHA1 x3\n");
    let secret = [7u8; 20];
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret);
    let raw = || async {
        let mut out = 0u8;
        for counter in 0u64..3 {
            out ^= ring::hmac::sign(&key, black_box(&counter.to_be_bytes())).as_ref()[19];
        }
        out
    };
    let totp = TotpCode::new(&secret, TotpSettings::default())?;
    let now = 1_800_000_000u64;
    let code = totp.generate(now + 30); // the newest step in the window: checked last, the most work
    let (op, base) = paired(20_000, 15, raw, || async {
        totp.matching_step(black_box(&code), now)
    })
    .await;
    row("TotpCode::matching_step", op, "3 x HMAC-SHA1", base);

    // The whole check through Mfa: decrypt the secret (AES-GCM), match, consume the step.
    let clock = auth_service::FixedClock::from_unix(1_800_000_000);
    let store = MemoryMfaStore::new();
    let mfa = Mfa::new(
        store,
        SecretCipher::new("k1", &[9u8; 32])?,
        MfaConfig::new("Bench"),
    )?
    .with_clock(clock.clone());
    let user = auth_service::User::new(auth_service::UserId::new("1"), "bench@example.com");
    mfa.begin_enrollment(&user).await?;
    let app = mfa.authenticator(&user.id).await?;
    mfa.confirm_enrollment(&user.id, &app.generate(1_800_000_000))
        .await?;
    // Each verify consumes its step, so move the clock one step per call.
    let mut t = 1_800_000_000u64;
    let mut samples = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        for _ in 0..2_000 {
            t += 30;
            clock.set_unix(i64::try_from(t).unwrap_or(i64::MAX));
            black_box(mfa.verify(&user.id, &app.generate(t)).await?);
        }
        samples.push(start.elapsed() / 2_000);
    }
    samples.sort();
    row(
        "Mfa::verify (+ making the code)",
        samples[3],
        "3 x HMAC-SHA1",
        base,
    );
    println!();
    Ok(())
}
