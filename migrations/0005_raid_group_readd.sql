-- Per member slot of a RAID group, comma-separated like members: MiB a
-- lost member's own disk back in its slot would rebuild
-- (dvsanRaidMemberReaddSize; 0 in service). Empty for agents without the
-- object and for groups learned before this column, until their next poll.
ALTER TABLE raid_groups ADD COLUMN readd_mib TEXT NOT NULL DEFAULT '';
