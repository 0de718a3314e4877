//! Reading the revocations page by page for a mirror to load: the next page is fetched while
//! this one is merged.

use auth_service::{BackendError, Change, Error, Result};
use sea_orm::sea_query::{DynIden, Expr, ExprTrait, Order, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr};
use time::OffsetDateTime;

/// Rows per page when a mirror loads the revocations.
pub(crate) const SCAN_PAGE: u64 = 10_000;

/// Reads `select` (ordered and paged here by its primary key `key`) page by page, converting
/// each page and handing it to `each`; `false` when `each` asked to stop. The next page is
/// read (on another thread) while this one is converted and handed over.
pub(crate) async fn scan_pages(
    conn: &DatabaseConnection,
    select: SelectStatement,
    key: DynIden,
    convert: impl Fn(&sea_orm::QueryResult) -> Result<(String, Vec<Change>)>,
    each: &mut (dyn for<'c> FnMut(&'c [Change]) -> bool + Send),
) -> Result<bool> {
    let page_after = |after: Option<&str>| {
        let mut page = select.clone();
        page.order_by(key.clone(), Order::Asc).limit(SCAN_PAGE);
        if let Some(after) = after {
            page.and_where(Expr::col(key.clone()).gt(after));
        }
        page
    };
    let fetch = |page: SelectStatement| {
        let conn = conn.clone();
        tokio::spawn(async move { conn.query_all(&page).await })
    };
    let joined =
        |r: std::result::Result<std::result::Result<Vec<_>, DbErr>, tokio::task::JoinError>| {
            r.map_err(|e| Error::backend("listing revocations", e))?
                .map_err(db("listing revocations"))
        };
    let mut rows = joined(fetch(page_after(None)).await)?;
    loop {
        let next = if rows.len() as u64 >= SCAN_PAGE {
            let last = rows.last().map(&convert).transpose()?.map(|(key, _)| key);
            let next = fetch(page_after(last.as_deref()));
            // Start it now: a task spawned from a worker waits in that worker's own slot,
            // which no other worker takes, until this one yields, and this one is about to
            // merge a whole page first. Yielding once hands the query to the driver.
            tokio::task::yield_now().await;
            Some(next)
        } else {
            None
        };
        let mut batch = Vec::with_capacity(rows.len());
        for row in &rows {
            batch.extend(convert(row)?.1);
        }
        if !each(&batch) {
            if let Some(next) = next {
                next.abort();
            }
            return Ok(false);
        }
        match next {
            Some(next) => rows = joined(next.await)?,
            None => return Ok(true),
        }
    }
}

/// [`scan_pages`] over a table of revoked ids: `select` reads `(id, expires_at)`.
pub(crate) async fn scan_ids(
    conn: &DatabaseConnection,
    select: SelectStatement,
    key: DynIden,
    make: impl Fn(String, OffsetDateTime) -> Change,
    each: &mut (dyn for<'c> FnMut(&'c [Change]) -> bool + Send),
) -> Result<bool> {
    let read = db("reading a revocation");
    scan_pages(
        conn,
        select,
        key,
        |row| {
            let id: String = row.try_get_by_index(0).map_err(&read)?;
            let until = row.try_get_by_index(1).map_err(&read)?;
            Ok((id.clone(), vec![make(id, until)]))
        },
        each,
    )
    .await
}

/// SQLite: reads the live rows of a revocation table (`key`, `expires_at`) a page at a time
/// as **one** row per page (the keys hex-encoded, each with its expiry in Unix seconds,
/// joined into one string), since the SQLite driver hands rows over one by one between
/// threads, which costs more than the rows themselves at millions of them. Keys are compared
/// as SQLite compares them (bytes), so paging by the largest key of each page is exact.
pub(crate) async fn scan_sqlite(
    conn: &DatabaseConnection,
    table: &str,
    key: &str,
    extra_filter: &str,
    now: OffsetDateTime,
    make: impl Fn(String, OffsetDateTime) -> Change,
    each: &mut (dyn for<'c> FnMut(&'c [Change]) -> bool + Send),
) -> Result<bool> {
    // An expiry SQLite cannot read counts as far in the future: kept, never dropped.
    let sql = format!(
        "SELECT group_concat(hex({key}) || ':' || COALESCE(CAST(strftime('%s', expires_at) AS INTEGER), 253402300799), ',') \
         FROM (SELECT {key}, expires_at FROM {table} \
               WHERE expires_at > ? {extra_filter} AND {key} > ? ORDER BY {key} LIMIT {SCAN_PAGE})"
    );
    // The next page is read (by the driver's thread) while this one is merged.
    let fetch = |after: String| {
        let conn = conn.clone();
        let statement = sea_orm::Statement::from_sql_and_values(
            DatabaseBackend::Sqlite,
            sql.as_str(),
            [now.into(), after.into()],
        );
        tokio::spawn(async move { conn.query_one_raw(statement).await })
    };
    let unreadable =
        |what: &str| Error::Backend(BackendError::message(format!("{what} could not be read")));
    let mut pending = Some(fetch(String::new()));
    while let Some(page) = pending.take() {
        let row = page
            .await
            .map_err(|e| Error::backend("listing revocations", e))?
            .map_err(db("listing revocations"))?;
        let joined: Option<String> = match row {
            Some(row) => row.try_get_by_index(0).map_err(db("reading revocations"))?,
            None => None,
        };
        let Some(joined) = joined.filter(|j| !j.is_empty()) else {
            return Ok(true);
        };
        let mut entries = Vec::with_capacity(usize::try_from(SCAN_PAGE).unwrap_or(0));
        let mut after = String::new();
        for entry in joined.split(',') {
            let (hex, until) = entry
                .split_once(':')
                .ok_or_else(|| unreadable("a revocation page"))?;
            let id = unhex(hex).ok_or_else(|| unreadable("a revoked id"))?;
            let until = until
                .parse::<i64>()
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH + time::Duration::days(2_932_896));
            if id > after {
                after.clone_from(&id);
            }
            entries.push((id, until));
        }
        let full = entries.len() as u64 >= SCAN_PAGE;
        if full {
            pending = Some(fetch(after));
            // Start it now (see scan_pages): the page is read while this one is merged.
            tokio::task::yield_now().await;
        }
        let batch: Vec<Change> = entries
            .into_iter()
            .map(|(id, until)| make(id, until))
            .collect();
        if !each(&batch) {
            if let Some(next) = pending.take() {
                next.abort();
            }
            return Ok(false);
        }
    }
    Ok(true)
}

/// Decodes SQLite's `hex()` of a text value.
pub(crate) fn unhex(hex: &str) -> Option<String> {
    let digit = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let bytes: Option<Vec<u8>> = hex
        .as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect();
    String::from_utf8(bytes?).ok()
}

fn db(context: &'static str) -> impl Fn(sea_orm::DbErr) -> Error {
    move |e| Error::backend(context, e)
}
