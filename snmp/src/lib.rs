//! dvsan's SNMP layer.
//!
//! Everything in dvsan that speaks SNMP goes through this crate: OIDs and
//! values, the MIB handlers an agent registers (one dispatching handler per
//! MIB module, with RowStatus tables), the manager the station queries units
//! with, the notifier units announce themselves with, and the receiver the
//! station listens on. The wire protocol, USM and the engines come from
//! `async-snmp`; only this crate imports it, so an upgrade or a replacement
//! touches nothing else. This crate knows nothing of storage, SQL or HTTP.
#![forbid(unsafe_code)]

pub mod agent;
pub mod dvsan_mib;
pub mod error;
pub mod if_mib;
pub mod manager;
pub mod mib_module;
pub mod notifier;
pub mod oid;
pub mod row_status;
pub mod system_group;
pub mod trap_receiver;
pub mod usm;
pub mod value;
pub mod wire;

pub use agent::{AgentConfig, AgentCounters, AgentHandle, SnmpAgent};
pub use error::{ErrorStatus, SnmpError};
pub use manager::{Manager, ManagerConfig, Session};
pub use mib_module::{
    Lookup, MibModule, ScalarGroup, SetBinding, SetPlan, SetRejection, Subtree, Table, TableSource,
};
pub use notifier::{Notifier, NotifierConfig, NotifyKind, Sink, SinkOutcome};
pub use oid::Oid;
pub use trap_receiver::{
    Notification, ReceiverConfig, ReceiverCounters, Refusal, Sender, TrapReceiver,
};
pub use usm::{AuthProtocol, Credentials, EngineIdentity, PrivProtocol, UsmUser};
pub use value::{Value, VarBind};
