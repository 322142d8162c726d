-- dentbook schema, version 8: ready to be distributed by clinic, and one replaceable path for
-- every notification.
--
-- A sharded deployment (Citus, docs/deploy.md "Distributing by clinic") places each clinic's
-- rows on one node by tenant_id. That works only if every constraint can be checked on one
-- node: every primary, unique and exclusion constraint must contain tenant_id (compared with
-- =), and every foreign key between clinic tables must carry it on both sides. Version 1 was
-- written that way; three keys since were not. tests/scaleout/test_distribution.py reads the
-- catalogue and fails on any constraint or unique index that breaks the rule.

-- A doctor's id alone was unique (schema-2) so that the no-overlap constraint could leave
-- tenant_id out; it goes back in below, and (tenant_id, id), the primary key, stays.
alter table dentbook.doctors drop constraint doctors_id_key;

-- Calendar feed and invitation tokens are looked up inside their clinic (row level security
-- makes every lookup one clinic's), so uniqueness within the clinic is all a lookup needs; the
-- 32 random bytes behind each hash make a collision across clinics impossible in practice.
alter table dentbook.doctors
    drop constraint doctors_feed_hash_key,
    add constraint doctors_feed_hash_key unique (tenant_id, feed_hash);
alter table dentbook.staff_accounts
    drop constraint staff_accounts_invite_hash_key,
    add constraint staff_accounts_invite_hash_key unique (tenant_id, invite_hash);

-- G1 with the clinic in it again: no two active bookings of one doctor overlap. Rebuilding
-- the index locks bookings while it is built (16 s for 300,000 bookings on a 2-core
-- machine); docs/deploy.md says so under upgrades.
alter table dentbook.bookings
    drop constraint bookings_no_overlap,
    add constraint bookings_no_overlap exclude using gist (
        tenant_id with =, doctor_id with =, during with &&
    ) where (status in ('pending', 'confirmed'));

-- Why schema-2 had dropped tenant_id: the planner multiplies the selectivities of
-- `tenant_id = current_tenant()` and `doctor_id = …` as if independent, so with a thousand
-- clinics an index keyed on both looked like one row and beat the (tenant_id, doctor_id,
-- starts_at) index that bounds a read to its week. A doctor's id names its clinic; these
-- statistics tell the planner so (doctor_id determines tenant_id). Checked with EXPLAIN on
-- 100,000 bookings in 1,000 clinics (bench/growth.py's data): a doctor with 7,865 active
-- bookings was estimated at 1,574 without them and 8,148 with them; the availability read
-- and the hold's lookups use the same indexes as before (bookings_active_by_doctor_start,
-- bookings_holds_by_*), never the exclusion constraint's, and tests/test_query_cost.py holds.
create statistics dentbook.bookings_doctor_clinic (dependencies)
    on tenant_id, doctor_id from dentbook.bookings;
analyze dentbook.bookings;

-- Every notification (calendars, clinics, jobs, staff sessions) is sent through this one
-- function, never by pg_notify directly (tests/scaleout/test_distribution.py checks).
-- On one PostgreSQL server it is pg_notify, delivered at commit to every LISTEN connection.
-- On a Citus cluster the triggers that call it run on the worker node holding the row, and a
-- NOTIFY there reaches nobody: the listeners are connected to the coordinator. A distributed
-- deployment replaces this body (docs/deploy.md shows how) with one that hands the
-- notification to the coordinator. It lives in this versioned file, which runs once, so a
-- replacement survives upgrades: the repeatable files never re-create it.
create function dentbook.announce(p_channel text, p_payload text) returns void
    language sql volatile set search_path = dentbook, pg_catalog, pg_temp
as $$ select pg_notify(p_channel, p_payload) $$;
