-- Triggers: the audit trail, append-only tables, and the notifications that keep
-- calendars live and wake the job runner. Re-applied whenever this file changes.

-- Audit: every change of a booking's status, time, doctor or attendance (and the start of
-- a delayed payment) appends a row to the audit log: who (app.actor and app.staff_id, set
-- by the transaction), what (app.audit_detail), before and after. Ids, times and states
-- only: never the patient's name, e-mail or phone.
create or replace function dentbook.audit_booking() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    v_action text;
begin
    if tg_op = 'INSERT' then
        v_action := case when new.kind = 'block' then 'block' else 'created' end;
    elsif old.status is distinct from new.status
          or old.payment_processing is distinct from new.payment_processing then
        v_action := 'status';
    elsif old.during is distinct from new.during or old.doctor_id is distinct from new.doctor_id then
        v_action := 'moved';
    elsif old.attendance is distinct from new.attendance then
        v_action := 'attendance';
    else
        return null;
    end if;
    insert into audit_log (tenant_id, booking_id, from_status, to_status, detail, actor, staff_id,
                           action, before, after)
    values (new.tenant_id, new.id, case when tg_op = 'UPDATE' then old.status end, new.status,
            coalesce(nullif(current_setting('app.audit_detail', true), ''), lower(tg_op))
            || case when new.payment_processing then ' (payment processing)' else '' end,
            coalesce(nullif(current_setting('app.actor', true), ''), 'system'),
            nullif(current_setting('app.staff_id', true), '')::uuid, v_action,
            case when tg_op = 'UPDATE' then jsonb_build_object(
                'status', old.status, 'doctor', old.doctor_id, 'start', lower(old.during),
                'end', upper(old.during), 'attendance', old.attendance) end,
            jsonb_build_object('status', new.status, 'doctor', new.doctor_id,
                               'start', lower(new.during), 'end', upper(new.during),
                               'attendance', new.attendance));
    return null;
end
$$;

drop trigger if exists bookings_audit on dentbook.bookings;
create trigger bookings_audit after insert or update on dentbook.bookings
    for each row execute function dentbook.audit_booking();

create or replace function dentbook.refuse_change() returns trigger
    language plpgsql set search_path = pg_catalog
as $$
begin
    raise exception '% is append-only', tg_table_name using errcode = 'DBK09';
end
$$;

drop trigger if exists booking_events_append_only on dentbook.audit_log;
drop trigger if exists audit_log_append_only on dentbook.audit_log;
create trigger audit_log_append_only before update or delete or truncate
    on dentbook.audit_log for each statement execute function dentbook.refuse_change();

-- Realtime: announce every change that takes or frees time, on commit (NOTIFY is
-- transactional, so a rolled-back hold is never announced). Ids and instants only. A
-- visit that moved is announced twice: its old time is free, its new time is taken.
create or replace function dentbook.notify_booking() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    if tg_op = 'UPDATE' and (old.during is distinct from new.during
                             or old.doctor_id is distinct from new.doctor_id) then
        perform dentbook.announce('dentbook_bookings', json_build_object(
            't', old.tenant_id, 'd', old.doctor_id, 'b', old.id,
            's', lower(old.during), 'e', upper(old.during), 'st', 'moved', 'x', null)::text);
    end if;
    if tg_op = 'INSERT' or old.status is distinct from new.status
       or old.payment_processing is distinct from new.payment_processing
       or old.hold_expires_at is distinct from new.hold_expires_at
       or old.during is distinct from new.during or old.doctor_id is distinct from new.doctor_id
       or old.attendance is distinct from new.attendance then
        perform dentbook.announce('dentbook_bookings', json_build_object(
            't', new.tenant_id, 'd', new.doctor_id, 'b', new.id,
            's', lower(new.during), 'e', upper(new.during),
            'st', new.status, 'x', new.hold_expires_at)::text);
    end if;
    return null;
end
$$;

drop trigger if exists bookings_notify on dentbook.bookings;
create trigger bookings_notify after insert or update on dentbook.bookings
    for each row execute function dentbook.notify_booking();

-- Privacy: a visit records the version of the clinic's privacy notice in force at the
-- instant it is booked (0: the default template), the one its booking form linked to. A
-- version saved between the form being shown and sent is the one recorded: the notice in
-- force when the patient gave their data.
create or replace function dentbook.stamp_privacy_version() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    if new.kind = 'visit' then
        new.privacy_version := coalesce((select max(p.version) from privacy_notices p
                                         where p.tenant_id = new.tenant_id), 0);
    end if;
    return new;
end
$$;

drop trigger if exists bookings_privacy_version on dentbook.bookings;
create trigger bookings_privacy_version before insert on dentbook.bookings
    for each row execute function dentbook.stamp_privacy_version();

-- A clinic's details or setup changed (its row, doctors, visit types, hours, days off):
-- every process forgets what it kept of it (dentbook.tenancy, dentbook.live.grids). The
-- payload is the clinic's id; one per clinic and transaction (NOTIFY folds duplicates).
create or replace function dentbook.notify_clinic() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
declare
    r record;
    v_tenant uuid;
begin
    if tg_op = 'DELETE' then r := old; else r := new; end if;
    if tg_table_name = 'tenants' then
        v_tenant := r.id;
    else
        v_tenant := r.tenant_id;
    end if;
    perform dentbook.announce('dentbook_clinics', v_tenant::text);
    return null;
end
$$;

drop trigger if exists tenants_notify on dentbook.tenants;
create trigger tenants_notify after update or delete on dentbook.tenants
    for each row execute function dentbook.notify_clinic();
drop trigger if exists doctors_notify on dentbook.doctors;
create trigger doctors_notify after insert or update or delete on dentbook.doctors
    for each row execute function dentbook.notify_clinic();
drop trigger if exists visit_types_notify on dentbook.visit_types;
create trigger visit_types_notify after insert or update or delete on dentbook.visit_types
    for each row execute function dentbook.notify_clinic();
drop trigger if exists working_hours_notify on dentbook.working_hours;
create trigger working_hours_notify after insert or update or delete on dentbook.working_hours
    for each row execute function dentbook.notify_clinic();
drop trigger if exists days_off_notify on dentbook.days_off;
create trigger days_off_notify after insert or update or delete on dentbook.days_off
    for each row execute function dentbook.notify_clinic();

-- A job was written: wake the job runners (NOTIFY is sent on commit, and folded into one
-- per transaction, so a rolled-back change wakes nobody).
create or replace function dentbook.notify_jobs() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    perform dentbook.announce('dentbook_jobs', '');
    return null;
end
$$;

drop trigger if exists jobs_notify on dentbook.jobs;
create trigger jobs_notify after insert on dentbook.jobs
    for each statement execute function dentbook.notify_jobs();

revoke execute on all functions in schema dentbook from public;

-- A job given up for good (an e-mail that could not be sent, a refund Stripe refused) is on
-- its clinic's audit page, linked to the visit: a person must act (call the patient, look
-- at the payment in Stripe). The error itself stays in the jobs row: it may quote an
-- address, and the audit log never names a patient.
create or replace function dentbook.audit_failed_job() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    insert into audit_log (tenant_id, booking_id, actor, action, detail, after)
    values (new.tenant_id, new.booking_id, 'system', 'job.failed',
            -- 'refund', 'retention', or the e-mail's kind: 'email: reminder'
            coalesce('email: ' || (select m.kind from messages m
                                   where new.kind = 'email' and m.tenant_id = new.tenant_id
                                     and m.id = new.ref), new.kind),
            jsonb_build_object('attempts', new.attempts));
    -- The message it was to send is failed too (a patient's export says so, not "due").
    update messages m set state = 'failed'
    where new.kind = 'email' and m.tenant_id = new.tenant_id and m.id = new.ref
      and m.state = 'due';
    return null;
end
$$;

drop trigger if exists jobs_failed_audit on dentbook.jobs;
create trigger jobs_failed_audit after update of state on dentbook.jobs
    for each row when (new.state = 'failed' and old.state <> 'failed')
    execute function dentbook.audit_failed_job();
