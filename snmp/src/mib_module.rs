//! MIB modules as an agent serves them: one dispatching handler per module
//! (system group, IF-MIB, DVSAN-MIB), holding its scalar groups and tables in
//! OID order.
//!
//! The engine asks every registered handler on each GETNEXT step, so the
//! cost of a walk grows with the number of registrations; registering one
//! handler per module, never one per row or column, keeps a walk as fast as
//! the engine allows. Inside a module, subtrees are kept sorted and found by
//! binary search, and each table answers "the next instance after this one"
//! from an ordered map under a short lock: no copy of a table per request and
//! no lock held across a walk.

use std::sync::{Arc, Mutex};

use async_snmp::handler::{
    BoxFuture, GetNextResult, GetResult, HandlerResult, MibHandler, PreparedSet, RequestContext,
    SetCommitError, SetCommitResult, SetTestError, SetTestResult, SetUndoError, SetUndoResult,
};

use crate::error::ErrorStatus;
use crate::oid::Oid;
use crate::row_status::{Syntax, check_syntax};
use crate::value::Value;

/// What a subtree holds at one exact instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The instance exists with this value.
    Value(Value),
    /// The object type is not served here.
    NoSuchObject,
    /// The object type is served, but not this instance.
    NoSuchInstance,
}

/// A SET refused before anything changed: an error-status and the 0-based
/// position of the binding in the request it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetRejection {
    /// The error-status to answer with.
    pub status: ErrorStatus,
    /// 0-based position in the request.
    pub index: usize,
}

/// One binding of a SET as a subtree sees it.
#[derive(Debug, Clone, Copy)]
pub struct SetBinding<'a> {
    /// 0-based position in the request.
    pub index: usize,
    /// Instance OID arcs.
    pub oid: &'a [u32],
    /// The value to set.
    pub value: &'a Value,
}

/// A SET that passed every check, ready to apply. Applying must be quick
/// (metadata only: SETs are serialised agent-wide) and durable before it
/// returns, since the Response follows at once.
pub trait SetPlan: Send {
    /// Applies the change.
    fn commit(&mut self) -> Result<(), String>;
    /// Restores what `commit` changed (another binding of the request failed).
    fn undo(&mut self) -> Result<(), String>;
    /// Whether [`SetPlan::undo`] can restore what a commit changed. A
    /// module commits its plans that cannot be undone after all its others
    /// have committed, so that one of those failing never leaves a change
    /// standing that the request's answer says was not made.
    fn reversible(&self) -> bool {
        true
    }
}

/// A scalar group or a table: the unit a module dispatches to.
pub trait Subtree: Send + Sync + 'static {
    /// The OID everything this subtree serves lies under.
    fn base(&self) -> &[u32];
    /// The value at an exact instance (`oid` starts with [`Subtree::base`]).
    fn get(&self, oid: &[u32]) -> Lookup;
    /// The first instance strictly after `oid` within this subtree.
    fn get_next(&self, oid: &[u32]) -> Option<(Oid, Value)>;
    /// Checks every binding of one SET request that falls in this subtree,
    /// all at once, and returns the plan that applies them.
    fn prepare_set(&self, bindings: &[SetBinding<'_>]) -> Result<Box<dyn SetPlan>, SetRejection> {
        Err(SetRejection {
            status: ErrorStatus::NotWritable,
            index: bindings.first().map(|b| b.index).unwrap_or(0),
        })
    }
}

/// Where `oid` falls relative to a subtree's base.
pub(crate) enum Position<'a> {
    /// Before the subtree: the first instance is the answer.
    Before,
    /// Inside: the arcs after the base.
    Inside(&'a [u32]),
    /// After the subtree: nothing here.
    After,
}

pub(crate) fn position<'a>(base: &[u32], oid: &'a [u32]) -> Position<'a> {
    if let Some(rest) = oid.strip_prefix(base) {
        return Position::Inside(rest);
    }
    let n = base.len().min(oid.len());
    if oid[..n] < base[..n] || (oid.len() < base.len() && oid[..n] == base[..n]) {
        Position::Before
    } else {
        Position::After
    }
}

/// A group of scalars (`base.N.0`), each computed when asked.
pub struct ScalarGroup {
    base: Vec<u32>,
    scalars: Vec<Scalar>,
}

/// Setter of a writable scalar: checks the value and applies it.
pub type ScalarSetter = Box<dyn Fn(&Value) -> Result<(), ErrorStatus> + Send + Sync>;

struct Scalar {
    arc: u32,
    read: Box<dyn Fn() -> Value + Send + Sync>,
    /// The syntax every SET is checked against before the setter runs, and the setter.
    write: Option<(Syntax, Arc<ScalarSetter>)>,
}

impl ScalarGroup {
    /// An empty group under `base`.
    pub fn new(base: &[u32]) -> Self {
        ScalarGroup {
            base: base.to_vec(),
            scalars: Vec::new(),
        }
    }

    /// Adds the read-only scalar `base.arc.0`.
    pub fn scalar(mut self, arc: u32, read: impl Fn() -> Value + Send + Sync + 'static) -> Self {
        self.insert(Scalar {
            arc,
            read: Box::new(read),
            write: None,
        });
        self
    }

    /// Adds the read-write scalar `base.arc.0`. A SET is checked against
    /// `syntax` while the request is tested; `write` applies it at commit.
    pub fn writable(
        mut self,
        arc: u32,
        syntax: Syntax,
        read: impl Fn() -> Value + Send + Sync + 'static,
        write: impl Fn(&Value) -> Result<(), ErrorStatus> + Send + Sync + 'static,
    ) -> Self {
        self.insert(Scalar {
            arc,
            read: Box::new(read),
            write: Some((syntax, Arc::new(Box::new(write)))),
        });
        self
    }

    fn insert(&mut self, scalar: Scalar) {
        let at = self.scalars.partition_point(|s| s.arc < scalar.arc);
        self.scalars.insert(at, scalar);
    }

    fn find(&self, arc: u32) -> Option<&Scalar> {
        self.scalars
            .binary_search_by_key(&arc, |s| s.arc)
            .ok()
            .map(|i| &self.scalars[i])
    }
}

impl Subtree for ScalarGroup {
    fn base(&self) -> &[u32] {
        &self.base
    }

    fn get(&self, oid: &[u32]) -> Lookup {
        let Position::Inside(rest) = position(&self.base, oid) else {
            return Lookup::NoSuchObject;
        };
        match rest {
            [arc, 0] => match self.find(*arc) {
                Some(s) => Lookup::Value((s.read)()),
                None => Lookup::NoSuchObject,
            },
            [arc, ..] if self.find(*arc).is_some() => Lookup::NoSuchInstance,
            _ => Lookup::NoSuchObject,
        }
    }

    fn get_next(&self, oid: &[u32]) -> Option<(Oid, Value)> {
        let first_after = |arc: u32| self.scalars.iter().find(|s| s.arc > arc);
        let next = match position(&self.base, oid) {
            Position::Before => self.scalars.first(),
            Position::After => None,
            Position::Inside([]) => self.scalars.first(),
            // `base.arc` and `base.arc` followed by nothing beyond `.0`: the
            // instance `base.arc.0` comes next when it is after `oid`.
            Position::Inside([arc]) => self.scalars.iter().find(|s| s.arc >= *arc),
            Position::Inside([arc, rest @ ..]) => {
                if rest < &[0][..] {
                    self.scalars.iter().find(|s| s.arc >= *arc)
                } else {
                    first_after(*arc)
                }
            }
        }?;
        Some((Oid::join(&self.base, &[next.arc, 0]), (next.read)()))
    }

    fn prepare_set(&self, bindings: &[SetBinding<'_>]) -> Result<Box<dyn SetPlan>, SetRejection> {
        let mut writes = Vec::new();
        for b in bindings {
            let reject = |status| SetRejection {
                status,
                index: b.index,
            };
            let Position::Inside(rest) = position(&self.base, b.oid) else {
                return Err(reject(ErrorStatus::NotWritable));
            };
            let (arc, instance) = match rest {
                [arc, instance @ ..] => (*arc, instance),
                [] => return Err(reject(ErrorStatus::NotWritable)),
            };
            let Some(scalar) = self.find(arc) else {
                return Err(reject(ErrorStatus::NotWritable));
            };
            let Some((syntax, write)) = &scalar.write else {
                return Err(reject(ErrorStatus::NotWritable));
            };
            if instance != [0] {
                return Err(reject(ErrorStatus::NoCreation));
            }
            check_syntax(*syntax, b.value).map_err(reject)?;
            writes.push((Arc::clone(write), (scalar.read)(), b.value.clone()));
        }
        Ok(Box::new(ScalarPlan { writes, applied: 0 }))
    }
}

struct ScalarPlan {
    /// Setter, value before, value to set.
    writes: Vec<(Arc<ScalarSetter>, Value, Value)>,
    applied: usize,
}

impl SetPlan for ScalarPlan {
    fn commit(&mut self) -> Result<(), String> {
        for (write, _, new) in &self.writes[self.applied..] {
            write(new).map_err(|s| format!("scalar write failed: {s}"))?;
            self.applied += 1;
        }
        Ok(())
    }

    fn undo(&mut self) -> Result<(), String> {
        for (write, old, _) in self.writes[..self.applied].iter().rev() {
            write(old).map_err(|s| format!("scalar restore failed: {s}"))?;
        }
        self.applied = 0;
        Ok(())
    }
}

/// The rows of a conceptual table, as the application keeps them.
pub trait TableSource: Send + Sync {
    /// The accessible columns, ascending.
    fn columns(&self) -> &[u32];
    /// The value of `column` in the row `index`.
    fn cell(&self, column: u32, index: &[u32]) -> Option<Value>;
    /// The first row strictly after `after` (the first row when `None`) that
    /// has a value in `column`, with that value.
    fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)>;
}

/// Serves a [`TableSource`] under its entry OID (`table.1`), column by
/// column as SNMP orders a table.
pub struct Table<S> {
    entry: Vec<u32>,
    source: S,
}

impl<S: TableSource> Table<S> {
    /// A table whose entry OID is `entry`.
    pub fn new(entry: &[u32], source: S) -> Self {
        Table {
            entry: entry.to_vec(),
            source,
        }
    }

    /// The rows.
    pub fn source(&self) -> &S {
        &self.source
    }
}

pub(crate) fn table_get(entry: &[u32], source: &dyn TableSource, oid: &[u32]) -> Lookup {
    let Position::Inside(rest) = position(entry, oid) else {
        return Lookup::NoSuchObject;
    };
    let Some((&column, index)) = rest.split_first() else {
        return Lookup::NoSuchObject;
    };
    if source.columns().binary_search(&column).is_err() {
        return Lookup::NoSuchObject;
    }
    match source.cell(column, index) {
        Some(v) => Lookup::Value(v),
        None => Lookup::NoSuchInstance,
    }
}

pub(crate) fn table_get_next(
    entry: &[u32],
    source: &dyn TableSource,
    oid: &[u32],
) -> Option<(Oid, Value)> {
    let columns = source.columns();
    let (start, after): (usize, Option<&[u32]>) = match position(entry, oid) {
        Position::Before | Position::Inside([]) => (0, None),
        Position::After => return None,
        Position::Inside([column, index @ ..]) => match columns.binary_search(column) {
            Ok(i) if index.is_empty() => (i, None),
            Ok(i) => (i, Some(index)),
            Err(i) => (i, None),
        },
    };
    let mut after = after;
    for &column in columns.get(start..)? {
        if let Some((index, value)) = source.next_cell(column, after) {
            let arcs = entry.iter().copied().chain([column]).chain(index);
            return Some((Oid(async_snmp::Oid::new(arcs)), value));
        }
        after = None;
    }
    None
}

impl<S: TableSource + 'static> Subtree for Table<S> {
    fn base(&self) -> &[u32] {
        &self.entry
    }

    fn get(&self, oid: &[u32]) -> Lookup {
        table_get(&self.entry, &self.source, oid)
    }

    fn get_next(&self, oid: &[u32]) -> Option<(Oid, Value)> {
        table_get_next(&self.entry, &self.source, oid)
    }
}

/// One MIB module, registered with the agent as one handler.
pub struct MibModule {
    name: String,
    root: Oid,
    subtrees: Vec<Arc<dyn Subtree>>,
    /// The checked SET of the request in progress, from its request-level
    /// test to its last binding's test. SETs are serialised agent-wide, so
    /// one slot is enough; the key guards against a stale entry.
    staged: Mutex<Option<(RequestKey, Arc<Mutex<StagedSet>>)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RequestKey {
    source: std::net::SocketAddr,
    request_id: i32,
    received_at: tokio::time::Instant,
}

impl RequestKey {
    fn of(ctx: &RequestContext) -> Self {
        RequestKey {
            source: ctx.source(),
            request_id: ctx.request_id(),
            received_at: ctx.received_at(),
        }
    }
}

struct StagedSet {
    /// One per subtree the request writes to.
    plans: Vec<Box<dyn SetPlan>>,
    /// The request's bindings that fall in this module.
    bindings: usize,
    /// Bindings of this request whose per-binding test has run.
    tested: usize,
    /// The module's plans were committed (when its first binding was).
    attempted: bool,
    /// Plans committed (perhaps in part), in the order they were.
    committed: Vec<usize>,
    /// A rollback could not restore everything: the request's answer is
    /// undoFailed.
    undo_failed: bool,
}

impl StagedSet {
    /// Commits every plan of the request: those that can be undone first,
    /// in request order, then those that cannot. On a failure, rolls back
    /// what was committed (the failing plan too: it may have applied in
    /// part) and returns the error.
    fn commit_all(&mut self) -> Result<(), String> {
        self.attempted = true;
        let mut order: Vec<usize> = (0..self.plans.len()).collect();
        order.sort_by_key(|&i| !self.plans[i].reversible());
        for i in order {
            self.committed.push(i);
            if let Err(e) = self.plans[i].commit() {
                self.rollback();
                return Err(e);
            }
        }
        Ok(())
    }

    /// Undoes the committed plans, last first. A plan whose undo fails is
    /// remembered (see `undo_failed`) and the others are still undone.
    fn rollback(&mut self) {
        while let Some(i) = self.committed.pop() {
            if let Err(e) = self.plans[i].undo() {
                tracing::error!(error = %e, "SET undo failed");
                self.undo_failed = true;
            }
        }
    }
}

impl MibModule {
    /// An empty module named `name` (for logs) rooted at `root`.
    pub fn new(name: impl Into<String>, root: &[u32]) -> Self {
        MibModule {
            name: name.into(),
            root: Oid::from_arcs(root),
            subtrees: Vec::new(),
            staged: Mutex::new(None),
        }
    }

    /// Adds a scalar group or table. Subtrees must not overlap.
    pub fn with(mut self, subtree: impl Subtree) -> Self {
        self.add(Arc::new(subtree));
        self
    }

    /// Adds a shared subtree. Subtrees must not overlap.
    pub fn add(&mut self, subtree: Arc<dyn Subtree>) {
        let at = self.subtrees.partition_point(|s| s.base() < subtree.base());
        self.subtrees.insert(at, subtree);
    }

    /// One module holding every subtree of `modules`, rooted at `root`: the
    /// agent registers this single handler, because the engine asks every
    /// registered handler at each GETNEXT step. Fails when two subtrees
    /// overlap, since then an OID would have two owners.
    pub fn merged(
        name: &str,
        root: &[u32],
        modules: &[Arc<MibModule>],
    ) -> Result<MibModule, String> {
        let mut merged = MibModule::new(name, root);
        for module in modules {
            for subtree in &module.subtrees {
                if !subtree.base().starts_with(root) {
                    return Err(format!(
                        "{}: subtree {} lies outside {}",
                        module.name,
                        Oid::from_arcs(subtree.base()),
                        Oid::from_arcs(root)
                    ));
                }
                merged.add(Arc::clone(subtree));
            }
        }
        // A subtree may lie inside another's base only when the outer one
        // serves nothing from the inner one's base on (ifNumber's group at
        // `interfaces` around ifTable at `interfaces.2.1`, say): an OID must
        // have one owner, and a walk must meet the subtrees in order.
        for (i, outer) in merged.subtrees.iter().enumerate() {
            for inner in &merged.subtrees[i + 1..] {
                if !inner.base().starts_with(outer.base()) {
                    break;
                }
                if outer.get_next(inner.base()).is_some() || inner.base() == outer.base() {
                    return Err(format!(
                        "subtrees {} and {} overlap",
                        Oid::from_arcs(outer.base()),
                        Oid::from_arcs(inner.base())
                    ));
                }
            }
        }
        Ok(merged)
    }

    /// The module's root OID, under which it is registered.
    pub fn root(&self) -> &Oid {
        &self.root
    }

    /// The module's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn owner(&self, oid: &[u32]) -> Option<usize> {
        // The subtree with the greatest base <= oid is the only candidate.
        let i = self.subtrees.partition_point(|s| s.base() <= oid);
        let candidate = i.checked_sub(1)?;
        oid.starts_with(self.subtrees[candidate].base())
            .then_some(candidate)
    }

    /// The value at an exact instance.
    pub fn get_value(&self, oid: &[u32]) -> Lookup {
        match self.owner(oid) {
            Some(i) => self.subtrees[i].get(oid),
            None => Lookup::NoSuchObject,
        }
    }

    /// The first instance strictly after `oid` in this module.
    pub fn next_value(&self, oid: &[u32]) -> Option<(Oid, Value)> {
        // Start at the subtree that may contain `oid`, or the first after it.
        let start = self
            .owner(oid)
            .unwrap_or_else(|| self.subtrees.partition_point(|s| s.base() <= oid));
        self.subtrees[start..].iter().find_map(|s| s.get_next(oid))
    }

    fn prepare(&self, bindings: &[(usize, &Oid, &Value)]) -> Result<StagedSet, SetRejection> {
        let mut groups: Vec<(usize, Vec<SetBinding<'_>>)> = Vec::new();
        let converted: Vec<(usize, &[u32], Value)> = bindings
            .iter()
            .map(|(i, oid, value)| (*i, oid.arcs(), (*value).clone()))
            .collect();
        for (index, oid, value) in &converted {
            let Some(owner) = self.owner(oid) else {
                return Err(SetRejection {
                    status: ErrorStatus::NotWritable,
                    index: *index,
                });
            };
            let binding = SetBinding {
                index: *index,
                oid,
                value,
            };
            match groups.iter_mut().find(|(o, _)| *o == owner) {
                Some((_, list)) => list.push(binding),
                None => groups.push((owner, vec![binding])),
            }
        }
        let mut staged = StagedSet {
            plans: Vec::new(),
            bindings: 0,
            tested: 0,
            attempted: false,
            committed: Vec::new(),
            undo_failed: false,
        };
        for (owner, list) in &groups {
            staged.plans.push(self.subtrees[*owner].prepare_set(list)?);
            staged.bindings += list.len();
        }
        Ok(staged)
    }
}

pub(crate) fn test_error(status: ErrorStatus) -> SetTestError {
    match status {
        ErrorStatus::NoAccess | ErrorStatus::AuthorizationError => SetTestError::NoAccess,
        ErrorStatus::NotWritable | ErrorStatus::ReadOnly => SetTestError::NotWritable,
        ErrorStatus::WrongType => SetTestError::WrongType,
        ErrorStatus::WrongLength => SetTestError::WrongLength,
        ErrorStatus::WrongEncoding => SetTestError::WrongEncoding,
        ErrorStatus::WrongValue | ErrorStatus::BadValue => SetTestError::WrongValue,
        ErrorStatus::NoCreation | ErrorStatus::NoSuchName => SetTestError::NoCreation,
        ErrorStatus::InconsistentValue => SetTestError::InconsistentValue,
        ErrorStatus::ResourceUnavailable => SetTestError::ResourceUnavailable,
        ErrorStatus::InconsistentName => SetTestError::InconsistentName,
        _ => SetTestError::GeneralFailure,
    }
}

/// A module as the engine sees it.
pub(crate) struct ModuleHandler(pub(crate) Arc<MibModule>);

impl MibHandler for ModuleHandler {
    fn get<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        oid: &'a async_snmp::Oid,
    ) -> BoxFuture<'a, HandlerResult<GetResult>> {
        let result = match self.0.get_value(oid.arcs()) {
            Lookup::Value(v) => GetResult::Value(v.into()),
            Lookup::NoSuchObject => GetResult::NoSuchObject,
            Lookup::NoSuchInstance => GetResult::NoSuchInstance,
        };
        Box::pin(async move { Ok(result) })
    }

    fn get_next<'a>(
        &'a self,
        _ctx: &'a RequestContext,
        oid: &'a async_snmp::Oid,
    ) -> BoxFuture<'a, HandlerResult<GetNextResult>> {
        let result = match self.0.next_value(oid.arcs()) {
            Some((oid, value)) => {
                GetNextResult::Value(async_snmp::VarBind::new(oid.0, value.into()))
            }
            None => GetNextResult::EndOfMibView,
        };
        Box::pin(async move { Ok(result) })
    }

    fn test_set_request<'a>(
        &'a self,
        ctx: &'a RequestContext,
        bindings: &'a [(usize, &'a async_snmp::Oid, &'a async_snmp::Value)],
    ) -> BoxFuture<'a, Result<(), (SetTestError, usize)>> {
        let ours: Vec<(usize, Oid, Value)> = bindings
            .iter()
            .map(|(i, oid, value)| (*i, Oid((*oid).clone()), Value::from((*value).clone())))
            .collect();
        let refs: Vec<(usize, &Oid, &Value)> = ours.iter().map(|(i, o, v)| (*i, o, v)).collect();
        let result = match self.0.prepare(&refs) {
            Ok(staged) => {
                let mut slot = self.0.staged.lock().unwrap_or_else(|e| e.into_inner());
                *slot = Some((RequestKey::of(ctx), Arc::new(Mutex::new(staged))));
                Ok(())
            }
            Err(rejection) => {
                tracing::debug!(
                    module = %self.0.name,
                    status = %rejection.status,
                    index = rejection.index,
                    "SET refused"
                );
                Err((test_error(rejection.status), rejection.index))
            }
        };
        Box::pin(async move { result })
    }

    fn test_set<'a>(
        &'a self,
        ctx: &'a RequestContext,
        _oid: &'a async_snmp::Oid,
        _value: &'a async_snmp::Value,
    ) -> BoxFuture<'a, SetTestResult> {
        let key = RequestKey::of(ctx);
        let staged = {
            let slot = self.0.staged.lock().unwrap_or_else(|e| e.into_inner());
            match slot.as_ref() {
                Some((k, staged)) if *k == key => Some(Arc::clone(staged)),
                _ => None,
            }
        };
        let result: SetTestResult = match staged {
            // Every binding reaches the request-level test first; a binding
            // without a staged plan means the engine skipped it.
            None => Err(SetTestError::GeneralFailure),
            Some(staged) => {
                let staged_here = {
                    let mut s = staged.lock().unwrap_or_else(|e| e.into_inner());
                    s.tested += 1;
                    s.tested <= s.bindings
                };
                if staged_here {
                    Ok(Box::new(StagedBinding { staged }) as Box<dyn PreparedSet>)
                } else {
                    Err(SetTestError::GeneralFailure)
                }
            }
        };
        Box::pin(async move { result })
    }
}

/// One binding's share of a staged SET: the first binding to commit
/// commits the module's whole request (see `StagedSet::commit_all`), the
/// others find it committed; the first to be undone (or freed) rolls it
/// back.
struct StagedBinding {
    staged: Arc<Mutex<StagedSet>>,
}

impl StagedBinding {
    fn lock(&self) -> std::sync::MutexGuard<'_, StagedSet> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PreparedSet for StagedBinding {
    fn commit<'a>(
        &'a mut self,
        _ctx: &'a RequestContext,
        _oid: &'a async_snmp::Oid,
        _value: &'a async_snmp::Value,
    ) -> BoxFuture<'a, SetCommitResult> {
        let mut s = self.lock();
        let result = if s.attempted {
            Ok(())
        } else {
            s.commit_all().map_err(|e| {
                tracing::error!(error = %e, "SET commit failed");
                SetCommitError::Failed
            })
        };
        Box::pin(async move { result })
    }

    fn undo<'a>(
        &'a mut self,
        _ctx: &'a RequestContext,
        _oid: &'a async_snmp::Oid,
        _value: &'a async_snmp::Value,
    ) -> BoxFuture<'a, SetUndoResult> {
        let mut s = self.lock();
        s.rollback();
        let result = if s.undo_failed {
            Err(SetUndoError::Failed)
        } else {
            Ok(())
        };
        Box::pin(async move { result })
    }

    fn free<'a>(
        &'a mut self,
        _ctx: &'a RequestContext,
        _oid: &'a async_snmp::Oid,
        _value: &'a async_snmp::Value,
    ) -> BoxFuture<'a, ()> {
        // A binding whose commit was never attempted, after another
        // binding of the request failed: what this module committed for
        // the request is undone all the same.
        self.lock().rollback();
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Rows(BTreeMap<Vec<u32>, u32>, Vec<u32>);

    impl TableSource for Rows {
        fn columns(&self) -> &[u32] {
            &self.1
        }
        fn cell(&self, column: u32, index: &[u32]) -> Option<Value> {
            self.0.get(index).map(|v| Value::Gauge32(v * 10 + column))
        }
        fn next_cell(&self, column: u32, after: Option<&[u32]>) -> Option<(Vec<u32>, Value)> {
            let mut it: Box<dyn Iterator<Item = (&Vec<u32>, &u32)>> =
                match after {
                    None => Box::new(self.0.iter()),
                    Some(a) => Box::new(self.0.range::<[u32], _>((
                        std::ops::Bound::Excluded(a),
                        std::ops::Bound::Unbounded,
                    ))),
                };
            it.next()
                .map(|(k, v)| (k.clone(), Value::Gauge32(v * 10 + column)))
        }
    }

    fn module() -> MibModule {
        let rows = Rows(
            [(vec![1], 1), (vec![2, 5], 2), (vec![10], 3)]
                .into_iter()
                .collect(),
            vec![2, 4],
        );
        MibModule::new("T", &[1, 3])
            .with(Table::new(&[1, 3, 5, 1], rows))
            .with(
                ScalarGroup::new(&[1, 3, 2])
                    .scalar(1, || Value::Integer(7))
                    .scalar(3, || Value::Integer(9)),
            )
    }

    fn walk(m: &MibModule) -> Vec<String> {
        let mut at = vec![1, 3];
        let mut out = Vec::new();
        while let Some((oid, _)) = m.next_value(&at) {
            out.push(oid.to_string());
            at = oid.arcs().to_vec();
            assert!(out.len() < 100, "walk does not end");
        }
        out
    }

    #[test]
    fn a_walk_visits_scalars_then_table_column_by_column() {
        assert_eq!(
            walk(&module()),
            [
                "1.3.2.1.0",
                "1.3.2.3.0",
                "1.3.5.1.2.1",
                "1.3.5.1.2.2.5",
                "1.3.5.1.2.10",
                "1.3.5.1.4.1",
                "1.3.5.1.4.2.5",
                "1.3.5.1.4.10"
            ]
        );
    }

    #[test]
    fn getnext_from_between_and_inside_instances() {
        let m = module();
        let next = |arcs: &[u32]| m.next_value(arcs).map(|(o, _)| o.to_string());
        assert_eq!(next(&[1, 3, 2, 1]).as_deref(), Some("1.3.2.1.0"));
        assert_eq!(next(&[1, 3, 2, 1, 0, 7]).as_deref(), Some("1.3.2.3.0"));
        assert_eq!(next(&[1, 3, 2, 2]).as_deref(), Some("1.3.2.3.0"));
        assert_eq!(next(&[1, 3, 4]).as_deref(), Some("1.3.5.1.2.1"));
        assert_eq!(next(&[1, 3, 5, 1, 3]).as_deref(), Some("1.3.5.1.4.1"));
        assert_eq!(next(&[1, 3, 5, 1, 2, 2]).as_deref(), Some("1.3.5.1.2.2.5"));
        assert_eq!(
            next(&[1, 3, 5, 1, 2, 2, 5]).as_deref(),
            Some("1.3.5.1.2.10")
        );
        assert_eq!(next(&[1, 3, 5, 1, 4, 10]), None);
        assert_eq!(next(&[1, 4]), None);
    }

    #[test]
    fn get_tells_no_such_object_from_no_such_instance() {
        let m = module();
        assert_eq!(
            m.get_value(&[1, 3, 2, 1, 0]),
            Lookup::Value(Value::Integer(7))
        );
        assert_eq!(m.get_value(&[1, 3, 2, 1, 1]), Lookup::NoSuchInstance);
        assert_eq!(m.get_value(&[1, 3, 2, 2, 0]), Lookup::NoSuchObject);
        assert_eq!(m.get_value(&[1, 3, 5, 1, 2, 3]), Lookup::NoSuchInstance);
        assert_eq!(m.get_value(&[1, 3, 5, 1, 3, 1]), Lookup::NoSuchObject);
        assert_eq!(
            m.get_value(&[1, 3, 5, 1, 4, 2, 5]),
            Lookup::Value(Value::Gauge32(24))
        );
        assert_eq!(m.get_value(&[1, 3, 9]), Lookup::NoSuchObject);
    }

    #[test]
    fn merging_refuses_overlapping_subtrees() {
        let a = Arc::new(
            MibModule::new("A", &[1, 3])
                .with(ScalarGroup::new(&[1, 3, 2]).scalar(4, || Value::Null)),
        );
        let b = Arc::new(MibModule::new("B", &[1, 3]).with(ScalarGroup::new(&[1, 3, 2, 1])));
        let err = MibModule::merged("all", &[1, 3], &[a.clone(), b])
            .err()
            .unwrap();
        assert!(err.contains("overlap"), "{err}");
        let c = Arc::new(MibModule::new("C", &[1, 4]).with(ScalarGroup::new(&[1, 4, 1])));
        assert!(MibModule::merged("all", &[1, 3], &[a.clone(), c]).is_err());
        assert!(MibModule::merged("all", &[1, 3], &[a, Arc::new(module())]).is_err());
        // Nesting is fine when the outer group has nothing from the inner base on.
        let outer = Arc::new(
            MibModule::new("O", &[1, 3])
                .with(ScalarGroup::new(&[1, 3, 7]).scalar(1, || Value::Null)),
        );
        let inner = Arc::new(
            MibModule::new("I", &[1, 3])
                .with(ScalarGroup::new(&[1, 3, 7, 2, 1]).scalar(1, || Value::Null)),
        );
        let both = MibModule::merged("all", &[1, 3], &[outer, inner]).unwrap();
        assert_eq!(
            both.next_value(&[1, 3, 7, 1, 0])
                .map(|(o, _)| o.to_string())
                .as_deref(),
            Some("1.3.7.2.1.1.0")
        );
    }
}
