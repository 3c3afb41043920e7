//! Grant rows: insert, load, liveness along the derivation chain, counters, revocation.

use std::collections::HashMap;

use super::Tx;
use super::db::Row;
use crate::actor::Actor;
use crate::caps::{Effect, Grant, GrantSpec, ResourcePattern, Rights};
use crate::error::KernelError;
use crate::ids::{GrantId, Pid};
use crate::time::Timestamp;

const GRANT_COLUMNS: &str = "id, holder, resource, rights, effect, uses_left, expires_at, delegable, parent, revoked_at, granted_by, created_at";

fn corrupt(id: i64, what: &str) -> KernelError {
    KernelError::Store(crate::error::StoreError::Corrupt(format!("grant {id}: {what}")))
}

fn grant_from_row(r: &Row<'_, '_>) -> Result<Grant, KernelError> {
    let id: i64 = r.get(0)?;
    let (Ok(resource), Ok(effect), Ok(granted_by)) =
        (ResourcePattern::parse(r.get(2)?), Effect::parse(r.get(4)?), r.get::<&str>(10)?.parse::<Actor>())
    else {
        return Err(corrupt(id, "unreadable resource, effect or grantor"));
    };
    Ok(Grant {
        id: GrantId(id),
        holder: Pid(r.get(1)?),
        resource,
        rights: Rights::from_bits(r.get(3)?),
        effect,
        uses_left: r.get(5)?,
        expires_at: r.get::<Option<i64>>(6)?.map(Timestamp),
        delegable: r.get(7)?,
        parent: r.get::<Option<i64>>(8)?.map(GrantId),
        revoked_at: r.get::<Option<i64>>(9)?.map(Timestamp),
        granted_by,
        created_at: Timestamp(r.get(11)?),
    })
}

impl Tx<'_> {
    /// Adds a grant to `holder`, derived from `parent` if given.
    pub(crate) fn insert_grant(
        &self,
        holder: Pid,
        spec: &GrantSpec,
        parent: Option<GrantId>,
        by: &Actor,
        now: Timestamp,
    ) -> Result<GrantId, KernelError> {
        let id = self.one(
            "INSERT INTO grants (holder, resource, rights, effect, uses_left, expires_at, delegable, parent, \
             granted_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            &[
                &holder.get(),
                &spec.resource.to_string(),
                &spec.rights.bits(),
                &spec.effect.as_str(),
                &spec.uses.map(i64::from),
                &spec.expires.map(|d| now.plus(d).micros()),
                &spec.delegable,
                &parent.map(GrantId::get),
                &by.to_string(),
                &now.micros(),
            ],
            |r| r.get(0),
        )?;
        Ok(GrantId(id))
    }

    /// One grant.
    pub(crate) fn grant(&self, id: GrantId) -> Result<Option<Grant>, KernelError> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = ?");
        self.row(&sql, &[&id.get()], grant_from_row)
    }

    /// Every grant `holder` ever held, revoked or not, oldest first.
    pub(crate) fn grants_of(&self, holder: Pid) -> Result<Vec<Grant>, KernelError> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM grants WHERE holder = ? ORDER BY id");
        self.rows(&sql, &[&holder.get()], grant_from_row)
    }

    /// The grants of `holder` that can match now: not revoked, not expired,
    /// with uses left, and the same for every ancestor (revoking or using up
    /// a grant takes everything derived from it along).
    pub(crate) fn live_grants(&self, holder: Pid, now: Timestamp) -> Result<Vec<Grant>, KernelError> {
        let own = self.grants_of(holder)?;
        let mut ancestors: HashMap<GrantId, Option<Grant>> = HashMap::new();
        let mut live = Vec::with_capacity(own.len());
        'grants: for g in own {
            let mut cursor = Some(g.clone());
            while let Some(c) = cursor {
                if c.revoked_at.is_some()
                    || c.expires_at.is_some_and(|t| t <= now)
                    || c.uses_left.is_some_and(|n| n <= 0)
                {
                    continue 'grants;
                }
                cursor = match c.parent {
                    None => None,
                    Some(pid) => match ancestors.get(&pid) {
                        Some(found) => found.clone(),
                        None => {
                            let found = self.grant(pid)?;
                            ancestors.insert(pid, found.clone());
                            found
                        }
                    },
                };
            }
            live.push(g);
        }
        Ok(live)
    }

    /// Spends one use of `id` and of every counted ancestor (they share the
    /// count). False if any counter on the chain is already at zero.
    pub(crate) fn spend_grant(&self, id: GrantId) -> Result<bool, KernelError> {
        let mut cursor = Some(id);
        while let Some(g) = cursor {
            let changed = self.exec(
                "UPDATE grants SET uses_left = uses_left - 1 WHERE id = ? AND uses_left IS NOT NULL AND uses_left > 0",
                &[&g.get()],
            )?;
            let row = self.grant(g)?.ok_or_else(|| corrupt(g.get(), "missing from its derivation chain"))?;
            if changed == 0 && row.uses_left.is_some() {
                return Ok(false);
            }
            cursor = row.parent;
        }
        Ok(true)
    }

    /// Whether the grant needs [`Tx::spend_grant`] (it or an ancestor is counted).
    pub(crate) fn grant_is_counted(&self, id: GrantId) -> Result<bool, KernelError> {
        let mut cursor = Some(id);
        while let Some(g) = cursor {
            let row = self.grant(g)?.ok_or_else(|| corrupt(g.get(), "missing from its derivation chain"))?;
            if row.uses_left.is_some() {
                return Ok(true);
            }
            cursor = row.parent;
        }
        Ok(false)
    }

    /// Marks a grant revoked; returns how many grants derive from it (all
    /// stop matching at once, through [`Tx::live_grants`]). `None`: no such grant.
    pub(crate) fn revoke_grant(&self, id: GrantId, now: Timestamp) -> Result<Option<(Grant, u64)>, KernelError> {
        let Some(g) = self.grant(id)? else { return Ok(None) };
        if g.revoked_at.is_none() {
            self.exec("UPDATE grants SET revoked_at = ? WHERE id = ?", &[&now.micros(), &id.get()])?;
        }
        let derived: i64 = self.one(
            "WITH RECURSIVE tree(id) AS (SELECT id FROM grants WHERE parent = ? \
             UNION ALL SELECT g.id FROM grants g JOIN tree t ON g.parent = t.id) SELECT count(*) FROM tree",
            &[&id.get()],
            |r| r.get(0),
        )?;
        Ok(Some((g, derived as u64)))
    }
}
