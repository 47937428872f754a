//! DVSAN-MIB's object identifiers, one constant per object of
//! `mibs/DVSAN-MIB.txt`, each documented with its DESCRIPTION. This is the
//! one place Rust code takes DVSAN-MIB OIDs from; `snmp/tests/mib.rs` checks
//! every constant against `snmptranslate -On` so code and MIB cannot drift.

use crate::oid::Oid;

/// The enterprise arc DVSAN-MIB hangs under: net-snmp's experimental
/// playpen (NET-SNMP-MIB::netSnmpPlaypen) until a Private Enterprise Number
/// is registered for dvsan. Change it here and in the MIB's MODULE-IDENTITY.
pub const ENTERPRISE_ARC: &[u32] = &[1, 3, 6, 1, 4, 1, 8072, 9999, 9999];

/// What kind of MIB node an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// MODULE-IDENTITY or a plain OBJECT IDENTIFIER node.
    Node,
    /// OBJECT-TYPE: a scalar, table, entry or column.
    Object,
    /// NOTIFICATION-TYPE.
    Notification,
    /// OBJECT-GROUP, NOTIFICATION-GROUP or MODULE-COMPLIANCE.
    Conformance,
}

/// One object of DVSAN-MIB: its descriptor and its arcs below
/// [`ENTERPRISE_ARC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MibObject {
    /// The MIB descriptor, e.g. `dvsanVolumeName`.
    pub name: &'static str,
    /// Arcs below [`ENTERPRISE_ARC`].
    pub suffix: &'static [u32],
    /// What kind of node it is.
    pub kind: NodeKind,
}

impl MibObject {
    /// The full OID arcs.
    pub fn arcs(&self) -> Vec<u32> {
        [ENTERPRISE_ARC, self.suffix].concat()
    }

    /// The full OID.
    pub fn oid(&self) -> Oid {
        Oid::join(ENTERPRISE_ARC, self.suffix)
    }

    /// The OID of an instance: a scalar's `.0`, or a column's row index.
    pub fn instance(&self, index: &[u32]) -> Oid {
        Oid::from_arcs(&[ENTERPRISE_ARC, self.suffix, index].concat())
    }
}

/// dvsanMIB: The `dvsanMIB` node.
pub const DVSAN_MIB: MibObject = MibObject {
    name: "dvsanMIB",
    suffix: &[1],
    kind: NodeKind::Node,
};
/// dvsanNotifications: The `dvsanNotifications` node.
pub const DVSAN_NOTIFICATIONS: MibObject = MibObject {
    name: "dvsanNotifications",
    suffix: &[1, 0],
    kind: NodeKind::Node,
};
/// dvsanDiskFailed: A disk was taken out of service after I/O errors, or a group member went missing.
pub const DVSAN_DISK_FAILED: MibObject = MibObject {
    name: "dvsanDiskFailed",
    suffix: &[1, 0, 1],
    kind: NodeKind::Notification,
};
/// dvsanRaidDegraded: A RAID group lost a member and serves data from the others.
pub const DVSAN_RAID_DEGRADED: MibObject = MibObject {
    name: "dvsanRaidDegraded",
    suffix: &[1, 0, 2],
    kind: NodeKind::Notification,
};
/// dvsanRaidRebuilt: A RAID group that had lost a member is optimal again: the replacement (a hot spare, or a disk named in dvsanRaidMemberDisk) is rebuilt.
pub const DVSAN_RAID_REBUILT: MibObject = MibObject {
    name: "dvsanRaidRebuilt",
    suffix: &[1, 0, 3],
    kind: NodeKind::Notification,
};
/// dvsanVolumeCreated: A volume was created.
pub const DVSAN_VOLUME_CREATED: MibObject = MibObject {
    name: "dvsanVolumeCreated",
    suffix: &[1, 0, 4],
    kind: NodeKind::Notification,
};
/// dvsanVolumeDeleted: A volume was deleted.
pub const DVSAN_VOLUME_DELETED: MibObject = MibObject {
    name: "dvsanVolumeDeleted",
    suffix: &[1, 0, 5],
    kind: NodeKind::Notification,
};
/// dvsanCapacityLow: Free capacity fell below dvsanUnitCapacityLowThreshold per cent of total capacity.
pub const DVSAN_CAPACITY_LOW: MibObject = MibObject {
    name: "dvsanCapacityLow",
    suffix: &[1, 0, 6],
    kind: NodeKind::Notification,
};
/// dvsanObjects: The `dvsanObjects` node.
pub const DVSAN_OBJECTS: MibObject = MibObject {
    name: "dvsanObjects",
    suffix: &[1, 1],
    kind: NodeKind::Node,
};
/// dvsanUnit: The `dvsanUnit` node.
pub const DVSAN_UNIT: MibObject = MibObject {
    name: "dvsanUnit",
    suffix: &[1, 1, 1],
    kind: NodeKind::Node,
};
/// dvsanUnitName: The unit's name, its DNS name where it has one.
pub const DVSAN_UNIT_NAME: MibObject = MibObject {
    name: "dvsanUnitName",
    suffix: &[1, 1, 1, 1],
    kind: NodeKind::Object,
};
/// dvsanUnitUuid: The unit's UUID, written on every disk it owns; it stays the same across restarts and address changes.
pub const DVSAN_UNIT_UUID: MibObject = MibObject {
    name: "dvsanUnitUuid",
    suffix: &[1, 1, 1, 2],
    kind: NodeKind::Object,
};
/// dvsanUnitSoftwareVersion: The version of the dvsan agent software.
pub const DVSAN_UNIT_SOFTWARE_VERSION: MibObject = MibObject {
    name: "dvsanUnitSoftwareVersion",
    suffix: &[1, 1, 1, 3],
    kind: NodeKind::Object,
};
/// dvsanUnitTotalCapacity: Usable capacity of all RAID groups together.
pub const DVSAN_UNIT_TOTAL_CAPACITY: MibObject = MibObject {
    name: "dvsanUnitTotalCapacity",
    suffix: &[1, 1, 1, 4],
    kind: NodeKind::Object,
};
/// dvsanUnitFreeCapacity: Capacity of all RAID groups not yet given to volumes.
pub const DVSAN_UNIT_FREE_CAPACITY: MibObject = MibObject {
    name: "dvsanUnitFreeCapacity",
    suffix: &[1, 1, 1, 5],
    kind: NodeKind::Object,
};
/// dvsanUnitStationAddress: The station or stations the unit announces itself to, as host:port separated by commas, or _dvsan-station._udp.DOMAIN when they are found through DNS SRV. Empty when none is configured.
pub const DVSAN_UNIT_STATION_ADDRESS: MibObject = MibObject {
    name: "dvsanUnitStationAddress",
    suffix: &[1, 1, 1, 6],
    kind: NodeKind::Object,
};
/// dvsanUnitCapacityLowThreshold: dvsanCapacityLow is sent when free capacity falls below this share of total capacity. 0 disables the notification.
pub const DVSAN_UNIT_CAPACITY_LOW_THRESHOLD: MibObject = MibObject {
    name: "dvsanUnitCapacityLowThreshold",
    suffix: &[1, 1, 1, 7],
    kind: NodeKind::Object,
};
/// dvsanUnitNbdEndpoint: Where clients reach the unit's NBD server, as host:port.
pub const DVSAN_UNIT_NBD_ENDPOINT: MibObject = MibObject {
    name: "dvsanUnitNbdEndpoint",
    suffix: &[1, 1, 1, 8],
    kind: NodeKind::Object,
};
/// dvsanUnitSnmpEndpoint: Where managers reach the unit's SNMP agent, as host:port.
pub const DVSAN_UNIT_SNMP_ENDPOINT: MibObject = MibObject {
    name: "dvsanUnitSnmpEndpoint",
    suffix: &[1, 1, 1, 9],
    kind: NodeKind::Object,
};
/// dvsanUnitNbdTls: Whether the unit's NBD server speaks TLS (NBD_OPT_STARTTLS). off: it does not; optional: clients may start TLS or stay in the clear; required: nothing but starting TLS is answered in the clear, so clients reach the unit's volumes as nbds:// only.
pub const DVSAN_UNIT_NBD_TLS: MibObject = MibObject {
    name: "dvsanUnitNbdTls",
    suffix: &[1, 1, 1, 10],
    kind: NodeKind::Object,
};
/// dvsanDiskTable: The disks (files or block devices) the unit stores data on.
pub const DVSAN_DISK_TABLE: MibObject = MibObject {
    name: "dvsanDiskTable",
    suffix: &[1, 1, 2],
    kind: NodeKind::Object,
};
/// dvsanDiskEntry: One disk.
pub const DVSAN_DISK_ENTRY: MibObject = MibObject {
    name: "dvsanDiskEntry",
    suffix: &[1, 1, 2, 1],
    kind: NodeKind::Object,
};
/// dvsanDiskIndex: The disk's number on this unit, stable across restarts.
pub const DVSAN_DISK_INDEX: MibObject = MibObject {
    name: "dvsanDiskIndex",
    suffix: &[1, 1, 2, 1, 1],
    kind: NodeKind::Object,
};
/// dvsanDiskPath: The file or block device path of the disk.
pub const DVSAN_DISK_PATH: MibObject = MibObject {
    name: "dvsanDiskPath",
    suffix: &[1, 1, 2, 1, 2],
    kind: NodeKind::Object,
};
/// dvsanDiskModel: The disk's model as the device reports it; empty for a file.
pub const DVSAN_DISK_MODEL: MibObject = MibObject {
    name: "dvsanDiskModel",
    suffix: &[1, 1, 2, 1, 3],
    kind: NodeKind::Object,
};
/// dvsanDiskSerial: The disk's serial number as the device reports it; for a file, the disk UUID dvsan wrote on it.
pub const DVSAN_DISK_SERIAL: MibObject = MibObject {
    name: "dvsanDiskSerial",
    suffix: &[1, 1, 2, 1, 4],
    kind: NodeKind::Object,
};
/// dvsanDiskSize: The disk's size.
pub const DVSAN_DISK_SIZE: MibObject = MibObject {
    name: "dvsanDiskSize",
    suffix: &[1, 1, 2, 1, 5],
    kind: NodeKind::Object,
};
/// dvsanDiskState: ok: working, in a group or free; failed: I/O errors took it out of service; missing: a group member that is not present; spare: a free, working disk designated as a hot spare, which takes the place of a lost member of any group with redundancy as soon as one is lost; rebuilding: a replacement being written with a lost member's data.
///
/// Writing spare(4) designates a free, working disk as a hot spare; writing ok(1) to a hot spare makes it an ordinary free disk again. Other free disks replace lost members only with `dvsan agent --auto-spare on`.
pub const DVSAN_DISK_STATE: MibObject = MibObject {
    name: "dvsanDiskState",
    suffix: &[1, 1, 2, 1, 6],
    kind: NodeKind::Object,
};
/// dvsanDiskRaidGroup: The dvsanRaidGroupIndex of the group the disk belongs to; 0 when it belongs to none.
pub const DVSAN_DISK_RAID_GROUP: MibObject = MibObject {
    name: "dvsanDiskRaidGroup",
    suffix: &[1, 1, 2, 1, 7],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupTable: The unit's RAID groups. A row is created with createAndGo and dvsanRaidGroupLevel and dvsanRaidGroupMembers (and optionally a name and chunk size), and destroyed with destroy once the group holds no volume.
pub const DVSAN_RAID_GROUP_TABLE: MibObject = MibObject {
    name: "dvsanRaidGroupTable",
    suffix: &[1, 1, 3],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupEntry: One RAID group.
pub const DVSAN_RAID_GROUP_ENTRY: MibObject = MibObject {
    name: "dvsanRaidGroupEntry",
    suffix: &[1, 1, 3, 1],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupIndex: The group's number on this unit, chosen by the creator.
pub const DVSAN_RAID_GROUP_INDEX: MibObject = MibObject {
    name: "dvsanRaidGroupIndex",
    suffix: &[1, 1, 3, 1, 1],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupName: The group's name, unique on the unit.
pub const DVSAN_RAID_GROUP_NAME: MibObject = MibObject {
    name: "dvsanRaidGroupName",
    suffix: &[1, 1, 3, 1, 2],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupLevel: The group's RAID level; required at creation, fixed after.
pub const DVSAN_RAID_GROUP_LEVEL: MibObject = MibObject {
    name: "dvsanRaidGroupLevel",
    suffix: &[1, 1, 3, 1, 3],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupChunkSize: The stripe unit: how much data goes on one member before the next. A power of two; 64 when not given at creation.
pub const DVSAN_RAID_GROUP_CHUNK_SIZE: MibObject = MibObject {
    name: "dvsanRaidGroupChunkSize",
    suffix: &[1, 1, 3, 1, 4],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupMemberCount: The number of member disks.
pub const DVSAN_RAID_GROUP_MEMBER_COUNT: MibObject = MibObject {
    name: "dvsanRaidGroupMemberCount",
    suffix: &[1, 1, 3, 1, 5],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupMembers: The member disks' dvsanDiskIndex values in member order, separated by commas, e.g. 1,2,3; required at creation, and not writable after: a lost member is replaced through dvsanRaidMemberDisk (or by a hot spare), which puts the new disk in the lost one's place in this list.
pub const DVSAN_RAID_GROUP_MEMBERS: MibObject = MibObject {
    name: "dvsanRaidGroupMembers",
    suffix: &[1, 1, 3, 1, 6],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupCapacity: The group's usable capacity.
pub const DVSAN_RAID_GROUP_CAPACITY: MibObject = MibObject {
    name: "dvsanRaidGroupCapacity",
    suffix: &[1, 1, 3, 1, 7],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupFree: The group's capacity not given to volumes.
pub const DVSAN_RAID_GROUP_FREE: MibObject = MibObject {
    name: "dvsanRaidGroupFree",
    suffix: &[1, 1, 3, 1, 8],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupState: optimal: every member works; degraded: a member is missing or failed and data is served from the others; rebuilding: a replacement member is being written; failed: more members are lost than the level tolerates; resyncing: regions written when the unit stopped uncleanly are being made consistent.
pub const DVSAN_RAID_GROUP_STATE: MibObject = MibObject {
    name: "dvsanRaidGroupState",
    suffix: &[1, 1, 3, 1, 9],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupRebuildProgress: How much of a rebuild or resync is done; 100 when none runs.
pub const DVSAN_RAID_GROUP_REBUILD_PROGRESS: MibObject = MibObject {
    name: "dvsanRaidGroupRebuildProgress",
    suffix: &[1, 1, 3, 1, 10],
    kind: NodeKind::Object,
};
/// dvsanRaidGroupRowStatus: Creates (createAndGo) and destroys (destroy) the group.
pub const DVSAN_RAID_GROUP_ROW_STATUS: MibObject = MibObject {
    name: "dvsanRaidGroupRowStatus",
    suffix: &[1, 1, 3, 1, 11],
    kind: NodeKind::Object,
};
/// dvsanVolumeTable: The volumes (partitions of RAID groups) the unit exports. A row is created with createAndGo and dvsanVolumeName, dvsanVolumeRaidGroup and dvsanVolumeSize; setting a larger dvsanVolumeSize grows the volume; destroy deletes it.
pub const DVSAN_VOLUME_TABLE: MibObject = MibObject {
    name: "dvsanVolumeTable",
    suffix: &[1, 1, 4],
    kind: NodeKind::Object,
};
/// dvsanVolumeEntry: One volume.
pub const DVSAN_VOLUME_ENTRY: MibObject = MibObject {
    name: "dvsanVolumeEntry",
    suffix: &[1, 1, 4, 1],
    kind: NodeKind::Object,
};
/// dvsanVolumeIndex: The volume's number on this unit, chosen by the creator.
pub const DVSAN_VOLUME_INDEX: MibObject = MibObject {
    name: "dvsanVolumeIndex",
    suffix: &[1, 1, 4, 1, 1],
    kind: NodeKind::Object,
};
/// dvsanVolumeName: The volume's name, unique on the unit; required at creation.
pub const DVSAN_VOLUME_NAME: MibObject = MibObject {
    name: "dvsanVolumeName",
    suffix: &[1, 1, 4, 1, 2],
    kind: NodeKind::Object,
};
/// dvsanVolumeUuid: The volume's UUID, given by the unit at creation.
pub const DVSAN_VOLUME_UUID: MibObject = MibObject {
    name: "dvsanVolumeUuid",
    suffix: &[1, 1, 4, 1, 3],
    kind: NodeKind::Object,
};
/// dvsanVolumeRaidGroup: The dvsanRaidGroupIndex of the group the volume is carved from; required at creation, fixed after.
pub const DVSAN_VOLUME_RAID_GROUP: MibObject = MibObject {
    name: "dvsanVolumeRaidGroup",
    suffix: &[1, 1, 4, 1, 4],
    kind: NodeKind::Object,
};
/// dvsanVolumeOffset: Where the volume starts in its group.
pub const DVSAN_VOLUME_OFFSET: MibObject = MibObject {
    name: "dvsanVolumeOffset",
    suffix: &[1, 1, 4, 1, 5],
    kind: NodeKind::Object,
};
/// dvsanVolumeSize: The volume's size; required at creation. A larger value grows the volume; a smaller one is refused (inconsistentValue).
pub const DVSAN_VOLUME_SIZE: MibObject = MibObject {
    name: "dvsanVolumeSize",
    suffix: &[1, 1, 4, 1, 6],
    kind: NodeKind::Object,
};
/// dvsanVolumeState: online: exported; offline: not exported; degraded: exported from a degraded group; failed: its group has failed.
pub const DVSAN_VOLUME_STATE: MibObject = MibObject {
    name: "dvsanVolumeState",
    suffix: &[1, 1, 4, 1, 7],
    kind: NodeKind::Object,
};
/// dvsanVolumeExportName: The NBD export name clients open the volume by.
pub const DVSAN_VOLUME_EXPORT_NAME: MibObject = MibObject {
    name: "dvsanVolumeExportName",
    suffix: &[1, 1, 4, 1, 8],
    kind: NodeKind::Object,
};
/// dvsanVolumeAccessMode: Whether the volume may be written at all; readWrite when not given at creation. An access entry cannot grant more than this.
pub const DVSAN_VOLUME_ACCESS_MODE: MibObject = MibObject {
    name: "dvsanVolumeAccessMode",
    suffix: &[1, 1, 4, 1, 9],
    kind: NodeKind::Object,
};
/// dvsanVolumeReadOps: NBD read requests served for the volume since the agent started.
pub const DVSAN_VOLUME_READ_OPS: MibObject = MibObject {
    name: "dvsanVolumeReadOps",
    suffix: &[1, 1, 4, 1, 10],
    kind: NodeKind::Object,
};
/// dvsanVolumeWriteOps: NBD write requests served for the volume since the agent started.
pub const DVSAN_VOLUME_WRITE_OPS: MibObject = MibObject {
    name: "dvsanVolumeWriteOps",
    suffix: &[1, 1, 4, 1, 11],
    kind: NodeKind::Object,
};
/// dvsanVolumeReadOctets: Octets read from the volume over NBD since the agent started.
pub const DVSAN_VOLUME_READ_OCTETS: MibObject = MibObject {
    name: "dvsanVolumeReadOctets",
    suffix: &[1, 1, 4, 1, 12],
    kind: NodeKind::Object,
};
/// dvsanVolumeWriteOctets: Octets written to the volume over NBD since the agent started.
pub const DVSAN_VOLUME_WRITE_OCTETS: MibObject = MibObject {
    name: "dvsanVolumeWriteOctets",
    suffix: &[1, 1, 4, 1, 13],
    kind: NodeKind::Object,
};
/// dvsanVolumeRowStatus: Creates (createAndGo) and deletes (destroy) the volume. Creating and growing write no data: a new volume reads as zeros.
pub const DVSAN_VOLUME_ROW_STATUS: MibObject = MibObject {
    name: "dvsanVolumeRowStatus",
    suffix: &[1, 1, 4, 1, 14],
    kind: NodeKind::Object,
};
/// dvsanAccessTable: Which clients may open which volume over NBD. A volume without entries can be opened by nobody.
pub const DVSAN_ACCESS_TABLE: MibObject = MibObject {
    name: "dvsanAccessTable",
    suffix: &[1, 1, 5],
    kind: NodeKind::Object,
};
/// dvsanAccessEntry: One client address or network allowed on one volume.
pub const DVSAN_ACCESS_ENTRY: MibObject = MibObject {
    name: "dvsanAccessEntry",
    suffix: &[1, 1, 5, 1],
    kind: NodeKind::Object,
};
/// dvsanAccessIndex: The entry's number within its volume.
pub const DVSAN_ACCESS_INDEX: MibObject = MibObject {
    name: "dvsanAccessIndex",
    suffix: &[1, 1, 5, 1, 1],
    kind: NodeKind::Object,
};
/// dvsanAccessClient: An IPv4 or IPv6 address, or a network in CIDR form, e.g. 192.0.2.7, 192.0.2.0/24 or 2001:db8::/64; required at creation.
pub const DVSAN_ACCESS_CLIENT: MibObject = MibObject {
    name: "dvsanAccessClient",
    suffix: &[1, 1, 5, 1, 2],
    kind: NodeKind::Object,
};
/// dvsanAccessClientMode: What the client may do; readWrite when not given at creation.
pub const DVSAN_ACCESS_CLIENT_MODE: MibObject = MibObject {
    name: "dvsanAccessClientMode",
    suffix: &[1, 1, 5, 1, 3],
    kind: NodeKind::Object,
};
/// dvsanAccessRowStatus: Creates (createAndGo) and removes (destroy) the entry.
pub const DVSAN_ACCESS_ROW_STATUS: MibObject = MibObject {
    name: "dvsanAccessRowStatus",
    suffix: &[1, 1, 5, 1, 4],
    kind: NodeKind::Object,
};
/// dvsanRaidMemberTable: The members of each RAID group, one row per member slot, in member order; a row lives as long as its group. A lost member is replaced by writing dvsanRaidMemberDisk: the SET only records the change, the rebuild runs in the background (dvsanRaidGroupState rebuilding, dvsanRaidGroupRebuildProgress) until the group is optimal again and dvsanRaidRebuilt is sent.
pub const DVSAN_RAID_MEMBER_TABLE: MibObject = MibObject {
    name: "dvsanRaidMemberTable",
    suffix: &[1, 1, 6],
    kind: NodeKind::Object,
};
/// dvsanRaidMemberEntry: One member slot of one RAID group.
pub const DVSAN_RAID_MEMBER_ENTRY: MibObject = MibObject {
    name: "dvsanRaidMemberEntry",
    suffix: &[1, 1, 6, 1],
    kind: NodeKind::Object,
};
/// dvsanRaidMemberSlot: The member's position in its group, from 1: slot N holds the Nth disk of dvsanRaidGroupMembers.
pub const DVSAN_RAID_MEMBER_SLOT: MibObject = MibObject {
    name: "dvsanRaidMemberSlot",
    suffix: &[1, 1, 6, 1, 1],
    kind: NodeKind::Object,
};
/// dvsanRaidMemberDisk: The dvsanDiskIndex of the disk in this slot.
///
/// Writing a disk's index replaces the member with that disk, only while the member is lost (failed or missing), in a group with redundancy that has not failed, with a present disk in no other group and at least as large as the member's share; a refused replacement changes nothing (inconsistentValue).
pub const DVSAN_RAID_MEMBER_DISK: MibObject = MibObject {
    name: "dvsanRaidMemberDisk",
    suffix: &[1, 1, 6, 1, 2],
    kind: NodeKind::Object,
};
/// dvsanRaidMemberState: inSync: in service with all its data; failed: present but out of service after I/O errors; missing: not present; rebuilding: a replacement being written, in service for the part already rebuilt.
pub const DVSAN_RAID_MEMBER_STATE: MibObject = MibObject {
    name: "dvsanRaidMemberState",
    suffix: &[1, 1, 6, 1, 3],
    kind: NodeKind::Object,
};
/// dvsanRaidMemberReaddSize: For a lost member: how much of its share (MiB, rounded up) writing its own disk back to dvsanRaidMemberDisk would rebuild: only what the group wrote while a member was out if it went out in sync, its whole share otherwise; 0 for a member in service.
pub const DVSAN_RAID_MEMBER_READD_SIZE: MibObject = MibObject {
    name: "dvsanRaidMemberReaddSize",
    suffix: &[1, 1, 6, 1, 4],
    kind: NodeKind::Object,
};
/// dvsanConformance: The `dvsanConformance` node.
pub const DVSAN_CONFORMANCE: MibObject = MibObject {
    name: "dvsanConformance",
    suffix: &[1, 2],
    kind: NodeKind::Node,
};
/// dvsanCompliances: The `dvsanCompliances` node.
pub const DVSAN_COMPLIANCES: MibObject = MibObject {
    name: "dvsanCompliances",
    suffix: &[1, 2, 1],
    kind: NodeKind::Node,
};
/// dvsanCompliance: A dvsan SAN unit implements every group of this module.
pub const DVSAN_COMPLIANCE: MibObject = MibObject {
    name: "dvsanCompliance",
    suffix: &[1, 2, 1, 1],
    kind: NodeKind::Conformance,
};
/// dvsanGroups: The `dvsanGroups` node.
pub const DVSAN_GROUPS: MibObject = MibObject {
    name: "dvsanGroups",
    suffix: &[1, 2, 2],
    kind: NodeKind::Node,
};
/// dvsanUnitGroup: The unit's identity, capacity and endpoints.
pub const DVSAN_UNIT_GROUP: MibObject = MibObject {
    name: "dvsanUnitGroup",
    suffix: &[1, 2, 2, 1],
    kind: NodeKind::Conformance,
};
/// dvsanDiskGroup: The unit's disks.
pub const DVSAN_DISK_GROUP: MibObject = MibObject {
    name: "dvsanDiskGroup",
    suffix: &[1, 2, 2, 2],
    kind: NodeKind::Conformance,
};
/// dvsanRaidGroupGroup: The unit's RAID groups.
pub const DVSAN_RAID_GROUP_GROUP: MibObject = MibObject {
    name: "dvsanRaidGroupGroup",
    suffix: &[1, 2, 2, 3],
    kind: NodeKind::Conformance,
};
/// dvsanVolumeGroup: The unit's volumes.
pub const DVSAN_VOLUME_GROUP: MibObject = MibObject {
    name: "dvsanVolumeGroup",
    suffix: &[1, 2, 2, 4],
    kind: NodeKind::Conformance,
};
/// dvsanAccessGroup: The volumes' access lists.
pub const DVSAN_ACCESS_GROUP: MibObject = MibObject {
    name: "dvsanAccessGroup",
    suffix: &[1, 2, 2, 5],
    kind: NodeKind::Conformance,
};
/// dvsanNotificationGroup: What a unit tells its station and monitoring tools as it happens.
pub const DVSAN_NOTIFICATION_GROUP: MibObject = MibObject {
    name: "dvsanNotificationGroup",
    suffix: &[1, 2, 2, 6],
    kind: NodeKind::Conformance,
};

/// dvsanRaidMemberGroup: The RAID groups' members, and the replacement of lost ones.
pub const DVSAN_RAID_MEMBER_GROUP: MibObject = MibObject {
    name: "dvsanRaidMemberGroup",
    suffix: &[1, 2, 2, 7],
    kind: NodeKind::Conformance,
};

/// Every object above, in OID order.
pub const ALL: &[MibObject] = &[
    DVSAN_MIB,
    DVSAN_NOTIFICATIONS,
    DVSAN_DISK_FAILED,
    DVSAN_RAID_DEGRADED,
    DVSAN_RAID_REBUILT,
    DVSAN_VOLUME_CREATED,
    DVSAN_VOLUME_DELETED,
    DVSAN_CAPACITY_LOW,
    DVSAN_OBJECTS,
    DVSAN_UNIT,
    DVSAN_UNIT_NAME,
    DVSAN_UNIT_UUID,
    DVSAN_UNIT_SOFTWARE_VERSION,
    DVSAN_UNIT_TOTAL_CAPACITY,
    DVSAN_UNIT_FREE_CAPACITY,
    DVSAN_UNIT_STATION_ADDRESS,
    DVSAN_UNIT_CAPACITY_LOW_THRESHOLD,
    DVSAN_UNIT_NBD_ENDPOINT,
    DVSAN_UNIT_SNMP_ENDPOINT,
    DVSAN_UNIT_NBD_TLS,
    DVSAN_DISK_TABLE,
    DVSAN_DISK_ENTRY,
    DVSAN_DISK_INDEX,
    DVSAN_DISK_PATH,
    DVSAN_DISK_MODEL,
    DVSAN_DISK_SERIAL,
    DVSAN_DISK_SIZE,
    DVSAN_DISK_STATE,
    DVSAN_DISK_RAID_GROUP,
    DVSAN_RAID_GROUP_TABLE,
    DVSAN_RAID_GROUP_ENTRY,
    DVSAN_RAID_GROUP_INDEX,
    DVSAN_RAID_GROUP_NAME,
    DVSAN_RAID_GROUP_LEVEL,
    DVSAN_RAID_GROUP_CHUNK_SIZE,
    DVSAN_RAID_GROUP_MEMBER_COUNT,
    DVSAN_RAID_GROUP_MEMBERS,
    DVSAN_RAID_GROUP_CAPACITY,
    DVSAN_RAID_GROUP_FREE,
    DVSAN_RAID_GROUP_STATE,
    DVSAN_RAID_GROUP_REBUILD_PROGRESS,
    DVSAN_RAID_GROUP_ROW_STATUS,
    DVSAN_VOLUME_TABLE,
    DVSAN_VOLUME_ENTRY,
    DVSAN_VOLUME_INDEX,
    DVSAN_VOLUME_NAME,
    DVSAN_VOLUME_UUID,
    DVSAN_VOLUME_RAID_GROUP,
    DVSAN_VOLUME_OFFSET,
    DVSAN_VOLUME_SIZE,
    DVSAN_VOLUME_STATE,
    DVSAN_VOLUME_EXPORT_NAME,
    DVSAN_VOLUME_ACCESS_MODE,
    DVSAN_VOLUME_READ_OPS,
    DVSAN_VOLUME_WRITE_OPS,
    DVSAN_VOLUME_READ_OCTETS,
    DVSAN_VOLUME_WRITE_OCTETS,
    DVSAN_VOLUME_ROW_STATUS,
    DVSAN_ACCESS_TABLE,
    DVSAN_ACCESS_ENTRY,
    DVSAN_ACCESS_INDEX,
    DVSAN_ACCESS_CLIENT,
    DVSAN_ACCESS_CLIENT_MODE,
    DVSAN_ACCESS_ROW_STATUS,
    DVSAN_RAID_MEMBER_TABLE,
    DVSAN_RAID_MEMBER_ENTRY,
    DVSAN_RAID_MEMBER_SLOT,
    DVSAN_RAID_MEMBER_DISK,
    DVSAN_RAID_MEMBER_STATE,
    DVSAN_RAID_MEMBER_READD_SIZE,
    DVSAN_CONFORMANCE,
    DVSAN_COMPLIANCES,
    DVSAN_COMPLIANCE,
    DVSAN_GROUPS,
    DVSAN_UNIT_GROUP,
    DVSAN_DISK_GROUP,
    DVSAN_RAID_GROUP_GROUP,
    DVSAN_VOLUME_GROUP,
    DVSAN_ACCESS_GROUP,
    DVSAN_NOTIFICATION_GROUP,
    DVSAN_RAID_MEMBER_GROUP,
];

macro_rules! mib_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $value),+
        }

        impl $name {
            /// The value for a wire INTEGER, when it names one.
            pub fn from_i32(v: i32) -> Option<Self> {
                match v {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The wire INTEGER.
            pub fn as_i32(self) -> i32 {
                self as i32
            }

            /// Every value, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
        }
    };
}

mib_enum! {
    /// DvsanRaidLevel.
    RaidLevel {
        /// linear(1): members concatenated.
        Linear = 1,
        /// raid0(2): striped.
        Raid0 = 2,
        /// raid1(3): mirrored.
        Raid1 = 3,
        /// raid10(4): striped over mirrored pairs.
        Raid10 = 4,
        /// raid5(5): rotating parity, left-symmetric.
        Raid5 = 5,
        /// raid6(6): P and Q parity.
        Raid6 = 6,
    }
}

mib_enum! {
    /// dvsanDiskState.
    DiskState {
        /// ok(1)
        Ok = 1,
        /// failed(2)
        Failed = 2,
        /// missing(3)
        Missing = 3,
        /// spare(4)
        Spare = 4,
        /// rebuilding(5)
        Rebuilding = 5,
    }
}

mib_enum! {
    /// dvsanRaidGroupState.
    RaidGroupState {
        /// optimal(1)
        Optimal = 1,
        /// degraded(2)
        Degraded = 2,
        /// rebuilding(3)
        Rebuilding = 3,
        /// failed(4)
        Failed = 4,
        /// resyncing(5)
        Resyncing = 5,
    }
}

mib_enum! {
    /// dvsanRaidMemberState.
    RaidMemberState {
        /// inSync(1)
        InSync = 1,
        /// failed(2)
        Failed = 2,
        /// missing(3)
        Missing = 3,
        /// rebuilding(4)
        Rebuilding = 4,
    }
}

mib_enum! {
    /// dvsanVolumeState.
    VolumeState {
        /// online(1)
        Online = 1,
        /// offline(2)
        Offline = 2,
        /// degraded(3)
        Degraded = 3,
        /// failed(4)
        Failed = 4,
    }
}

mib_enum! {
    /// dvsanUnitNbdTls.
    NbdTls {
        /// off(1)
        Off = 1,
        /// optional(2)
        Optional = 2,
        /// required(3)
        Required = 3,
    }
}

mib_enum! {
    /// DvsanAccessMode.
    AccessMode {
        /// readWrite(1)
        ReadWrite = 1,
        /// readOnly(2)
        ReadOnly = 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_unique_and_in_oid_order() {
        for pair in ALL.windows(2) {
            assert!(
                pair[0].oid() < pair[1].oid(),
                "{} !< {}",
                pair[0].name,
                pair[1].name
            );
        }
        assert_eq!(
            DVSAN_VOLUME_NAME.instance(&[7]).to_string(),
            "1.3.6.1.4.1.8072.9999.9999.1.1.4.1.2.7"
        );
        assert_eq!(RaidLevel::from_i32(5), Some(RaidLevel::Raid5));
        assert_eq!(RaidLevel::from_i32(7), None);
        assert_eq!(AccessMode::ReadOnly.as_i32(), 2);
    }
}
