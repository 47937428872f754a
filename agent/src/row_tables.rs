//! The glue between the SNMP crate's RowStatus machinery and the unit's
//! tables: a [`RowKind`] says what one table's rows are and how they are
//! created, changed and destroyed; [`KindModel`] turns it into a
//! [`RowModel`], keeping rows created with `createAndWait` in memory until
//! they are activated (a pending row is not persisted: it is not yet a
//! group, volume or access entry).

use std::collections::BTreeMap;
use std::sync::Mutex;

use dvsan_snmp::ErrorStatus;
use dvsan_snmp::Value;
use dvsan_snmp::row_status::{ColumnSpec, RowAction, RowChange, RowError, RowModel, RowState};

/// Column values of one row.
pub type Cells = BTreeMap<u32, Value>;

/// One of the unit's tables, as rows.
pub trait RowKind: Send + Sync + 'static {
    /// What a destroyed row needs to come back (an undone request).
    type Saved: Send + 'static;
    /// Every accessible column, ascending, the RowStatus column among them.
    fn columns(&self) -> &'static [ColumnSpec];
    /// The RowStatus column.
    fn status_column(&self) -> u32;
    /// Whether `index` could name a new row.
    fn valid_index(&self, index: &[u32]) -> bool;
    /// Every live row, with every readable column but RowStatus.
    fn rows(&self) -> BTreeMap<Vec<u32>, Cells>;
    /// Refuses a row that cannot be created with `values`.
    fn check_create(&self, index: &[u32], values: &Cells) -> Result<(), RowError>;
    /// Refuses a change of a live row's columns.
    fn check_update(&self, index: &[u32], values: &Cells) -> Result<(), RowError>;
    /// Refuses destroying a live row.
    fn check_destroy(&self, index: &[u32]) -> Result<(), RowError>;
    /// Creates the row, durably.
    fn create(&self, index: &[u32], values: &Cells) -> Result<(), String>;
    /// Changes a live row's columns, durably.
    fn update(&self, index: &[u32], values: &Cells) -> Result<(), String>;
    /// Destroys a live row, durably, returning what restores it.
    fn destroy(&self, index: &[u32]) -> Result<Self::Saved, String>;
    /// Brings a destroyed row back.
    fn restore(&self, saved: Self::Saved) -> Result<(), String>;
}

/// Runs blocking work (metadata updates sync every disk) without stalling
/// the other tasks of a multi-threaded runtime.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

enum Undo<S> {
    Created(Vec<u32>),
    Updated(Vec<u32>, Cells),
    Destroyed(S),
    Pending(Vec<u32>, Option<Cells>),
    Activated(Vec<u32>, Cells),
}

/// A [`RowModel`] over a [`RowKind`].
pub struct KindModel<K: RowKind> {
    kind: K,
    pending: Mutex<BTreeMap<Vec<u32>, Cells>>,
    undo: Mutex<Vec<Undo<K::Saved>>>,
}

impl<K: RowKind> KindModel<K> {
    /// The model of `kind`.
    pub fn new(kind: K) -> Self {
        KindModel {
            kind,
            pending: Mutex::default(),
            undo: Mutex::default(),
        }
    }

    /// The table's own part.
    pub fn kind(&self) -> &K {
        &self.kind
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u32>, Cells>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pending_state(&self, cells: &Cells) -> RowState {
        let status = self.kind.status_column();
        let complete = self
            .kind
            .columns()
            .iter()
            .filter(|c| c.required && c.column != status)
            .all(|c| cells.contains_key(&c.column));
        if complete {
            RowState::NotInService
        } else {
            RowState::NotReady
        }
    }

    fn merged(&self) -> BTreeMap<Vec<u32>, Cells> {
        let status = self.kind.status_column();
        let mut rows = self.kind.rows();
        for cells in rows.values_mut() {
            cells.insert(status, Value::Integer(RowState::Active.row_status() as i32));
        }
        for (index, cells) in self.pending().iter() {
            let mut cells = cells.clone();
            cells.insert(
                status,
                Value::Integer(self.pending_state(&cells).row_status() as i32),
            );
            rows.insert(index.clone(), cells);
        }
        rows
    }

    fn apply_one(&self, change: &RowChange) -> Result<Undo<K::Saved>, String> {
        let index = &change.index;
        let pending = self.pending().get(index).cloned();
        match (change.action, pending) {
            (RowAction::Create { active: true }, _) => {
                self.kind.create(index, &change.values)?;
                Ok(Undo::Created(index.clone()))
            }
            (RowAction::Create { active: false }, _) => {
                self.pending().insert(index.clone(), change.values.clone());
                Ok(Undo::Pending(index.clone(), None))
            }
            (RowAction::Activate, Some(mut cells)) => {
                cells.extend(change.values.clone());
                self.kind.create(index, &cells)?;
                let before = self.pending().remove(index).unwrap_or_default();
                Ok(Undo::Activated(index.clone(), before))
            }
            (RowAction::Update | RowAction::Deactivate, Some(cells)) => {
                let mut next = cells.clone();
                next.extend(change.values.clone());
                self.pending().insert(index.clone(), next);
                Ok(Undo::Pending(index.clone(), Some(cells)))
            }
            (RowAction::Destroy, Some(cells)) => {
                self.pending().remove(index);
                Ok(Undo::Pending(index.clone(), Some(cells)))
            }
            (RowAction::Update | RowAction::Activate, None) => {
                let before = self.kind.rows().remove(index).unwrap_or_default();
                let old: Cells = change
                    .values
                    .keys()
                    .filter_map(|c| before.get(c).map(|v| (*c, v.clone())))
                    .collect();
                if !change.values.is_empty() {
                    self.kind.update(index, &change.values)?;
                }
                Ok(Undo::Updated(index.clone(), old))
            }
            (RowAction::Deactivate, None) => {
                Err("an active row cannot be taken out of service".into())
            }
            (RowAction::Destroy, None) => Ok(Undo::Destroyed(self.kind.destroy(index)?)),
        }
    }

    fn undo_one(&self, undo: Undo<K::Saved>) -> Result<(), String> {
        match undo {
            Undo::Created(index) => self.kind.destroy(&index).map(drop),
            Undo::Updated(index, old) => self.kind.update(&index, &old),
            Undo::Destroyed(saved) => self.kind.restore(saved),
            Undo::Activated(index, cells) => {
                self.kind.destroy(&index)?;
                self.pending().insert(index, cells);
                Ok(())
            }
            Undo::Pending(index, before) => {
                let mut pending = self.pending();
                match before {
                    Some(cells) => pending.insert(index, cells),
                    None => pending.remove(&index),
                };
                Ok(())
            }
        }
    }
}

impl<K: RowKind> RowModel for KindModel<K> {
    fn columns(&self) -> &[ColumnSpec] {
        self.kind.columns()
    }

    fn row_status_column(&self) -> u32 {
        self.kind.status_column()
    }

    fn valid_index(&self, index: &[u32]) -> bool {
        self.kind.valid_index(index)
    }

    fn row_state(&self, index: &[u32]) -> Option<RowState> {
        if let Some(cells) = self.pending().get(index) {
            return Some(self.pending_state(cells));
        }
        self.kind
            .rows()
            .contains_key(index)
            .then_some(RowState::Active)
    }

    fn cell(&self, column: u32, index: &[u32]) -> Option<Value> {
        self.merged().remove(index)?.remove(&column)
    }

    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)> {
        let rows = self.merged();
        let range = match after {
            None => rows.range::<Vec<u32>, _>(..),
            Some(a) => rows.range::<Vec<u32>, _>((
                std::ops::Bound::Excluded(a.to_vec()),
                std::ops::Bound::Unbounded,
            )),
        };
        range
            .filter_map(|(i, cells)| cells.get(&column).map(|v| (i.clone(), v.clone())))
            .next()
    }

    fn check(&self, changes: &[RowChange]) -> Result<(), (usize, RowError)> {
        for (i, change) in changes.iter().enumerate() {
            let pending = self.pending().get(&change.index).cloned();
            let result = match (change.action, pending) {
                (RowAction::Create { active: true }, _) => {
                    self.kind.check_create(&change.index, &change.values)
                }
                (RowAction::Activate, Some(mut cells)) => {
                    cells.extend(change.values.clone());
                    self.kind.check_create(&change.index, &cells)
                }
                (RowAction::Create { active: false }, _) | (_, Some(_)) => Ok(()),
                (RowAction::Update | RowAction::Activate, None) => {
                    self.kind.check_update(&change.index, &change.values)
                }
                (RowAction::Deactivate, None) => Err(RowError::new(
                    ErrorStatus::InconsistentValue,
                    None,
                    "an active row cannot be taken out of service",
                )),
                (RowAction::Destroy, None) => self.kind.check_destroy(&change.index),
            };
            result.map_err(|e| (i, e))?;
        }
        Ok(())
    }

    fn apply(&self, changes: &[RowChange]) -> Result<(), String> {
        let mut log = Vec::new();
        for change in changes {
            match blocking(|| self.apply_one(change)) {
                Ok(undo) => log.push(undo),
                Err(e) => {
                    for undo in log.into_iter().rev() {
                        if let Err(u) = blocking(|| self.undo_one(undo)) {
                            tracing::error!(error = %u, "undoing a partly applied SET failed");
                        }
                    }
                    return Err(e);
                }
            }
        }
        *self.undo.lock().unwrap_or_else(|e| e.into_inner()) = log;
        Ok(())
    }

    fn revert(&self, _changes: &[RowChange]) -> Result<(), String> {
        let log = std::mem::take(&mut *self.undo.lock().unwrap_or_else(|e| e.into_inner()));
        for undo in log.into_iter().rev() {
            blocking(|| self.undo_one(undo))?;
        }
        Ok(())
    }
}
