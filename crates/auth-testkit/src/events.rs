//! Recording every event a bus emits, for assertions.

use std::sync::{Arc, Mutex, MutexGuard};

use auth_service::{AuthEvent, AuthEventKind, EventBus};

/// Every event emitted on the bus it was attached to, in order. Clones share the record.
///
/// ```
/// use auth_service::{AuthEvent, AuthEventKind, EventBus, UserId};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let bus = EventBus::new();
/// let log = auth_testkit::EventLog::attach(&bus);
/// bus.emit(AuthEvent::EmailVerified { user_id: UserId::new("1") }).await;
/// assert_eq!(log.kinds(), [AuthEventKind::EmailVerified]);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct EventLog(Arc<Mutex<Vec<AuthEvent>>>);

impl EventLog {
    /// Registers a recording handler for every kind on `bus`.
    #[must_use]
    pub fn attach(bus: &EventBus) -> Self {
        let log = Self::default();
        for kind in AuthEventKind::ALL {
            let sink = Arc::clone(&log.0);
            bus.on_fn(kind, move |e| {
                let sink = Arc::clone(&sink);
                async move {
                    sink.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(e);
                    Ok(())
                }
            });
        }
        log
    }

    /// The events so far.
    pub fn events(&self) -> MutexGuard<'_, Vec<AuthEvent>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Their kinds.
    #[must_use]
    pub fn kinds(&self) -> Vec<AuthEventKind> {
        self.events().iter().map(AuthEvent::kind).collect()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        self.events().clear();
    }
}
