//! A writable scalar whose change cannot be undone (as replacing a RAID
//! member cannot): its plan says so, and its undo fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use dvsan_snmp::{
    ErrorStatus, Lookup, Oid, ScalarGroup, SetBinding, SetPlan, SetRejection, Subtree, Value,
};

/// The group's OID: next to the test table, under net-snmp's playpen.
pub const BASE: &[u32] = &[1, 3, 6, 1, 4, 1, 8072, 9999, 9999, 99, 2];

/// The scalar `BASE.1.0`, an integer.
#[derive(Default)]
pub struct OneWay {
    pub value: Arc<AtomicI32>,
    /// Commits applied.
    pub commits: Arc<AtomicU32>,
}

impl OneWay {
    /// The subtree to serve (sharing this one's state).
    pub fn subtree(&self) -> OneWaySubtree {
        let value = Arc::clone(&self.value);
        OneWaySubtree {
            read: ScalarGroup::new(BASE)
                .scalar(1, move || Value::Integer(value.load(Ordering::SeqCst))),
            value: Arc::clone(&self.value),
            commits: Arc::clone(&self.commits),
        }
    }
}

pub struct OneWaySubtree {
    read: ScalarGroup,
    value: Arc<AtomicI32>,
    commits: Arc<AtomicU32>,
}

impl Subtree for OneWaySubtree {
    fn base(&self) -> &[u32] {
        BASE
    }

    fn get(&self, oid: &[u32]) -> Lookup {
        self.read.get(oid)
    }

    fn get_next(&self, oid: &[u32]) -> Option<(Oid, Value)> {
        self.read.get_next(oid)
    }

    fn prepare_set(&self, bindings: &[SetBinding<'_>]) -> Result<Box<dyn SetPlan>, SetRejection> {
        let [b] = bindings else {
            return Err(SetRejection {
                status: ErrorStatus::InconsistentValue,
                index: bindings[1].index,
            });
        };
        let reject = |status| SetRejection {
            status,
            index: b.index,
        };
        if b.oid.strip_prefix(BASE) != Some(&[1, 0][..]) {
            return Err(reject(ErrorStatus::NotWritable));
        }
        let Value::Integer(to) = b.value else {
            return Err(reject(ErrorStatus::WrongType));
        };
        Ok(Box::new(OneWayPlan {
            to: *to,
            value: Arc::clone(&self.value),
            commits: Arc::clone(&self.commits),
        }))
    }
}

struct OneWayPlan {
    to: i32,
    value: Arc<AtomicI32>,
    commits: Arc<AtomicU32>,
}

impl SetPlan for OneWayPlan {
    fn commit(&mut self) -> Result<(), String> {
        self.value.store(self.to, Ordering::SeqCst);
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn undo(&mut self) -> Result<(), String> {
        Err("a one-way change cannot be undone".into())
    }

    fn reversible(&self) -> bool {
        false
    }
}
