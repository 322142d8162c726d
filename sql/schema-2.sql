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

alter table dentbook.bookings
    add column starts_at timestamptz generated always as (lower(during)) stored,
    add column email_key text generated always as (lower(patient_email)) stored;

-- The longest visit a clinic may define (visit_types.duration_minutes <= 480): a booking
-- overlapping [a, b) starts in [a - longest_visit(), b).
create function dentbook.longest_visit() returns interval
    language sql immutable parallel safe
as $$ select interval '480 minutes' $$;

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
