//! Tables whose rows a manager creates and destroys by SET, with a RowStatus
//! column (RFC 2579), answered per RFC 2579 and RFC 3416.
//!
//! Every SET is checked as a whole before anything changes: each row's
//! bindings are gathered (in whatever order the manager sent them), typed and
//! range-checked column by column, run through the RowStatus state machine,
//! and then offered to the application's own checks. Only a request that
//! passes all of that reaches commit, so the answers are the RFC's:
//! `inconsistentValue` for `createAndGo` without a required column,
//! `noCreation` for a column of a row that does not exist, `wrongValue` for
//! a RowStatus value that may not be written, never a late `commitFailed`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::ErrorStatus;
use crate::mib_module::{
    Lookup, Position, SetBinding, SetPlan, SetRejection, Subtree, TableSource, position, table_get,
    table_get_next,
};
use crate::oid::Oid;
use crate::value::Value;

/// RowStatus values (RFC 2579).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowStatus {
    /// active(1)
    Active = 1,
    /// notInService(2)
    NotInService = 2,
    /// notReady(3)
    NotReady = 3,
    /// createAndGo(4)
    CreateAndGo = 4,
    /// createAndWait(5)
    CreateAndWait = 5,
    /// destroy(6)
    Destroy = 6,
}

impl RowStatus {
    /// The status for a wire value.
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            1 => RowStatus::Active,
            2 => RowStatus::NotInService,
            3 => RowStatus::NotReady,
            4 => RowStatus::CreateAndGo,
            5 => RowStatus::CreateAndWait,
            6 => RowStatus::Destroy,
            _ => return None,
        })
    }
}

/// The state an existing row is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowState {
    /// In use.
    Active,
    /// Complete but not in use.
    NotInService,
    /// Missing a required column.
    NotReady,
}

impl RowState {
    /// Its RowStatus value.
    pub fn row_status(self) -> RowStatus {
        match self {
            RowState::Active => RowStatus::Active,
            RowState::NotInService => RowStatus::NotInService,
            RowState::NotReady => RowStatus::NotReady,
        }
    }
}

/// A column's SMI syntax, for the checks every SET gets before the
/// application sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// INTEGER with a range.
    Integer {
        /// Least value.
        min: i32,
        /// Greatest value.
        max: i32,
    },
    /// An enumerated INTEGER.
    Enum(&'static [i32]),
    /// Unsigned32 / Gauge32 with a range.
    Unsigned {
        /// Least value.
        min: u32,
        /// Greatest value.
        max: u32,
    },
    /// OCTET STRING with a length range.
    Octets {
        /// Least length.
        min: usize,
        /// Greatest length.
        max: usize,
    },
    /// DisplayString (RFC 2579: printable ASCII) with a length range.
    Display {
        /// Least length.
        min: usize,
        /// Greatest length.
        max: usize,
    },
    /// Counter64, read-only by nature.
    Counter64,
    /// The RowStatus column.
    RowStatus,
}

/// Who may write a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// read-only.
    ReadOnly,
    /// read-create, writable in any state.
    ReadCreate,
    /// read-create, but only while the row is not active (RFC 2579 note 5).
    ReadCreateInactive,
}

/// One column of a RowStatus table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnSpec {
    /// Column number under the entry.
    pub column: u32,
    /// Descriptor, for messages.
    pub name: &'static str,
    /// SMI syntax.
    pub syntax: Syntax,
    /// Who may write it.
    pub access: Access,
    /// Whether a row cannot become active without it (no default).
    pub required: bool,
}

/// What one SET does to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowAction {
    /// Create the row; `active` for createAndGo, else createAndWait.
    Create {
        /// Whether the row starts active.
        active: bool,
    },
    /// Change columns of an existing row, state unchanged.
    Update,
    /// Make the row active (with any columns set alongside).
    Activate,
    /// Take the row out of service.
    Deactivate,
    /// Delete the row.
    Destroy,
}

/// A checked change of one row, as the application applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowChange {
    /// The row's index arcs.
    pub index: Vec<u32>,
    /// What happens to the row.
    pub action: RowAction,
    /// Column values set by this request (the RowStatus column excluded).
    pub values: BTreeMap<u32, Value>,
    /// The row's state before, when it existed.
    pub before: Option<RowState>,
}

/// An application's refusal of a row change: the status, and the column it
/// concerns (the RowStatus binding is blamed when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// Error-status to answer with.
    pub status: ErrorStatus,
    /// Column to point the error-index at.
    pub column: Option<u32>,
    /// Why, for the log.
    pub reason: String,
}

impl RowError {
    /// A refusal with `status`, pointing at `column`.
    pub fn new(status: ErrorStatus, column: Option<u32>, reason: impl Into<String>) -> Self {
        RowError {
            status,
            column,
            reason: reason.into(),
        }
    }
}

/// The application side of a RowStatus table: its rows, its own checks, and
/// applying checked changes.
pub trait RowModel: Send + Sync + 'static {
    /// Every accessible column, ascending, the RowStatus column among them.
    fn columns(&self) -> &[ColumnSpec];
    /// The RowStatus column's number.
    fn row_status_column(&self) -> u32;
    /// Whether `index` is a well-formed index for a new row.
    fn valid_index(&self, index: &[u32]) -> bool;
    /// The state of the row `index`, if it exists.
    fn row_state(&self, index: &[u32]) -> Option<RowState>;
    /// The value of `column` in row `index` (the RowStatus column included).
    fn cell(&self, column: u32, index: &[u32]) -> Option<Value>;
    /// The first row after `after` with a value in `column`.
    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)>;
    /// The application's checks of a whole request's changes (space, disks
    /// in use, names taken …). `Err((i, e))` refuses `changes[i]`.
    fn check(&self, changes: &[RowChange]) -> Result<(), (usize, RowError)>;
    /// Applies checked changes. Quick (metadata only) and durable before it
    /// returns.
    fn apply(&self, changes: &[RowChange]) -> Result<(), String>;
    /// Restores the rows `apply` changed (another part of the request failed).
    fn revert(&self, changes: &[RowChange]) -> Result<(), String>;
}

/// A RowStatus table served under its entry OID.
pub struct RowStatusTable<M> {
    entry: Vec<u32>,
    /// The model's column numbers, ascending, computed once.
    columns: Vec<u32>,
    model: Arc<M>,
}

impl<M: RowModel> RowStatusTable<M> {
    /// The table whose entry OID is `entry`, rows kept by `model`.
    pub fn new(entry: &[u32], model: Arc<M>) -> Self {
        let mut columns: Vec<u32> = model.columns().iter().map(|c| c.column).collect();
        columns.sort_unstable();
        RowStatusTable {
            entry: entry.to_vec(),
            columns,
            model,
        }
    }

    fn spec(&self, column: u32) -> Option<&ColumnSpec> {
        self.model.columns().iter().find(|c| c.column == column)
    }
}

struct ModelSource<'a, M>(&'a M, &'a [u32]);

impl<M: RowModel> TableSource for ModelSource<'_, M> {
    fn columns(&self) -> &[u32] {
        self.1
    }
    fn cell(&self, column: u32, index: &[u32]) -> Option<Value> {
        self.0.cell(column, index)
    }
    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)> {
        self.0.next_cell(column, after)
    }
}

/// Checks a value against a column's syntax (RFC 3416 4.2.5 steps 5 and 6).
pub fn check_syntax(syntax: Syntax, value: &Value) -> Result<(), ErrorStatus> {
    match (syntax, value) {
        (Syntax::Integer { min, max }, Value::Integer(v)) => {
            if (min..=max).contains(v) {
                Ok(())
            } else {
                Err(ErrorStatus::WrongValue)
            }
        }
        (Syntax::Enum(allowed), Value::Integer(v)) => {
            if allowed.contains(v) {
                Ok(())
            } else {
                Err(ErrorStatus::WrongValue)
            }
        }
        (Syntax::Unsigned { min, max }, Value::Gauge32(v)) => {
            if (min..=max).contains(v) {
                Ok(())
            } else {
                Err(ErrorStatus::WrongValue)
            }
        }
        (Syntax::Octets { min, max }, Value::OctetString(b)) => {
            if (min..=max).contains(&b.len()) {
                Ok(())
            } else {
                Err(ErrorStatus::WrongLength)
            }
        }
        (Syntax::Display { min, max }, Value::OctetString(b)) => {
            if !(min..=max).contains(&b.len()) {
                Err(ErrorStatus::WrongLength)
            } else if b.iter().any(|c| !(0x20..0x7f).contains(c)) {
                // RFC 2579 DisplayString: NVT ASCII; control characters other
                // than CR LF are not allowed, and dvsan's names have none.
                Err(ErrorStatus::WrongValue)
            } else {
                Ok(())
            }
        }
        (Syntax::RowStatus, Value::Integer(v)) => match RowStatus::from_i32(*v) {
            // notReady may be read, never written (RFC 2579).
            Some(RowStatus::NotReady) | None => Err(ErrorStatus::WrongValue),
            Some(_) => Ok(()),
        },
        (Syntax::Counter64, _) => Err(ErrorStatus::NotWritable),
        _ => Err(ErrorStatus::WrongType),
    }
}

impl<M: RowModel> RowStatusTable<M> {
    /// Checks one request's bindings for this table and decides each row's
    /// change; see the module documentation.
    pub fn plan(&self, bindings: &[SetBinding<'_>]) -> Result<Vec<RowChange>, SetRejection> {
        let status_column = self.model.row_status_column();
        // Gather bindings by row, in the order rows first appear.
        struct RowBindings<'b> {
            index: Vec<u32>,
            status: Option<(usize, RowStatus)>,
            values: BTreeMap<u32, (usize, &'b Value)>,
            first: usize,
        }
        let mut rows: Vec<RowBindings<'_>> = Vec::new();
        for b in bindings {
            let reject = |status| SetRejection {
                status,
                index: b.index,
            };
            let Position::Inside(rest) = position(&self.entry, b.oid) else {
                return Err(reject(ErrorStatus::NotWritable));
            };
            let Some((&column, index)) = rest.split_first() else {
                return Err(reject(ErrorStatus::NotWritable));
            };
            let Some(spec) = self.spec(column) else {
                return Err(reject(ErrorStatus::NotWritable));
            };
            if spec.access == Access::ReadOnly {
                return Err(reject(ErrorStatus::NotWritable));
            }
            check_syntax(spec.syntax, b.value).map_err(reject)?;
            let row = match rows.iter_mut().position(|r| r.index == index) {
                Some(i) => &mut rows[i],
                None => {
                    rows.push(RowBindings {
                        index: index.to_vec(),
                        status: None,
                        values: BTreeMap::new(),
                        first: b.index,
                    });
                    rows.last_mut().expect("just pushed")
                }
            };
            if column == status_column {
                let status = b.value.as_i32().and_then(RowStatus::from_i32);
                let Some(status) = status else {
                    return Err(reject(ErrorStatus::WrongValue));
                };
                if row.status.is_some() {
                    // The same instance twice in one SET.
                    return Err(reject(ErrorStatus::InconsistentValue));
                }
                row.status = Some((b.index, status));
            } else if row.values.insert(column, (b.index, b.value)).is_some() {
                return Err(reject(ErrorStatus::InconsistentValue));
            }
        }

        let mut changes = Vec::with_capacity(rows.len());
        let mut blame = Vec::with_capacity(rows.len());
        for row in &rows {
            let before = self.model.row_state(&row.index);
            let present = |column: u32| {
                row.values.contains_key(&column)
                    || (before.is_some() && self.model.cell(column, &row.index).is_some())
            };
            let missing_required = self
                .model
                .columns()
                .iter()
                .find(|c| c.required && c.column != status_column && !present(c.column));
            let action = match (row.status, before) {
                (None, None) => {
                    return Err(SetRejection {
                        status: ErrorStatus::NoCreation,
                        index: row.first,
                    });
                }
                (None, Some(state)) => {
                    if state == RowState::Active
                        && let Some((_, (i, _))) = row.values.iter().find(|(c, _)| {
                            self.spec(**c).map(|s| s.access) == Some(Access::ReadCreateInactive)
                        })
                    {
                        return Err(SetRejection {
                            status: ErrorStatus::InconsistentValue,
                            index: *i,
                        });
                    }
                    RowAction::Update
                }
                (Some((i, requested)), before) => {
                    let reject = |status| SetRejection { status, index: i };
                    match (requested, before) {
                        (RowStatus::CreateAndGo, None) => {
                            if missing_required.is_some() {
                                return Err(reject(ErrorStatus::InconsistentValue));
                            }
                            if !self.model.valid_index(&row.index) {
                                return Err(reject(ErrorStatus::NoCreation));
                            }
                            RowAction::Create { active: true }
                        }
                        (RowStatus::CreateAndWait, None) => {
                            if !self.model.valid_index(&row.index) {
                                return Err(reject(ErrorStatus::NoCreation));
                            }
                            RowAction::Create { active: false }
                        }
                        (RowStatus::CreateAndGo | RowStatus::CreateAndWait, Some(_)) => {
                            return Err(reject(ErrorStatus::InconsistentValue));
                        }
                        (RowStatus::Active | RowStatus::NotInService, None) => {
                            return Err(reject(ErrorStatus::InconsistentValue));
                        }
                        (RowStatus::Active, Some(_)) => {
                            if missing_required.is_some() {
                                return Err(reject(ErrorStatus::InconsistentValue));
                            }
                            RowAction::Activate
                        }
                        (RowStatus::NotInService, Some(_)) => {
                            if missing_required.is_some() {
                                return Err(reject(ErrorStatus::InconsistentValue));
                            }
                            RowAction::Deactivate
                        }
                        (RowStatus::Destroy, _) => {
                            if let Some((_, (vi, _))) = row.values.iter().next() {
                                // Setting columns of a row being destroyed
                                // means nothing; refuse rather than guess.
                                return Err(SetRejection {
                                    status: ErrorStatus::InconsistentValue,
                                    index: *vi,
                                });
                            }
                            if before.is_none() {
                                // Destroying a row that does not exist is a
                                // successful no-op (RFC 2579, state A).
                                continue;
                            }
                            RowAction::Destroy
                        }
                        (RowStatus::NotReady, _) => return Err(reject(ErrorStatus::WrongValue)),
                    }
                }
            };
            blame.push((row.status.map(|(i, _)| i), &row.values, row.first));
            changes.push(RowChange {
                index: row.index.clone(),
                action,
                values: row
                    .values
                    .iter()
                    .map(|(c, (_, v))| (*c, (*v).clone()))
                    .collect(),
                before,
            });
        }

        if let Err((i, error)) = self.model.check(&changes) {
            let (status_binding, values, first) = blame[i.min(blame.len().saturating_sub(1))];
            let index = error
                .column
                .and_then(|c| values.get(&c).map(|(vi, _)| *vi))
                .or(status_binding)
                .unwrap_or(first);
            tracing::debug!(status = %error.status, reason = %error.reason, "row change refused");
            return Err(SetRejection {
                status: error.status,
                index,
            });
        }
        Ok(changes)
    }
}

struct RowPlan<M> {
    model: Arc<M>,
    changes: Vec<RowChange>,
    applied: bool,
}

impl<M: RowModel> SetPlan for RowPlan<M> {
    fn commit(&mut self) -> Result<(), String> {
        self.model.apply(&self.changes)?;
        self.applied = true;
        Ok(())
    }

    fn undo(&mut self) -> Result<(), String> {
        if self.applied {
            self.model.revert(&self.changes)?;
            self.applied = false;
        }
        Ok(())
    }
}

impl<M: RowModel> Subtree for RowStatusTable<M> {
    fn base(&self) -> &[u32] {
        &self.entry
    }

    fn get(&self, oid: &[u32]) -> Lookup {
        table_get(&self.entry, &ModelSource(&*self.model, &self.columns), oid)
    }

    fn get_next(&self, oid: &[u32]) -> Option<(Oid, Value)> {
        table_get_next(&self.entry, &ModelSource(&*self.model, &self.columns), oid)
    }

    fn prepare_set(&self, bindings: &[SetBinding<'_>]) -> Result<Box<dyn SetPlan>, SetRejection> {
        let changes = self.plan(bindings)?;
        Ok(Box::new(RowPlan {
            model: Arc::clone(&self.model),
            changes,
            applied: false,
        }))
    }
}
