//! Cross-crate tests live in `tests/`. This library compiles the guide: every Rust block of
//! `docs/*.md` and of the README runs as a doctest, so the documentation cannot drift.

#[cfg(doctest)]
mod guide {
    #[doc = include_str!("../../README.md")]
    mod readme {}
    #[doc = include_str!("../../docs/using-auth.md")]
    mod using_auth {}
    #[doc = include_str!("../../docs/quickstart.md")]
    mod quickstart {}
    #[doc = include_str!("../../docs/users.md")]
    mod users {}
    #[doc = include_str!("../../docs/passwords.md")]
    mod passwords {}
    #[doc = include_str!("../../docs/tokens.md")]
    mod tokens {}
    #[doc = include_str!("../../docs/rate-limiting.md")]
    mod rate_limiting {}
    #[doc = include_str!("../../docs/events.md")]
    mod events {}
    #[doc = include_str!("../../docs/configuration.md")]
    mod configuration {}
    #[doc = include_str!("../../docs/s2s.md")]
    mod s2s {}
    #[doc = include_str!("../../docs/testing.md")]
    mod testing {}
    #[doc = include_str!("../../docs/migrating-from-django.md")]
    mod migrating_from_django {}
    #[doc = include_str!("../../docs/signed-links.md")]
    mod signed_links {}
    #[doc = include_str!("../../docs/axum.md")]
    mod axum_guide {}
    #[doc = include_str!("../../docs/server.md")]
    mod server {}
    #[doc = include_str!("../../docs/onboarding.md")]
    mod onboarding {}
    #[doc = include_str!("../../docs/mfa.md")]
    mod mfa {}
    #[doc = include_str!("../../docs/passkeys.md")]
    mod passkeys {}
    #[doc = include_str!("../../docs/oauth.md")]
    mod oauth {}
    #[doc = include_str!("../../docs/jwt.md")]
    mod jwt {}
    #[doc = include_str!("../../docs/hot-path.md")]
    mod hot_path {}
    #[doc = include_str!("../../docs/scaling.md")]
    mod scaling {}
    #[doc = include_str!("../../docs/api-keys.md")]
    mod api_keys {}
    #[doc = include_str!("../../docs/admin.md")]
    mod admin {}
    #[doc = include_str!("../../docs/database.md")]
    mod database {}
    #[doc = include_str!("../../docs/tenants-and-custom-backends.md")]
    mod tenants_and_custom_backends {}
}
