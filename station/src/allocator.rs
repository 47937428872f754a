//! Where a new volume goes: a pure decision over the free space of the
//! online units' RAID groups, so it can be tested and timed without SNMP.
//!
//! One unit when one has the space (among equal fits, the unit with the most
//! free space wins, which spreads load); otherwise extents across groups,
//! largest free first, so the volume has as few extents as possible.

use serde::Serialize;

/// Free space in one RAID group of an eligible unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSpace {
    /// The unit's UUID.
    pub unit_uuid: String,
    /// The unit's free space over all its groups, MiB.
    pub unit_free_mib: u64,
    /// dvsanRaidGroupIndex.
    pub group: u32,
    /// Free space in the group, MiB.
    pub free_mib: u64,
}

/// One piece of the plan: `size_mib` from `group` on `unit_uuid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedExtent {
    /// The unit's UUID.
    pub unit_uuid: String,
    /// dvsanRaidGroupIndex.
    pub group: u32,
    /// Size, MiB.
    pub size_mib: u64,
}

/// Not enough space in all the eligible groups together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{wanted} MiB asked, but the {groups} eligible RAID groups have {available} MiB free together"
)]
pub struct Shortfall {
    /// MiB asked.
    pub wanted: u64,
    /// MiB free together.
    pub available: u64,
    /// How many groups were eligible.
    pub groups: usize,
}

/// Most MiB one extent may have (dvsanVolumeSize is a Gauge32 of MiB).
pub const MAX_EXTENT_MIB: u64 = u32::MAX as u64;

/// Plans `size_mib` over `spaces`.
pub fn place(spaces: &[GroupSpace], size_mib: u64) -> Result<Vec<PlannedExtent>, Shortfall> {
    let single = spaces
        .iter()
        .filter(|g| g.free_mib >= size_mib && size_mib <= MAX_EXTENT_MIB)
        .max_by(|a, b| {
            (a.unit_free_mib, a.free_mib, &b.unit_uuid, b.group).cmp(&(
                b.unit_free_mib,
                b.free_mib,
                &a.unit_uuid,
                a.group,
            ))
        });
    if let Some(g) = single {
        return Ok(vec![PlannedExtent {
            unit_uuid: g.unit_uuid.clone(),
            group: g.group,
            size_mib,
        }]);
    }
    let mut by_free: Vec<&GroupSpace> = spaces.iter().filter(|g| g.free_mib > 0).collect();
    by_free.sort_by(|a, b| {
        (b.free_mib, b.unit_free_mib, &a.unit_uuid, a.group).cmp(&(
            a.free_mib,
            a.unit_free_mib,
            &b.unit_uuid,
            b.group,
        ))
    });
    let mut plan = Vec::new();
    let mut left = size_mib;
    for g in by_free {
        if left == 0 {
            break;
        }
        let take = left.min(g.free_mib).min(MAX_EXTENT_MIB);
        plan.push(PlannedExtent {
            unit_uuid: g.unit_uuid.clone(),
            group: g.group,
            size_mib: take,
        });
        left -= take;
    }
    if left > 0 {
        return Err(Shortfall {
            wanted: size_mib,
            available: spaces.iter().map(|g| g.free_mib).sum(),
            groups: spaces.len(),
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(unit: &str, unit_free: u64, group: u32, free: u64) -> GroupSpace {
        GroupSpace {
            unit_uuid: unit.into(),
            unit_free_mib: unit_free,
            group,
            free_mib: free,
        }
    }

    #[test]
    fn one_unit_when_one_fits_and_the_freest_unit_wins() {
        let spaces = [
            g("a", 300, 1, 300),
            g("b", 900, 1, 500),
            g("b", 900, 2, 400),
        ];
        let plan = place(&spaces, 350).unwrap();
        assert_eq!(plan.len(), 1);
        assert_eq!((plan[0].unit_uuid.as_str(), plan[0].group), ("b", 1));
        let plan = place(&spaces, 250).unwrap();
        assert_eq!(plan[0].unit_uuid, "b", "the unit with the most free space");
    }

    #[test]
    fn spans_units_largest_first_when_none_fits_alone() {
        let spaces = [
            g("a", 300, 1, 300),
            g("b", 500, 1, 500),
            g("c", 100, 1, 100),
        ];
        let plan = place(&spaces, 700).unwrap();
        let pieces: Vec<_> = plan
            .iter()
            .map(|e| (e.unit_uuid.as_str(), e.size_mib))
            .collect();
        assert_eq!(pieces, [("b", 500), ("a", 200)]);
    }

    #[test]
    fn shortfall_says_what_is_free() {
        let spaces = [g("a", 300, 1, 300), g("b", 500, 1, 500)];
        let e = place(&spaces, 801).unwrap_err();
        assert_eq!((e.wanted, e.available, e.groups), (801, 800, 2));
        assert!(place(&[], 1).is_err());
    }

    #[test]
    fn every_plan_covers_the_size_exactly_within_free_space() {
        use proptest::prelude::*;
        proptest!(|(frees in proptest::collection::vec(0u64..1000, 0..12), size in 1u64..6000)| {
            let spaces: Vec<_> = frees
                .iter()
                .enumerate()
                .map(|(i, f)| g(&format!("u{}", i / 2), 0, i as u32, *f))
                .collect();
            match place(&spaces, size) {
                Ok(plan) => {
                    prop_assert_eq!(plan.iter().map(|e| e.size_mib).sum::<u64>(), size);
                    for e in &plan {
                        let s = spaces.iter().find(|s| s.unit_uuid == e.unit_uuid && s.group == e.group).unwrap();
                        prop_assert!(e.size_mib <= s.free_mib && e.size_mib > 0);
                    }
                }
                Err(e) => prop_assert!(e.available < size),
            }
        });
    }
}
