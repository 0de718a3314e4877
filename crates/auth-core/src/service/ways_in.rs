//! The ways into an account — a usable password, passkeys, linked identities — and the rule
//! that removing one never leaves none, even when removals race.
//!
//! The stores are separate (a passkey table, an identity table, the user row), so no single
//! statement can decide. Each removal checks before it removes, then counts again after: the
//! last of several concurrent removals sees every one of them, and if nothing is left it puts
//! its own way back and is refused. So at least one way always remains once they are done.

use super::AuthService;
use crate::error::{Error, Result};
use crate::user::{AuthUser, UserId};

impl<U: AuthUser> AuthService<U> {
    /// How many ways into the account are left (read from the stores, not the user cache).
    pub(super) async fn ways_in(&self, user_id: &UserId) -> Result<usize> {
        let password = self
            .uncached_users
            .find_by_id(user_id)
            .await?
            .is_some_and(|u| crate::is_password_usable(u.password_hash()));
        let passkeys = match &self.passkeys {
            Some(backend) => backend.list(user_id).await?.len(),
            None => 0,
        };
        let identities = match &self.identities {
            Some(store) => store.by_user(user_id).await?.len(),
            None => 0,
        };
        Ok(usize::from(password) + passkeys + identities)
    }

    /// Refuses to remove a way in (`field`) that is the account's last one.
    pub(super) async fn check_not_last_way_in(&self, user_id: &UserId, field: &str) -> Result<()> {
        if self.ways_in(user_id).await? <= 1 {
            return Err(last_way_in(field));
        }
        Ok(())
    }

    /// After a removal: whether another removal that ran at the same time has left the account
    /// with no way in (the caller then puts its own back and refuses).
    pub(super) async fn left_without_a_way_in(&self, user_id: &UserId) -> Result<bool> {
        Ok(self.ways_in(user_id).await? == 0)
    }
}

/// The refusal: `field`, `last_sign_in_method`.
pub(super) fn last_way_in(field: &str) -> Error {
    Error::invalid(
        field.to_owned(),
        "last_sign_in_method",
        "this is the only way left to sign in to this account: set a password or add another way first",
    )
}
