use auth_mfa::{MemoryMfaStore, Mfa, MfaConfig, SecretCipher};
use auth_onboarding::{
    MemorySessionStore, Onboarding, OnboardingBuilder, ProfileStep, RegisterStep, SessionStore,
    SetupTotpStep, VerifyEmailStep,
};
use auth_service::{
    AuthConfig, AuthEvent, AuthEventKind, AuthService, EventBus, FixedClock, MemoryTokenBackend,
    MemoryUserStore, User, UserStore,
};
use auth_testkit::{EventLog, TestHasher};
use serde_json::{Map, Value, json};

pub(crate) const PASSWORD: &str = "violet-otter-sings-42";
pub(crate) const T0: i64 = 1_800_000_000;

pub(crate) struct Kit {
    pub(crate) auth: AuthService,
    pub(crate) mfa: Mfa,
    pub(crate) clock: FixedClock,
    pub(crate) events: EventLog,
}

pub(crate) fn kit_with(users: impl UserStore<User = User>) -> Kit {
    let clock = FixedClock::from_unix(T0);
    let bus = EventBus::new();
    let events = EventLog::attach(&bus);
    // Some pipelines here enrol TOTP without a verify-email step before it: they test the
    // engine, so the verified-email gate (tested in auth-mfa) is off.
    let mut config = MfaConfig::new("Acme");
    config.require_verified_email = false;
    let mfa = Mfa::new(
        MemoryMfaStore::new(),
        SecretCipher::new("k1", &[4u8; 32]).unwrap(),
        config,
    )
    .unwrap()
    .with_clock(clock.clone())
    .with_events(bus.clone());
    let auth = AuthService::new(
        AuthConfig::default(),
        users,
        TestHasher::fast(),
        MemoryTokenBackend::new().with_clock(clock.clone()),
    )
    .unwrap()
    .with_clock(clock.clone())
    .with_events(bus)
    .with_second_factor(mfa.clone());
    Kit {
        auth,
        mfa,
        clock,
        events,
    }
}

pub(crate) fn kit() -> Kit {
    kit_with(MemoryUserStore::new())
}

impl Kit {
    pub(crate) fn builder(&self, store: impl SessionStore) -> OnboardingBuilder<User> {
        Onboarding::builder(self.auth.clone(), store)
    }

    /// register, verify_email, setup_totp (required), profile.
    pub(crate) fn full(&self) -> Onboarding<User> {
        self.full_on(MemorySessionStore::new())
    }

    pub(crate) fn full_on(&self, store: impl SessionStore) -> Onboarding<User> {
        self.builder(store)
            .step(RegisterStep)
            .step(VerifyEmailStep::new())
            .step(SetupTotpStep::required(self.mfa.clone()))
            .step(ProfileStep::new(["first_name", "last_name"], ["bio"]))
            .build()
            .unwrap()
    }

    /// The last verification code sent to `email`.
    pub(crate) fn code(&self, email: &str) -> String {
        self.events
            .events()
            .iter()
            .rev()
            .find_map(|e| match e {
                AuthEvent::VerificationCodeGenerated { email: to, code } if to == email => {
                    Some(code.expose_secret().to_owned())
                }
                _ => None,
            })
            .expect("a code was sent")
    }

    pub(crate) fn kinds(&self) -> Vec<AuthEventKind> {
        self.events.events().iter().map(AuthEvent::kind).collect()
    }

    pub(crate) fn now(&self) -> u64 {
        u64::try_from(auth_service::Clock::now(&self.clock).unix_timestamp()).unwrap()
    }
}

pub(crate) fn data(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

pub(crate) fn register_data(email: &str) -> Map<String, Value> {
    data(json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD}))
}
