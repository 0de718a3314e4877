use std::sync::{Arc, Mutex};

use auth_service::{
    AuthConfig, AuthEvent, AuthEventKind, AuthService, EventBus, FixedClock, MemoryRateLimiter,
    MemoryTokenBackend, MemoryUserStore,
};
use auth_testkit::TestHasher;

pub(crate) const START: i64 = 1_700_000_000;
pub(crate) const PASSWORD: &str = "violet-otter-sings-42";

/// A service on memory stores sharing one fixed clock, recording every event.
pub(crate) struct Harness {
    pub(crate) auth: AuthService,
    pub(crate) clock: FixedClock,
    pub(crate) users: MemoryUserStore,
    pub(crate) events: Arc<Mutex<Vec<AuthEvent>>>,
}

impl Harness {
    pub(crate) fn new() -> Self {
        Self::with_config(AuthConfig::default())
    }

    pub(crate) fn with_config(config: AuthConfig) -> Self {
        Self::with_hasher(config, TestHasher::fast())
    }

    pub(crate) fn with_hasher(
        config: AuthConfig,
        hasher: impl auth_service::PasswordHasher,
    ) -> Self {
        let clock = FixedClock::from_unix(START);
        let users = MemoryUserStore::new().with_clock(clock.clone());
        let bus = EventBus::new();
        let events = Arc::new(Mutex::new(Vec::new()));
        for kind in AuthEventKind::ALL {
            let events = Arc::clone(&events);
            bus.on_fn(kind, move |e| {
                let events = Arc::clone(&events);
                async move {
                    events.lock().unwrap().push(e);
                    Ok(())
                }
            });
        }
        let limiter = MemoryRateLimiter::new(config.rate_limit()).with_clock(clock.clone());
        let auth = AuthService::new(
            config,
            users.clone(),
            hasher,
            MemoryTokenBackend::new().with_clock(clock.clone()),
        )
        .unwrap()
        .with_rate_limiter(limiter)
        .with_events(bus)
        .with_clock(clock.clone());
        Self {
            auth,
            clock,
            users,
            events,
        }
    }

    pub(crate) fn kinds(&self) -> Vec<AuthEventKind> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(AuthEvent::kind)
            .collect()
    }

    pub(crate) fn clear_events(&self) {
        self.events.lock().unwrap().clear();
    }
}

/// A second factor every account has, answered by the code `123456` (the challenge names the
/// user).
pub(crate) struct CodeGate;

#[auth_service::async_trait]
impl auth_service::SecondFactorGate for CodeGate {
    async fn is_required(&self, _user: &auth_service::UserId) -> auth_service::Result<bool> {
        Ok(true)
    }
    async fn open_challenge(
        &self,
        user: &auth_service::UserId,
    ) -> auth_service::Result<auth_service::Challenge> {
        Ok(auth_service::Challenge::new(
            auth_service::SecretString::new(format!("challenge-{user}")),
            std::time::Duration::from_secs(300),
        ))
    }
    async fn answer_challenge(
        &self,
        challenge: &str,
        code: &str,
    ) -> auth_service::Result<auth_service::UserId> {
        match (challenge.strip_prefix("challenge-"), code) {
            (Some(user), "123456") => Ok(auth_service::UserId::new(user)),
            _ => Err(auth_service::Error::InvalidCredentials),
        }
    }
    async fn remove_all(&self, _user: &auth_service::UserId) -> auth_service::Result<()> {
        Ok(())
    }
}
