//! What the service makes of a passkey backend's verdicts: a passkey without user
//! verification still meets the second factor; clones and refusals are the same 401 and are
//! throttled per client; deletion and an address-proving reset remove passkeys. The backend
//! here is a stand-in that returns the verdict a test sets (the real one, auth-webauthn, is
//! tested with a software authenticator in its own crate).

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use auth_core::{
    AuthConfig, AuthEventKind, AuthService, Challenge, Error, LoginOptions, LoginOutcome,
    MemoryTokenBackend, MemoryUserStore, PasskeyAssertion, PasskeyBackend, PasskeyInfo,
    PasskeyOptions, PasskeyTarget, PasskeyVerdict, Result, SecondFactorGate, SecretString,
    SessionMeta, UserId, async_trait,
};
use serde_json::{Value, json};

#[derive(Default, Clone)]
struct Verdicts {
    next: Arc<Mutex<Option<PasskeyVerdict>>>,
    keys: Arc<Mutex<Vec<(UserId, PasskeyInfo)>>>,
    targets: Arc<Mutex<Vec<PasskeyTarget>>>,
}

#[async_trait]
impl PasskeyBackend for Verdicts {
    async fn start_registration(&self, _: &UserId, _: &str) -> Result<PasskeyOptions> {
        Ok(PasskeyOptions::new(String::new(), json!({})))
    }
    async fn finish_registration(
        &self,
        user: &UserId,
        _: &Value,
        name: &str,
    ) -> Result<PasskeyInfo> {
        let info = PasskeyInfo::new(
            format!("pk_{}", self.keys.lock().unwrap().len()),
            name.into(),
            time::OffsetDateTime::UNIX_EPOCH,
        );
        self.keys.lock().unwrap().push((user.clone(), info.clone()));
        Ok(info)
    }
    async fn start_authentication(&self, target: &PasskeyTarget) -> Result<PasskeyOptions> {
        self.targets.lock().unwrap().push(target.clone());
        Ok(PasskeyOptions::new("c".into(), json!({})))
    }
    async fn finish_authentication(&self, _: &str, _: &Value) -> Result<PasskeyVerdict> {
        Ok(self
            .next
            .lock()
            .unwrap()
            .take()
            .unwrap_or(PasskeyVerdict::Refused))
    }
    async fn list(&self, user: &UserId) -> Result<Vec<PasskeyInfo>> {
        Ok(self
            .keys
            .lock()
            .unwrap()
            .iter()
            .filter(|(u, _)| u == user)
            .map(|(_, i)| i.clone())
            .collect())
    }
    async fn rename(&self, _: &UserId, _: &str, _: &str) -> Result<bool> {
        Ok(true)
    }
    async fn remove(&self, user: &UserId, id: &str) -> Result<bool> {
        let mut keys = self.keys.lock().unwrap();
        let before = keys.len();
        keys.retain(|(u, i)| !(u == user && i.id == id));
        Ok(keys.len() < before)
    }
    async fn remove_all(&self, user: &UserId) -> Result<u64> {
        let mut keys = self.keys.lock().unwrap();
        let before = keys.len();
        keys.retain(|(u, _)| u != user);
        Ok((before - keys.len()) as u64)
    }
}

/// A gate that asks everyone for a second factor and opens a fixed challenge.
struct Everyone;

#[async_trait]
impl SecondFactorGate for Everyone {
    async fn is_required(&self, _: &UserId) -> Result<bool> {
        Ok(true)
    }
    async fn open_challenge(&self, _: &UserId) -> Result<Challenge> {
        Ok(Challenge::new(
            SecretString::from("challenge"),
            std::time::Duration::from_secs(60),
        ))
    }
}

fn service(backend: Verdicts) -> AuthService {
    let config = AuthConfig::builder()
        .signing_secret("a-signing-secret-of-32-bytes-or-more!")
        .build()
        .unwrap();
    AuthService::new(
        config,
        MemoryUserStore::new(),
        auth_testkit::TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_second_factor(Everyone)
    .with_passkeys(backend)
}

fn verified(user: &UserId, uv: bool) -> PasskeyVerdict {
    PasskeyVerdict::Verified(PasskeyAssertion::new(user.clone(), "pk_0".into(), uv))
}

#[tokio::test]
async fn user_verification_decides_whether_the_second_factor_is_still_asked() {
    let backend = Verdicts::default();
    let auth = service(backend.clone());
    let user = auth
        .register("uv@example.com", "violet-otter-sings-42")
        .await
        .unwrap();

    *backend.next.lock().unwrap() = Some(verified(&user.id, true));
    let outcome = auth
        .sign_in_with_passkey("c", &json!({}), LoginOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(outcome, LoginOutcome::Session(_)),
        "UV: two factors in one"
    );

    *backend.next.lock().unwrap() = Some(verified(&user.id, false));
    let outcome = auth
        .sign_in_with_passkey("c", &json!({}), LoginOptions::new())
        .await
        .unwrap();
    assert!(
        matches!(outcome, LoginOutcome::Challenge(_)),
        "presence only: the second factor is still asked"
    );
}

#[tokio::test]
async fn refusals_clones_and_inactive_accounts_look_the_same_and_are_throttled() {
    let backend = Verdicts::default();
    let auth = service(backend.clone());
    let clones = Arc::new(Mutex::new(0));
    let seen = Arc::clone(&clones);
    auth.events()
        .on_fn(AuthEventKind::PasskeyCloneDetected, move |_| {
            let seen = Arc::clone(&seen);
            async move {
                *seen.lock().unwrap() += 1;
                Ok(())
            }
        });
    let user = auth
        .register("cl@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    let ip: IpAddr = "203.0.113.9".parse().unwrap();
    let from = || LoginOptions::new().with_meta(SessionMeta::new().with_ip(ip));

    *backend.next.lock().unwrap() = Some(PasskeyVerdict::Cloned {
        user_id: user.id.clone(),
        passkey_id: "pk_0".into(),
    });
    assert!(matches!(
        auth.sign_in_with_passkey("c", &json!({}), from()).await,
        Err(Error::InvalidCredentials)
    ));
    assert_eq!(*clones.lock().unwrap(), 1);

    auth.set_active(&user.id, false).await.unwrap();
    *backend.next.lock().unwrap() = Some(verified(&user.id, true));
    assert!(matches!(
        auth.sign_in_with_passkey("c", &json!({}), from()).await,
        Err(Error::InvalidCredentials)
    ));

    // The login policy's 5 attempts per client: 2 used, 3 more refusals, then 429.
    for _ in 0..3 {
        assert!(matches!(
            auth.sign_in_with_passkey("c", &json!({}), from()).await,
            Err(Error::InvalidCredentials)
        ));
    }
    auth.set_active(&user.id, true).await.unwrap();
    *backend.next.lock().unwrap() = Some(verified(&user.id, true));
    assert!(matches!(
        auth.sign_in_with_passkey("c", &json!({}), from()).await,
        Err(Error::RateLimited { .. })
    ));
    // Another client is not affected.
    let other =
        LoginOptions::new().with_meta(SessionMeta::new().with_ip("198.51.100.4".parse().unwrap()));
    assert!(matches!(
        auth.sign_in_with_passkey("c", &json!({}), other).await,
        Ok(LoginOutcome::Session(_))
    ));
}

#[tokio::test]
async fn options_by_address_never_tell_whether_the_account_exists() {
    let backend = Verdicts::default();
    let auth = service(backend.clone());
    let user = auth
        .register("opt@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    auth.register_passkey(&user.id, &json!({}), Some("Key"))
        .await
        .unwrap();
    auth.register("nokey@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    auth.passkey_login_options(Some("OPT@example.com"))
        .await
        .unwrap();
    auth.passkey_login_options(Some("nokey@example.com"))
        .await
        .unwrap();
    auth.passkey_login_options(Some("nobody@example.com"))
        .await
        .unwrap();
    auth.passkey_login_options(None).await.unwrap();
    assert!(matches!(
        auth.passkey_login_options(Some("not an address")).await,
        Err(Error::Validation(_))
    ));
    let targets = backend.targets.lock().unwrap().clone();
    assert_eq!(targets[0], PasskeyTarget::User(user.id.clone()));
    let (PasskeyTarget::Decoy(a), PasskeyTarget::Decoy(b)) = (&targets[1], &targets[2]) else {
        panic!("decoys expected, got {targets:?}");
    };
    assert_ne!(a, b, "each address its own decoy");
    assert_eq!(targets[3], PasskeyTarget::Discoverable);
}

#[tokio::test]
async fn a_reset_that_proves_the_address_removes_earlier_passkeys() {
    let backend = Verdicts::default();
    let auth = service(backend.clone());
    let user = auth
        .register("squat@example.com", "violet-otter-sings-42")
        .await
        .unwrap();
    auth.register_passkey(&user.id, &json!({}), Some("Squatter's"))
        .await
        .unwrap();
    auth.reset_password(&user, "amber-heron-dances-7")
        .await
        .unwrap();
    assert!(auth.list_passkeys(&user.id).await.unwrap().is_empty());
}
