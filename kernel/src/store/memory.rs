//! Memory rows: objects and view handles.

use super::Tx;
use super::db::Row;
use crate::actor::Actor;
use crate::caps::Rights;
use crate::error::KernelError;
use crate::ids::{ObjectId, Pid};
use crate::memory::{Handle, Object};
use crate::time::Timestamp;

const OBJECT_COLUMNS: &str = "oid, namespace, name, kind, content, version, owner, created_at, updated_at";

fn object_from_row(r: &Row<'_, '_>) -> Result<Object, KernelError> {
    Ok(Object {
        oid: ObjectId(r.get(0)?),
        namespace: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        content: r.get(4)?,
        version: r.get::<i64>(5)? as u64,
        owner: Pid(r.get(6)?),
        created_at: Timestamp(r.get(7)?),
        updated_at: Timestamp(r.get(8)?),
    })
}

const HANDLE_SELECT: &str = "SELECT o.oid, o.namespace, o.name, o.kind, o.version, octet_length(o.content), \
     v.rights, v.pinned, v.granted_by FROM views v JOIN objects o ON o.oid = v.oid";

fn handle_from_row(r: &Row<'_, '_>) -> Result<Handle, KernelError> {
    let Ok(granted_by) = r.get::<&str>(8)?.parse::<Actor>() else {
        return Err(KernelError::Store(crate::error::StoreError::Corrupt(format!(
            "view handle of object {}: unreadable grantor",
            r.get::<i64>(0)?
        ))));
    };
    Ok(Handle {
        oid: ObjectId(r.get(0)?),
        namespace: r.get(1)?,
        name: r.get(2)?,
        kind: r.get(3)?,
        version: r.get::<i64>(4)? as u64,
        bytes: r.get::<i64>(5)? as u64,
        rights: Rights::from_bits(r.get(6)?),
        pinned: r.get(7)?,
        granted_by,
    })
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
        self.one(
            "INSERT INTO objects (namespace, name, kind, content, version, owner, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?6) \
             ON CONFLICT (namespace, name) DO UPDATE SET kind = excluded.kind, content = excluded.content, \
             version = objects.version + 1, updated_at = excluded.updated_at \
             RETURNING oid, version",
            &[&namespace, &name, &kind, &content, &owner.get(), &now.micros()],
            |r| Ok((ObjectId(r.get(0)?), r.get::<i64>(1)? as u64)),
        )
    }

    /// One object, content included.
    pub(crate) fn object(&self, oid: ObjectId) -> Result<Option<Object>, KernelError> {
        let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE oid = ?");
        self.row(&sql, &[&oid.get()], object_from_row)
    }

    /// The object named `name` in `namespace`.
    pub(crate) fn object_named(&self, namespace: &str, name: &str) -> Result<Option<Object>, KernelError> {
        let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE namespace = ? AND name = ?");
        self.row(&sql, &[&namespace, &name], object_from_row)
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
        self.exec(
            "INSERT INTO views (pid, oid, rights, granted_by, created_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (pid, oid) DO UPDATE SET rights = views.rights | excluded.rights",
            &[&pid.get(), &oid.get(), &rights.bits(), &by.to_string(), &now.micros()],
        )?;
        Ok(())
    }

    /// `pid`'s handle on `oid`, if it has one.
    pub(crate) fn handle(&self, pid: Pid, oid: ObjectId) -> Result<Option<Handle>, KernelError> {
        let sql = format!("{HANDLE_SELECT} WHERE v.pid = ? AND v.oid = ?");
        self.row(&sql, &[&pid.get(), &oid.get()], handle_from_row)
    }

    /// `pid`'s view, by namespace and name.
    pub(crate) fn view(&self, pid: Pid) -> Result<Vec<Handle>, KernelError> {
        let sql = format!("{HANDLE_SELECT} WHERE v.pid = ? ORDER BY o.namespace, o.name");
        self.rows(&sql, &[&pid.get()], handle_from_row)
    }

    /// Pins or unpins `oid` in `pid`'s view; false if it has no such handle.
    pub(crate) fn set_pinned(&self, pid: Pid, oid: ObjectId, pinned: bool) -> Result<bool, KernelError> {
        let changed =
            self.exec("UPDATE views SET pinned = ? WHERE pid = ? AND oid = ?", &[&pinned, &pid.get(), &oid.get()])?;
        Ok(changed == 1)
    }

    /// `pid`'s pinned objects, content included, in pin order (oldest handle first).
    pub(crate) fn pinned_objects(&self, pid: Pid) -> Result<Vec<Object>, KernelError> {
        self.rows(
            "SELECT o.oid, o.namespace, o.name, o.kind, o.content, o.version, o.owner, o.created_at, \
             o.updated_at FROM views v JOIN objects o ON o.oid = v.oid WHERE v.pid = ? AND v.pinned = 1 \
             ORDER BY v.created_at, o.oid",
            &[&pid.get()],
            object_from_row,
        )
    }
}
