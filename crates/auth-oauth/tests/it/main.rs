//! auth-oauth against GitHub's API shape, a real OpenID provider and SQL identity stores, in one test binary.

mod github;
mod identities;
mod oidc;
