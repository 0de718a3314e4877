//! auth-onboarding: the flows on memory, the session store suite and the concurrency test on
//! every configured database.

mod common;
mod flows;
mod stores;
