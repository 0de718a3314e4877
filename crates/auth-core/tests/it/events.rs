use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use auth_core::{AuthEvent, AuthEventKind, EventBus, UserId};

fn login() -> AuthEvent {
    AuthEvent::UserLogin {
        user_id: UserId::new("1"),
        email: "a@example.com".into(),
    }
}

#[tokio::test]
async fn handlers_run_in_order_per_kind() {
    let bus = EventBus::new();
    let order = Arc::new(Mutex::new(Vec::new()));
    for i in 0..3 {
        let order = Arc::clone(&order);
        bus.on_fn(AuthEventKind::UserLogin, move |_| {
            let order = Arc::clone(&order);
            async move {
                order.lock().unwrap().push(i);
                Ok(())
            }
        });
    }
    let other = Arc::new(AtomicUsize::new(0));
    let o = Arc::clone(&other);
    bus.on_fn(AuthEventKind::UserLogout, move |_| {
        let o = Arc::clone(&o);
        async move {
            o.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    bus.emit(login()).await;
    assert_eq!(*order.lock().unwrap(), [0, 1, 2]);
    assert_eq!(
        other.load(Ordering::SeqCst),
        0,
        "handlers only see their kind"
    );
}

#[tokio::test]
async fn failing_and_panicking_handlers_do_not_stop_the_others() {
    let bus = EventBus::new();
    let ran = Arc::new(AtomicUsize::new(0));
    bus.on_fn(AuthEventKind::UserLogin, |_| async {
        Err("smtp down".into())
    });
    bus.on_fn(AuthEventKind::UserLogin, |_| async {
        panic!("handler bug");
        #[allow(unreachable_code)]
        Ok(())
    });
    let r = Arc::clone(&ran);
    bus.on_fn(AuthEventKind::UserLogin, move |_| {
        let r = Arc::clone(&r);
        async move {
            r.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    bus.emit(login()).await;
    bus.emit(login()).await;
    assert_eq!(ran.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn has_handler_tells_whether_delivery_is_possible() {
    let bus = EventBus::new();
    assert!(!bus.has_handler(AuthEventKind::VerificationCodeGenerated));
    let clone = bus.clone();
    clone.on_fn(AuthEventKind::VerificationCodeGenerated, |_| async {
        Ok(())
    });
    assert!(
        bus.has_handler(AuthEventKind::VerificationCodeGenerated),
        "clones share handlers"
    );
}

#[test]
fn every_kind_has_a_distinct_name() {
    let mut names: Vec<&str> = AuthEventKind::ALL.iter().map(|k| k.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), AuthEventKind::ALL.len());
    // The reference's 16 events keep their names.
    for name in [
        "user_login",
        "user_login_failed",
        "rate_limit_exceeded",
        "user_logout",
        "password_changed",
        "password_reset_requested",
        "password_reset_completed",
        "s2s_auth_success",
        "s2s_auth_failed",
        "onboarding_started",
        "onboarding_step_completed",
        "onboarding_step_skipped",
        "onboarding_step_failed",
        "onboarding_completed",
        "onboarding_session_expired",
        "verification_code_generated",
    ] {
        assert!(names.contains(&name), "{name}");
    }
}
