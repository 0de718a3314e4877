//! auth-tokens-db integration tests, on SQLite always and on PostgreSQL / MariaDB when
//! `AUTH_TEST_POSTGRES_URL` / `AUTH_TEST_MYSQL_URL` are set.

mod conformance;
mod feed;
mod queries;
mod revocation;
