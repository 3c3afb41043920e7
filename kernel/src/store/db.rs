//! The store's narrow interface to a database: statements with typed
//! parameters in, rows of typed values out, on SQLite or PostgreSQL.
//!
//! Every typed operation on [`Tx`] is written once, in portable SQL, against
//! [`Tx::exec`], [`Tx::row`], [`Tx::rows`] and [`Tx::scan`]. A statement is
//! written with `?` (or `?N`) placeholders; for PostgreSQL they become `$N`
//! and an `INDEXED BY` hint (which only SQLite's planner needs) is dropped.
//! Values cross the boundary as [`Value`]: integers, reals, text, bytes,
//! NULL; a parameter is converted to whatever type the server inferred for
//! its column, so one statement serves both databases.

use std::cell::{Cell, RefCell};
use std::error::Error as StdError;

use bytes::BytesMut;
use rusqlite::types::ValueRef;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::pg::Session;
use crate::error::{KernelError, StoreError};
use crate::ids::AuditSeq;

/// One value in a parameter or a column.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

impl Value<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "an integer",
            Value::Real(_) => "a real",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

/// A statement parameter.
pub(crate) trait Param: Sync {
    fn value(&self) -> Value<'_>;
}

impl Param for i64 {
    fn value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}

impl Param for i32 {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl Param for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for std::borrow::Cow<'_, str> {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, Param::value)
    }
}

impl Param for Value<'_> {
    fn value(&self) -> Value<'_> {
        *self
    }
}

/// A value read from a column, by the type the caller wants.
pub(crate) trait Column<'r>: Sized {
    /// `None` when the column holds a value of another type.
    fn from_value(v: Value<'r>) -> Option<Self>;
}

impl Column<'_> for i64 {
    fn from_value(v: Value<'_>) -> Option<Self> {
        match v {
            Value::Int(n) => Some(n),
            _ => None,
        }
    }
}

impl Column<'_> for i32 {
    fn from_value(v: Value<'_>) -> Option<Self> {
        i64::from_value(v).and_then(|n| i32::try_from(n).ok())
    }
}

impl Column<'_> for bool {
    fn from_value(v: Value<'_>) -> Option<Self> {
        i64::from_value(v).map(|n| n != 0)
    }
}

impl Column<'_> for f64 {
    fn from_value(v: Value<'_>) -> Option<Self> {
        match v {
            Value::Real(x) => Some(x),
            Value::Int(n) => Some(n as f64),
            _ => None,
        }
    }
}

impl<'r> Column<'r> for &'r str {
    fn from_value(v: Value<'r>) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl Column<'_> for String {
    fn from_value(v: Value<'_>) -> Option<Self> {
        <&str>::from_value(v).map(str::to_string)
    }
}

impl<'r, T: Column<'r>> Column<'r> for Option<T> {
    fn from_value(v: Value<'r>) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A row being read.
pub(crate) enum Row<'r, 's> {
    Sqlite(&'r rusqlite::Row<'s>),
    Postgres(&'r tokio_postgres::Row),
}

impl<'r> Row<'r, '_> {
    /// Column `i` as it is stored.
    pub(crate) fn value(&self, i: usize) -> Result<Value<'r>, KernelError> {
        match self {
            Row::Sqlite(r) => match r.get_ref(i).map_err(sqlite_err)? {
                ValueRef::Null => Ok(Value::Null),
                ValueRef::Integer(n) => Ok(Value::Int(n)),
                ValueRef::Real(x) => Ok(Value::Real(x)),
                ValueRef::Text(t) => Ok(std::str::from_utf8(t).map_or(Value::Blob(t), Value::Text)),
                ValueRef::Blob(b) => Ok(Value::Blob(b)),
            },
            Row::Postgres(r) => r.try_get::<_, PgCell<'r>>(i).map(|c| c.0).map_err(pg_err),
        }
    }

    /// Column `i` as a `T`; a value of another type is a corrupt store.
    pub(crate) fn get<T: Column<'r>>(&self, i: usize) -> Result<T, KernelError> {
        let v = self.value(i)?;
        T::from_value(v).ok_or_else(|| {
            KernelError::Store(StoreError::Corrupt(format!(
                "column {} holds {}, not the type it should",
                self.name(i),
                v.kind()
            )))
        })
    }

    fn name(&self, i: usize) -> String {
        match self {
            Row::Sqlite(r) => r.as_ref().column_name(i).map_or_else(|_| i.to_string(), str::to_string),
            Row::Postgres(r) => r.columns().get(i).map_or_else(|| i.to_string(), |c| c.name().to_string()),
        }
    }
}

/// Which database a transaction runs on.
pub(crate) enum Conn<'c> {
    Sqlite(&'c rusqlite::Connection),
    Postgres(&'c Session),
}

/// Whether a transaction is a read or a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chain {
    /// A read: nothing to take.
    Read,
    /// A write that holds it (on SQLite, every write from `BEGIN
    /// IMMEDIATE`; PostgreSQL writes have no such order, see [`super::pg`]).
    Held,
}

/// A transaction: the typed operations of the store.
pub(crate) struct Tx<'c> {
    pub(super) conn: Conn<'c>,
    /// The audit head as of the last read or append in this transaction. A
    /// transaction sees no one else's appends (an SQLite write holds the
    /// write order, a read its snapshot), so it is read from the table at
    /// most once. PostgreSQL writes never read it (see [`super::audit`]).
    pub(super) audit_head: RefCell<Option<(AuditSeq, String)>>,
    /// The records a PostgreSQL write appended, inserted as it ends ([`Tx::flush_audit`]).
    pub(super) unsealed: RefCell<Vec<super::audit::Unsealed>>,
    /// Rows inserted, updated or deleted so far.
    changes: Cell<u64>,
    chain: Cell<Chain>,
}

impl<'c> Tx<'c> {
    pub(super) fn new(conn: Conn<'c>, chain: Chain) -> Tx<'c> {
        Tx {
            conn,
            audit_head: RefCell::new(None),
            unsealed: RefCell::new(Vec::new()),
            changes: Cell::new(0),
            chain: Cell::new(chain),
        }
    }

    /// Whether this transaction changed any row.
    pub(super) fn changed(&self) -> bool {
        self.changes.get() > 0
    }

    /// Whether the store is PostgreSQL (for the few statements that differ).
    pub(super) fn is_postgres(&self) -> bool {
        matches!(self.conn, Conn::Postgres(_))
    }

    /// Whether this is a write transaction.
    pub(super) fn writes(&self) -> bool {
        self.chain.get() != Chain::Read
    }

    /// What a query over process rows a write goes on to change ends with:
    /// on PostgreSQL `FOR UPDATE SKIP LOCKED`, so that the rows it gets are
    /// its own until it ends, re-checked against the query on their newest
    /// version, and rows another write is deciding on are left to that
    /// write (see [`super::pg`]); nothing on SQLite or in a read.
    pub(super) fn claim_rows(&self) -> &'static str {
        if self.is_postgres() && self.writes() { " FOR UPDATE SKIP LOCKED" } else { "" }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn exec(&self, sql: &str, params: &[&dyn Param]) -> Result<usize, KernelError> {
        let n = match self.conn {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql).map_err(sqlite_err)?;
                bind(&mut stmt, params)?;
                stmt.raw_execute().map_err(sqlite_err)?
            }
            Conn::Postgres(s) => s.execute(sql, params)? as usize,
        };
        self.changes.set(self.changes.get() + n as u64);
        Ok(n)
    }

    /// The first row of a query, read by `f`, if there is one.
    pub(crate) fn row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_, '_>) -> Result<T, KernelError>,
    ) -> Result<Option<T>, KernelError> {
        let mut f = Some(f);
        let mut out = None;
        self.scan(sql, params, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok(false)
        })?;
        Ok(out)
    }

    /// The first row of a query that always yields one (an aggregate).
    pub(crate) fn one<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&Row<'_, '_>) -> Result<T, KernelError>,
    ) -> Result<T, KernelError> {
        self.row(sql, params, f)?.ok_or_else(|| KernelError::Store(StoreError::Other(format!("no row from `{sql}`"))))
    }

    /// Every row of a query, each read by `f`.
    pub(crate) fn rows<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_, '_>) -> Result<T, KernelError>,
    ) -> Result<Vec<T>, KernelError> {
        let mut out = Vec::new();
        self.scan(sql, params, |r| {
            out.push(f(r)?);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Streams the rows of a query through `f` until it returns `false`.
    pub(crate) fn scan(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_, '_>) -> Result<bool, KernelError>,
    ) -> Result<(), KernelError> {
        let mut seen = 0u64;
        match self.conn {
            Conn::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql).map_err(sqlite_err)?;
                bind(&mut stmt, params)?;
                let mut rows = stmt.raw_query();
                while let Some(r) = rows.next().map_err(sqlite_err)? {
                    seen += 1;
                    if !f(&Row::Sqlite(r))? {
                        break;
                    }
                }
            }
            Conn::Postgres(s) => s.scan(sql, params, |r| {
                seen += 1;
                f(&Row::Postgres(r))
            })?,
        }
        // `INSERT ... RETURNING` and the like change what they return.
        if is_write(sql) {
            self.changes.set(self.changes.get() + seen);
        }
        Ok(())
    }
}

fn is_write(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or_default();
    ["INSERT", "UPDATE", "DELETE"].iter().any(|w| head.eq_ignore_ascii_case(w))
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &[&dyn Param]) -> Result<(), KernelError> {
    for (i, p) in params.iter().enumerate() {
        let v = match p.value() {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(n),
            Value::Real(x) => ValueRef::Real(x),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        };
        stmt.raw_bind_parameter(i + 1, rusqlite::types::ToSqlOutput::Borrowed(v)).map_err(sqlite_err)?;
    }
    Ok(())
}

fn sqlite_err(e: rusqlite::Error) -> KernelError {
    KernelError::Store(super::store_err(e))
}

fn pg_err(e: tokio_postgres::Error) -> KernelError {
    KernelError::Store(super::pg::store_err(&e))
}

/// A parameter bound for PostgreSQL: converted to the type the server
/// inferred for it (an integer into `bigint`, `integer` or `boolean`).
#[derive(Debug)]
pub(super) struct PgParam<'a>(pub(super) Value<'a>);

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Int(n), &Type::INT8) => n.to_sql(ty, out),
            (Value::Int(n), &Type::INT4) => i32::try_from(n)?.to_sql(ty, out),
            (Value::Int(n), &Type::INT2) => i16::try_from(n)?.to_sql(ty, out),
            (Value::Int(n), &Type::BOOL) => (n != 0).to_sql(ty, out),
            (Value::Int(n), &Type::FLOAT8) => (n as f64).to_sql(ty, out),
            (Value::Real(x), &Type::FLOAT8) => x.to_sql(ty, out),
            (Value::Real(x), &Type::FLOAT4) => (x as f32).to_sql(ty, out),
            // PostgreSQL text cannot hold NUL: it is stored as U+FFFD
            // rather than failing the commit (SQLite stores it as is).
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN)
                if s.contains('\0') =>
            {
                s.replace('\0', "\u{FFFD}").as_str().to_sql(&Type::TEXT, out)
            }
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN) => {
                s.to_sql(&Type::TEXT, out)
            }
            (Value::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
            (v, ty) => Err(format!("cannot bind {} to a parameter of type {ty}", v.kind()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column read from PostgreSQL, whatever its type.
struct PgCell<'a>(Value<'a>);

impl<'a> FromSql<'a> for PgCell<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(PgCell(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Value::Text(<&str>::from_sql(&Type::TEXT, raw)?)
            }
            Type::BYTEA => Value::Blob(raw),
            ref other => return Err(format!("a column of type {other} (cast it to bigint or text)").into()),
        }))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(PgCell(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// The statement as PostgreSQL takes it: `?` and `?N` become `$N` (outside
/// string literals and quoted names) and `INDEXED BY name` is dropped.
pub(super) fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0u32;
    let mut chars = sql.char_indices().peekable();
    let mut quote: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(&(_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit()) {
                    digits.push(d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            'I' | 'i' if sql[i..].len() >= 11 && sql[i..i + 11].eq_ignore_ascii_case("INDEXED BY ") => {
                // Skip the hint and the index name after it.
                let rest = &sql[i + 11..];
                let name_len = rest.find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_')).unwrap_or(rest.len());
                let skip = 11 + name_len;
                while chars.peek().is_some_and(|&(j, _)| j < i + skip) {
                    chars.next();
                }
                // Keep one space between the table and what follows.
                if chars.peek().is_some_and(|&(_, ch)| ch == ' ') && out.ends_with(' ') {
                    chars.next();
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::postgres_sql;

    #[test]
    fn placeholders_and_hints_become_postgres() {
        assert_eq!(
            postgres_sql("SELECT MIN(x) FROM processes INDEXED BY processes_backoff WHERE a = ? AND b = '?' AND c = ?"),
            "SELECT MIN(x) FROM processes WHERE a = $1 AND b = '?' AND c = $2"
        );
        assert_eq!(postgres_sql("VALUES (?1, ?2, ?2) ON CONFLICT"), "VALUES ($1, $2, $2) ON CONFLICT");
        assert_eq!(postgres_sql("SELECT \"?\" FROM t"), "SELECT \"?\" FROM t");
    }
}
