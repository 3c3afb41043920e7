//! Memory rows: objects and view handles.

use rusqlite::{OptionalExtension, Row, params};

use super::{Sql, Tx};
use crate::actor::Actor;
use crate::caps::Rights;
use crate::error::KernelError;
use crate::ids::{ObjectId, Pid};
use crate::memory::{Handle, Object};
use crate::time::Timestamp;

const OBJECT_COLUMNS: &str = "oid, namespace, name, kind, content, version, owner, created_at, updated_at";

fn object_from_row(r: &Row<'_>) -> Result<Object, rusqlite::Error> {
    Ok(Object {
        oid: ObjectId(r.get(0)?),
        namespace: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        content: r.get(4)?,
        version: r.get::<_, i64>(5)? as u64,
        owner: Pid(r.get(6)?),
        created_at: Timestamp(r.get(7)?),
        updated_at: Timestamp(r.get(8)?),
    })
}

const HANDLE_SELECT: &str = "SELECT o.oid, o.namespace, o.name, o.kind, o.version, length(CAST(o.content AS BLOB)), \
     v.rights, v.pinned, v.granted_by FROM views v JOIN objects o ON o.oid = v.oid";

fn handle_from_row(r: &Row<'_>) -> Result<Result<Handle, KernelError>, rusqlite::Error> {
    let by: String = r.get(8)?;
    let Ok(granted_by) = by.parse::<Actor>() else {
        return Ok(Err(KernelError::Store(crate::error::StoreError::Corrupt(format!(
            "view handle of object {}: unreadable grantor",
            r.get::<_, i64>(0)?
        )))));
    };
    Ok(Ok(Handle {
        oid: ObjectId(r.get(0)?),
        namespace: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        version: r.get::<_, i64>(4)? as u64,
        bytes: r.get::<_, i64>(5)? as u64,
        rights: Rights::from_bits(r.get(6)?),
        pinned: r.get::<_, i64>(7)? != 0,
        granted_by,
    }))
}

impl Tx<'_> {
    /// Creates or updates `namespace/name`; returns its oid and new version.
    pub(crate) fn put_object(
        &self,
        namespace: &str,
        name: &str,
        kind: &str,
        content: &str,
        owner: Pid,
        now: Timestamp,
    ) -> Result<(ObjectId, u64), KernelError> {
        self.tx
            .prepare_cached(
                "INSERT INTO objects (namespace, name, kind, content, version, owner, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?6) \
                 ON CONFLICT (namespace, name) DO UPDATE SET kind = excluded.kind, content = excluded.content, \
                 version = objects.version + 1, updated_at = excluded.updated_at \
                 RETURNING oid, version",
            )
            .sql()?
            .query_row(params![namespace, name, kind, content, owner.get(), now.micros()], |r| {
                Ok((ObjectId(r.get(0)?), r.get::<_, i64>(1)? as u64))
            })
            .sql()
    }

    /// One object, content included.
    pub(crate) fn object(&self, oid: ObjectId) -> Result<Option<Object>, KernelError> {
        let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE oid = ?");
        self.tx.prepare_cached(&sql).sql()?.query_row([oid.get()], object_from_row).optional().sql()
    }

    /// The object named `name` in `namespace`.
    pub(crate) fn object_named(&self, namespace: &str, name: &str) -> Result<Option<Object>, KernelError> {
        let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE namespace = ? AND name = ?");
        self.tx.prepare_cached(&sql).sql()?.query_row(params![namespace, name], object_from_row).optional().sql()
    }

    /// Puts `oid` in `pid`'s view with `rights` (keeping the union with a
    /// handle it already has, and its pin).
    pub(crate) fn put_handle(
        &self,
        pid: Pid,
        oid: ObjectId,
        rights: Rights,
        by: &Actor,
        now: Timestamp,
    ) -> Result<(), KernelError> {
        self.tx
            .prepare_cached(
                "INSERT INTO views (pid, oid, rights, granted_by, created_at) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (pid, oid) DO UPDATE SET rights = views.rights | excluded.rights",
            )
            .sql()?
            .execute(params![pid.get(), oid.get(), rights.bits(), by.to_string(), now.micros()])
            .sql()?;
        Ok(())
    }

    /// `pid`'s handle on `oid`, if it has one.
    pub(crate) fn handle(&self, pid: Pid, oid: ObjectId) -> Result<Option<Handle>, KernelError> {
        let sql = format!("{HANDLE_SELECT} WHERE v.pid = ? AND v.oid = ?");
        self.tx
            .prepare_cached(&sql)
            .sql()?
            .query_row(params![pid.get(), oid.get()], handle_from_row)
            .optional()
            .sql()?
            .transpose()
    }

    /// `pid`'s view, by namespace and name.
    pub(crate) fn view(&self, pid: Pid) -> Result<Vec<Handle>, KernelError> {
        let sql = format!("{HANDLE_SELECT} WHERE v.pid = ? ORDER BY o.namespace, o.name");
        let mut stmt = self.tx.prepare_cached(&sql).sql()?;
        let rows = stmt.query_map([pid.get()], handle_from_row).sql()?;
        rows.map(|r| r.sql().and_then(|h| h)).collect()
    }

    /// Pins or unpins `oid` in `pid`'s view; false if it has no such handle.
    pub(crate) fn set_pinned(&self, pid: Pid, oid: ObjectId, pinned: bool) -> Result<bool, KernelError> {
        let changed = self
            .tx
            .prepare_cached("UPDATE views SET pinned = ? WHERE pid = ? AND oid = ?")
            .sql()?
            .execute(params![i64::from(pinned), pid.get(), oid.get()])
            .sql()?;
        Ok(changed == 1)
    }

    /// `pid`'s pinned objects, content included, in pin order (oldest handle first).
    pub(crate) fn pinned_objects(&self, pid: Pid) -> Result<Vec<Object>, KernelError> {
        let mut stmt = self
            .tx
            .prepare_cached(
                "SELECT o.oid, o.namespace, o.name, o.kind, o.content, o.version, o.owner, o.created_at, \
                 o.updated_at FROM views v JOIN objects o ON o.oid = v.oid WHERE v.pid = ? AND v.pinned = 1 \
                 ORDER BY v.created_at, o.oid",
            )
            .sql()?;
        let rows = stmt.query_map([pid.get()], object_from_row).sql()?;
        rows.map(|r| r.sql()).collect()
    }
}
