//! Timing equality of login failures, measured as ratios. Ignored by default: timing on a shared
//! machine is noisy, so this reports figures rather than gating CI (`cargo xtask bench` prints
//! the same ratios). Run with `cargo test -p auth-core --test it timing -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use auth_service::{AuthConfig, NewUser, UserStore};
use auth_testkit::TestHasher;

use crate::common::{Harness, PASSWORD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "timing figures; run on demand"]
async fn login_failures_take_the_same_time() {
    let config = AuthConfig::builder()
        .rate_limit_max_attempts(1_000_000)
        .build()
        .unwrap();
    // Enough iterations that hashing dominates (a few ms per verify).
    let h = Harness::with_hasher(config, TestHasher::with_iterations(20_000));
    h.auth
        .register("active@example.com", PASSWORD)
        .await
        .unwrap();
    let inactive = h
        .auth
        .register("inactive@example.com", PASSWORD)
        .await
        .unwrap();
    h.auth.set_active(&inactive.id, false).await.unwrap();
    h.users
        .create(NewUser::new("unusable@example.com").with_password_hash("!x"))
        .await
        .unwrap();
    let long = "y".repeat(5000);
    let cases = [
        ("wrong password", "active@example.com", "wrong"),
        ("missing user", "missing@example.com", PASSWORD),
        ("inactive user", "inactive@example.com", PASSWORD),
        ("unusable password", "unusable@example.com", PASSWORD),
        ("over-long password", "active@example.com", long.as_str()),
    ];
    let mut medians = Vec::new();
    for (name, email, password) in cases {
        let mut samples: Vec<Duration> = Vec::new();
        for _ in 0..40 {
            let t = Instant::now();
            let _ = h.auth.login(email, password).await;
            samples.push(t.elapsed());
        }
        samples.sort();
        medians.push((name, samples[samples.len() / 2]));
    }
    let base = medians[0].1.as_secs_f64();
    for (name, median) in &medians {
        let ratio = median.as_secs_f64() / base;
        println!("{name:<20} median {median:>10.3?}  ratio {ratio:.3}");
        assert!((0.8..1.25).contains(&ratio), "{name} ratio {ratio:.3}");
    }
}
