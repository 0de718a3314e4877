use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use auth_service::{AuthEvent, AuthEventKind, EventBus, UserId};

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

/// An audit store that refuses entries while `down` (a full disk, a database away).
#[derive(Clone, Default)]
struct Flaky {
    inner: auth_service::MemoryAuditStore,
    down: Arc<std::sync::atomic::AtomicBool>,
}

#[auth_service::async_trait]
impl auth_service::AuditStore for Flaky {
    async fn append(&self, entry: &auth_service::AuditEntry) -> auth_service::Result<()> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(auth_service::Error::backend(
                "writing an audit entry",
                std::io::Error::from(std::io::ErrorKind::StorageFull),
            ));
        }
        self.inner.append(entry).await
    }
    async fn list(
        &self,
        query: &auth_service::AuditQuery,
    ) -> auth_service::Result<Vec<auth_service::AuditEntry>> {
        self.inner.list(query).await
    }
    async fn delete_before(&self, cutoff: time::OffsetDateTime) -> auth_service::Result<u64> {
        self.inner.delete_before(cutoff).await
    }
}

/// Finding (issue 30): on a full disk 24 audit entries were dropped. Now the entries a store
/// refuses wait, in order, and are written once it takes them again.
#[tokio::test(start_paused = true)]
async fn audit_entries_the_store_refuses_are_written_later_in_order() {
    let store = Flaky::default();
    let bus = EventBus::new();
    let log = auth_service::AuditLog::new(store.clone());
    log.clone().install(&bus);
    let login = |n: &str| AuthEvent::UserLogin {
        user_id: UserId::new(n),
        email: format!("{n}@example.com"),
    };
    bus.emit(login("1")).await;
    store.down.store(true, std::sync::atomic::Ordering::SeqCst);
    for n in ["2", "3", "4"] {
        bus.emit(login(n)).await;
    }
    assert_eq!(log.pending(), 3);
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(log.pending(), 3, "still refused: still waiting");
    store.down.store(false, std::sync::atomic::Ordering::SeqCst);
    bus.emit(login("5")).await;
    tokio::time::sleep(std::time::Duration::from_secs(31)).await;
    assert_eq!(log.pending(), 0);
    let written: Vec<String> = store
        .inner
        .entries()
        .unwrap()
        .iter()
        .map(|e| e.user_id.clone().unwrap().to_string())
        .collect();
    assert_eq!(
        written,
        ["1", "2", "3", "4", "5"],
        "in the order of the events"
    );
}
