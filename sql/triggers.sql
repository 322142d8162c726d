-- Triggers: the audit trail, append-only tables, and the notifications that keep
-- calendars live and wake the job runner. Re-applied whenever this file changes.

-- Audit: every status change (and the start of a delayed payment) appends a row.
create or replace function dentbook.audit_booking() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    if tg_op = 'INSERT' or old.status is distinct from new.status
       or old.payment_processing is distinct from new.payment_processing then
        insert into booking_events (tenant_id, booking_id, from_status, to_status, detail)
        values (new.tenant_id, new.id, case when tg_op = 'UPDATE' then old.status end, new.status,
                coalesce(nullif(current_setting('app.audit_detail', true), ''), lower(tg_op))
                || case when new.payment_processing then ' (payment processing)' else '' end);
    end if;
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

drop trigger if exists booking_events_append_only on dentbook.booking_events;
create trigger booking_events_append_only before update or delete or truncate
    on dentbook.booking_events for each statement execute function dentbook.refuse_change();

-- Realtime: announce every change that takes or frees time, on commit (NOTIFY is
-- transactional, so a rolled-back hold is never announced). Ids and instants only.
create or replace function dentbook.notify_booking() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    if tg_op = 'INSERT' or old.status is distinct from new.status
       or old.payment_processing is distinct from new.payment_processing
       or old.hold_expires_at is distinct from new.hold_expires_at then
        perform pg_notify('dentbook_bookings', json_build_object(
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

-- A job was written: wake the job runners (NOTIFY is sent on commit, and folded into one
-- per transaction, so a rolled-back change wakes nobody).
create or replace function dentbook.notify_jobs() returns trigger
    language plpgsql security definer set search_path = dentbook, pg_catalog, pg_temp
as $$
begin
    perform pg_notify('dentbook_jobs', '');
    return null;
end
$$;

drop trigger if exists jobs_notify on dentbook.jobs;
create trigger jobs_notify after insert on dentbook.jobs
    for each statement execute function dentbook.notify_jobs();

revoke execute on all functions in schema dentbook from public;
