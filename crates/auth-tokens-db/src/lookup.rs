//! `authenticate` in one query: the token joined with its session and its user.

use auth_service::{
    Claims, Error, MAX_TOKEN_LENGTH, Result, TokenKind, TokenUserLookup, User, UserId, async_trait,
    random,
};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query};
use time::OffsetDateTime;

use crate::backend::DbTokenBackend;

fn col(table: &str, column: &str) -> Expr {
    Expr::col((Alias::new(table), Alias::new(column)))
}

#[async_trait]
impl TokenUserLookup<User> for DbTokenBackend {
    /// One statement: `auth_tokens` joined with `auth_token_families` and `auth_users`.
    async fn authenticate(&self, access_token: &str) -> Result<(Claims, User)> {
        if access_token.is_empty() || access_token.len() > MAX_TOKEN_LENGTH {
            return Err(Error::TokenInvalid);
        }
        let select = Query::select()
            .expr_as(col("t", "kind"), Alias::new("kind"))
            .expr_as(col("t", "jti"), Alias::new("jti"))
            .expr_as(col("t", "user_id"), Alias::new("user_id"))
            .expr_as(col("t", "created_at"), Alias::new("created_at"))
            .expr_as(col("t", "expires_at"), Alias::new("expires_at"))
            .expr_as(col("t", "revoked_at"), Alias::new("revoked_at"))
            .expr_as(col("f", "id"), Alias::new("family_id"))
            .expr_as(col("f", "revoked_at"), Alias::new("family_revoked_at"))
            .expr_as(col("f", "extra"), Alias::new("extra"))
            .expr_as(col("u", "email"), Alias::new("email"))
            .expr_as(col("u", "password_hash"), Alias::new("password_hash"))
            .expr_as(col("u", "is_active"), Alias::new("is_active"))
            .expr_as(col("u", "is_verified"), Alias::new("is_verified"))
            .expr_as(col("u", "last_login"), Alias::new("last_login"))
            .expr_as(col("u", "joined_at"), Alias::new("joined_at"))
            .expr_as(col("u", "profile"), Alias::new("profile"))
            .from_as(Alias::new("auth_tokens"), Alias::new("t"))
            .join_as(
                JoinType::InnerJoin,
                Alias::new("auth_token_families"),
                Alias::new("f"),
                col("f", "id").equals((Alias::new("t"), Alias::new("family_id"))),
            )
            .join_as(
                JoinType::InnerJoin,
                Alias::new("auth_users"),
                Alias::new("u"),
                col("u", "id").equals((Alias::new("t"), Alias::new("user_id"))),
            )
            .and_where(col("t", "token_hash").eq(random::sha256_hex(access_token)))
            .to_owned();
        let row = self
            .connection()
            .query_one(&select)
            .await
            .map_err(|e| Error::backend("authenticating a token", e))?
            .ok_or(Error::TokenInvalid)?;
        let get = |e: sea_orm::DbErr| Error::backend("reading a token row", e);
        let kind: String = row.try_get("", "kind").map_err(get)?;
        if kind != TokenKind::Access.as_str() {
            return Err(Error::TokenInvalid);
        }
        let revoked: Option<OffsetDateTime> = row.try_get("", "revoked_at").map_err(get)?;
        let family_revoked: Option<OffsetDateTime> =
            row.try_get("", "family_revoked_at").map_err(get)?;
        if revoked.is_some() || family_revoked.is_some() {
            return Err(Error::TokenRevoked);
        }
        let expires_at: OffsetDateTime = row.try_get("", "expires_at").map_err(get)?;
        if expires_at <= self.now() {
            return Err(Error::TokenExpired);
        }
        let user_id: i64 = row.try_get("", "user_id").map_err(get)?;
        let created_at: OffsetDateTime = row.try_get("", "created_at").map_err(get)?;
        let mut claims = Claims::new(
            user_id.to_string(),
            TokenKind::Access,
            row.try_get::<String>("", "jti").map_err(get)?,
            created_at.unix_timestamp(),
            expires_at.unix_timestamp(),
        )
        .with_family(row.try_get::<String>("", "family_id").map_err(get)?);
        if let Some(serde_json::Value::Object(extra)) = row
            .try_get::<Option<serde_json::Value>>("", "extra")
            .map_err(get)?
            && !extra.is_empty()
        {
            claims.extra = Some(extra);
        }
        let mut user = User::new(
            UserId::from(user_id),
            row.try_get::<String>("", "email").map_err(get)?,
        );
        user.password_hash = row.try_get("", "password_hash").map_err(get)?;
        user.is_active = row.try_get("", "is_active").map_err(get)?;
        user.is_verified = row.try_get("", "is_verified").map_err(get)?;
        user.last_login = row.try_get("", "last_login").map_err(get)?;
        user.joined_at = row.try_get("", "joined_at").map_err(get)?;
        if let Some(serde_json::Value::Object(profile)) = row
            .try_get::<Option<serde_json::Value>>("", "profile")
            .map_err(get)?
        {
            user.profile = profile;
        }
        Ok((claims, user))
    }
}
