//! The ways into an account — a usable password, passkeys, linked identities — and the rule
//! that removing one never leaves none, even when removals race.
//!
//! The stores are separate (a passkey table, an identity table, the user row), so no single
//! statement can decide. Each removal checks before it removes, then counts again after: the
//! last of several concurrent removals sees every one of them, and if nothing is left it puts
//! its own way back and is refused. So at least one way always remains once they are done.

use super::AuthService;
use crate::LinkedIdentity;
use crate::PasskeyInfo;
use crate::{AuthUser, UserId};
use crate::{Error, Result};

/// The ways into one account, as the stores hold them now.
pub(super) struct WaysIn {
    password: bool,
    pub(super) passkeys: Vec<PasskeyInfo>,
    pub(super) identities: Vec<LinkedIdentity>,
}

impl WaysIn {
    fn count(&self) -> usize {
        usize::from(self.password) + self.passkeys.len() + self.identities.len()
    }

    /// Refuses to remove one of these ways (`field`) when it is the last one.
    pub(super) fn check_not_last(&self, field: &str) -> Result<()> {
        if self.count() <= 1 {
            return Err(last_way_in(field));
        }
        Ok(())
    }
}

impl<U: AuthUser> AuthService<U> {
    /// The ways into the account (read from the stores, not the user cache).
    pub(super) async fn ways_in(&self, user_id: &UserId) -> Result<WaysIn> {
        let password = self
            .uncached_users
            .find_by_id(user_id)
            .await?
            .is_some_and(|u| crate::is_password_usable(u.password_hash()));
        let passkeys = match &self.passkeys {
            Some(backend) => backend.list(user_id).await?,
            None => Vec::new(),
        };
        let identities = match &self.identities {
            Some(store) => store.by_user(user_id).await?,
            None => Vec::new(),
        };
        Ok(WaysIn {
            password,
            passkeys,
            identities,
        })
    }

    /// After a removal: whether another removal that ran at the same time has left the account
    /// with no way in (the caller then puts its own back and refuses).
    pub(super) async fn left_without_a_way_in(&self, user_id: &UserId) -> Result<bool> {
        Ok(self.ways_in(user_id).await?.count() == 0)
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
