//! The passkey ceremonies through `AuthService`, answered by webauthn-authenticator-rs's
//! software authenticator (`SoftPasskey`: real keys, real signatures, a real counter), with
//! passkeys and ceremonies in memory, SQLite (memory and file), and PostgreSQL and MariaDB
//! when their URLs are set. Attacks: a replayed answer, another origin, another RP id, a
//! counter that goes backwards (a clone), a credential of another account, 30 concurrent
//! submissions of one answer.

use std::sync::Arc;

use auth_mfa::{MemoryMfaStore, Mfa, MfaConfig, SecretCipher};
use auth_service::ephemeral::MemoryCeremonyStore;
use auth_service::{
    AuthConfig, AuthEvent, AuthEventKind, AuthService, Error, LoginOptions, LoginOutcome,
    MemoryTokenBackend, MemoryUserStore, PasskeyBackend, User, UserStore,
};
use auth_testkit::db::{Target, fresh};
use auth_webauthn::{MemoryPasskeyStore, WebauthnConfig, WebauthnPasskeys};
use serde_json::{Value, json};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{AuthenticatorBackend, WebauthnAuthenticator};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const ORIGIN: &str = "http://localhost:8080";
const PASSWORD: &str = "violet-otter-sings-42";

struct Rig {
    auth: AuthService<User>,
    backend: WebauthnPasskeys,
    mfa: Mfa,
    events: Arc<std::sync::Mutex<Vec<AuthEvent>>>,
}

fn origin() -> Url {
    Url::parse(ORIGIN).unwrap()
}

fn service(users: impl UserStore<User = User>, passkeys: WebauthnPasskeys) -> Rig {
    let backend = passkeys.clone();
    let mfa = Mfa::new(
        MemoryMfaStore::new(),
        SecretCipher::new("k1", &[7u8; 32]).unwrap(),
        MfaConfig::new("Example"),
    )
    .unwrap();
    let config = AuthConfig::builder()
        .signing_secret("a-signing-secret-of-32-bytes-or-more!")
        .build()
        .unwrap();
    let auth = AuthService::new(
        config,
        users,
        auth_testkit::TestHasher::fast(),
        MemoryTokenBackend::new(),
    )
    .unwrap()
    .with_second_factor(mfa.clone())
    .with_passkeys(passkeys);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    for kind in [
        AuthEventKind::PasskeyAdded,
        AuthEventKind::PasskeyRemoved,
        AuthEventKind::PasskeyCloneDetected,
        AuthEventKind::UserLogin,
        AuthEventKind::UserLoginFailed,
    ] {
        let events = Arc::clone(&events);
        auth.events().on_fn(kind, move |e| {
            let events = Arc::clone(&events);
            async move {
                events.lock().unwrap().push(e);
                Ok(())
            }
        });
    }
    Rig {
        auth,
        backend,
        mfa,
        events,
    }
}

fn relying_party() -> WebauthnConfig {
    WebauthnConfig::new("localhost", ORIGIN)
        .unwrap()
        .rp_name("Example")
}

/// Where the passkeys, ceremonies and users live.
#[derive(Clone, Copy)]
enum Stores {
    Memory,
    Sql(Target),
}

async fn rig(stores: Stores) -> Option<Rig> {
    let Stores::Sql(target) = stores else {
        let passkeys = WebauthnPasskeys::new(
            relying_party(),
            MemoryPasskeyStore::new(),
            MemoryCeremonyStore::new(),
        )
        .unwrap();
        return Some(service(MemoryUserStore::new(), passkeys));
    };
    let db = fresh(target, || {
        let mut all = auth_users_db::migrations();
        all.extend(auth_webauthn::db::migrations());
        all
    })
    .await?;
    let passkeys = WebauthnPasskeys::new(
        relying_party(),
        auth_webauthn::db::DbPasskeyStore::new(db.clone()),
        auth_webauthn::db::DbCeremonyStore::new(db.clone()),
    )
    .unwrap();
    Some(service(auth_users_db::DbUserStore::new(db), passkeys))
}

fn creation(options: &auth_service::PasskeyOptions) -> CreationChallengeResponse {
    serde_json::from_value(json!({ "publicKey": options.public_key })).unwrap()
}

fn request(options: &auth_service::PasskeyOptions) -> RequestChallengeResponse {
    serde_json::from_value(json!({ "publicKey": options.public_key })).unwrap()
}

/// `key`'s answer to `options`, told (as a lying client would) that `allowed`'s credentials
/// are the allowed ones.
fn answer_allowing(
    key: &mut SoftPasskey,
    options: &auth_service::PasskeyOptions,
    allowed: &auth_service::PasskeyOptions,
) -> Value {
    let mut forged = request(options).public_key;
    forged.allow_credentials = request(allowed).public_key.allow_credentials;
    let answer = AuthenticatorBackend::perform_auth(key, origin(), forged, 60_000).unwrap();
    serde_json::to_value(answer).unwrap()
}

/// Registers a passkey held by `key` for `user`.
async fn enrol(
    rig: &Rig,
    user: &User,
    key: &mut SoftPasskey,
    name: &str,
) -> auth_service::PasskeyInfo {
    // Passkeys are for accounts whose address is proven (proven here from the account's own
    // session, so nothing is removed; a no-op once proven).
    rig.auth
        .prove_address(&user.id, auth_service::AddressProof::InSession)
        .await
        .unwrap();
    let options = rig
        .auth
        .passkey_registration_options(&user.id)
        .await
        .unwrap();
    let answer = key.do_registration(origin(), creation(&options)).unwrap();
    rig.auth
        .register_passkey(
            &user.id,
            &serde_json::to_value(&answer).unwrap(),
            Some(name),
        )
        .await
        .unwrap()
}

/// Sign-in options for `email`'s passkeys.
async fn options_for(rig: &Rig, email: &str) -> auth_service::PasskeyOptions {
    rig.auth.passkey_login_options(Some(email)).await.unwrap()
}

/// Options for `email`'s passkeys and `key`'s answer to them.
async fn answer_for(rig: &Rig, email: &str, key: &mut SoftPasskey) -> (String, Value) {
    let options = options_for(rig, email).await;
    let answer = key.do_authentication(origin(), request(&options)).unwrap();
    (options.ceremony, serde_json::to_value(&answer).unwrap())
}

fn session(outcome: auth_service::Result<LoginOutcome<User>>) -> auth_service::AuthResult<User> {
    match outcome {
        Ok(LoginOutcome::Session(s)) => s,
        other => panic!("expected a session, got {other:?}"),
    }
}

async fn register_and_sign_in(stores: Stores) {
    let Some(rig) = rig(stores).await else { return };
    let user = rig
        .auth
        .register("ada@example.com", PASSWORD)
        .await
        .unwrap();
    let mut key = SoftPasskey::new(true);
    let info = enrol(&rig, &user, &mut key, "Laptop").await;
    assert_eq!(info.name, "Laptop");
    assert!(info.id.starts_with("pk_"));

    // A registration answer works once.
    let options = rig
        .auth
        .passkey_registration_options(&user.id)
        .await
        .unwrap();
    let mut second = SoftPasskey::new(true);
    let answer = serde_json::to_value(
        second
            .do_registration(origin(), creation(&options))
            .unwrap(),
    )
    .unwrap();
    rig.auth
        .register_passkey(&user.id, &answer, Some("Phone"))
        .await
        .unwrap();
    assert!(matches!(
        rig.auth
            .register_passkey(&user.id, &answer, Some("Again"))
            .await,
        Err(Error::TokenInvalid)
    ));
    let listed = rig.auth.list_passkeys(&user.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["Laptop", "Phone"]
    );

    // Sign in without a password.
    let (ceremony, answer) = answer_for(&rig, "ada@example.com", &mut key).await;
    let signed_in = session(
        rig.auth
            .sign_in_with_passkey(&ceremony, &answer, LoginOptions::new())
            .await,
    );
    assert_eq!(signed_in.user.id, user.id);
    assert!(
        rig.auth
            .authenticate(signed_in.access_token())
            .await
            .is_ok()
    );
    let used = rig.auth.list_passkeys(&user.id).await.unwrap();
    assert!(used[0].last_used_at.is_some(), "the sign-in is recorded");

    // Replayed: the ceremony is spent.
    assert!(matches!(
        rig.auth
            .sign_in_with_passkey(&ceremony, &answer, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));

    // Rename, delete (the password remains, so even the last one may go).
    assert!(
        rig.auth
            .rename_passkey(&user.id, &info.id, "Work laptop")
            .await
            .unwrap()
    );
    assert!(
        rig.auth
            .rename_passkey(&user.id, &info.id, &"x".repeat(65))
            .await
            .is_err()
    );
    assert!(rig.auth.delete_passkey(&user.id, &info.id).await.unwrap());
    assert!(!rig.auth.delete_passkey(&user.id, &info.id).await.unwrap());
    let (ceremony, answer) = {
        let options = options_for(&rig, "ada@example.com").await;
        // The deleted key is no longer allowed: answer with a forged allow list.
        let mut forged = request(&options);
        forged.public_key.allow_credentials = vec![];
        let r = AuthenticatorBackend::perform_auth(&mut key, origin(), forged.public_key, 60_000);
        (
            options.ceremony,
            r.ok()
                .map(|a| serde_json::to_value(a).unwrap())
                .unwrap_or(json!({})),
        )
    };
    assert!(matches!(
        rig.auth
            .sign_in_with_passkey(&ceremony, &answer, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));
    let kinds: Vec<AuthEventKind> = rig
        .events
        .lock()
        .unwrap()
        .iter()
        .map(AuthEvent::kind)
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == AuthEventKind::PasskeyAdded)
            .count(),
        2
    );
    assert!(kinds.contains(&AuthEventKind::PasskeyRemoved));
}

async fn attacks(stores: Stores) {
    let Some(rig) = rig(stores).await else { return };
    let ada = rig
        .auth
        .register("ada@example.com", PASSWORD)
        .await
        .unwrap();
    let bob = rig
        .auth
        .register("bob@example.com", PASSWORD)
        .await
        .unwrap();
    let mut ada_key = SoftPasskey::new(true);
    let mut bob_key = SoftPasskey::new(true);
    enrol(&rig, &ada, &mut ada_key, "Ada's").await;
    enrol(&rig, &bob, &mut bob_key, "Bob's").await;

    // Another origin: the authenticator signs what the page at evil.example asked.
    let options = options_for(&rig, "ada@example.com").await;
    let evil = Url::parse("https://evil.example").unwrap();
    let answer = AuthenticatorBackend::perform_auth(
        &mut ada_key,
        evil.clone(),
        request(&options).public_key,
        60_000,
    )
    .unwrap();
    assert!(matches!(
        rig.auth
            .sign_in_with_passkey(
                &options.ceremony,
                &serde_json::to_value(answer).unwrap(),
                LoginOptions::new()
            )
            .await,
        Err(Error::InvalidCredentials)
    ));
    let options = rig
        .auth
        .passkey_registration_options(&ada.id)
        .await
        .unwrap();
    let answer = AuthenticatorBackend::perform_register(
        &mut SoftPasskey::new(true),
        evil,
        creation(&options).public_key,
        60_000,
    )
    .unwrap();
    assert!(matches!(
        rig.auth
            .register_passkey(&ada.id, &serde_json::to_value(answer).unwrap(), None)
            .await,
        Err(Error::Validation(_))
    ));

    // Another RP id: a credential scoped to evil.example signs our challenge.
    let options = options_for(&rig, "ada@example.com").await;
    let mut wrong_rp = request(&options).public_key;
    wrong_rp.rp_id = "evil.example".into();
    let answer =
        AuthenticatorBackend::perform_auth(&mut ada_key, origin(), wrong_rp, 60_000).unwrap();
    assert!(matches!(
        rig.auth
            .sign_in_with_passkey(
                &options.ceremony,
                &serde_json::to_value(answer).unwrap(),
                LoginOptions::new()
            )
            .await,
        Err(Error::InvalidCredentials)
    ));

    // Bob's passkey answering a ceremony for Ada's passkeys.
    let options = options_for(&rig, "ada@example.com").await;
    let bobs = options_for(&rig, "bob@example.com").await;
    let answer = answer_allowing(&mut bob_key, &options, &bobs);
    assert!(matches!(
        rig.auth
            .sign_in_with_passkey(&options.ceremony, &answer, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));

    // A counter that goes backwards: an answer signed earlier (counter n) arrives after a
    // later one (counter n+1) was accepted, as from a clone of the authenticator.
    let (stale_ceremony, stale) = answer_for(&rig, "ada@example.com", &mut ada_key).await;
    let (fresh_ceremony, fresh) = answer_for(&rig, "ada@example.com", &mut ada_key).await;
    session(
        rig.auth
            .sign_in_with_passkey(&fresh_ceremony, &fresh, LoginOptions::new())
            .await,
    );
    assert!(matches!(
        rig.auth
            .sign_in_with_passkey(&stale_ceremony, &stale, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert!(
        rig.events.lock().unwrap().iter().any(
            |e| matches!(e, AuthEvent::PasskeyCloneDetected { user_id, .. } if *user_id == ada.id)
        ),
        "the clone is reported"
    );

    // Garbage where the answer goes, and an unknown ceremony.
    for (ceremony, answer) in [
        ("x".repeat(10_000), json!({})),
        (
            "nope".into(),
            json!({"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {}}),
        ),
        (String::new(), json!(null)),
    ] {
        assert!(matches!(
            rig.auth
                .sign_in_with_passkey(&ceremony, &answer, LoginOptions::new())
                .await,
            Err(Error::InvalidCredentials)
        ));
    }

    // An inactive account cannot sign in with its passkey.
    rig.auth.set_active(&bob.id, false).await.unwrap();
    let options = options_for(&rig, "bob@example.com").await;
    assert_ne!(
        options.public_key["allowCredentials"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let answer = answer_allowing(&mut bob_key, &options, &bobs);
    assert!(matches!(
        rig.auth
            .sign_in_with_passkey(&options.ceremony, &answer, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));
    // Deactivated between the ceremony's start and its answer (or a discoverable sign-in):
    // the passkey verifies, the account refuses it, and that is reported as a password
    // sign-in into a deactivated account is.
    rig.auth.set_active(&bob.id, true).await.unwrap();
    let options = options_for(&rig, "bob@example.com").await;
    rig.auth.set_active(&bob.id, false).await.unwrap();
    let answer = answer_allowing(&mut bob_key, &options, &bobs);
    assert!(matches!(
        rig.auth
            .sign_in_with_passkey(&options.ceremony, &answer, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));
    assert!(
        rig.events.lock().unwrap().iter().any(|e| matches!(
            e,
            AuthEvent::UserLoginFailed { identifier, reason: auth_service::LoginFailureReason::Inactive }
                if identifier == "bob@example.com"
        )),
        "the refusal is reported"
    );
}

/// 30 concurrent submissions of one valid answer: one session.
async fn concurrent_answers(stores: Stores) {
    let Some(rig) = rig(stores).await else { return };
    let ada = rig
        .auth
        .register("ada@example.com", PASSWORD)
        .await
        .unwrap();
    let mut key = SoftPasskey::new(true);
    enrol(&rig, &ada, &mut key, "Laptop").await;
    let (ceremony, answer) = answer_for(&rig, "ada@example.com", &mut key).await;
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let auth = rig.auth.clone();
            let (ceremony, answer) = (ceremony.clone(), answer.clone());
            tokio::spawn(async move {
                auth.sign_in_with_passkey(&ceremony, &answer, LoginOptions::new())
                    .await
            })
        })
        .collect();
    let mut sessions = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(LoginOutcome::Session(_)) => sessions += 1,
            Err(Error::InvalidCredentials) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(sessions, 1);
}

/// A passkey answers the second-factor challenge of a password sign-in; another account's
/// passkey cannot.
async fn second_factor(stores: Stores) {
    let Some(rig) = rig(stores).await else { return };
    let ada = rig
        .auth
        .register("ada@example.com", PASSWORD)
        .await
        .unwrap();
    let bob = rig
        .auth
        .register("bob@example.com", PASSWORD)
        .await
        .unwrap();
    rig.auth
        .parts()
        .users
        .set_verified(&ada.id, true)
        .await
        .unwrap();
    let ada = rig.auth.find_user(&ada.id).await.unwrap().unwrap();
    rig.mfa.begin_enrollment(&ada).await.unwrap();
    let now = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap();
    let code = rig.mfa.authenticator(&ada.id).await.unwrap().generate(now);
    rig.mfa.confirm_enrollment(&ada.id, &code).await.unwrap();
    let mut ada_key = SoftPasskey::new(true);
    let mut bob_key = SoftPasskey::new(true);
    enrol(&rig, &ada, &mut ada_key, "Ada's").await;
    enrol(&rig, &bob, &mut bob_key, "Bob's").await;

    let challenge = |rig: &Rig| {
        let auth = rig.auth.clone();
        async move {
            match auth
                .sign_in("ada@example.com", PASSWORD, LoginOptions::new())
                .await
                .unwrap()
            {
                LoginOutcome::Challenge(c) => c.token.expose_secret().to_owned(),
                _ => panic!("ada has a second factor"),
            }
        }
    };

    // Bob's passkey against Ada's challenge.
    let token = challenge(&rig).await;
    let options = rig
        .auth
        .passkey_second_factor_options(&token)
        .await
        .unwrap();
    let bobs = options_for(&rig, "bob@example.com").await;
    let answer = answer_allowing(&mut bob_key, &options, &bobs);
    assert!(matches!(
        rig.auth
            .complete_sign_in_with_passkey(&token, &options.ceremony, &answer, LoginOptions::new())
            .await,
        Err(Error::InvalidCredentials)
    ));

    // Ada's own passkey: a session, and the challenge is spent.
    let options = rig
        .auth
        .passkey_second_factor_options(&token)
        .await
        .unwrap();
    let answer = ada_key
        .do_authentication(origin(), request(&options))
        .unwrap();
    let done = rig
        .auth
        .complete_sign_in_with_passkey(
            &token,
            &options.ceremony,
            &serde_json::to_value(answer).unwrap(),
            LoginOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(done.user.id, ada.id);
    let code = rig
        .mfa
        .authenticator(&ada.id)
        .await
        .unwrap()
        .generate(now + 30);
    assert!(
        rig.auth
            .complete_sign_in(&token, &code, LoginOptions::new())
            .await
            .is_err()
    );

    // Passwordless with a UV passkey skips the code: the passkey was two factors.
    let (ceremony, answer) = answer_for(&rig, "ada@example.com", &mut ada_key).await;
    session(
        rig.auth
            .sign_in_with_passkey(&ceremony, &answer, LoginOptions::new())
            .await,
    );
}

/// Options for an address with no account look like options for an account's passkeys.
async fn no_enumeration(stores: Stores) {
    let Some(rig) = rig(stores).await else { return };
    let ada = rig
        .auth
        .register("ada@example.com", PASSWORD)
        .await
        .unwrap();
    enrol(&rig, &ada, &mut SoftPasskey::new(true), "Laptop").await;
    let real = options_for(&rig, "ada@example.com").await;
    let fake = options_for(&rig, "nobody@example.com").await;
    let again = options_for(&rig, "nobody@example.com").await;
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&real.public_key), keys(&fake.public_key));
    assert_eq!(real.mediation, fake.mediation);
    assert_eq!(
        fake.public_key["allowCredentials"], again.public_key["allowCredentials"],
        "the decoy is stable"
    );
    assert_ne!(real.public_key["challenge"], fake.public_key["challenge"]);
    // Across addresses, decoys vary as real lists do: one or two entries, ids of the lengths
    // real authenticators use, entries with the same fields as a real one.
    let real_fields: Vec<String> = real.public_key["allowCredentials"][0]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "transports")
        .cloned()
        .collect();
    let (mut counts, mut lengths) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for i in 0..40 {
        let decoy = options_for(&rig, &format!("nobody{i}@example.com")).await;
        let list = decoy.public_key["allowCredentials"]
            .as_array()
            .unwrap()
            .clone();
        counts.insert(list.len());
        for entry in &list {
            let fields: Vec<String> = entry
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "transports")
                .cloned()
                .collect();
            assert_eq!(fields, real_fields);
            let id = entry["id"].as_str().unwrap();
            lengths.insert(id.len() * 3 / 4);
        }
    }
    assert_eq!(counts, [1, 2].into(), "one or two entries");
    assert!(lengths.len() >= 4, "several id lengths: {lengths:?}");
}

/// The last way into an account without a password stays; deleting the account deletes its
/// passkeys.
async fn last_passkey_and_deletion(stores: Stores) {
    let Some(rig) = rig(stores).await else { return };
    let ada = rig
        .auth
        .register("ada@example.com", PASSWORD)
        .await
        .unwrap();
    let info = enrol(&rig, &ada, &mut SoftPasskey::new(true), "Laptop").await;
    rig.auth
        .parts()
        .users
        .set_password_hash(&ada.id, &auth_service::make_unusable_password())
        .await
        .unwrap();
    match rig.auth.delete_passkey(&ada.id, &info.id).await {
        Err(Error::Validation(v)) => assert_eq!(v.errors()[0].code, "last_sign_in_method"),
        other => panic!("expected last_sign_in_method, got {other:?}"),
    }
    assert!(rig.auth.delete_user(&ada.id).await.unwrap());
    assert!(rig.auth.list_passkeys(&ada.id).await.unwrap().is_empty());
}

/// A taken passkey is gone until it is restored; restored, it is the same passkey (id, name,
/// credential) and signs in again.
async fn take_and_restore(stores: Stores) {
    let Some(rig) = rig(stores).await else { return };
    let bo = rig.auth.register("bo@example.com", PASSWORD).await.unwrap();
    let mut key = SoftPasskey::new(true);
    let info = enrol(&rig, &bo, &mut key, "Laptop").await;
    assert!(rig.backend.take(&bo.id, "pk_nope").await.unwrap().is_none());
    let taken = rig.backend.take(&bo.id, &info.id).await.unwrap().unwrap();
    assert_eq!(taken.info().id, info.id);
    assert!(rig.auth.list_passkeys(&bo.id).await.unwrap().is_empty());
    assert!(rig.backend.take(&bo.id, &info.id).await.unwrap().is_none());
    rig.backend.restore(&bo.id, taken).await.unwrap();
    let listed = rig.auth.list_passkeys(&bo.id).await.unwrap();
    assert_eq!(
        (listed.len(), &listed[0].id, &listed[0].name),
        (1, &info.id, &info.name)
    );
    let (ceremony, answer) = answer_for(&rig, "bo@example.com", &mut key).await;
    session(
        rig.auth
            .sign_in_with_passkey(&ceremony, &answer, LoginOptions::new())
            .await,
    );
    // Another account's record is not restored into this one.
    let cy = rig.auth.register("cy@example.com", PASSWORD).await.unwrap();
    let taken = rig.backend.take(&bo.id, &info.id).await.unwrap().unwrap();
    assert!(rig.backend.restore(&cy.id, taken).await.is_err());
}

macro_rules! on_every_store {
    ($($name:ident),*) => {
        mod memory { $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(super::Stores::Memory).await } )* }
        mod sqlite { $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(super::Stores::Sql(super::Target::SqliteFile)).await } )* }
        mod postgres { $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(super::Stores::Sql(super::Target::Postgres)).await } )* }
        mod mysql { $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)] async fn $name() { super::$name(super::Stores::Sql(super::Target::MySql)).await } )* }
    };
}

on_every_store!(
    register_and_sign_in,
    attacks,
    concurrent_answers,
    second_factor,
    no_enumeration,
    last_passkey_and_deletion,
    take_and_restore
);
