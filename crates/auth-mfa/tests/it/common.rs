use auth_mfa::{ChallengeStore, MemoryMfaStore, Mfa, MfaConfig, MfaStore, SecretCipher};
use auth_service::{
    AuthConfig, AuthEventKind, AuthService, EventBus, FixedClock, MemoryTokenBackend,
    MemoryUserStore,
};
use auth_testkit::{EventLog, TestHasher};

pub(crate) const T0: i64 = 1_800_000_000;
pub(crate) const PASSWORD: &str = "violet-otter-sings-42";

pub(crate) struct Stack {
    pub(crate) auth: AuthService,
    pub(crate) mfa: Mfa,
    pub(crate) clock: FixedClock,
    pub(crate) events: EventLog,
}

pub(crate) fn cipher() -> SecretCipher {
    SecretCipher::new("k1", &[42u8; 32]).unwrap()
}

pub(crate) fn stack() -> Stack {
    stack_with(MemoryMfaStore::new(), cipher(), MfaConfig::new("Acme & Co"))
}

pub(crate) fn stack_with(
    store: impl MfaStore + ChallengeStore,
    cipher: SecretCipher,
    config: MfaConfig,
) -> Stack {
    let clock = FixedClock::from_unix(T0);
    let bus = EventBus::new();
    let events = EventLog::attach(&bus);
    let mfa = Mfa::new(store, cipher, config)
        .unwrap()
        .with_clock(clock.clone())
        .with_events(bus.clone());
    let auth = AuthService::new(
        AuthConfig::default(),
        MemoryUserStore::new(),
        TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_clock(clock.clone())
    .with_events(bus)
    .with_second_factor(mfa.clone());
    Stack {
        auth,
        mfa,
        clock,
        events,
    }
}

impl Stack {
    /// A registered account whose address is proven (enrolment needs that by default).
    pub(crate) async fn verified_user(&self, email: &str) -> auth_service::User {
        let user = self.auth.register(email, PASSWORD).await.unwrap();
        self.auth
            .prove_address(&user.id, auth_service::AddressProof::InSession)
            .await
            .unwrap();
        self.auth.find_user(&user.id).await.unwrap().unwrap()
    }

    pub(crate) fn now(&self) -> u64 {
        u64::try_from(auth_service::Clock::now(&self.clock).unix_timestamp()).unwrap()
    }

    pub(crate) fn advance(&self, secs: u64) {
        self.clock.advance(std::time::Duration::from_secs(secs));
    }

    pub(crate) fn kinds(&self) -> Vec<AuthEventKind> {
        self.events.kinds()
    }
}
