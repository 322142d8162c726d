-- dentbook schema, version 2: indexes that row level security lets PostgreSQL use.
--
-- Under row level security a query's own conditions may run before the policy's only
-- when their functions are leakproof; any other condition is applied after the policy,
-- as a filter, never as an index condition. Range overlap (&&), lower(range) and
-- lower(text) are not leakproof; comparisons of timestamps, text and addresses are.
-- Version 1 looked bookings up by `during && …` and `lower(patient_email) = …`, so each
-- availability read walked every booking the doctor ever had, the staff list every
-- booking of the clinic, and the hold limits every lapsed hold: cost grew with history.
-- These plain columns give those reads leakproof keys (the range stays the truth; the
-- queries keep `&&` as an exact re-check).
--
-- The planner must also see that a doctor's bookings are many: it estimates
-- `tenant_id = current_tenant() and doctor_id = …` as if clinic and doctor were
-- independent, so with a thousand clinics an index on (tenant_id, doctor_id) looks like
-- one row and won over the (…, starts_at) index. A doctor's id alone names one clinic (the
-- unique key below), so the no-overlap constraint keys on doctor_id alone: it still only
-- ever compares bookings of one clinic, and its index is estimated as what it holds.

alter table dentbook.bookings
    add column starts_at timestamptz generated always as (lower(during)) stored,
    add column email_key text generated always as (lower(patient_email)) stored;

-- The longest visit a clinic may define (visit_types.duration_minutes <= 480): a booking
-- overlapping [a, b) starts in [a - longest_visit(), b).
create function dentbook.longest_visit() returns interval
    language sql immutable parallel safe
as $$ select interval '480 minutes' $$;

alter table dentbook.doctors add constraint doctors_id_key unique (id);

alter table dentbook.bookings drop constraint bookings_no_overlap;
-- G1: no two active bookings of one doctor overlap, whatever their lengths.
alter table dentbook.bookings add constraint bookings_no_overlap exclude using gist (
    doctor_id with =, during with &&
) where (status in ('pending', 'confirmed'));

drop index dentbook.bookings_active_by_doctor;
drop index dentbook.bookings_upcoming;
drop index dentbook.bookings_holds_by_email;
drop index dentbook.bookings_holds_by_ip;

create index bookings_active_by_doctor_start on dentbook.bookings (tenant_id, doctor_id, starts_at)
    where status in ('pending', 'confirmed');
create index bookings_by_start on dentbook.bookings (tenant_id, starts_at);
create index bookings_holds_by_email on dentbook.bookings (tenant_id, email_key, hold_expires_at)
    where status = 'pending';
create index bookings_holds_by_ip on dentbook.bookings (tenant_id, client_ip, hold_expires_at)
    where status = 'pending';
