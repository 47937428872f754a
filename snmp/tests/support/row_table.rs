//! An in-memory RowStatus table for tests: rows with a name, a size, a mode
//! and a counter, created and destroyed by SET.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use dvsan_snmp::row_status::{
    Access, ColumnSpec, RowAction, RowChange, RowError, RowModel, RowState, Syntax,
};
use dvsan_snmp::{ErrorStatus, Value};

/// The test table's entry OID (a test arc under net-snmp's playpen).
pub const ENTRY: &[u32] = &[1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 99, 1, 1];
pub const COL_NAME: u32 = 2;
pub const COL_SIZE: u32 = 3;
pub const COL_MODE: u32 = 4;
pub const COL_OPS: u32 = 5;
pub const COL_STATUS: u32 = 6;
/// Progress (per cent) of the background work a new row starts.
pub const COL_PROGRESS: u32 = 7;
/// A row of this name passes every check, but its commit fails.
pub const COMMIT_FAILS: &str = "commit-fails";

const COLUMNS: &[ColumnSpec] = &[
    ColumnSpec {
        column: COL_NAME,
        name: "testName",
        syntax: Syntax::Display { min: 1, max: 32 },
        access: Access::ReadCreate,
        required: true,
    },
    ColumnSpec {
        column: COL_SIZE,
        name: "testSize",
        syntax: Syntax::Unsigned {
            min: 1,
            max: 1_000_000,
        },
        access: Access::ReadCreateInactive,
        required: true,
    },
    ColumnSpec {
        column: COL_MODE,
        name: "testMode",
        syntax: Syntax::Enum(&[1, 2]),
        access: Access::ReadCreate,
        required: false,
    },
    ColumnSpec {
        column: COL_OPS,
        name: "testOps",
        syntax: Syntax::Counter64,
        access: Access::ReadOnly,
        required: false,
    },
    ColumnSpec {
        column: COL_STATUS,
        name: "testRowStatus",
        syntax: Syntax::RowStatus,
        access: Access::ReadCreate,
        required: false,
    },
    ColumnSpec {
        column: COL_PROGRESS,
        name: "testProgress",
        syntax: Syntax::Unsigned { min: 0, max: 100 },
        access: Access::ReadOnly,
        required: false,
    },
];

/// A gate the background work of new rows waits at, so a test can show
/// that the SET answered before the work was done.
#[derive(Default)]
pub struct Gate {
    open: Mutex<bool>,
    cv: std::sync::Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cv.wait(open).unwrap();
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: Option<String>,
    pub size: Option<u32>,
    pub mode: i32,
    pub ops: u64,
    pub state: RowState,
    pub progress: u32,
}

/// Rows by index; the total size may not exceed `capacity`
/// (resourceUnavailable), names are unique (inconsistentValue).
pub struct TestTable {
    pub rows: Arc<RwLock<BTreeMap<u32, Row>>>,
    /// When set, a new row starts background work (a "rebuild") that waits
    /// at this gate, then reports its progress through COL_PROGRESS.
    pub background: Option<Arc<Gate>>,
    pub capacity: u64,
    /// The rows before the last apply, for revert.
    before: Mutex<Option<BTreeMap<u32, Row>>>,
}

impl TestTable {
    pub fn new(capacity: u64) -> Self {
        TestTable {
            rows: Arc::new(RwLock::new(BTreeMap::new())),
            background: None,
            capacity,
            before: Mutex::new(None),
        }
    }

    pub fn with_rows(capacity: u64, n: u32) -> Self {
        let t = TestTable::new(capacity);
        {
            let mut rows = t.rows.write().unwrap();
            for i in 1..=n {
                rows.insert(
                    i,
                    Row {
                        name: Some(format!("row{i}")),
                        size: Some(i),
                        mode: 1,
                        ops: u64::from(i) << 33,
                        state: RowState::Active,
                        progress: 100,
                    },
                );
            }
        }
        t
    }

    fn one(index: &[u32]) -> Option<u32> {
        match index {
            [i] if *i >= 1 => Some(*i),
            _ => None,
        }
    }

    fn value(row: &Row, column: u32) -> Option<Value> {
        match column {
            COL_NAME => row.name.clone().map(Value::text),
            COL_SIZE => row.size.map(Value::Gauge32),
            COL_MODE => Some(Value::Integer(row.mode)),
            COL_OPS => Some(Value::Counter64(row.ops)),
            COL_STATUS => Some(Value::Integer(row.state.row_status() as i32)),
            COL_PROGRESS => Some(Value::Gauge32(row.progress)),
            _ => None,
        }
    }
}

impl RowModel for TestTable {
    fn columns(&self) -> &[ColumnSpec] {
        COLUMNS
    }

    fn row_status_column(&self) -> u32 {
        COL_STATUS
    }

    fn valid_index(&self, index: &[u32]) -> bool {
        matches!(index, [i] if (1..=65535).contains(i))
    }

    fn row_state(&self, index: &[u32]) -> Option<RowState> {
        let i = Self::one(index)?;
        self.rows.read().unwrap().get(&i).map(|r| r.state)
    }

    fn cell(&self, column: u32, index: &[u32]) -> Option<Value> {
        let i = Self::one(index)?;
        self.rows
            .read()
            .unwrap()
            .get(&i)
            .and_then(|r| Self::value(r, column))
    }

    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)> {
        use std::ops::Bound;
        let start = match after {
            None | Some([]) => Bound::Unbounded,
            Some([i]) => Bound::Excluded(*i),
            // Anything below [i, ...] is after [i] but before [i + 1].
            Some([i, ..]) => Bound::Excluded(*i),
        };
        let rows = self.rows.read().unwrap();
        rows.range((start, Bound::Unbounded))
            .find_map(|(i, r)| Self::value(r, column).map(|v| (vec![*i], v)))
    }

    fn check(&self, changes: &[RowChange]) -> Result<(), (usize, RowError)> {
        let rows = self.rows.read().unwrap();
        let mut total: u64 = rows.values().filter_map(|r| r.size).map(u64::from).sum();
        for (n, change) in changes.iter().enumerate() {
            let i = Self::one(&change.index).expect("valid index");
            if let Some(Value::OctetString(name)) = change.values.get(&COL_NAME) {
                let name = String::from_utf8_lossy(name);
                if rows
                    .iter()
                    .any(|(j, r)| *j != i && r.name.as_deref() == Some(&*name))
                {
                    return Err((
                        n,
                        RowError::new(ErrorStatus::InconsistentValue, Some(COL_NAME), "name taken"),
                    ));
                }
            }
            if let Some(Value::Gauge32(size)) = change.values.get(&COL_SIZE) {
                let old = rows.get(&i).and_then(|r| r.size).unwrap_or(0);
                total = total - u64::from(old) + u64::from(*size);
                if total > self.capacity {
                    return Err((
                        n,
                        RowError::new(ErrorStatus::ResourceUnavailable, Some(COL_SIZE), "no space"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn apply(&self, changes: &[RowChange]) -> Result<(), String> {
        let mut rows = self.rows.write().unwrap();
        *self.before.lock().unwrap() = Some(rows.clone());
        // A commit that fails half way (after changing some rows), as one
        // whose storage fails would.
        let fails = changes
            .iter()
            .any(|c| c.values.get(&COL_NAME).and_then(Value::as_text) == Some(COMMIT_FAILS));
        if fails {
            rows.clear();
            return Err("the table's storage failed".into());
        }
        for change in changes {
            let i = Self::one(&change.index).ok_or("bad index")?;
            let name = change
                .values
                .get(&COL_NAME)
                .and_then(|v| v.as_text().map(str::to_owned));
            let size = change.values.get(&COL_SIZE).and_then(Value::as_u32);
            let mode = change.values.get(&COL_MODE).and_then(Value::as_i32);
            match change.action {
                RowAction::Destroy => {
                    rows.remove(&i);
                    continue;
                }
                RowAction::Create { active } => {
                    if let Some(gate) = &self.background {
                        // The long work runs after the commit, never in it.
                        let gate = Arc::clone(gate);
                        let rows = Arc::clone(&self.rows);
                        std::thread::spawn(move || {
                            gate.wait();
                            for p in (10..=100).step_by(10) {
                                if let Some(row) = rows.write().unwrap().get_mut(&i) {
                                    row.progress = p;
                                }
                                std::thread::sleep(std::time::Duration::from_millis(5));
                            }
                        });
                    }
                    let complete = name.is_some() && size.is_some();
                    rows.insert(
                        i,
                        Row {
                            name: None,
                            size: None,
                            mode: 1,
                            ops: 0,
                            progress: if self.background.is_some() { 0 } else { 100 },
                            state: if active {
                                RowState::Active
                            } else if complete {
                                RowState::NotInService
                            } else {
                                RowState::NotReady
                            },
                        },
                    );
                }
                _ => {}
            }
            let row = rows.get_mut(&i).ok_or("row vanished")?;
            if name.is_some() {
                row.name = name;
            }
            if size.is_some() {
                row.size = size;
            }
            if let Some(m) = mode {
                row.mode = m;
            }
            match change.action {
                RowAction::Activate => row.state = RowState::Active,
                RowAction::Deactivate => row.state = RowState::NotInService,
                _ => {
                    if row.state == RowState::NotReady && row.name.is_some() && row.size.is_some() {
                        row.state = RowState::NotInService;
                    }
                }
            }
        }
        Ok(())
    }

    fn revert(&self, _changes: &[RowChange]) -> Result<(), String> {
        let before = self
            .before
            .lock()
            .unwrap()
            .take()
            .ok_or("nothing to revert")?;
        *self.rows.write().unwrap() = before;
        Ok(())
    }
}
