//! Memory rows: objects and view handles.

use super::Tx;
use super::db::{Param, Row};
use crate::actor::Actor;
use crate::caps::{Right, Rights};
use crate::error::KernelError;
use crate::ids::{ObjectId, Pid};
use crate::memory::{Handle, Object, SearchHit, SearchQuery};
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

    /// The objects `pid` may read that match `query`, best first: ranked
    /// full-text search (FTS5 on SQLite, a tsvector on PostgreSQL), names
    /// weighing more than content. Only objects in `pid`'s view with the
    /// read right are ever considered.
    pub(crate) fn search_objects(
        &self,
        pid: Pid,
        query: &SearchQuery,
        namespace: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SearchHit>, KernelError> {
        let words = query.words();
        let read = Rights::one(Right::Read).bits();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Any word matches; a document holding the whole query as a phrase
        // scores that phrase too, so exact matches rank first. The words
        // are letters and digits only (`SearchQuery`), so they can be
        // quoted into either engine's query syntax as they are. Every
        // expression is a parameter: a statement's text depends only on
        // the number of words, so searches do not crowd the hot statements
        // out of the prepared-statement cache.
        //
        // Not FTS5's bm25: its weights are the whole store's word
        // statistics, other processes' private objects included, so a score
        // would tell a searcher how common a word is in memory it cannot
        // read. The score is the object's own, the same on both stores: 4
        // for the whole phrase, and per word 2 if the name holds it and 1
        // if the content does (on SQLite each an FTS5 lookup by rowid; on
        // PostgreSQL a test of the tsvector, whose name lexemes carry
        // weight A and content lexemes B).
        let postgres = self.is_postgres();
        let quote = |w: &String| if postgres { format!("'{w}'") } else { format!("\"{w}\"") };
        let quoted: Vec<String> = words.iter().map(quote).collect();
        let mut probes: Vec<(u8, String)> = Vec::new();
        if words.len() > 1 {
            let phrase = if postgres {
                let weighted =
                    |weight: &str| quoted.iter().map(|q| format!("{q}:{weight}")).collect::<Vec<_>>().join(" <-> ");
                format!("({}) | ({})", weighted("A"), weighted("B"))
            } else {
                format!("\"{}\"", words.join(" "))
            };
            probes.push((4, phrase));
        }
        for q in &quoted {
            if postgres {
                probes.push((2, format!("{q}:A")));
                probes.push((1, format!("{q}:B")));
            } else {
                probes.push((2, format!("name : {q}")));
                probes.push((1, format!("content : {q}")));
            }
        }
        let first = if namespace.is_some() { 6 } else { 5 };
        let score = probes
            .iter()
            .enumerate()
            .map(|(i, (weight, _))| {
                let n = first + i;
                if postgres {
                    format!("{weight} * (o.search @@ to_tsquery('english', ?{n}))::int")
                } else {
                    format!(
                        "{weight} * EXISTS (SELECT 1 FROM objects_fts f WHERE f.objects_fts MATCH ?{n} AND f.rowid = o.oid)"
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(" + ");
        let in_namespace = if namespace.is_some() { " AND o.namespace = ?5" } else { "" };
        let (sql, expression) = if postgres {
            let sql = format!(
                "SELECT hit.oid, hit.namespace, hit.name, hit.kind, \
                 ts_headline('english', hit.content, to_tsquery('english', ?2), \
                 'StartSel=[, StopSel=], MaxWords=16, MinWords=6, MaxFragments=1'), hit.score \
                 FROM (SELECT o.oid, o.namespace, o.name, o.kind, o.content, ({score})::float8 AS score \
                 FROM views v JOIN objects o ON o.oid = v.oid \
                 WHERE v.pid = ?1 AND (v.rights & ?3) <> 0 AND o.search @@ to_tsquery('english', ?2){in_namespace} \
                 ORDER BY score DESC, o.oid LIMIT ?4) hit ORDER BY hit.score DESC, hit.oid"
            );
            (sql, quoted.join(" | "))
        } else {
            let sql = format!(
                "SELECT o.oid, o.namespace, o.name, o.kind, snippet(objects_fts, 1, '[', ']', '...', 16), \
                 CAST(({score}) AS REAL) AS score \
                 FROM objects_fts JOIN views v ON v.oid = objects_fts.rowid AND v.pid = ?1 \
                 JOIN objects o ON o.oid = objects_fts.rowid \
                 WHERE objects_fts MATCH ?2 AND (v.rights & ?3) <> 0{in_namespace} \
                 ORDER BY score DESC, o.oid LIMIT ?4"
            );
            (sql, quoted.join(" OR "))
        };
        let mut params: Vec<&dyn Param> = vec![&pid.0, &expression, &read, &limit];
        if let Some(namespace) = &namespace {
            params.push(namespace);
        }
        params.extend(probes.iter().map(|(_, e)| e as &dyn Param));
        self.rows(&sql, &params, |r| {
            Ok(SearchHit {
                oid: ObjectId(r.get(0)?),
                namespace: r.get(1)?,
                name: r.get(2)?,
                kind: r.get(3)?,
                snippet: r.get(4)?,
                score: r.get(5)?,
            })
        })
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
