//! auth-webauthn's ceremonies and stores, in one test binary.

mod ceremonies;
mod stores;
